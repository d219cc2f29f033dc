"""``POST /batches`` (submit a manifest for profiling; bearer token required) and ``GET /batches/{id}`` (progress).

A submission is validated completely before anything happens (422 with every problem, by line; every video path
must be absolute and lie under ``OVP_MEDIA_ROOTS``, symlinks followed), then recorded in the graph (the batch and its
videos, pending, so ``GET /batches/{id}`` answers at once and nothing is lost if the broker is slow) and enqueued as
the Celery task ``ovp.profile_batch`` (:func:`worker.batches.submit_batch`). The task is sent by name: the API never
imports the models. ``GET /batches/{id}`` shows failure reasons without file paths unless the request carries the
token: they would tell anyone who has a batch id which files exist on the workers.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for

from api.auth import has_valid_token, require_token
from api.context import app_resource, get_settings
from api.db import get_graph
from api.validation import RequestValidationError, check_id, json_body
from fusion.manifest import parse_manifest_objects
from kg_builder.store.batches import batch_status
from worker import batches as submission
from worker.celery_app import make_celery

log = logging.getLogger(__name__)

bp = Blueprint("batches", __name__)

#: Videos per submission; bigger sets go in several batches (the body limit bounds it too).
MAX_VIDEOS = 10_000
#: Publishing retries when the broker hiccups; a broker that is down answers 503 within about a second.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.25, "interval_max": 0.5}
_CELERY_KEY = "ovp_celery"


def manifest_objects(body: object) -> list[object]:
    """The manifest lines of a body: a JSON list of objects, or ``{"videos": [...]}``."""
    if isinstance(body, dict):
        if set(body) != {"videos"}:
            raise RequestValidationError('the body must be a list of video objects or {"videos": [...]}')
        body = body["videos"]
    if not isinstance(body, list):
        raise RequestValidationError('the body must be a list of video objects or {"videos": [...]}')
    if len(body) > MAX_VIDEOS:
        raise RequestValidationError(f"at most {MAX_VIDEOS} videos per batch, got {len(body)}; split the manifest")
    return body


def get_celery() -> Any:
    """This app's Celery client (configured from the app's settings, so tests can point it at another broker)."""
    return app_resource(_CELERY_KEY, lambda: make_celery(get_settings()))


def accept_batch(objects: list[object], origin: str = "request body") -> tuple[str, int]:
    """Validate manifest lines, record the batch, enqueue it; returns (batch id, number of videos). The batches page
    submits through this too.

    Raises:
        ManifestError: every problem, by line (422); nothing is recorded.
        BrokerUnavailable: recorded but not enqueued (503).
    """
    # ManifestError → 422; paths resolved and confined to the media roots (a request has no manifest folder)
    entries = parse_manifest_objects(list(enumerate(objects, start=1)), origin,
                                     media_roots=get_settings().media_root_paths)
    batch_id = submission.new_batch_id()
    # BrokerUnavailable (503) once the batch is recorded but cannot be enqueued
    submission.submit_batch(get_graph(), get_celery(), batch_id, entries, manifest=objects, retry=True, retry_policy=PUBLISH_RETRY)
    return batch_id, len(entries)


@bp.post("/batches")
def submit_batch() -> Any:
    """Validate the manifest, record the batch, enqueue it; 202 ``{batch_id, status_url, total}``."""
    require_token()
    batch_id, total = accept_batch(manifest_objects(json_body(request)))
    status_url = url_for("batches.get_batch", batch_id=batch_id)
    return jsonify({"batch_id": batch_id, "status_url": status_url, "total": total}), 202, {"Location": status_url}


@bp.get("/batches/<batch_id>")
def get_batch(batch_id: str) -> Any:
    """Counts, status and per-video failures of a batch (reasons without file paths unless the token is sent);
    404 when unknown."""
    check_id("batch id", batch_id)
    status = batch_status(get_graph(), batch_id, with_paths=has_valid_token())
    if status is None:
        abort(404, description=f"no batch {batch_id}")
    return jsonify(status)
