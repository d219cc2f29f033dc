"""The worker process's entry point: ``celery -A worker.app worker -Q batches,profiles --concurrency 1``.

Settings are read here, once per process, and passed down: to the Celery app and to the tasks (:mod:`worker.tasks`
takes them from this module). Clients that only send tasks (the API, ``ovp profile --submit``) build their own app
with :func:`worker.celery_app.make_celery` from the settings they were given.

One process per GPU, pinned with ``CUDA_VISIBLE_DEVICES``; models and the Neo4j connection pool are opened once per
pool process (``worker_process_init`` in :mod:`worker.tasks`).
"""
from __future__ import annotations

from ovp.settings import Settings
from worker.celery_app import make_celery

settings = Settings.from_env()
app = make_celery(settings)
