"""Batches: the submission record, each video's outcome on its ``CONTAINS`` relationship, the counts and the status.

A batch is written once, by whoever submits it (the API, ``ovp profile``), with its videos pending, before anything
is enqueued; workers then only record outcomes. The counts are recomputed from the per-video outcomes, so they cannot
drift from them.

Each pending video's ``CONTAINS`` also keeps what is needed to find and redo work that was lost: the manifest entry
as submitted (``entry``, JSON), when it was last put on a queue (``queued_at``) and, while a worker profiles it, until
when that worker holds it (``lease_until``, past the chunk's hard time limit). Times there are Unix seconds.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import neo4j
from neo4j.exceptions import ConstraintError

from kg_builder.graph import Graph
from kg_builder.store.rows import VideoMeta
from ovp.errors import BatchExists

#: A video's state within its batch: waiting (``queued``), being profiled (``running``), or finished.
PENDING_STATES = ("queued", "running")

# The submission: the batch with its total, every video (metadata kept if the video is already known) and a pending
# CONTAINS for each, holding the entry to redo it from. CREATE, not MERGE: a second submission under an id already
# used fails on the uniqueness constraint instead of rewriting the first one's total.
RECORD_BATCH = """
// 'running' from the submission on: the batch is in the system; its videos say how far it got
CREATE (b:Batch {id: $batch_id, submitted_at: $now, done: 0, failed: 0, total: $total, status: 'running',
                 media_roots: $media_roots})
WITH b
UNWIND $videos AS row
MERGE (v:Video {id: row.video.id})
ON CREATE SET v += row.video
MERGE (b)-[c:CONTAINS]->(v)
ON CREATE SET c.status = 'queued', c.entry = row.entry, c.queued_at = $epoch
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
       collect(CASE WHEN c.status = 'failed' THEN {video_id: v.id, reason: c.reason, path: v.path} END) AS failures,
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

# Each video about to be processed is marked running and held until $lease_until; its attempt is counted unless its
# previous attempt already was and then ended in a transient error (count false). Returns the counts.
BEGIN_ATTEMPT = """
UNWIND $videos AS video
MATCH (:Batch {id: $batch_id})-[c:CONTAINS]->(:Video {id: video.id})
SET c.attempts = coalesce(c.attempts, 0) + CASE WHEN video.count THEN 1 ELSE 0 END, c.status = 'running',
    c.lease_until = $lease_until
RETURN video.id AS video_id, c.attempts AS attempts
"""

# The batches that still have work, for the periodic reconciliation (through the status index).
RUNNING_BATCHES = "MATCH (b:Batch) WHERE b.status = 'running' RETURN b.id AS id ORDER BY b.submitted_at"

# The pending videos of a batch with what a re-enqueue needs: the entry as submitted (a batch recorded before entries
# were kept gives null; the video's metadata stands in) and whether a worker holds it now.
PENDING_WORK = """
MATCH (b:Batch {id: $batch_id})-[c:CONTAINS]->(v:Video)
WHERE c.status IN $pending
RETURN v.id AS video_id, c.status AS status, c.entry AS entry, coalesce(c.lease_until, 0) AS lease_until,
       coalesce(c.queued_at, 0) AS queued_at, coalesce(b.media_roots, []) AS media_roots,
       v {.id, .platform, .url, .path, .title, .caption, .hashtags, .duration_s, .published_at, .author_followers,
          .transcript, .synthetic} AS video
ORDER BY v.id
"""

# Videos put on a queue again: waiting, with no worker holding them.
MARK_REQUEUED = """
UNWIND $video_ids AS vid
MATCH (:Batch {id: $batch_id})-[c:CONTAINS]->(:Video {id: vid})
WHERE c.status IN $pending
SET c.status = 'queued', c.queued_at = $epoch, c.lease_until = null
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


@dataclass(frozen=True)
class PendingVideo:
    """A video of a batch that has no outcome yet, with what is needed to put it on a queue again.

    ``entry``: the manifest entry as submitted (JSON), or None for a batch recorded before entries were kept
    (``video`` then stands in). ``lease_until``, ``queued_at``: Unix seconds (0 when never set).
    """

    video_id: str
    status: str
    entry: str | None
    lease_until: float
    queued_at: float
    media_roots: tuple[str, ...]
    video: dict[str, Any]


def epoch_now() -> float:
    """Unix seconds: what leases and queue times on ``CONTAINS`` are compared in."""
    return time.time()


def record_batch(graph: Graph, batch_id: str, videos: Sequence[VideoMeta], *, entries: Sequence[str] | None = None,
                 media_roots: Sequence[str] = ()) -> None:
    """Record a submitted batch and every video in it, pending, before any work is enqueued: nothing is lost.

    Args:
        entries: each video's manifest entry as JSON (what its task gets), kept so that lost work can be enqueued
            again (:mod:`worker.reconcile`); None keeps none.
        media_roots: the folders the submitter allowed this batch's videos to come from (besides the workers' own).

    Raises:
        BatchExists: a batch with this id is already recorded (nothing is changed).
    """
    if entries is not None and len(entries) != len(videos):
        raise ValueError(f"{len(videos)} videos but {len(entries)} entries")
    rows = [{"video": v.properties(), "entry": entries[i] if entries is not None else None} for i, v in enumerate(videos)]
    try:
        graph.write(RECORD_BATCH, {"batch_id": batch_id, "now": utc_now(), "epoch": epoch_now(), "total": len(videos),
                                   "videos": rows, "media_roots": list(media_roots)})
    except ConstraintError as exc:
        raise BatchExists(f"batch {batch_id!r} already exists", hint="choose another batch id, or leave it out for a new one") from exc


def batch_exists(graph: Graph, batch_id: str) -> bool:
    return bool(graph.read(BATCH_EXISTS, {"batch_id": batch_id}))


def reject_batch(graph: Graph, batch_id: str, reason: str, problems: Sequence[str]) -> None:
    """Mark a batch rejected with the reason and its problems (at most 100 are kept)."""
    graph.write(REJECT_BATCH, {"batch_id": batch_id, "reason": reason, "problems": list(problems)[:100]})


def batch_status(graph: Graph, batch_id: str, *, with_paths: bool = True) -> dict[str, Any] | None:
    """The batch's counts, status, per-video failures (``{video_id, reason}``) and pending videos; None when no such
    batch exists. ``with_paths=False`` (a reader without the token) gives the reasons without file paths: they would
    tell which files exist on the workers."""
    rows = graph.read(BATCH_STATUS, {"batch_id": batch_id, "pending": list(PENDING_STATES)})
    if not rows:
        return None
    row = rows[0]
    failures = [{"video_id": f["video_id"],
                 "reason": f["reason"] if with_paths else redact_paths(f["reason"] or "", [f["path"] or ""])}
                for f in row["failures"] if f]
    return {**row["batch"], "failures": failures, "pending": [p for p in row["pending"] if p]}


#: An absolute file path in a reason: a slash (or a drive and a backslash) not inside a URL, up to the next space,
#: quote, bracket or separator.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/])(?:[A-Za-z]:)?[\\/][^\s'\"()\[\],;]*")


def redact_paths(reason: str, paths: Sequence[str] = ()) -> str:
    """``reason`` with the given paths (the video's stored path) and any other absolute path replaced by ``<file>``."""
    for path in sorted((p for p in paths if p), key=len, reverse=True):
        reason = reason.replace(path, "<file>")
    return _ABSOLUTE_PATH.sub("<file>", reason)


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


def begin_attempt(graph: Graph, batch_id: str, video_ids: Sequence[str], *, lease_s: float,
                  uncounted: Sequence[str] = ()) -> dict[str, int]:
    """Mark each video running, held for ``lease_s`` seconds, and count one more attempt for it unless it is in
    ``uncounted`` (its last attempt was counted and ended in a transient error); returns the count by video id.

    A write (it increments), so it goes through the write path; the result rows carry the new counts.
    """
    skip = set(uncounted)
    videos = [{"id": vid, "count": vid not in skip} for vid in video_ids]

    def work(tx: neo4j.ManagedTransaction) -> dict[str, int]:
        return {row["video_id"]: row["attempts"]
                for row in tx.run(BEGIN_ATTEMPT, batch_id=batch_id, videos=videos, lease_until=epoch_now() + lease_s)}

    return graph.write_transaction(work)


def running_batches(graph: Graph) -> list[str]:
    """Ids of the batches that are still running, oldest first."""
    return [row["id"] for row in graph.read(RUNNING_BATCHES)]


def pending_work(graph: Graph, batch_id: str) -> list[PendingVideo]:
    """The videos of a batch that have no outcome yet, by id."""
    rows = graph.read(PENDING_WORK, {"batch_id": batch_id, "pending": list(PENDING_STATES)})
    return [PendingVideo(row["video_id"], row["status"], row["entry"], float(row["lease_until"]), float(row["queued_at"]),
                         tuple(row["media_roots"]), row["video"]) for row in rows]


def mark_requeued(graph: Graph, batch_id: str, video_ids: Sequence[str]) -> None:
    """Record that these videos were put on a queue again now (still pending, held by no worker)."""
    graph.write(MARK_REQUEUED, {"batch_id": batch_id, "video_ids": list(video_ids), "pending": list(PENDING_STATES),
                                "epoch": epoch_now()})


LIST_BATCHES = """
MATCH (b:Batch)
RETURN b {.id, .submitted_at, .status, .total, .done, .failed} AS batch
ORDER BY b.submitted_at DESC, b.id
LIMIT $limit
"""


def list_batches(graph: Graph, *, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent batches with their counts, newest first."""
    return [row["batch"] for row in graph.read(LIST_BATCHES, {"limit": limit})]
