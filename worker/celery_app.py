"""The Celery app, configured from settings: JSON only, late acknowledgement, named queues, tasks sent by name, and
the beat schedule of the reconciliation.

One factory for both sides: the workers' app (:mod:`worker.app`, ``celery -A worker.app worker``) and the clients
that only send tasks (the API, ``ovp profile --submit``, the tests), so both agree on queues and serialisation.
``celery -A worker.app beat`` (one per deployment) sends ``ovp.reconcile`` every ``OVP_RECONCILE_INTERVAL_S``.
"""
from __future__ import annotations

from celery import Celery

from ovp.settings import Settings

#: Queue names: fanning out a batch is cheap and must never wait behind GPU work.
BATCH_QUEUE = "batches"
PROFILE_QUEUE = "profiles"
#: Task names: clients send tasks by name and never import the models.
PROFILE_BATCH_TASK = "ovp.profile_batch"
PROFILE_CHUNK_TASK = "ovp.profile_chunk"
RECONCILE_TASK = "ovp.reconcile"


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings``; the tasks are registered by importing ``worker.tasks``."""
    app = Celery("ovp", broker=settings.broker_url, backend=settings.result_backend, include=["worker.tasks"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A task is acknowledged only after it finished; if its worker dies the message goes back to the queue
        # (reject_on_worker_lost for a killed pool process; the visibility timeout for a killed worker).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A chunk killed at its hard time limit goes back to the queue like one whose worker died: its begun videos
        # stay counted, and the one that hangs is given up after OVP_MAX_DELIVERIES.
        task_acks_on_failure_or_timeout=False,
        worker_prefetch_multiplier=1,
        # Redis redelivers an unacknowledged message after this long: above the longest chunk's run time, or a slow
        # chunk would be delivered twice while still running.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        task_routes={
            PROFILE_BATCH_TASK: {"queue": BATCH_QUEUE},
            PROFILE_CHUNK_TASK: {"queue": PROFILE_QUEUE},
            RECONCILE_TASK: {"queue": BATCH_QUEUE},
        },
        beat_schedule=({
            "reconcile-batches": {
                "task": RECONCILE_TASK,
                "schedule": float(settings.reconcile_interval_s),
                # A reconciliation that waited longer than one interval is stale: the next one is already due.
                "options": {"expires": float(settings.reconcile_interval_s)},
            },
        } if settings.reconcile_interval_s > 0 else {}),
        beat_schedule_filename=str(settings.home / "celerybeat-schedule"),
        task_default_queue=PROFILE_QUEUE,
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app
