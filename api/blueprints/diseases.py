"""``GET /diseases/{id}/videos``: videos whose latest profile predicts the disease (``via=predicted``, the default) or
is tagged with it (``via=tagged``), by popularity or quality."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request

from api.db import get_graph
from api.validation import arg_enum, arg_int, check_id
from kg_builder.store import diseases as store

log = logging.getLogger(__name__)

bp = Blueprint("diseases", __name__)

MAX_LIMIT = 200


@bp.get("/diseases/<disease_id>/videos")
def disease_videos(disease_id: str) -> Any:
    """``sort=popularity|quality``, ``via=predicted|tagged``, ``min_quality`` 1-5, ``limit`` 1-200; 404 when the disease
    is unknown."""
    check_id("disease id", disease_id)
    sort = arg_enum(request, "sort", store.SORT_KEYS, default="popularity")
    via = arg_enum(request, "via", store.VIA, default="predicted")
    min_quality = arg_int(request, "min_quality", minimum=1, maximum=5, default=1)
    limit = arg_int(request, "limit", minimum=1, maximum=MAX_LIMIT, default=20)
    found = store.disease(get_graph(), disease_id)
    if found is None:
        abort(404, description=f"no disease {disease_id}; find ids with GET /entities?q=")
    rows = store.disease_videos(get_graph(), disease_id, sort=sort, min_quality=min_quality, limit=limit, via=via)
    return jsonify({"disease": found, "sort": sort, "via": via, "min_quality": min_quality, "count": len(rows),
                    "videos": rows})
