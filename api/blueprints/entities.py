"""``GET /entities?q=&limit=`` (bilingual full-text lookup) and ``GET /entities/{id}`` (one entity in context)."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request

from api.db import get_graph
from api.extensions import expensive
from api.validation import arg_int, arg_str, check_id
from kg_builder.store.entities import entity_detail, lookup

log = logging.getLogger(__name__)

bp = Blueprint("entities", __name__)

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
#: Neighbours listed per relationship kind; the counts say how many there are in all.
MAX_NEIGHBOURS = 100

@bp.get("/entities")
@expensive
def search_entities() -> Any:
    """Entities whose name, Chinese name or synonym matches ``q`` (Lucene syntax in ``q`` is escaped), best first."""
    text = arg_str(request, "q", max_len=MAX_QUERY_CHARS, min_len=1)
    limit = arg_int(request, "limit", minimum=1, maximum=MAX_LIMIT, default=10)
    hits = lookup(get_graph(), text, limit=limit)
    return jsonify({"query": text, "count": len(hits), "results": [hit.to_dict() for hit in hits]})


@bp.get("/entities/<entity_id>")
def get_entity(entity_id: str) -> Any:
    """One entity: names, synonyms, definition, parents, children, MAPS_TO, diseases/phenotypes, video count."""
    check_id("entity id", entity_id)
    entity = entity_detail(get_graph(), entity_id, max_neighbours=MAX_NEIGHBOURS)
    if entity is None:
        abort(404, description=f"no entity {entity_id}; search with GET /entities?q=")
    return jsonify(entity)
