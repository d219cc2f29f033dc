"""Celery tasks: thin shells that validate, call a library function, and record the outcome.

Transient failures (Neo4j unavailable) are retried with exponential backoff; bad input (a corrupt video, a malformed
manifest) is recorded on its batch and never retried.

Each worker process opens one Neo4j connection pool and loads the models once (``worker_process_init``), and closes
the pool when it shuts down; every task of the process uses them. The settings are the ones :mod:`worker.app` read at
process start.
"""
from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from kg_builder.graph import Graph
from kg_builder.store.batches import batch_exists, reject_batch
from ovp.errors import GraphUnavailable, ManifestError
from worker.app import app, settings
from worker.batches import fan_out, parse_batch_manifest, record_submission
from worker.celery_app import PROFILE_BATCH_TASK, PROFILE_CHUNK_TASK
from worker.chunks import run_chunk

log = logging.getLogger(__name__)

#: How long the driver itself retries a transaction in a worker. Short outages are bridged there; longer ones raise
#: GraphUnavailable, and Celery's retry with backoff takes over, which puts the task back on the queue (with a
#: countdown) instead of keeping the worker busy while Neo4j restarts. The pool itself survives an outage: the driver
#: drops the dead connections and opens new ones when the server is back.
GRAPH_RETRY_S = 5.0

_graph: Graph | None = None  # one connection pool per worker process
_pipeline = None  # one per worker process: models load once


def graph() -> Graph:
    """The process's connection pool, opened on first use (at ``worker_process_init`` in prefork children)."""
    global _graph
    if _graph is None:
        _graph = Graph(settings, retry_time_s=GRAPH_RETRY_S)
    return _graph


def pipeline():  # -> worker.pipeline.ProfilingPipeline
    """The process's profiling pipeline, loaded on first use (eagerly in prefork children, see below)."""
    global _pipeline
    if _pipeline is None:
        from worker.pipeline import ProfilingPipeline  # heavy: torch, transformers

        _pipeline = ProfilingPipeline.load(settings, None, graph())
    return _pipeline


@worker_process_init.connect
def _open_process_resources(**_: Any) -> None:
    graph()
    try:
        pipeline()
    except Exception:  # the task will raise the same error where it can be retried and seen
        log.exception("could not load the profiling models at worker start")


@worker_process_shutdown.connect
def _close_process_resources(**_: Any) -> None:
    global _graph
    if _graph is not None:
        _graph.close()
        _graph = None


RETRY = dict(autoretry_for=(GraphUnavailable,), retry_backoff=2, retry_backoff_max=30, retry_jitter=False, max_retries=40)


@app.task(name=PROFILE_BATCH_TASK, **RETRY)
def profile_batch(batch_id: str, manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """Fan the videos of batch ``batch_id`` (recorded by its submitter) out to ``ovp.profile_chunk`` in chunks."""
    try:
        entries = parse_batch_manifest(manifest, batch_id)
    except ManifestError as exc:
        log.error("batch %s rejected: %s", batch_id, exc)
        reject_batch(graph(), batch_id, str(exc), exc.problems)
        return {"batch_id": batch_id, "status": "rejected"}
    if not batch_exists(graph(), batch_id):
        # A message sent without the submission record (by hand, or by a client older than this one): record it
        # now, before any chunk runs, so its counts and its pending videos are right.
        log.warning("batch %s was not recorded by its submitter; recording it now", batch_id)
        record_submission(graph(), batch_id, entries)
    chunks = fan_out(batch_id, entries, chunk_size=settings.chunk_size,
                     enqueue=lambda bid, objs: profile_chunk.apply_async(args=[bid, objs]))
    return {"batch_id": batch_id, "videos": len(entries), "chunks": len(chunks)}


@app.task(name=PROFILE_CHUNK_TASK, **RETRY)
def profile_chunk(batch_id: str, entry_objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Profile one chunk of a batch and write every outcome back (see worker.chunks.run_chunk)."""
    entries = parse_batch_manifest(entry_objects, batch_id)
    report = run_chunk(graph(), pipeline(), batch_id, entries, max_deliveries=settings.max_deliveries)
    return {"batch_id": batch_id, "done": report.done, "failed": report.failed, "skipped": report.skipped}
