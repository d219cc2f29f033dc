"""Batches: submit one (record it with its videos pending, then enqueue it), and fan a submitted one out in chunks.

Whoever submits records the batch, once, before anything is enqueued (the API, ``ovp profile --submit``, ``ovp
profile`` in-process): ``GET /batches/{id}`` and ``ovp batch status`` answer at once, and a submission whose message
is lost stays in the graph with its videos pending, each with its entry, so that :mod:`worker.reconcile` can enqueue
it again. The ``ovp.profile_batch`` task only fans out.

A batch carries the folders its submitter allowed its videos to come from (``media_roots``: a CLI manifest's own
folder); a worker reads a video only if its resolved path lies under one of those or under the worker's own
``OVP_MEDIA_ROOTS``.
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any, Callable, Sequence

from fusion.manifest import VideoEntry, parse_manifest_objects
from kg_builder.graph import Graph
from kg_builder.store.batches import record_batch
from ovp.errors import BrokerUnavailable
from worker.celery_app import PROFILE_BATCH_TASK
from worker.records import video_meta

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


def new_batch_id() -> str:
    return uuid.uuid4().hex


def parse_batch_manifest(manifest: Sequence[dict[str, Any]], batch_id: str) -> list[VideoEntry]:
    """Validate a manifest given as JSON objects (API body, task argument).

    Raises:
        ManifestError: every problem, by line (1-based position in the list).
    """
    return parse_manifest_objects(list(enumerate(manifest, start=1)), origin=f"batch {batch_id}")


def entry_objects(entries: Sequence[VideoEntry]) -> list[dict[str, Any]]:
    """Entries as JSON objects with absolute paths, for task arguments (JSON serialisation only)."""
    return [entry.to_json_dict(base_dir=None) for entry in entries]


def chunk_kwargs(media_roots: Sequence[str], *, uncounted: Sequence[str] = (), isolate: bool = False) -> dict[str, Any]:
    """The keyword arguments of an ``ovp.profile_chunk`` message beside its batch id and entries."""
    return {"media_roots": list(media_roots), "uncounted": list(uncounted), "isolate": isolate}


def chunked(entries: Sequence[VideoEntry], size: int) -> list[list[VideoEntry]]:
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [list(entries[i : i + size]) for i in range(0, len(entries), size)]


def record_submission(graph: Graph, batch_id: str, entries: Sequence[VideoEntry], *,
                      media_roots: Sequence[str] = ()) -> None:
    """Record the batch and its videos, pending (status 'queued' on each ``CONTAINS``, with the entry as JSON).

    Raises:
        BatchExists: the id is already used.
    """
    record_batch(graph, batch_id, [video_meta(e) for e in entries],
                 entries=[json.dumps(obj, ensure_ascii=False) for obj in entry_objects(entries)],
                 media_roots=media_roots)


def submit_batch(
    graph: Graph,
    celery: Celery,
    batch_id: str,
    entries: Sequence[VideoEntry],
    *,
    media_roots: Sequence[str] = (),
    **send_options: Any,
) -> None:
    """Record the batch (:func:`record_submission`), then enqueue ``ovp.profile_batch`` for it.

    Args:
        entries: validated, with their paths resolved (and confined to the allowed folders by the parser).
        media_roots: the folders the submitter allowed besides the workers' own (a CLI manifest's folder).
        send_options: passed to ``send_task`` (e.g. the API's publish retry policy).

    Raises:
        BatchExists: the id is already used; nothing was recorded or enqueued.
        GraphUnavailable: the batch could not be recorded; nothing was enqueued.
        BrokerUnavailable: the batch is recorded but its message could not be published; ``ovp batch resume`` (or
            the workers' periodic reconciliation) enqueues it once the broker is back.
    """
    record_submission(graph, batch_id, entries, media_roots=media_roots)
    try:
        celery.send_task(PROFILE_BATCH_TASK, args=[batch_id, entry_objects(entries)],
                         kwargs={"media_roots": list(media_roots)}, **send_options)
    except Exception as exc:  # noqa: BLE001 - kombu raises transport-specific errors; each means "not enqueued"
        log.error("batch %s recorded but not enqueued: %s", batch_id, exc)
        raise BrokerUnavailable(
            f"batch {batch_id} was recorded but could not be enqueued: the broker is not reachable",
            hint=f"nothing is lost: once the broker is back (`ovp redis start`, or check OVP_BROKER_URL), "
                 f"`ovp batch resume {batch_id}` enqueues it, and so does the workers' periodic check",
        ) from exc
    log.info("batch %s: %d videos enqueued", batch_id, len(entries))


def fan_out(
    batch_id: str,
    entries: Sequence[VideoEntry],
    *,
    chunk_size: int,
    enqueue: Callable[[str, list[dict[str, Any]]], None],
) -> list[list[VideoEntry]]:
    """Hand each chunk of a recorded batch to ``enqueue`` (``enqueue(batch_id, entry objects)``); returns the chunks."""
    chunks = chunked(entries, chunk_size)
    for chunk in chunks:
        enqueue(batch_id, entry_objects(chunk))
    log.info("batch %s: %d videos in %d chunks of up to %d", batch_id, len(entries), len(chunks), chunk_size)
    return chunks
