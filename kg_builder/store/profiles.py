"""Profiles: writing a chunk's videos, mentions, profiles, predictions and open-vocabulary tags in one transaction,
and reading the latest profile of videos back.

Every statement is idempotent, keyed by video id and profile id (video and model version): a redelivered task
rewrites the same nodes and relationships instead of adding new ones. Writing a profile again with the same model
version replaces it; a new model version adds a profile and moves ``latest`` to it.
"""
from __future__ import annotations

from typing import Any, Sequence

import neo4j

from kg_builder.graph import Graph
from kg_builder.store.batches import set_outcomes, utc_now
from kg_builder.store.rows import ProfileRow

# Every write statement below takes the chunk's videos as ``$rows`` (one map per video, ProfileRow.parameters) and
# runs once per chunk: five round trips and one commit for a chunk instead of five round trips per video
# (bench/profile_write.py).

# The videos and their metadata; the fused embedding feeds the `video_embedding` vector index, the text's sentence
# vector the `video_text_vector` one (search by meaning).
MERGE_VIDEOS = """
UNWIND $rows AS row
MERGE (v:Video {id: row.video.id})
// an empty vector keeps the one stored
SET v += row.video, v.embedding = CASE WHEN size(row.embedding) = 0 THEN v.embedding ELSE row.embedding END,
    v.text_vector = CASE WHEN size(row.text_vector) = 0 THEN v.text_vector ELSE row.text_vector END
"""

# Mentions are replaced wholesale: the newest linking of the text is the truth. Their offsets index the text of their
# field (title, caption, hashtags, transcript); mentions written before fields existed have no field and index the
# title, caption and hashtags joined by newlines.
REPLACE_MENTIONS = """
UNWIND $rows AS row
MATCH (v:Video {id: row.video.id})
OPTIONAL MATCH (v)-[old:MENTIONS]->(:Entity)
DELETE old
// one row per video again, however many mentions were deleted
WITH DISTINCT v, row
UNWIND row.mentions AS m
MATCH (e:Entity {id: m.entity_id})
CREATE (v)-[:MENTIONS {surface: m.surface, field: m.field, start: m.start, end: m.end, score: m.score,
                       negated: m.negated}]->(e)
"""

# The profile for each (video, model version): created once, its properties replaced on every write.
MERGE_PROFILES = """
UNWIND $rows AS row
MATCH (v:Video {id: row.video.id})
MERGE (p:Profile {id: row.profile.id})
SET p += row.profile, p.latest = true
MERGE (v)-[:HAS_PROFILE]->(p)
WITH v, p
// Only one profile per video is latest: the one just written.
MATCH (v)-[:HAS_PROFILE]->(other:Profile)
WHERE other.id <> p.id AND other.latest
SET other.latest = false
"""

# Predicted diseases, replaced wholesale for each profile.
REPLACE_PREDICTIONS = """
UNWIND $rows AS row
MATCH (p:Profile {id: row.profile.id})
OPTIONAL MATCH (p)-[old:PREDICTS]->(:Disease)
DELETE old
WITH DISTINCT p, row
UNWIND row.predictions AS d
// :Entity:Disease, not :Disease alone: the id constraint (and its index) is on :Entity
MATCH (disease:Entity:Disease {id: d.disease_id})
CREATE (p)-[:PREDICTS {prob: d.prob, rank: d.rank}]->(disease)
"""

# Open-vocabulary tags, replaced wholesale for each profile; a relationship of their own, never PREDICTS.
REPLACE_TAGS = """
UNWIND $rows AS row
MATCH (p:Profile {id: row.profile.id})
OPTIONAL MATCH (p)-[old:TAGGED]->(:Disease)
DELETE old
WITH DISTINCT p, row
UNWIND row.tags AS t
MATCH (disease:Entity:Disease {id: t.disease_id})
CREATE (p)-[:TAGGED {score: t.score, source: t.source, sources: t.sources, rank: t.rank, evidence: t.evidence}]->(disease)
"""

WRITE_STATEMENTS = (MERGE_VIDEOS, REPLACE_MENTIONS, MERGE_PROFILES, REPLACE_PREDICTIONS, REPLACE_TAGS)

# The latest profile of each video with its two most probable diseases, for a table.
LATEST_PROFILE_SUMMARIES = """
UNWIND $ids AS id
MATCH (v:Video {id: id})-[:HAS_PROFILE]->(p:Profile {latest: true})
OPTIONAL MATCH (p)-[r:PREDICTS]->(d:Disease)
WITH v, p, r, d ORDER BY r.rank
RETURN v.id AS video, p.quality AS quality, round(p.popularity_pct, 1) AS popularity_pct,
       // "name prob" per prediction in rank order; a profile without predictions gives an empty list
       [x IN collect(d.name + ' ' + toString(round(r.prob, 2))) WHERE x IS NOT NULL][..2] AS diseases
ORDER BY video
"""


def write_profiles(graph: Graph, rows: Sequence[ProfileRow], *, batch_id: str | None = None,
                   now: str | None = None) -> None:
    """Store the videos' metadata and vectors, mentions, profiles, predictions and tags (and, with ``batch_id``, their
    outcome 'done' in the batch, recounted once) in one transaction: all of them land, or none.

    ``now`` stamps the outcomes (default: the current time).
    """
    if not rows:
        return
    parameters = [row.parameters() for row in rows]

    def work(tx: neo4j.ManagedTransaction) -> None:
        for statement in WRITE_STATEMENTS:
            tx.run(statement, rows=parameters).consume()
        if batch_id is not None:
            set_outcomes(tx, batch_id, [row.video.id for row in rows], status="done", reason="", now=now or utc_now())

    graph.write_transaction(work)


def latest_profile_summaries(graph: Graph, video_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Per video that has a profile, by id: ``{video, quality, popularity_pct, diseases}`` of its latest profile,
    ``diseases`` being its two most probable as ``"name prob"``."""
    return graph.read(LATEST_PROFILE_SUMMARIES, {"ids": list(video_ids)})
