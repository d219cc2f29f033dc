"""``GET /search?q=&k=`` (videos by the meaning of a Chinese or English query) and ``GET /videos/{id}/similar``
(videos like one video: by meaning, or by the fused profile embedding as the ``similar_videos`` named query ranks them).

Unauthenticated, so bounded: the query's length and ``k`` (:data:`encoders.video_search.SearchConfig`), and
``OVP_API_RATE_LIMIT`` requests per client address (a search runs the sentence encoder and a ranking query); the
``similar_videos`` named query runs under ``OVP_QUERY_TIMEOUT_S`` as ``POST /queries/{name}`` does. The sentence
encoder (about 2 s and 100 MB to load) and the dictionary linker are built once per process, on first use.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request

from api.blueprints.linking import get_linker
from api.blueprints.queries import named_queries, to_json
from api.context import app_resource, get_settings
from api.db import get_graph
from api.extensions import expensive
from api.validation import arg_enum, arg_int, arg_str, check_id
from encoders.sentence_vectors import SentenceVectorEncoder
from encoders.video_search import SearchConfig, VideoSearch
from kg_builder.named_queries import get_query
from kg_builder.store.videos import video_exists

log = logging.getLogger(__name__)

bp = Blueprint("search", __name__)

LIMITS = SearchConfig()
#: How ``/videos/{id}/similar`` ranks: by meaning (text vector and shared concepts) or by the fused profile embedding.
SIMILAR_BY = ("meaning", "profile")
_ENCODER_KEY = "ovp_sentence_encoder"


def get_searcher() -> VideoSearch:
    """Search over this app's graph with its linker and its sentence encoder (both built once per process)."""
    encoder = app_resource(_ENCODER_KEY, lambda: SentenceVectorEncoder().load())
    return VideoSearch(get_graph(), get_linker(), encoder, LIMITS)


@bp.get("/search")
@expensive
def search() -> Any:
    """``q`` (1–500 characters), ``k`` (1–100, default 10) → ``{query, concepts, count, hits}``."""
    text = arg_str(request, "q", max_len=LIMITS.max_query_chars, min_len=1)
    k = arg_int(request, "k", minimum=1, maximum=LIMITS.max_k, default=10)
    if not text.strip():
        abort(400, description="q is blank: give a few words (Chinese or English)")
    return jsonify(get_searcher().search(text, k).to_json())


@bp.get("/videos/<video_id>/similar")
@expensive
def similar(video_id: str) -> Any:
    """``by=meaning`` (default): videos whose text is closest in meaning and that share its concepts;
    ``by=profile``: the ``similar_videos`` named query (fused profile embedding). 404 when the video is unknown."""
    check_id("video id", video_id)
    k = arg_int(request, "k", minimum=1, maximum=LIMITS.max_k, default=10)
    by = arg_enum(request, "by", SIMILAR_BY, default="meaning")
    if by == "profile":
        query = get_query(named_queries(), "similar_videos")
        rows = get_graph().read(query.text, query.bind({"video_id": video_id, "k": k}),
                                timeout_s=get_settings().query_timeout_s)
        if not rows and not video_exists(get_graph(), video_id):
            abort(404, description=f"no video {video_id}")
        return jsonify({"video_id": video_id, "by": by, "count": len(rows), "hits": [to_json(r) for r in rows]})
    result = get_searcher().similar(video_id, k)
    if result is None:
        abort(404, description=f"no video {video_id}")
    body = result.to_json()
    return jsonify({"video_id": video_id, "by": by, "concepts": body["concepts"], "count": body["count"],
                    "hits": body["hits"]})
