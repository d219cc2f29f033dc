"""The JSON twin of the rating form: ``POST /videos/{id}/ratings`` (a reviewer's bearer token, from
``ovp raters add``) and ``GET /videos/{id}/ratings`` (every rating, newest first; also a reviewer's token: ratings
and notes are the reviewers' work, not something the API shows anonymous callers)."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from api.accounts import check_token
from api.db import get_graph
from api.ratings import parse_rating, store_rating
from api.validation import check_id, json_object
from kg_builder.store.ratings import video_ratings
from kg_builder.store.reviews import video_page

log = logging.getLogger(__name__)

bp = Blueprint("ratings", __name__)


def bearer_rater() -> str:
    """The name of the active reviewer whose API token is in ``Authorization: Bearer``; 401 otherwise."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    rater = check_token(get_graph(), token.strip()) if scheme.lower() == "bearer" else None
    if rater is None:
        raise Unauthorized(
            description="rating needs a reviewer's token: Authorization: Bearer <token from `ovp raters add NAME`>",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "ovp-reviewers"}),
        )
    return rater.name


@bp.post("/videos/<video_id>/ratings")
def post_rating(video_id: str) -> Any:
    """Store a new rating by the token's reviewer; 201 with the rating as stored."""
    check_id("video id", video_id)
    rater = bearer_rater()
    rating = parse_rating(json_object(request))
    stored = store_rating(get_graph(), rater, video_id, rating)
    log.info("rating %s of %s by %s (API)", stored.id, video_id, rater)
    return jsonify(stored.to_json()), 201


@bp.get("/videos/<video_id>/ratings")
def get_ratings(video_id: str) -> Any:
    """Every rating of the video, newest first, and which one of each reviewer counts; 404 when the video is unknown."""
    check_id("video id", video_id)
    bearer_rater()
    graph = get_graph()
    ratings = video_ratings(graph, video_id)
    if not ratings and video_page(graph, video_id) is None:
        abort(404, description=f"no video {video_id}")
    seen: set[str] = set()
    current = []
    for rating in ratings:  # newest first: the first of each reviewer is the one that counts
        if rating.rater not in seen:
            seen.add(rating.rater)
            current.append(rating.id)
    return jsonify({"video_id": video_id, "count": len(ratings), "current": current,
                    "ratings": [r.to_json() for r in ratings]})
