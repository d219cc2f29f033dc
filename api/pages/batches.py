"""Batches: the list with each one's progress, one batch with its failures (the page refreshes itself while the batch
runs, without JavaScript), and submitting a manifest from the page, which goes through the same validation as
``POST /batches`` and needs the same API token.

One batch's page is open like ``GET /batches/{id}`` (failure reasons without file paths unless a reviewer is
signed in); the list of every batch is more than the JSON API shows anyone
(it names batches by their unguessable ids), so it is for signed-in reviewers."""
from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from api.auth import token_matches
from api.db import get_graph
from api.blueprints.batches import MAX_VIDEOS, accept_batch
from api.pages.blueprint import bp
from api.validation import check_id
from fusion.manifest import parse_manifest_lines
from kg_builder.store.batches import batch_status, list_batches
from ovp.errors import ManifestError

log = logging.getLogger(__name__)

#: Seconds between refreshes of a running batch's page.
REFRESH_S = 5


@bp.get("/batches")
@login_required
def batches() -> str:
    rows = list_batches(get_graph())
    running = any(b.get("status") not in ("finished", "rejected") for b in rows)
    return render_template("batches.html", batches=rows, refresh=REFRESH_S if running else None)


@bp.get("/batches/<batch_id>")
def batch(batch_id: str) -> str:
    check_id("batch id", batch_id)
    # Failure reasons name files on the workers: only signed-in reviewers see the paths.
    status = batch_status(get_graph(), batch_id, with_paths=current_user.is_authenticated)
    if status is None:
        abort(404, description=f"no batch {batch_id}")
    running = status.get("status") not in ("finished", "rejected")
    return render_template("batch.html", b=status, refresh=REFRESH_S if running else None)


def _manifest_text() -> bytes:
    upload = request.files.get("manifest_file")
    if upload is not None and upload.filename:
        return upload.read()
    return request.form.get("manifest", "").encode("utf-8")


@bp.post("/batches")
def submit() -> Any:
    """The form: a manifest (pasted or uploaded) and the API token."""
    rows = list_batches(get_graph()) if current_user.is_authenticated else []
    if not token_matches(request.form.get("token", "")):
        return render_template("batches.html", batches=rows, refresh=None, error_key="bad_token", problems=[]), 401
    lines = _manifest_text().split(b"\n")
    try:
        entries = parse_manifest_lines(lines, "upload")
        if len(entries) > MAX_VIDEOS:
            raise ManifestError(f"at most {MAX_VIDEOS} videos per batch, got {len(entries)}; split the manifest")
        batch_id, total = accept_batch([entry.to_json_dict(None) for entry in entries], "upload")
    except ManifestError as exc:
        return render_template("batches.html", batches=rows, refresh=None, error_key="manifest_problems",
                               error=str(exc), problems=exc.problems), 422
    log.info("batch %s submitted from the page: %d videos", batch_id, total)
    flash("batch_accepted", "ok")
    return redirect(url_for("pages.batch", batch_id=batch_id))
