"""``GET /entities?q=&limit=`` (bilingual full-text lookup) and ``GET /entities/{id}`` (one entity in context)."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, abort, jsonify, request

from api.context import app_resource
from api.db import get_graph
from api.extensions import expensive
from api.validation import arg_int, arg_str, check_id
from kg_builder.store.entities import EntityLookup, entity_detail
from ovp.errors import GraphUnavailable

log = logging.getLogger(__name__)

bp = Blueprint("entities", __name__)

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
#: Neighbours listed per relationship kind; the counts say how many there are in all.
MAX_NEIGHBOURS = 100
_LOOKUP_KEY = "ovp_entity_lookup"


def get_entity_lookup() -> EntityLookup:
    """This process's lookup: the entity dictionary of the current build and recent answers, held across requests
    (dropped when ``ovp kg build`` stamps a new build; see kg_builder.store.entities.STAMP_CHECK_INTERVAL_S)."""
    return app_resource(_LOOKUP_KEY, EntityLookup)


def load_entity_lookup(app: Flask) -> None:
    """Load this process's entity dictionary now (a second or two), so that the first lookup need not wait for it.

    For a server's start-up, on a thread of its own; if Neo4j is not up yet, the first lookup loads it instead.
    """
    with app.app_context():
        try:
            get_entity_lookup().dictionary(get_graph())
        except GraphUnavailable as exc:
            log.warning("entity dictionary not loaded at start (%s); the first lookup will load it", exc)


@bp.get("/entities")
@expensive
def search_entities() -> Any:
    """Entities whose name, Chinese name or synonym matches ``q`` (Lucene syntax in ``q`` is escaped), best first."""
    text = arg_str(request, "q", max_len=MAX_QUERY_CHARS, min_len=1)
    limit = arg_int(request, "limit", minimum=1, maximum=MAX_LIMIT, default=10)
    hits = get_entity_lookup().lookup(get_graph(), text, limit=limit)
    return jsonify({"query": text, "count": len(hits), "results": [hit.to_dict() for hit in hits]})


@bp.get("/entities/<entity_id>")
def get_entity(entity_id: str) -> Any:
    """One entity: names, synonyms, definition, parents, children, MAPS_TO, diseases/phenotypes, video count."""
    check_id("entity id", entity_id)
    entity = entity_detail(get_graph(), entity_id, max_neighbours=MAX_NEIGHBOURS)
    if entity is None:
        abort(404, description=f"no entity {entity_id}; search with GET /entities?q=")
    return jsonify(entity)
