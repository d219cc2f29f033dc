"""Finding work that was lost and putting it on a queue again: videos pending in the graph but on no queue.

A video of a batch is pending (``CONTAINS`` status ``queued`` or ``running``) until a worker records its outcome.
Until then its work is in one of three places, unless it was lost:

- a message on one of the broker's queues (an ``ovp.profile_batch`` message names every video of its batch, an
  ``ovp.profile_chunk`` message the videos of its chunk; a retry waiting for its countdown is such a message too);
- a message a worker took and has not acknowledged: Redis keeps it in its ``unacked`` hash until then, and puts it
  back on its queue after the visibility timeout when the worker died;
- a worker profiling it now: its lease on ``CONTAINS`` (set when the attempt began) has not run out; it runs out a
  minute after the chunk's hard time limit.

Anything else was lost: published to a Redis that then restarted without persistence, submitted while the broker was
down, dropped after a chunk failed outside any video more times than it is retried. Those videos are enqueued again,
in chunks, from the entry their ``CONTAINS`` kept (:func:`reconcile_batch`; ``ovp batch resume ID``), and every running
batch is checked every ``OVP_RECONCILE_INTERVAL_S`` by the ``ovp.reconcile`` task that ``celery beat`` sends
(:func:`reconcile_running`).

Not racing a worker: a message moves from its queue to ``unacked`` in two steps (a pop, then a write), so for a moment
it is in neither. The broker is read twice, ``pause_s`` apart, and the graph after both reads: a message in flight at
the first read is in ``unacked`` at the second, or its video is leased or finished by then. Videos put on a queue less
than ``grace_s`` ago are left alone (a submission between its record and its message). Should a video be enqueued
twice all the same, the second chunk changes nothing: chunks skip finished videos, and a profile is keyed by video
and model version.
"""
from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import redis

from kg_builder.graph import Graph
from kg_builder.store.batches import PendingVideo, epoch_now, mark_requeued, pending_work, running_batches
from ovp.errors import BrokerUnavailable, ConfigError
from ovp.settings import Settings
from worker.batches import chunk_kwargs, chunked, parse_batch_manifest
from worker.celery_app import BATCH_QUEUE, PROFILE_BATCH_TASK, PROFILE_CHUNK_TASK, PROFILE_QUEUE

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

#: kombu's Redis transport keeps delivered, unacknowledged messages in this hash (its default ``unacked_key``).
UNACKED_KEY = "unacked"
#: Messages read per round trip when a queue is listed.
PAGE = 500
#: One reconciliation at a time, whoever starts it (two beats by mistake, a resume during a periodic pass).
LOCK_KEY = "ovp:reconcile:lock"
LOCK_S = 600

#: (batch id, video id) pairs.
WorkKeys = set[tuple[str, str]]


@dataclass
class ReconcileReport:
    """What one reconciliation found for a batch: its pending videos and where each one's work is."""

    batch_id: str
    pending: int = 0
    on_broker: list[str] = field(default_factory=list)
    leased: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "pending": self.pending, "on_a_queue": len(self.on_broker),
                "held_by_a_worker": len(self.leased), "queued_moments_ago": len(self.recent),
                "enqueued_again": len(self.requeued), "chunks": self.chunks}


def queued_work(broker_url: str) -> WorkKeys:
    """Every (batch, video) that a message on the broker names: on the ``batches`` and ``profiles`` queues (their
    priority variants included) and delivered but not acknowledged.

    Raises:
        ConfigError: the broker is not Redis (its queues cannot be read this way).
        BrokerUnavailable: Redis cannot be reached.
    """
    if urlsplit(broker_url).scheme not in ("redis", "rediss"):
        raise ConfigError(f"the reconciler reads the queues of a Redis broker, not {urlsplit(broker_url).scheme}://",
                          hint="use Redis as the broker (OVP_BROKER_URL)")
    client = redis.Redis.from_url(broker_url, socket_timeout=10, socket_connect_timeout=5)
    found: WorkKeys = set()
    try:
        for queue in (BATCH_QUEUE, PROFILE_QUEUE):
            # kombu names a priority queue "<queue>\x06\x16<priority>".
            for key in client.scan_iter(match=f"{queue}*"):
                if client.type(key) != b"list":
                    continue
                for start in range(0, client.llen(key), PAGE):
                    for raw in client.lrange(key, start, start + PAGE - 1):
                        found |= _work_of(raw)
        for raw in client.hvals(UNACKED_KEY):
            try:
                message = json.loads(raw)[0]
            except (ValueError, IndexError, TypeError):
                continue
            found |= _work_of(json.dumps(message))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"cannot read the broker's queues at {_redacted(broker_url)}",
                                hint="start it with `ovp redis start` or check OVP_BROKER_URL") from exc
    finally:
        client.close()
    return found


def _work_of(raw: bytes | str) -> WorkKeys:
    """The (batch, video) pairs one kombu message names, if it is one of ours; nothing for anything else."""
    try:
        payload = json.loads(raw)
        task = payload.get("headers", {}).get("task")
        if task not in (PROFILE_BATCH_TASK, PROFILE_CHUNK_TASK):
            return set()
        body = payload["body"]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        batch_id, objects = args[0], args[1]
        return {(str(batch_id), str(obj["id"])) for obj in objects if isinstance(obj, dict) and "id" in obj}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        log.warning("reconcile: skipping a message that cannot be read")
        return set()


def reconcile_batch(graph: Graph, celery: Celery, settings: Settings, batch_id: str, *, grace_s: float = 60.0,
                    pause_s: float = 2.0, scan: Callable[[], WorkKeys] | None = None) -> ReconcileReport:
    """Enqueue again the pending videos of ``batch_id`` that are on no queue and held by no worker.

    Raises:
        ConfigError, BrokerUnavailable: see :func:`queued_work`; nothing was enqueued.
        GraphUnavailable: Neo4j cannot be reached.
    """
    return _reconcile(graph, celery, settings, [batch_id], grace_s=grace_s, pause_s=pause_s, scan=scan)[0]


def reconcile_running(graph: Graph, celery: Celery, settings: Settings, *, grace_s: float = 60.0,
                      pause_s: float = 2.0) -> list[ReconcileReport]:
    """:func:`reconcile_batch` for every running batch, with the broker read once for all of them; nothing when
    another reconciliation holds the lock."""
    lock = redis.Redis.from_url(settings.broker_url, socket_timeout=10, socket_connect_timeout=5)
    token = uuid.uuid4().hex
    try:
        if not lock.set(LOCK_KEY, token, nx=True, ex=LOCK_S):
            log.info("reconcile: another reconciliation is running; skipping this one")
            return []
        try:
            return _reconcile(graph, celery, settings, running_batches(graph), grace_s=grace_s, pause_s=pause_s)
        finally:
            if lock.get(LOCK_KEY) == token.encode():
                lock.delete(LOCK_KEY)
    finally:
        lock.close()


def _reconcile(graph: Graph, celery: Celery, settings: Settings, batch_ids: Sequence[str], *, grace_s: float,
               pause_s: float, scan: Callable[[], WorkKeys] | None = None) -> list[ReconcileReport]:
    if not batch_ids:
        return []
    scan = scan or (lambda: queued_work(settings.broker_url))
    on_broker = scan()
    time.sleep(pause_s)
    on_broker |= scan()
    reports = []
    for batch_id in batch_ids:
        now = epoch_now()  # read after the broker: see the module's note on racing a worker
        pending = pending_work(graph, batch_id)
        report = ReconcileReport(batch_id, pending=len(pending))
        lost: list[PendingVideo] = []
        for video in pending:
            if (batch_id, video.video_id) in on_broker:
                report.on_broker.append(video.video_id)
            elif video.lease_until > now:
                report.leased.append(video.video_id)
            elif video.queued_at > now - grace_s:
                report.recent.append(video.video_id)
            else:
                lost.append(video)
        if lost:
            report.chunks = _enqueue(graph, celery, settings, batch_id, lost)
            report.requeued = [video.video_id for video in lost]
            log.warning("reconcile: batch %s: %d pending videos were on no queue; enqueued them again in %d chunks",
                        batch_id, len(lost), report.chunks)
        reports.append(report)
    return reports


def _enqueue(graph: Graph, celery: Celery, settings: Settings, batch_id: str, lost: Sequence[PendingVideo]) -> int:
    objects = [json.loads(video.entry) if video.entry else _entry_from_video(video.video) for video in lost]
    entries = parse_batch_manifest(objects, batch_id)
    media_roots = lost[0].media_roots
    chunks = chunked(entries, settings.chunk_size)
    by_id = dict(zip((e.id for e in entries), objects))
    try:
        for chunk in chunks:
            celery.send_task(PROFILE_CHUNK_TASK, args=[batch_id, [by_id[e.id] for e in chunk]],
                             kwargs=chunk_kwargs(media_roots), retry=True,
                             retry_policy={"max_retries": 2, "interval_start": 0.0, "interval_step": 0.5})
    except Exception as exc:  # noqa: BLE001 - kombu raises transport-specific errors; each means "not enqueued"
        raise BrokerUnavailable(f"batch {batch_id}: could not enqueue its lost videos again",
                                hint="start the broker (`ovp redis start`) and run `ovp batch resume` again") from exc
    mark_requeued(graph, batch_id, [video.video_id for video in lost])
    return len(chunks)


def _entry_from_video(video: dict[str, Any]) -> dict[str, Any]:
    """A manifest entry from a video's stored metadata, for a batch recorded before entries were kept."""
    keys: Iterable[str] = ("id", "path", "platform", "title", "caption", "hashtags", "published_at", "duration_s",
                           "author_followers", "synthetic")
    entry = {key: video[key] for key in keys if video.get(key) is not None}
    for optional in ("url", "transcript"):
        if video.get(optional):
            entry[optional] = video[optional]
    return entry


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url
