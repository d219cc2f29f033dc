"""The shared batched writer: typed records → parameter rows → ``UNWIND $rows`` upserts, per kind and per type.

The Cypher lives in small pure functions (tested by exact string). Labels and relationship types are interpolated
only after passing the allow-lists in :mod:`kg_builder.schema`; every value travels in ``$rows``.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

from kg_builder.graph import DEFAULT_BATCH_SIZE, Graph
from kg_builder.records import EntityRecord, RelationRecord
from kg_builder.schema import ENTITY_KINDS, kind_label, relation_type

log = logging.getLogger(__name__)

#: Separator of ``synonyms_text``: full-text indexes cannot index lists, so synonyms are also stored joined.
SYNONYM_SEPARATOR = " | "


# --- Cypher builders (pure) ---------------------------------------------------------------------------------------

def entity_upsert_query(kind: str) -> str:
    """Upsert Entity nodes of one kind from ``$rows`` (one row per node, see :func:`entity_row`).

    The kind label is set here, one query per kind, because a label cannot be a parameter; any other kind label
    is removed so that a concept whose kind changed in its source does not keep both.
    """
    label = kind_label(kind)
    others = [other for other in ENTITY_KINDS.values() if other != label]
    return (
        "UNWIND $rows AS row\n"
        # The entity_id uniqueness constraint backs this MERGE with an index lookup.
        "MERGE (n:Entity {id: row.id})\n"
        # Replace every builder-owned property; a null value (empty name_zh, no definition) removes it.
        "SET n.name = row.name, n.name_zh = row.name_zh, n.definition = row.definition,\n"
        "    n.synonyms = row.synonyms, n.synonym_scopes = row.synonym_scopes,\n"
        "    n.synonym_layperson = row.synonym_layperson, n.synonym_langs = row.synonym_langs,\n"
        "    n.synonym_sources = row.synonym_sources, n.synonym_versions = row.synonym_versions,\n"
        "    n.synonyms_text = row.synonyms_text, n.xrefs = row.xrefs,\n"
        "    n.source = row.source, n.source_version = row.source_version, n.profile_label = row.profile_label\n"
        f"SET n:{label}\n"
        f"REMOVE n:{':'.join(others)}"
    )


def relation_upsert_query(rel_type: str) -> str:
    """Upsert relationships of one type from ``$rows`` ({start, end, props}); both ends are matched by id.

    A row whose end is not in the graph matches nothing and writes nothing — the builder validates ends first.
    """
    rel = relation_type(rel_type)
    return (
        "UNWIND $rows AS row\n"
        "MATCH (a:Entity {id: row.start})\n"
        "MATCH (b:Entity {id: row.end})\n"
        # At most one relationship of a type between two entities: MERGE makes a rebuild a no-op.
        f"MERGE (a)-[r:{rel}]->(b)\n"
        # props always holds `source`; HAS_PHENOTYPE adds frequency (and frequency_label).
        "SET r += row.props"
    )


def source_entity_ids_query() -> str:
    """Ids of the Entity nodes whose ``source`` is in ``$sources`` (served by the entity_source index)."""
    return "MATCH (n:Entity) WHERE n.source IN $sources RETURN n.id AS id"


def delete_entities_by_id_query() -> str:
    """Detach-delete the Entity nodes whose ids are in ``$rows`` ({id}); only :Entity nodes can match.

    Batched through write_batches (``CALL { } IN TRANSACTIONS`` needs an implicit transaction; the Graph layer runs
    managed ones). Video, Profile and Batch nodes are never matched; their edges to a deleted entity go with it.
    """
    return (
        "UNWIND $rows AS row\n"
        "MATCH (n:Entity {id: row.id})\n"
        "DETACH DELETE n"
    )


def delete_source_relations_query() -> str:
    """Delete up to ``$limit`` entity–entity relationships whose ``source`` is in ``$sources``; returns how many.

    Only relationships a source wrote (their ``source`` property) go: MENTIONS/PREDICTS edges from the profiling
    pipeline and MAPS_TO edges another source drew into these entities survive.
    """
    return (
        "MATCH (:Entity)-[r]->(:Entity) WHERE r.source IN $sources\n"
        "WITH r LIMIT $limit\n"
        "DELETE r\n"
        "RETURN count(*) AS deleted"
    )


# --- records → parameter rows (pure) ------------------------------------------------------------------------------

def entity_row(record: EntityRecord) -> dict[str, Any]:
    """The parameter row of one entity: synonyms as parallel lists (text, scope, layperson flag, language, source,
    source version), empty strings as null, profile_label only on diseases (null elsewhere, so the property is absent)."""
    synonyms = record.synonyms
    return {
        "id": record.id,
        "name": record.name,
        "name_zh": record.name_zh or None,
        "definition": record.definition or None,
        "synonyms": [s.text for s in synonyms],
        "synonym_scopes": [s.scope for s in synonyms],
        "synonym_layperson": [s.layperson for s in synonyms],
        "synonym_langs": [s.lang for s in synonyms],
        # which source gave each synonym, at which version: the entity's own, or a synonym source (CMeKG)
        "synonym_sources": [s.source or record.source for s in synonyms],
        "synonym_versions": [s.source_version or record.source_version for s in synonyms],
        "synonyms_text": SYNONYM_SEPARATOR.join(s.text for s in synonyms) or None,
        "xrefs": list(record.xrefs),
        "source": record.source,
        "source_version": record.source_version,
        "profile_label": bool(record.profile_label) if record.kind == "disease" else None,
    }


def relation_row(record: RelationRecord) -> dict[str, Any]:
    """The parameter row of one relationship: ends by id, properties with ``source`` (null values dropped)."""
    props = {key: value for key, value in record.properties.items() if value is not None}
    props["source"] = record.source
    return {"start": record.start, "end": record.end, "props": props}


def group_entities(records: Iterable[EntityRecord]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by kind, kinds in allow-list order (each group is written by its own query)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record.kind].append(entity_row(record))
    return {kind: groups[kind] for kind in ENTITY_KINDS if kind in groups}


def group_relations(records: Iterable[RelationRecord]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by relationship type."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[relation_type(record.type)].append(relation_row(record))
    return dict(groups)


# --- writes -------------------------------------------------------------------------------------------------------

def write_entities(
    graph: Graph,
    records: Sequence[EntityRecord],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Upsert every entity, one batched query per kind; returns the rows written."""
    total = 0
    for kind, rows in group_entities(records).items():
        total += graph.write_batches(entity_upsert_query(kind), rows, batch_size=batch_size, on_batch=on_batch)
        log.debug("wrote %d %s entities", len(rows), kind)
    return total


def write_relations(
    graph: Graph,
    records: Sequence[RelationRecord],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Upsert every relationship, one batched query per type; returns the rows written."""
    total = 0
    for rel, rows in group_relations(records).items():
        total += graph.write_batches(relation_upsert_query(rel), rows, batch_size=batch_size, on_batch=on_batch)
        log.debug("wrote %d %s relationships", len(rows), rel)
    return total


def reset_sources(
    graph: Graph,
    sources: Sequence[str],
    keep_ids: Iterable[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Clear what ``sources`` wrote before they are written again: detach-delete their Entity nodes whose id is not in
    ``keep_ids`` (terms a new release dropped), and delete every relationship they wrote (rewritten right after).

    Entities that stay keep their node, so properties other writers set (GNN embeddings) and edges other writers
    drew (MENTIONS, PREDICTS, another source's MAPS_TO) survive. Returns the number of entities deleted.
    """
    keep = set(keep_ids)
    present = [row["id"] for row in graph.read(source_entity_ids_query(), {"sources": list(sources)})]
    stale = [{"id": entity_id} for entity_id in present if entity_id not in keep]
    deleted = graph.write_batches(delete_entities_by_id_query(), stale, batch_size=batch_size, on_batch=on_batch)
    relations = 0
    while True:
        result = _write_returning(graph, delete_source_relations_query(), {"sources": list(sources), "limit": batch_size * 10})
        count = int(result[0]["deleted"]) if result else 0
        if count == 0:
            break
        relations += count
    log.info("reset %s: %d stale entities and %d relationships deleted", ", ".join(sources), deleted, relations)
    return deleted


def _write_returning(graph: Graph, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a write query in one managed transaction and return its records (Graph.write returns counters only)."""
    return graph.write_transaction(lambda tx: [record.data() for record in tx.run(query, params)])
