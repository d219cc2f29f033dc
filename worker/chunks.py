"""Profiling one chunk of a batch: idempotent, bounded redelivery, bad input recorded and never retried.

The worker's Celery task is a thin shell over :func:`run_chunk`, which tests call directly.

How a video that kills its worker is not redelivered forever: before a video is processed, the attempt counter on
its batch's ``CONTAINS`` relationship is incremented in Neo4j (durable, visible in ``ovp batch status``). A chunk
normally runs as one forward pass. If any of its unfinished videos already has an attempt recorded (the chunk is
being redelivered after its worker died), the chunk runs one video at a time, each counted only when it is tried,
so the video that kills the worker is the only one whose counter grows; past ``max_deliveries`` it is recorded as
failed without being tried again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import neo4j

from fusion.manifest import VideoEntry
from kg_builder.graph import Graph
from kg_builder.store.batches import begin_attempt, record_failure, video_states
from kg_builder.store.rows import VideoMeta
from worker.records import ProfileRecord, video_meta
from worker.writeback import write_profiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoOutcome:
    """A profiled video (``record``) or the reason it could not be profiled (``error``, bad input)."""

    video_id: str
    record: ProfileRecord | None = None
    error: str | None = None


class Profiler(Protocol):
    """What a chunk needs from the models: :class:`worker.pipeline.ProfilingPipeline` is the real one."""

    model_version: str

    def profile(self, entries: Sequence[VideoEntry]) -> list[VideoOutcome]: ...


@dataclass
class ChunkReport:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already finished by an earlier delivery


def run_chunk(
    graph: Graph, profiler: Profiler, batch_id: str, entries: Sequence[VideoEntry], *, max_deliveries: int
) -> ChunkReport:
    """Profile ``entries`` of batch ``batch_id`` and record every outcome in the graph.

    Raises:
        GraphUnavailable: Neo4j went away; the caller retries the whole chunk (finished videos are skipped then).
    """
    report = ChunkReport()
    states = video_states(graph, batch_id, [e.id for e in entries])
    todo = []
    for entry in entries:
        if states[entry.id].finished:
            report.skipped.append(entry.id)
        else:
            todo.append(entry)
    redelivered = any(states[e.id].attempts > 0 for e in todo)
    groups = [[e] for e in todo] if redelivered else ([todo] if todo else [])
    if redelivered:
        log.warning("batch %s: chunk redelivered after a worker died; profiling its %d videos one at a time", batch_id, len(todo))
    for group in groups:
        attempts = begin_attempt(graph, batch_id, [e.id for e in group])
        runnable = []
        for entry in group:
            if attempts.get(entry.id, 1) > max_deliveries:
                reason = (
                    f"gave up after {max_deliveries} deliveries: processing this video stopped its worker each time "
                    "(out of memory or a crashing decoder?)"
                )
                record_failure(graph, batch_id, video_meta(entry), reason)
                report.failed.append(entry.id)
            else:
                runnable.append(entry)
        if not runnable:
            continue
        profiled = []
        for outcome, entry in zip(profiler.profile(runnable), runnable):
            if outcome.record is not None:
                profiled.append(outcome.record)
            else:
                record_failure(graph, batch_id, video_meta(entry), outcome.error or "unknown error")
                report.failed.append(entry.id)
        _write_group(graph, batch_id, profiled, report)
    log.info("batch %s: chunk of %d — %d done, %d failed, %d already finished",
             batch_id, len(entries), len(report.done), len(report.failed), len(report.skipped))
    return report


def _write_group(graph: Graph, batch_id: str, records: Sequence[ProfileRecord], report: ChunkReport) -> None:
    """The group's profiles in one transaction: all of them land, or none (GraphUnavailable: the chunk is retried).
    When Neo4j refuses the transaction itself (a ClientError: a value it cannot store), the profiles are written one by
    one, so that only the video whose profile it refuses is recorded as failed, with the server's reason."""
    try:
        write_profiles(graph, records, batch_id=batch_id)
        report.done.extend(record.video.id for record in records)
        return
    except neo4j.exceptions.ClientError as exc:
        log.warning("batch %s: Neo4j refused a chunk's profiles (%s); writing them one by one", batch_id, exc.code)
    for record in records:
        try:
            write_profiles(graph, [record], batch_id=batch_id)
            report.done.append(record.video.id)
        except neo4j.exceptions.ClientError as exc:
            _record_refused(graph, batch_id, record, exc, report)


def _record_refused(graph: Graph, batch_id: str, record: ProfileRecord, exc: neo4j.exceptions.ClientError,
                    report: ChunkReport) -> None:
    reason = f"Neo4j refused to store the profile ({exc.code}): {exc.message}"
    log.error("batch %s: video %s: %s", batch_id, record.video.id, reason)
    # Only the id: the record's own metadata may be what Neo4j refused (the video node exists since the submission).
    record_failure(graph, batch_id, VideoMeta(id=record.video.id), reason)
    report.failed.append(record.video.id)
