"""Celery tasks: thin shells that validate, call a library function, and record the outcome.

Every exception in a chunk ends as a retry or as a per-video failure with its reason (:mod:`worker.chunks`); a task
never ends in an error that would drop its message while its videos have no outcome. Transient errors retry with
backoff, as a new message that says which attempts were already counted (an outage uses up no deliveries). Each chunk
runs under Celery's soft and hard time limits (``Settings.chunk_soft_limit_s``): the per-video deadline inside the
chunk fails a slow video alone, and the limits are the backstop for whatever the deadline cannot interrupt.

Each worker process opens one Neo4j connection pool and loads the models once (``worker_process_init``), and closes
the pool when it shuts down; every task of the process uses them. A worker whose models cannot be loaded does not
consume: the main process checks the fusion model before it starts consuming and refuses to start without one; a
pool process that cannot load them later (the model directory deleted, then the process replaced) asks the worker to
shut down, and a task that reaches it anyway puts its message back. The settings are the ones :mod:`worker.app` read
at process start.
"""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any, Sequence

from billiard.process import current_process
from celery.exceptions import Reject
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from kg_builder.graph import Graph
from kg_builder.store.batches import batch_exists, reject_batch
from ovp.errors import BatchExists, ManifestError
from ovp.settings import check_service_credentials
from worker.app import app, settings
from worker.batches import chunk_kwargs, fan_out, parse_batch_manifest, record_submission
from worker.celery_app import PROFILE_BATCH_TASK, PROFILE_CHUNK_TASK, RECONCILE_TASK
from worker.chunks import ChunkInterrupted, is_transient, run_chunk

log = logging.getLogger(__name__)

#: How long the driver itself retries a transaction in a worker. Short outages are bridged there; longer ones raise
#: GraphUnavailable, and the task's retry with backoff takes over, which puts the chunk back on the queue (with a
#: countdown) instead of keeping the worker busy while Neo4j restarts. The pool itself survives an outage: the driver
#: drops the dead connections and opens new ones when the server is back.
GRAPH_RETRY_S = 5.0
#: Backoff of transient retries: 2, 4, 8, … seconds, at most this long. Retries are not bounded by a count: an outage
#: of any length is waited out, and a chunk whose error is not transient ends in per-video failures instead.
RETRY_BACKOFF_MAX_S = 60
#: Retries of a chunk whose run failed outside any video (a fault in the chunk runner itself); past this the message
#: is dropped and the reconciler enqueues its videos again later.
MAX_UNEXPECTED_RETRIES = 5

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


@worker_init.connect
def _check_before_consuming(**_: Any) -> None:
    """In the worker's main process, before it takes any message: the credentials and the model.

    SystemExit (not an ordinary exception, which Celery's signal dispatch would log and swallow) ends the start.
    """
    try:
        for warning in check_service_credentials(settings, "worker"):
            log.warning("!!! %s !!!", warning)
        from encoders.device import torch_threads
        from fusion.inference import load_model

        # On the CPU (the main process must not initialise CUDA before it forks its pool) and on one thread: a
        # parallel region here would start GNU OpenMP's thread pool, which does not survive the fork, and the pool
        # process's first parallel tensor operation would then wait forever (seen with the demo's model).
        with torch_threads(1):
            model = load_model(settings.model_path, device="cpu")
        log.info("worker: model %s in %s loads; consuming", model.model_version, settings.model_path)
    except Exception as exc:  # noqa: BLE001 - whatever stops the model loading, this worker must not consume
        log.critical("!!! the worker will not start, so it takes no message: %s !!!", exc)
        raise SystemExit(3) from exc


@worker_process_init.connect
def _open_process_resources(**_: Any) -> None:
    graph()
    try:
        pipeline()
    except Exception as exc:  # noqa: BLE001 - whatever stops the models loading, this process must not profile
        _stop_consuming(exc)


def _stop_consuming(exc: BaseException) -> None:
    """Say loudly that this pool process cannot profile and ask the worker to shut down (warm: its other messages
    go back to the queue). A task that still reaches this process rejects its message back to the queue."""
    log.critical("!!! the profiling models cannot be loaded (%s: %s); this worker stops consuming and shuts down — "
                 "fix OVP_MODEL_DIR and start it again !!!", type(exc).__name__, exc)
    # The worker's main process: the parent of a prefork pool process, or this very process with the solo pool.
    os.kill(getattr(current_process(), "_parent_pid", None) or os.getpid(), signal.SIGTERM)


@worker_process_shutdown.connect
def _close_process_resources(**_: Any) -> None:
    global _graph
    if _graph is not None:
        _graph.close()
        _graph = None


def _backoff(retries: int) -> int:
    return min(2 ** (retries + 1), RETRY_BACKOFF_MAX_S)


@app.task(bind=True, name=PROFILE_BATCH_TASK, max_retries=None)
def profile_batch(self: Any, batch_id: str, manifest: list[dict[str, Any]],
                  media_roots: Sequence[str] = ()) -> dict[str, Any]:
    """Fan the videos of batch ``batch_id`` (recorded by its submitter) out to ``ovp.profile_chunk`` in chunks."""
    try:
        entries = parse_batch_manifest(manifest, batch_id)
    except ManifestError as exc:
        log.error("batch %s rejected: %s", batch_id, exc)
        reject_batch(graph(), batch_id, str(exc), exc.problems)
        return {"batch_id": batch_id, "status": "rejected"}
    try:
        if not batch_exists(graph(), batch_id):
            # A message sent without the submission record (by hand, or by a client older than this one): record
            # it now, before any chunk runs, so its counts and its pending videos are right.
            log.warning("batch %s was not recorded by its submitter; recording it now", batch_id)
            try:
                record_submission(graph(), batch_id, entries, media_roots=media_roots)
            except BatchExists:
                pass  # a second delivery of this message recorded it meanwhile
        kwargs = chunk_kwargs(media_roots)
        chunks = fan_out(batch_id, entries, chunk_size=settings.chunk_size,
                         enqueue=lambda bid, objs: profile_chunk.apply_async(args=[bid, objs], kwargs=kwargs))
    except Exception as exc:
        if not is_transient(exc):
            raise
        # Chunks enqueued before the error are enqueued again by the retry: a chunk is idempotent.
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    return {"batch_id": batch_id, "videos": len(entries), "chunks": len(chunks)}


@app.task(bind=True, name=PROFILE_CHUNK_TASK, max_retries=None,
          soft_time_limit=settings.chunk_soft_limit_s, time_limit=settings.chunk_hard_limit_s)
def profile_chunk(self: Any, batch_id: str, entry_objects: list[dict[str, Any]], media_roots: Sequence[str] = (),
                  uncounted: Sequence[str] = (), isolate: bool = False) -> dict[str, Any]:
    """Profile one chunk of a batch and write every outcome back (see worker.chunks.run_chunk)."""
    entries = parse_batch_manifest(entry_objects, batch_id)
    try:
        profiler = pipeline()
    except Exception as exc:  # noqa: BLE001 - the models did not load in this process: never consume
        _stop_consuming(exc)
        raise Reject(exc, requeue=True) from exc
    roots = [*settings.media_root_paths, *(Path(root) for root in media_roots)]
    try:
        report = run_chunk(graph(), profiler, batch_id, entries, max_deliveries=settings.max_deliveries,
                           lease_s=settings.chunk_hard_limit_s + 60, media_roots=roots, uncounted=uncounted,
                           isolate=isolate, time_limit_s=settings.chunk_soft_limit_s)
    except ChunkInterrupted as exc:
        retry = chunk_kwargs(media_roots, uncounted=exc.uncounted, isolate=exc.isolate)
        countdown = 0 if exc.soon else _backoff(self.request.retries)
        raise self.retry(args=[batch_id, entry_objects], kwargs=retry, countdown=countdown, exc=exc.cause) from exc
    except Exception as exc:
        # A fault of the chunk runner itself, outside any video: retried a few times one video at a time; then the
        # message is dropped, and its videos, still pending in the graph, are enqueued again by the reconciler.
        log.exception("batch %s: chunk failed outside any video", batch_id)
        if self.request.retries >= MAX_UNEXPECTED_RETRIES:
            raise
        retry = chunk_kwargs(media_roots, uncounted=uncounted, isolate=True)
        raise self.retry(args=[batch_id, entry_objects], kwargs=retry, countdown=_backoff(self.request.retries),
                         exc=exc) from exc
    return {"batch_id": batch_id, "done": report.done, "failed": report.failed, "skipped": report.skipped}


@app.task(name=RECONCILE_TASK)
def reconcile() -> dict[str, Any]:
    """Enqueue again the videos of running batches that are pending in the graph but on no queue (worker.reconcile)."""
    from worker.reconcile import reconcile_running

    reports = reconcile_running(graph(), app, settings)
    requeued = {r.batch_id: len(r.requeued) for r in reports if r.requeued}
    return {"batches": len(reports), "requeued": requeued}
