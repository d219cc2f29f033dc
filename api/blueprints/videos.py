"""``GET /videos/{id}``: a video's metadata, its linked mentions, its latest profile (explanation parsed), that
profile's open-vocabulary tags (a list of their own, evidence parsed, apart from the profile's predictions) and the
history of its profiles. The video's file path is shown only to a request with the API token."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, abort, jsonify

from api.auth import has_valid_token
from api.db import get_graph
from api.validation import check_id
from kg_builder.store.videos import video_detail

log = logging.getLogger(__name__)

bp = Blueprint("videos", __name__)


def parse_json_field(row: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    """``row`` with ``row[key]`` parsed from its JSON string (an unreadable one becomes null and is logged)."""
    out = dict(row)
    raw = out.get(key)
    if isinstance(raw, str):
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("%s %s has a %s that is not JSON", what, out.get("id") or out.get("disease_id"), key)
            out[key] = None
    return out


def parse_explanation(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile with ``explanation`` parsed from its JSON string (an unreadable one becomes null and is logged)."""
    return parse_json_field(profile, "explanation", "profile")


@bp.get("/videos/<video_id>")
def get_video(video_id: str) -> Any:
    """The video, its mentions, latest profile, that profile's tags and profile history; 404 when unknown."""
    check_id("video id", video_id)
    row = video_detail(get_graph(), video_id)
    if row is None:
        abort(404, description=f"no video {video_id}")
    latest = parse_explanation(row["latest"][0]) if row["latest"] else None
    tags = [parse_json_field(tag, "evidence", "tag") for tag in row["tags"]]
    video = row["video"]
    if not has_valid_token():
        # The stored path tells anyone which files the media roots hold; the token holder submitted it and may see it.
        video = {key: value for key, value in video.items() if key != "path"}
    return jsonify({**video, "mentions": row["mentions"], "profile": latest, "tags": tags,
                    "history": row["history"]})
