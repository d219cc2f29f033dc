"""``GET /entities?q=&limit=`` (bilingual full-text lookup) and ``GET /entities/{id}`` (one entity in context)."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request

from api.db import get_graph
from api.validation import arg_int, arg_str, check_id
from kg_builder.build import lookup

log = logging.getLogger(__name__)

bp = Blueprint("entities", __name__)

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
#: Neighbours listed per relationship kind; the counts say how many there are in all.
MAX_NEIGHBOURS = 100

#: One entity with everything the detail view shows, in one round trip. COLLECT/COUNT subqueries keep each list
#: independent (no cross-product between parents, children and phenotypes).
ENTITY_DETAIL = """
MATCH (e:Entity {id: $id})
RETURN e.id AS id, e.name AS name, e.name_zh AS name_zh,
       // the kind label without the shared :Entity
       [l IN labels(e) WHERE l <> 'Entity'][0] AS kind,
       e.definition AS definition, coalesce(e.synonyms, []) AS synonyms,
       coalesce(e.synonym_scopes, []) AS synonym_scopes, coalesce(e.xrefs, []) AS xrefs,
       e.source AS source, e.source_version AS source_version, coalesce(e.profile_label, false) AS profile_label,
       // IS_A points from child to parent
       COLLECT { MATCH (e)-[:IS_A]->(p:Entity) RETURN p {.id, .name, .name_zh} ORDER BY p.id LIMIT $max } AS parents,
       COUNT { (e)<-[:IS_A]-(:Entity) } AS child_count,
       COLLECT { MATCH (e)<-[:IS_A]-(c:Entity) RETURN c {.id, .name, .name_zh} ORDER BY c.id LIMIT $max } AS children,
       // MAPS_TO: the same concept in another source, whichever way the edge was written
       COLLECT { MATCH (e)-[:MAPS_TO]-(m:Entity) RETURN DISTINCT m {.id, .name, .source} ORDER BY m.id LIMIT $max } AS maps_to,
       // a disease's phenotypes, or a phenotype's diseases (HAS_PHENOTYPE points disease → phenotype)
       COUNT { (e)-[:HAS_PHENOTYPE]->(:Entity) } AS phenotype_count,
       COLLECT { MATCH (e)-[h:HAS_PHENOTYPE]->(p:Entity) RETURN p {.id, .name, .name_zh, frequency: h.frequency}
                 ORDER BY p.id LIMIT $max } AS phenotypes,
       COUNT { (e)<-[:HAS_PHENOTYPE]-(:Entity) } AS disease_count,
       COLLECT { MATCH (e)<-[h:HAS_PHENOTYPE]-(d:Entity) RETURN d {.id, .name, .name_zh, frequency: h.frequency}
                 ORDER BY d.id LIMIT $max } AS diseases,
       // videos whose caption mentions it (negated mentions included: the video still talks about it)
       COUNT { MATCH (v:Video)-[:MENTIONS]->(e) RETURN DISTINCT v } AS video_count
"""


@bp.get("/entities")
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
    rows = get_graph().read(ENTITY_DETAIL, {"id": entity_id, "max": MAX_NEIGHBOURS})
    if not rows:
        abort(404, description=f"no entity {entity_id}; search with GET /entities?q=")
    return jsonify(rows[0])
