"""Videos: one video with its linked mentions, its latest profile, that profile's open-vocabulary tags and the history
of its profiles."""
from __future__ import annotations

from typing import Any

from kg_builder.graph import Graph

#: The video and everything its detail view shows, in one round trip.
VIDEO_DETAIL = """
MATCH (v:Video {id: $id})
// the metadata without the 256-d embedding and the 512-d text vector, which are for the vector indexes, not readers
RETURN v {.id, .platform, .url, .path, .title, .caption, .hashtags, .transcript, .duration_s, .published_at,
          .author_followers, .synthetic, has_embedding: v.embedding IS NOT NULL,
          has_text_vector: v.text_vector IS NOT NULL} AS video,
       // linked entities by field, in text order; field is null for mentions written before mentions had one
       COLLECT { MATCH (v)-[m:MENTIONS]->(e:Entity)
                 RETURN {entity_id: e.id, name: e.name, name_zh: e.name_zh,
                         kind: [l IN labels(e) WHERE l <> 'Entity'][0], surface: m.surface, field: m.field,
                         start: m.start, end: m.end, score: m.score, negated: coalesce(m.negated, false)} AS mention
                 ORDER BY m.field, m.start, m.end } AS mentions,
       // the latest profile (at most one is latest) with its predicted diseases, best rank first
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true})
                 RETURN p {.*, predictions: COLLECT { MATCH (p)-[pr:PREDICTS]->(d:Disease)
                                                      RETURN {disease_id: d.id, name: d.name, name_zh: d.name_zh,
                                                              prob: pr.prob, rank: pr.rank} AS prediction
                                                      ORDER BY pr.rank } } AS profile
                 ORDER BY p.created_at DESC LIMIT 1 } AS latest,
       // the latest profile's open-vocabulary tags (any disease of the graph), apart from its predictions
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(:Profile {latest: true})-[t:TAGGED]->(d:Disease)
                 RETURN {disease_id: d.id, name: d.name, name_zh: d.name_zh, score: t.score, source: t.source,
                         sources: t.sources, rank: t.rank, evidence: t.evidence} AS tag
                 ORDER BY t.rank, d.id } AS tags,
       // every profile, newest first (one per model version)
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile)
                 RETURN p {.id, .model_version, .created_at, .popularity, .popularity_pct, .quality, .latest} AS profile
                 ORDER BY p.created_at DESC, p.id } AS history
"""


VIDEO_EXISTS = "MATCH (v:Video {id: $id}) RETURN v.id AS id"

#: Up to $limit videos whose id starts with $prefix, with their profiles (a bench's or an evaluation's own videos).
DELETE_VIDEOS_WITH_PREFIX = """
MATCH (v:Video) WHERE v.id STARTS WITH $prefix
WITH v LIMIT $limit
OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile)
DETACH DELETE p, v
RETURN count(DISTINCT v) AS deleted
"""

#: Videos that have a text vector (search by meaning can find them), leaving out those whose id starts with $prefix.
TEXT_VECTOR_VIDEOS = """
MATCH (v:Video) WHERE v.text_vector IS NOT NULL AND NOT v.id STARTS WITH $prefix
RETURN count(v) AS n
"""


def video_exists(graph: Graph, video_id: str) -> bool:
    """Is there a video with that id?"""
    return bool(graph.read(VIDEO_EXISTS, {"id": video_id}))


def delete_videos_with_prefix(graph: Graph, prefix: str, batch: int = 1000) -> int:
    """Delete every video whose id starts with ``prefix`` and its profiles, ``batch`` videos per transaction; returns
    how many. Refuses an empty prefix (it would delete every video)."""
    if not prefix:
        raise ValueError("a prefix is required: an empty one would delete every video")
    total = 0
    while True:
        deleted = graph.write_transaction(
            lambda tx: tx.run(DELETE_VIDEOS_WITH_PREFIX, prefix=prefix, limit=batch).single()["deleted"])
        total += deleted
        if deleted < batch:
            return total


def text_vector_videos(graph: Graph, excluding_prefix: str) -> int:
    """How many videos have a text vector, leaving out those whose id starts with ``excluding_prefix``."""
    return graph.read(TEXT_VECTOR_VIDEOS, {"prefix": excluding_prefix})[0]["n"]


def video_detail(graph: Graph, video_id: str) -> dict[str, Any] | None:
    """``{video, mentions, latest, tags, history}`` of one video (``latest``: a list of at most one profile, with its
    ``predictions``; its ``explanation`` and each tag's ``evidence`` are still the stored JSON strings); None when
    there is no such video."""
    rows = graph.read(VIDEO_DETAIL, {"id": video_id})
    return rows[0] if rows else None
