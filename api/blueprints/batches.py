"""``POST /batches`` (submit a manifest for profiling; bearer token required) and ``GET /batches/{id}`` (progress).

A submission is validated completely before anything happens (422 with every problem, by line), then recorded in the
graph (the batch and its videos, pending, so ``GET /batches/{id}`` answers at once and nothing is lost if the broker
is slow) and enqueued as the Celery task ``ovp.profile_batch`` (:func:`worker.batches.submit_batch`). The task is
sent by name: the API never imports the models.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

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


def token_matches(token: str) -> bool:
    """Is ``token`` the API token (constant-time; never when no token is set)? The batches page asks it too."""
    expected = get_settings().api_token
    return bool(expected) and hmac.compare_digest(token.strip().encode(), expected.encode())


def require_token() -> None:
    """Check ``Authorization: Bearer <OVP_API_TOKEN>`` in constant time; 401 otherwise (also when no token is set)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not (scheme.lower() == "bearer" and token_matches(token)):
        raise Unauthorized(
            description="POST /batches needs the header Authorization: Bearer <OVP_API_TOKEN>",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "ovp"}),
        )


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
    entries = parse_manifest_objects(list(enumerate(objects, start=1)), origin)  # ManifestError → 422
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
    """Counts, status and per-video failures of a batch; 404 when unknown."""
    check_id("batch id", batch_id)
    status = batch_status(get_graph(), batch_id)
    if status is None:
        abort(404, description=f"no batch {batch_id}")
    return jsonify(status)
