"""``GET /diseases/{id}/videos``: videos whose latest profile predicts the disease, by popularity or quality."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request

from api.db import get_graph
from api.validation import arg_enum, arg_int, check_id

log = logging.getLogger(__name__)

bp = Blueprint("diseases", __name__)

SORT_KEYS = ("popularity", "quality")
MAX_LIMIT = 200

#: Is there such a disease? (404 otherwise, rather than an empty list that reads like "no videos yet").
DISEASE_EXISTS = "MATCH (d:Entity:Disease {id: $id}) RETURN d.id AS id, d.name AS name, d.name_zh AS name_zh"

#: Videos about the disease. The sort key is a parameter too: ORDER BY a CASE on $sort, so nothing is formatted into
#: the query text.
DISEASE_VIDEOS = """
MATCH (d:Entity:Disease {id: $id})
// only each video's latest profile speaks for it
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true})-[pr:PREDICTS]->(d)
WHERE p.quality >= $min_quality
RETURN v.id AS video_id, v.title AS title, v.platform AS platform, v.url AS url, v.published_at AS published_at,
       p.popularity AS popularity, p.popularity_pct AS popularity_pct, p.quality AS quality,
       pr.prob AS prob, pr.rank AS rank, p.model_version AS model_version
// by quality: best quality first, the more popular of equals first; by popularity: most popular first
ORDER BY CASE $sort WHEN 'quality' THEN p.quality ELSE p.popularity END DESC, p.popularity DESC, video_id
LIMIT $limit
"""


@bp.get("/diseases/<disease_id>/videos")
def disease_videos(disease_id: str) -> Any:
    """``sort=popularity|quality``, ``min_quality`` 1-5, ``limit`` 1-200; 404 when the disease is unknown."""
    check_id("disease id", disease_id)
    sort = arg_enum(request, "sort", SORT_KEYS, default="popularity")
    min_quality = arg_int(request, "min_quality", minimum=1, maximum=5, default=1)
    limit = arg_int(request, "limit", minimum=1, maximum=MAX_LIMIT, default=20)
    graph = get_graph()
    disease = graph.read(DISEASE_EXISTS, {"id": disease_id})
    if not disease:
        abort(404, description=f"no disease {disease_id}; find ids with GET /entities?q=")
    rows = graph.read(DISEASE_VIDEOS, {"id": disease_id, "sort": sort, "min_quality": min_quality, "limit": limit})
    return jsonify({"disease": disease[0], "sort": sort, "min_quality": min_quality, "count": len(rows), "videos": rows})
