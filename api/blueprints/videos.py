"""``GET /videos/{id}``: a video's metadata, its linked mentions, its latest profile (explanation parsed) and the
history of its profiles."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, abort, jsonify

from api.db import get_graph
from api.validation import check_id
from kg_builder.store.videos import video_detail

log = logging.getLogger(__name__)

bp = Blueprint("videos", __name__)


def parse_explanation(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile with ``explanation`` parsed from its JSON string (an unreadable one becomes null and is logged)."""
    out = dict(profile)
    raw = out.get("explanation")
    if isinstance(raw, str):
        try:
            out["explanation"] = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("profile %s has an explanation that is not JSON", out.get("id"))
            out["explanation"] = None
    return out


@bp.get("/videos/<video_id>")
def get_video(video_id: str) -> Any:
    """The video, its mentions, latest profile and profile history; 404 when unknown."""
    check_id("video id", video_id)
    row = video_detail(get_graph(), video_id)
    if row is None:
        abort(404, description=f"no video {video_id}")
    latest = parse_explanation(row["latest"][0]) if row["latest"] else None
    return jsonify({**row["video"], "mentions": row["mentions"], "profile": latest, "history": row["history"]})
