"""``GET /videos/{id}``: a video's metadata, its linked mentions, its latest profile (explanation parsed) and the
history of its profiles."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, abort, jsonify

from api.app import get_graph
from api.validation import check_id

log = logging.getLogger(__name__)

bp = Blueprint("videos", __name__)

#: The video and everything the detail view shows, in one round trip.
VIDEO_DETAIL = """
MATCH (v:Video {id: $id})
// the metadata without the 256-d embedding, which is for the vector index, not for readers
RETURN v {.id, .platform, .url, .path, .title, .caption, .hashtags, .transcript, .duration_s, .published_at,
          .author_followers, .synthetic, has_embedding: v.embedding IS NOT NULL} AS video,
       // linked entities in caption order
       COLLECT { MATCH (v)-[m:MENTIONS]->(e:Entity)
                 RETURN {entity_id: e.id, name: e.name, name_zh: e.name_zh,
                         kind: [l IN labels(e) WHERE l <> 'Entity'][0], surface: m.surface, field: m.field,
                         start: m.start, end: m.end, score: m.score, negated: coalesce(m.negated, false)} AS mention
                 ORDER BY m.field, m.start, m.end } AS mentions,
       // the latest profile (at most one is latest) with its predicted diseases, best rank first
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true})
                 RETURN p {.*, predictions: COLLECT { MATCH (p)-[pr:PREDICTS]->(d:Disease)
                                                      RETURN {disease_id: d.id, name: d.name, name_zh: d.name_zh,
                                                              prob: pr.prob, rank: pr.rank} AS prediction
                                                      ORDER BY pr.rank } } AS profile
                 ORDER BY p.created_at DESC LIMIT 1 } AS latest,
       // every profile, newest first (one per model version)
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile)
                 RETURN p {.id, .model_version, .created_at, .popularity, .popularity_pct, .quality, .latest} AS profile
                 ORDER BY p.created_at DESC, p.id } AS history
"""


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
    rows = get_graph().read(VIDEO_DETAIL, {"id": video_id})
    if not rows:
        abort(404, description=f"no video {video_id}")
    row = rows[0]
    latest = parse_explanation(row["latest"][0]) if row["latest"] else None
    return jsonify({**row["video"], "mentions": row["mentions"], "profile": latest, "history": row["history"]})
