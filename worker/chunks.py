"""Profiling one chunk of a batch: idempotent, every exception ending as a retry or a per-video failure.

The worker's Celery task is a thin shell over :func:`run_chunk`, which tests call directly. What happens to an error:

- **Bad input** (a corrupt video, a file outside the allowed folders, a value Neo4j refuses): that video is recorded
  as failed with the reason; the others go on.
- **Transient** (Neo4j unreachable, a Neo4j transient error or deadlock after the driver's own retries, a broker
  error): :class:`ChunkInterrupted`; the task retries the chunk later. Videos already finished are skipped then.
- **Anything else** in a group of several videos: the group is profiled again one video at a time, so the one that
  raises is found; that one is recorded as failed with the exception as its reason. CUDA running out of memory is
  handled the same way (one video at a time needs far less); one video alone running out of memory is retried later,
  counted as a delivery.
- **The chunk's soft time limit**: a video profiled alone that reaches it is recorded as failed with that reason and
  the rest of the chunk is retried at once; a group that reaches it is retried one video at a time.

How a video that kills its worker is not redelivered forever: before a video is processed, the attempt counter on
its batch's ``CONTAINS`` relationship is incremented in Neo4j (durable, visible in ``ovp batch status``) and the video
is leased to the worker until the chunk's hard time limit has surely passed. An attempt that ends in a transient
error is not counted again when the chunk is retried (the retry's ``uncounted``), so an outage never uses up a
video's deliveries; only an attempt that never ended (the worker died, or was killed at the hard time limit) stays
counted. A chunk normally runs as one forward pass. If any of its unfinished videos already has such an attempt
recorded, the chunk runs one video at a time, so the video that kills the worker is the only one whose counter grows;
past ``max_deliveries`` it is recorded as failed without being tried again.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import kombu.exceptions
import neo4j
import redis.exceptions
from celery.exceptions import SoftTimeLimitExceeded

from encoders.media import confine
from fusion.manifest import VideoEntry
from kg_builder.graph import Graph
from kg_builder.store.batches import begin_attempt, record_failure, video_states
from kg_builder.store.rows import VideoMeta
from ovp.errors import BrokerUnavailable, GraphUnavailable, MediaRefused
from worker.records import ProfileRecord, video_meta
from worker.writeback import write_profiles

log = logging.getLogger(__name__)

#: Errors that say "try again later", not "this video is bad": the graph or the broker is away or busy.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    GraphUnavailable,
    BrokerUnavailable,
    neo4j.exceptions.TransientError,  # deadlocks and lock timeouts that outlasted the driver's retries
    neo4j.exceptions.ServiceUnavailable,
    neo4j.exceptions.SessionExpired,
    neo4j.exceptions.DatabaseError,  # the server failed, not the statement
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA (or another accelerator) ran out of memory."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


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


class ChunkInterrupted(Exception):
    """The chunk stopped before every video had an outcome, for a reason that says "retry", not "bad video".

    Attributes:
        cause: the error.
        uncounted: videos whose attempt was counted in this run and cut short: the retry does not count them again.
        isolate: the retry profiles the videos one at a time.
        soon: retry at once (the soft time limit ended the run, not an outage).
    """

    def __init__(self, cause: BaseException, *, uncounted: Sequence[str], isolate: bool, soon: bool = False) -> None:
        self.cause = cause
        self.uncounted = list(uncounted)
        self.isolate = isolate
        self.soon = soon
        super().__init__(f"chunk interrupted by {type(cause).__name__}: {cause}")


def run_chunk(
    graph: Graph,
    profiler: Profiler,
    batch_id: str,
    entries: Sequence[VideoEntry],
    *,
    max_deliveries: int,
    lease_s: float,
    media_roots: Sequence[Path] | None = None,
    uncounted: Sequence[str] = (),
    isolate: bool = False,
    time_limit_s: float | None = None,
) -> ChunkReport:
    """Profile ``entries`` of batch ``batch_id`` and record every outcome in the graph.

    Args:
        max_deliveries: attempts that never ended after which a video is given up.
        lease_s: how long a video begun here is held (past the chunk's hard time limit).
        media_roots: the folders a video's resolved path must lie under (None: no check, for callers whose entries
            were confined already).
        uncounted: videos whose last attempt was counted and ended in a transient error (from the interrupted run).
        isolate: profile the videos one at a time.
        time_limit_s: the chunk's soft time limit, for the reason of a video that reached it.

    Raises:
        ChunkInterrupted: a transient error or the soft time limit stopped the chunk; retry it as it says.
    """
    return _ChunkRun(graph, profiler, batch_id, max_deliveries, lease_s, set(uncounted), time_limit_s).run(
        entries, media_roots, isolate)


@dataclass
class _ChunkRun:
    graph: Graph
    profiler: Profiler
    batch_id: str
    max_deliveries: int
    lease_s: float
    uncounted: set[str]
    time_limit_s: float | None
    report: ChunkReport = field(default_factory=ChunkReport)
    isolate: bool = False

    def run(self, entries: Sequence[VideoEntry], media_roots: Sequence[Path] | None, isolate: bool) -> ChunkReport:
        self.isolate = isolate
        try:
            self._run(entries, media_roots)
        except ChunkInterrupted:
            raise
        except SoftTimeLimitExceeded as exc:  # outside any video: between groups, or recording an outcome
            raise self.interrupted(exc, isolate=True, soon=True) from exc
        except Exception as exc:
            if is_transient(exc):
                raise self.interrupted(exc, isolate=self.isolate) from exc
            raise
        log.info("batch %s: chunk of %d — %d done, %d failed, %d already finished",
                 self.batch_id, len(entries), len(self.report.done), len(self.report.failed), len(self.report.skipped))
        return self.report

    def interrupted(self, cause: BaseException, *, isolate: bool, soon: bool = False,
                    counted: Sequence[str] = ()) -> ChunkInterrupted:
        """The interruption to raise: the videos begun and not finished stay uncounted (``counted``: not those)."""
        finished = set(self.report.done) | set(self.report.failed)
        keep = sorted(vid for vid in self.uncounted if vid not in finished and vid not in counted)
        log.warning("batch %s: chunk interrupted (%s: %s); it will be retried%s", self.batch_id,
                    type(cause).__name__, cause, " one video at a time" if isolate else "")
        return ChunkInterrupted(cause, uncounted=keep, isolate=isolate, soon=soon)

    def _run(self, entries: Sequence[VideoEntry], media_roots: Sequence[Path] | None) -> None:
        states = video_states(self.graph, self.batch_id, [e.id for e in entries])
        todo = []
        for entry in entries:
            if states[entry.id].finished:
                self.report.skipped.append(entry.id)
            elif media_roots is None:
                todo.append(entry)
            else:
                try:
                    # Read from the resolved path from here on: a symlink swapped later changes nothing.
                    todo.append(dataclasses.replace(entry, path=confine(entry.path, media_roots)))
                except MediaRefused as exc:
                    self._fail(entry, str(exc))
        # An attempt that is counted and was not cut short by a transient error: a worker died on this chunk.
        crashed = any(states[e.id].attempts > 0 and e.id not in self.uncounted for e in todo)
        if crashed and not self.isolate:
            log.warning("batch %s: chunk redelivered after a worker died; profiling its %d videos one at a time",
                        self.batch_id, len(todo))
        self.isolate = self.isolate or crashed
        groups = [[e] for e in todo] if self.isolate else ([todo] if todo else [])
        for group in groups:
            self._run_group(group)

    def _run_group(self, group: Sequence[VideoEntry]) -> None:
        ids = [e.id for e in group]
        attempts = begin_attempt(self.graph, self.batch_id, ids, lease_s=self.lease_s,
                                 uncounted=[vid for vid in ids if vid in self.uncounted])
        # Counted now (or before and carried over): if this run is cut short, the retry must not count them again.
        self.uncounted.update(ids)
        runnable = []
        for entry in group:
            if attempts.get(entry.id, 1) > self.max_deliveries:
                self._fail(entry, f"gave up after {self.max_deliveries} deliveries: none of them ended (the worker "
                                  "stopped each time: out of memory, a crashing decoder, or the chunk's hard time limit)")
            else:
                runnable.append(entry)
        if not runnable:
            return
        try:
            profiled = []
            for outcome, entry in zip(self.profiler.profile(runnable), runnable):
                if outcome.record is not None:
                    profiled.append(outcome.record)
                else:
                    self._fail(entry, outcome.error or "unknown error")
            self._write_group(profiled)
        except ChunkInterrupted:
            raise
        except SoftTimeLimitExceeded as exc:
            if len(runnable) > 1:  # which video hung is unknown: one at a time finds it
                raise self.interrupted(exc, isolate=True, soon=True) from exc
            limit = f" of {self.time_limit_s:g} s" if self.time_limit_s else ""
            self._fail(runnable[0], f"profiling did not finish within the chunk's time limit{limit} (a video that "
                                    "takes this long to read or decode; raise OVP_CHUNK_TIME_LIMIT_S if it is expected)")
            raise self.interrupted(exc, isolate=True, soon=True) from exc
        except Exception as exc:
            if is_transient(exc):
                raise self.interrupted(exc, isolate=self.isolate) from exc
            if len(runnable) > 1:
                log.warning("batch %s: %s: %s while profiling %d videos together; profiling them one at a time",
                            self.batch_id, type(exc).__name__, exc, len(runnable))
                _release_accelerator_memory()
                for entry in runnable:
                    if entry.id not in self.report.failed:
                        self._run_group([entry])
                return
            if is_out_of_memory(exc):
                # One video alone did not fit: the accelerator is shared, so try later; this attempt stays counted,
                # so a video that never fits is given up after max_deliveries.
                _release_accelerator_memory()
                raise self.interrupted(exc, isolate=True, counted=[runnable[0].id]) from exc
            log.exception("batch %s: video %s failed", self.batch_id, runnable[0].id)
            self._fail(runnable[0], f"{type(exc).__name__}: {exc}")

    def _fail(self, entry: VideoEntry, reason: str) -> None:
        record_failure(self.graph, self.batch_id, video_meta(entry), reason)
        self.report.failed.append(entry.id)

    def _write_group(self, records: Sequence[ProfileRecord]) -> None:
        """The group's profiles in one transaction: all of them land, or none (a transient error: the chunk is
        retried). When Neo4j refuses the transaction itself (a ClientError: a value it cannot store), the profiles are
        written one by one, so that only the video whose profile it refuses is recorded as failed, with the server's
        reason."""
        if not records:
            return
        try:
            write_profiles(self.graph, records, batch_id=self.batch_id)
            self.report.done.extend(record.video.id for record in records)
            return
        except neo4j.exceptions.ClientError as exc:
            log.warning("batch %s: Neo4j refused a chunk's profiles (%s); writing them one by one", self.batch_id, exc.code)
        for record in records:
            try:
                write_profiles(self.graph, [record], batch_id=self.batch_id)
                self.report.done.append(record.video.id)
            except neo4j.exceptions.ClientError as exc:
                reason = f"Neo4j refused to store the profile ({exc.code}): {exc.message}"
                log.error("batch %s: video %s: %s", self.batch_id, record.video.id, reason)
                # Only the id: the record's own metadata may be what Neo4j refused (the video node exists since the
                # submission).
                record_failure(self.graph, self.batch_id, VideoMeta(id=record.video.id), reason)
                self.report.failed.append(record.video.id)


def _release_accelerator_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
