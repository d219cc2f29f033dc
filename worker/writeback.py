"""Writing profiles and batch outcomes back into the graph.

A chunk's profiles are written in one managed transaction (all of them land or none of them: a retried chunk writes
them all again), a failure in one of its own, and every statement is idempotent,
keyed by video id and model version: a redelivered task rewrites the same nodes and relationships instead of adding
new ones. Profiling a video again with the same model version replaces that profile; a new model version adds a
profile and moves ``latest`` to it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Sequence

import neo4j

from kg_builder.graph import Graph
from worker.records import ProfileRecord, VideoMeta

log = logging.getLogger(__name__)

# Every statement below takes the chunk's videos as ``$rows`` (one map per video) and runs once per chunk: five
# round trips and one commit for a chunk instead of five round trips per video (bench/profile_write.py).

# The videos and their metadata; the embedding feeds the `video_embedding` vector index.
MERGE_VIDEOS = """
UNWIND $rows AS row
MERGE (v:Video {id: row.video.id})
SET v += row.video, v.embedding = CASE WHEN size(row.embedding) = 0 THEN v.embedding ELSE row.embedding END
"""

# Mentions are replaced wholesale: the newest linking of the caption is the truth.
REPLACE_MENTIONS = """
UNWIND $rows AS row
MATCH (v:Video {id: row.video.id})
OPTIONAL MATCH (v)-[old:MENTIONS]->(:Entity)
DELETE old
WITH DISTINCT v, row
UNWIND row.mentions AS m
MATCH (e:Entity {id: m.entity_id})
CREATE (v)-[:MENTIONS {surface: m.surface, start: m.start, end: m.end, score: m.score, negated: m.negated}]->(e)
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
MATCH (disease:Entity:Disease {id: d.disease_id})
CREATE (p)-[:PREDICTS {prob: d.prob, rank: d.rank}]->(disease)
"""

# The batch records each video's outcome on its CONTAINS relationship; the counts are recomputed from those
# (RECOUNT_BATCH, once per transaction: it reads every CONTAINS of the batch), so they cannot drift from the per-video
# truth.
SET_OUTCOMES = """
MERGE (b:Batch {id: $batch_id})
WITH b
UNWIND $video_ids AS video_id
MATCH (v:Video {id: video_id})
MERGE (b)-[c:CONTAINS]->(v)
SET c.status = $status, c.reason = $reason, c.updated_at = $now
"""

RECOUNT_BATCH = """
MATCH (b:Batch {id: $batch_id})
MATCH (b)-[c:CONTAINS]->(:Video)
WITH b, count(c) AS seen, sum(CASE c.status WHEN 'done' THEN 1 ELSE 0 END) AS done,
     sum(CASE c.status WHEN 'failed' THEN 1 ELSE 0 END) AS failed
SET b.done = done, b.failed = failed,
    b.status = CASE WHEN done + failed >= coalesce(b.total, seen) THEN 'finished' ELSE 'running' END
"""

CREATE_BATCH = """
MERGE (b:Batch {id: $batch_id})
ON CREATE SET b.submitted_at = $now, b.done = 0, b.failed = 0
SET b.total = $total, b.status = CASE WHEN coalesce(b.done, 0) + coalesce(b.failed, 0) >= $total THEN 'finished' ELSE 'running' END
WITH b
UNWIND $videos AS video
MERGE (v:Video {id: video.id})
ON CREATE SET v += video
MERGE (b)-[c:CONTAINS]->(v)
ON CREATE SET c.status = 'queued'
"""

BATCH_STATUS = """
MATCH (b:Batch {id: $batch_id})
OPTIONAL MATCH (b)-[c:CONTAINS]->(v:Video)
WITH b, c, v ORDER BY v.id
RETURN b {.id, .submitted_at, .status, .total, .done, .failed} AS batch,
       collect(CASE WHEN c.status = 'failed' THEN {video_id: v.id, reason: c.reason} END) AS failures,
       collect(CASE WHEN c.status IN ['queued', 'running'] THEN v.id END) AS pending
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def video_properties(video: VideoMeta) -> dict[str, Any]:
    """The (:Video) properties: the manifest fields, with hashtags as a list (Neo4j stores lists, not tuples)."""
    props = asdict(video)
    props["hashtags"] = list(video.hashtags)
    return props


def profile_properties(record: ProfileRecord, created_at: str | None = None) -> dict[str, Any]:
    """The (:Profile) properties. Neo4j properties cannot be maps, so the explanation is stored twice: as parallel
    lists that Cypher can read, and as one JSON string that the API returns as is."""
    explanation = record.explanation
    return {
        "id": record.profile_id,
        "video_id": record.video.id,
        "model_version": record.model_version,
        "created_at": created_at or _now(),
        "popularity": float(record.popularity),
        "popularity_pct": float(record.popularity_pct),
        "quality": int(record.quality),
        "quality_probs": [float(p) for p in record.quality_probs],
        "top_keyframe_times": [float(t) for t, _ in explanation.keyframes],
        "top_keyframe_weights": [float(w) for _, w in explanation.keyframes],
        "top_entity_ids": [e for e, _ in explanation.entities],
        "top_entity_weights": [float(w) for _, w in explanation.entities],
        "explanation": json.dumps(
            {
                "keyframes": [{"t": t, "weight": w} for t, w in explanation.keyframes],
                "entities": [{"id": e, "weight": w} for e, w in explanation.entities],
                "diseases": [{"id": d.disease_id, "named": d.named, "via": list(d.via), "prior_logit": d.prior_logit,
                              "head_logit": d.head_logit, "frames_logit": d.frames_logit,
                              "keyframe": None if d.keyframe is None else {"t": d.keyframe[0], "weight": d.keyframe[1]},
                              "by_rule": d.by_rule}
                             for d in explanation.diseases],
            },
            ensure_ascii=False,
        ),
        "visual_backbone": record.visual_backbone,
        "visual_weights": record.visual_weights,
        "text_model": record.text_model,
    }


def write_profile(graph: Graph, record: ProfileRecord, *, batch_id: str | None = None) -> None:
    """Store one video's metadata, mentions, profile, predictions (and its batch outcome) in one transaction."""
    write_profiles(graph, [record], batch_id=batch_id)


def write_profiles(graph: Graph, records: Sequence[ProfileRecord], *, batch_id: str | None = None) -> None:
    """Store several videos' metadata, mentions, profiles, predictions (and their batch outcomes) in one transaction.

    A chunk's videos go through each statement together, in one commit, where each video had been a transaction of
    its own (3.3× fewer milliseconds per video at chunk 8, ``bench/profile_write.py``). The batch's counts are
    recounted once, after every outcome is set.
    """
    if not records:
        return
    now = _now()
    rows = [{"video": video_properties(r.video), "embedding": list(r.embedding), "profile": profile_properties(r, now),
             "mentions": [asdict(m) for m in r.mentions], "predictions": [asdict(p) for p in r.predictions]}
            for r in records]

    def work(tx: neo4j.ManagedTransaction) -> None:
        for statement in (MERGE_VIDEOS, REPLACE_MENTIONS, MERGE_PROFILES, REPLACE_PREDICTIONS):
            tx.run(statement, rows=rows).consume()
        if batch_id is not None:
            tx.run(SET_OUTCOMES, batch_id=batch_id, video_ids=[r.video.id for r in records], status="done", reason="",
                   now=now).consume()
            tx.run(RECOUNT_BATCH, batch_id=batch_id).consume()

    graph.write_transaction(work)


def create_batch(graph: Graph, batch_id: str, videos: list[VideoMeta]) -> None:
    """Record a submitted batch and every video in it (status 'queued') before any work starts: nothing is lost."""
    graph.write(
        CREATE_BATCH,
        {"batch_id": batch_id, "now": _now(), "total": len(videos), "videos": [video_properties(v) for v in videos]},
    )


def record_failure(graph: Graph, batch_id: str, video: VideoMeta, reason: str) -> None:
    """Record that a video of a batch failed, with the reason; the video node keeps its manifest metadata."""

    def work(tx: neo4j.ManagedTransaction) -> None:
        tx.run("MERGE (v:Video {id: $video.id}) ON CREATE SET v += $video", video=video_properties(video)).consume()
        tx.run(SET_OUTCOMES, batch_id=batch_id, video_ids=[video.id], status="failed", reason=reason, now=_now()).consume()
        tx.run(RECOUNT_BATCH, batch_id=batch_id).consume()

    graph.write_transaction(work)


def batch_status(graph: Graph, batch_id: str) -> dict[str, Any] | None:
    """The batch's counts, status and per-video failures; None when no such batch exists."""
    rows = graph.read(BATCH_STATUS, {"batch_id": batch_id})
    if not rows:
        return None
    row = rows[0]
    return {**row["batch"], "failures": [f for f in row["failures"] if f], "pending": [p for p in row["pending"] if p]}
