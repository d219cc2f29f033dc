"""Celery tasks: thin shells that validate, call a library function, and record the outcome.

Transient failures (Neo4j unavailable) are retried with exponential backoff; bad input (a corrupt video, a malformed
manifest) is recorded on its batch and never retried.
"""
from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init

from kg_builder.graph import Graph
from ovp.errors import GraphUnavailable, ManifestError
from ovp.settings import Settings
from worker.app import app
from worker.batches import parse_batch_manifest, start_batch
from worker.chunks import run_chunk

log = logging.getLogger(__name__)

_settings = Settings.from_env()
_pipeline = None  # one per worker process: models load once

#: How long the driver itself retries a transaction in a worker. Short outages are bridged there; longer ones raise
#: GraphUnavailable, and Celery's retry with backoff takes over, which puts the task back on the queue (with a
#: countdown) instead of keeping the worker busy while Neo4j restarts.
GRAPH_RETRY_S = 5.0


def _graph() -> Graph:
    return Graph(_settings, retry_time_s=GRAPH_RETRY_S)


def pipeline():  # -> worker.pipeline.ProfilingPipeline
    """The process's profiling pipeline, loaded on first use (eagerly in prefork children, see below)."""
    global _pipeline
    if _pipeline is None:
        from worker.pipeline import ProfilingPipeline  # heavy: torch, transformers

        _pipeline = ProfilingPipeline.load(_settings, graph=_graph())
    return _pipeline


@worker_process_init.connect
def _load_models(**_: Any) -> None:
    try:
        pipeline()
    except Exception:  # the task will raise the same error where it can be retried and seen
        log.exception("could not load the profiling models at worker start")


RETRY = dict(autoretry_for=(GraphUnavailable,), retry_backoff=2, retry_backoff_max=30, retry_jitter=False, max_retries=40)


@app.task(name="ovp.profile_batch", **RETRY)
def profile_batch(batch_id: str, manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """Record batch ``batch_id`` and fan its videos out to ``ovp.profile_chunk`` in chunks."""
    try:
        entries = parse_batch_manifest(manifest, batch_id)
    except ManifestError as exc:
        log.error("batch %s rejected: %s", batch_id, exc)
        with _graph() as graph:
            graph.write(
                "MERGE (b:Batch {id: $id}) SET b.status = 'rejected', b.reason = $reason, b.problems = $problems",
                {"id": batch_id, "reason": str(exc), "problems": exc.problems[:100]},
            )
        return {"batch_id": batch_id, "status": "rejected"}
    with _graph() as graph:
        chunks = start_batch(
            graph, batch_id, entries, chunk_size=_settings.chunk_size,
            enqueue=lambda bid, objs: profile_chunk.apply_async(args=[bid, objs]),
        )
    return {"batch_id": batch_id, "videos": len(entries), "chunks": len(chunks)}


@app.task(name="ovp.profile_chunk", **RETRY)
def profile_chunk(batch_id: str, entry_objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Profile one chunk of a batch and write every outcome back (see worker.chunks.run_chunk)."""
    entries = parse_batch_manifest(entry_objects, batch_id)
    with _graph() as graph:
        report = run_chunk(graph, pipeline(), batch_id, entries, max_deliveries=_settings.max_deliveries)
    return {"batch_id": batch_id, "done": report.done, "failed": report.failed, "skipped": report.skipped}
