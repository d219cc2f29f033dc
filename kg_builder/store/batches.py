"""Batches: the submission record, each video's outcome on its ``CONTAINS`` relationship, the counts and the status.

A batch is written once, by whoever submits it (the API, ``ovp profile``), with its videos pending, before anything
is enqueued; workers then only record outcomes. The counts are recomputed from the per-video outcomes, so they cannot
drift from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import neo4j

from kg_builder.graph import Graph
from kg_builder.store.rows import VideoMeta

#: A video's state within its batch: waiting (``queued``), being profiled (``running``), or finished.
PENDING_STATES = ("queued", "running")

# The submission: the batch with its total, every video (metadata kept if the video is already known) and a pending
# CONTAINS for each. Submitting the same id again changes no outcome already recorded.
RECORD_BATCH = """
MERGE (b:Batch {id: $batch_id})
ON CREATE SET b.submitted_at = $now, b.done = 0, b.failed = 0
// 'running' from the submission on: the batch is in the system; its videos say how far it got
SET b.total = $total, b.status = CASE WHEN coalesce(b.done, 0) + coalesce(b.failed, 0) >= $total THEN 'finished' ELSE 'running' END
WITH b
UNWIND $videos AS video
MERGE (v:Video {id: video.id})
ON CREATE SET v += video
MERGE (b)-[c:CONTAINS]->(v)
ON CREATE SET c.status = 'queued'
"""

# A batch whose manifest a worker could not read: nothing of it is profiled.
REJECT_BATCH = "MERGE (b:Batch {id: $batch_id}) SET b.status = 'rejected', b.reason = $reason, b.problems = $problems"

BATCH_EXISTS = "MATCH (b:Batch {id: $batch_id}) RETURN b.id AS id"

BATCH_STATUS = """
MATCH (b:Batch {id: $batch_id})
OPTIONAL MATCH (b)-[c:CONTAINS]->(v:Video)
WITH b, c, v ORDER BY v.id
RETURN b {.id, .submitted_at, .status, .total, .done, .failed} AS batch,
       // CASE without ELSE gives null, which collect() drops: one list per kind of outcome
       collect(CASE WHEN c.status = 'failed' THEN {video_id: v.id, reason: c.reason} END) AS failures,
       collect(CASE WHEN c.status IN $pending THEN v.id END) AS pending
"""

# Each video's outcome on its CONTAINS (the batch and the relationship are created if a submission did not record
# them). Runs inside the transaction that wrote the profiles, so an outcome never lands without its profile.
SET_OUTCOMES = """
MERGE (b:Batch {id: $batch_id})
WITH b
UNWIND $video_ids AS video_id
MATCH (v:Video {id: video_id})
MERGE (b)-[c:CONTAINS]->(v)
SET c.status = $status, c.reason = $reason, c.updated_at = $now
"""

# Once per transaction, after every outcome is set: it reads every CONTAINS of the batch.
RECOUNT_BATCH = """
MATCH (b:Batch {id: $batch_id})
MATCH (b)-[c:CONTAINS]->(:Video)
WITH b, count(c) AS seen, sum(CASE c.status WHEN 'done' THEN 1 ELSE 0 END) AS done,
     sum(CASE c.status WHEN 'failed' THEN 1 ELSE 0 END) AS failed
// a batch recorded without a total (no submission record) counts the videos it has seen
SET b.done = done, b.failed = failed,
    b.status = CASE WHEN done + failed >= coalesce(b.total, seen) THEN 'finished' ELSE 'running' END
"""

# A failed video keeps the metadata its submission stored; one never recorded gets what the failure knows of it.
ENSURE_VIDEO = "MERGE (v:Video {id: $video.id}) ON CREATE SET v += $video"

# The state of a chunk's videos within the batch; a video not in the batch reads as never tried.
CHUNK_STATE = """
UNWIND $video_ids AS vid
OPTIONAL MATCH (:Batch {id: $batch_id})-[c:CONTAINS]->(:Video {id: vid})
RETURN vid AS video_id, coalesce(c.status, 'queued') AS status, coalesce(c.attempts, 0) AS attempts
"""

# One more attempt for each video about to be processed, which is marked running; returns the new counts.
BEGIN_ATTEMPT = """
UNWIND $video_ids AS vid
MATCH (:Batch {id: $batch_id})-[c:CONTAINS]->(:Video {id: vid})
SET c.attempts = coalesce(c.attempts, 0) + 1, c.status = 'running'
RETURN vid AS video_id, c.attempts AS attempts
"""


@dataclass(frozen=True)
class VideoState:
    """Where one video of a batch stands: its status on ``CONTAINS`` and how often a worker began profiling it."""

    video_id: str
    status: str
    attempts: int

    @property
    def finished(self) -> bool:
        return self.status not in PENDING_STATES


def utc_now() -> str:
    """The timestamp the batch records carry: UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_batch(graph: Graph, batch_id: str, videos: Sequence[VideoMeta]) -> None:
    """Record a submitted batch and every video in it, pending, before any work is enqueued: nothing is lost."""
    graph.write(
        RECORD_BATCH,
        {"batch_id": batch_id, "now": utc_now(), "total": len(videos), "videos": [v.properties() for v in videos]},
    )


def batch_exists(graph: Graph, batch_id: str) -> bool:
    return bool(graph.read(BATCH_EXISTS, {"batch_id": batch_id}))


def reject_batch(graph: Graph, batch_id: str, reason: str, problems: Sequence[str]) -> None:
    """Mark a batch rejected with the reason and its problems (at most 100 are kept)."""
    graph.write(REJECT_BATCH, {"batch_id": batch_id, "reason": reason, "problems": list(problems)[:100]})


def batch_status(graph: Graph, batch_id: str) -> dict[str, Any] | None:
    """The batch's counts, status, per-video failures and pending videos; None when no such batch exists."""
    rows = graph.read(BATCH_STATUS, {"batch_id": batch_id, "pending": list(PENDING_STATES)})
    if not rows:
        return None
    row = rows[0]
    return {**row["batch"], "failures": [f for f in row["failures"] if f], "pending": [p for p in row["pending"] if p]}


def set_outcomes(tx: neo4j.ManagedTransaction, batch_id: str, video_ids: Sequence[str], *, status: str, reason: str,
                 now: str) -> None:
    """In ``tx``: record ``status`` (``done`` or ``failed``) for these videos of the batch, then recount it."""
    tx.run(SET_OUTCOMES, batch_id=batch_id, video_ids=list(video_ids), status=status, reason=reason, now=now).consume()
    tx.run(RECOUNT_BATCH, batch_id=batch_id).consume()


def record_failure(graph: Graph, batch_id: str, video: VideoMeta, reason: str) -> None:
    """Record that a video of a batch failed, with the reason, in one transaction with the recount."""

    def work(tx: neo4j.ManagedTransaction) -> None:
        tx.run(ENSURE_VIDEO, video=video.properties()).consume()
        set_outcomes(tx, batch_id, [video.id], status="failed", reason=reason, now=utc_now())

    graph.write_transaction(work)


def video_states(graph: Graph, batch_id: str, video_ids: Sequence[str]) -> dict[str, VideoState]:
    """Each video's state within the batch, by id."""
    rows = graph.read(CHUNK_STATE, {"batch_id": batch_id, "video_ids": list(video_ids)})
    return {row["video_id"]: VideoState(row["video_id"], row["status"], row["attempts"]) for row in rows}


def begin_attempt(graph: Graph, batch_id: str, video_ids: Sequence[str]) -> dict[str, int]:
    """Count one more attempt for each video and mark it running; returns the new count by video id.

    A write (it increments), so it goes through the write path; the result rows carry the new counts.
    """

    def work(tx: neo4j.ManagedTransaction) -> dict[str, int]:
        return {row["video_id"]: row["attempts"]
                for row in tx.run(BEGIN_ATTEMPT, batch_id=batch_id, video_ids=list(video_ids))}

    return graph.write_transaction(work)


LIST_BATCHES = """
MATCH (b:Batch)
RETURN b {.id, .submitted_at, .status, .total, .done, .failed} AS batch
ORDER BY b.submitted_at DESC, b.id
LIMIT $limit
"""


def list_batches(graph: Graph, *, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent batches with their counts, newest first."""
    return [row["batch"] for row in graph.read(LIST_BATCHES, {"limit": limit})]
