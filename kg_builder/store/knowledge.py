"""What the encoders read from the knowledge graph: the entities the linker can link to, what the graph knows about
linked entities (the enrichment of a caption), and the entity graph the R-GCN trains on.

Each read is one named function over one Cypher query. Values travel as parameters; kind labels and relationship types
come only from the allow-lists of :mod:`kg_builder.schema`. The functions take anything with
``read(query, params) -> list[dict]`` (:class:`kg_builder.graph.Graph`, or the read-only snapshot of
``bench/graph_snapshot.py``, which answers these exact query strings) and return typed records.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from kg_builder.schema import ENTITY_KINDS, ENTITY_RELATIONS, KIND_OF_LABEL, relation_type

log = logging.getLogger(__name__)

__all__ = [
    "GraphReader",
    "KBEntry",
    "EntityKnowledge",
    "EntityNode",
    "EntityEdge",
    "KNOWLEDGE_BASE_QUERY",
    "ENTITY_KNOWLEDGE_QUERY",
    "EXPORT_NODES_QUERY",
    "EXPORT_EDGES_QUERY",
    "knowledge_base_params",
    "entity_knowledge_params",
    "read_knowledge_base",
    "read_entity_knowledge",
    "read_entity_nodes",
    "read_entity_edges",
]


class GraphReader(Protocol):
    """The read side of :class:`kg_builder.graph.Graph`."""

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


def _kind(labels: Sequence[str] | None) -> str | None:
    """The kind of a node from its labels: the first kind label in :data:`~kg_builder.schema.ENTITY_KINDS` order."""
    present = set(labels or [])
    return next((kind for label, kind in KIND_OF_LABEL.items() if label in present), None)


# --- the linker's knowledge base ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KBEntry:
    """One linkable entity.

    Attributes:
        id: CURIE (``OVP:…``, ``HP:…``, ``ICD10:…``).
        kind: one of ``disease``, ``phenotype``, ``anatomy``, ``treatment``, ``exam``.
        name: English preferred name.
        name_zh: Chinese preferred name ("" when none).
        synonyms: other surfaces, English or Chinese.
        definition: free text; the semantic matcher embeds ``"name. definition"``.
        xrefs: ids of the same concept in other sources (MAPS_TO neighbours in the graph).
        synonym_scopes: per synonym, its OBO scope (EXACT, BROAD, NARROW, RELATED); empty means all EXACT.
    """

    id: str
    kind: str
    name: str
    name_zh: str = ""
    synonyms: list[str] = field(default_factory=list)
    definition: str = ""
    xrefs: list[str] = field(default_factory=list)
    synonym_scopes: tuple[str, ...] = ()

    def scope_of(self, index: int) -> str:
        """The scope of ``synonyms[index]`` (EXACT when the source recorded none)."""
        return self.synonym_scopes[index] if index < len(self.synonym_scopes) else "EXACT"

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("KBEntry needs an id")
        if self.kind not in ENTITY_KINDS:
            raise ValueError(f"KBEntry {self.id}: kind {self.kind!r} is not one of {sorted(ENTITY_KINDS)}")


#: Every entity with its kind labels and MAPS_TO neighbours (either direction). Labels are compared against a
#: parameter list, never formatted into the query.
KNOWLEDGE_BASE_QUERY = """
MATCH (e:Entity)
// every MAPS_TO neighbour, whichever way the edge was written, is the same concept in another source
OPTIONAL MATCH (e)-[:MAPS_TO]-(x:Entity)
WITH e, collect(DISTINCT x.id) AS xrefs
RETURN e.id AS id,
       [label IN labels(e) WHERE label IN $kind_labels] AS kinds,
       e.name AS name,
       e.name_zh AS name_zh,
       e.synonyms AS synonyms,
       e.synonym_scopes AS synonym_scopes,
       e.definition AS definition,
       xrefs
ORDER BY id
"""


def knowledge_base_params() -> dict[str, Any]:
    """The parameters of :data:`KNOWLEDGE_BASE_QUERY`."""
    return {"kind_labels": list(KIND_OF_LABEL)}


def read_knowledge_base(graph: GraphReader) -> list[KBEntry]:
    """Every ``:Entity`` node as a :class:`KBEntry`, in id order (one query).

    Nodes without a known kind label are skipped with a warning; a node with several takes the first in
    :data:`~kg_builder.schema.ENTITY_KINDS` order. A synonym's scope defaults to EXACT when none was recorded.

    Raises:
        GraphUnavailable: from the graph, when Neo4j cannot be reached.
    """
    rows = graph.read(KNOWLEDGE_BASE_QUERY, knowledge_base_params())
    entries: list[KBEntry] = []
    skipped: list[str] = []
    for row in rows:
        kind = _kind(row.get("kinds"))
        if kind is None or not row.get("id"):
            skipped.append(str(row.get("id")))
            continue
        raw_synonyms = list(row.get("synonyms") or [])
        raw_scopes = list(row.get("synonym_scopes") or [])
        # keep scopes aligned with the synonyms that survive the filter (a missing scope counts as EXACT)
        kept = [
            (syn, str(raw_scopes[i]).upper() if i < len(raw_scopes) and raw_scopes[i] else "EXACT")
            for i, syn in enumerate(raw_synonyms)
            if isinstance(syn, str) and syn
        ]
        entries.append(
            KBEntry(
                id=row["id"],
                kind=kind,
                name=row.get("name") or "",
                name_zh=row.get("name_zh") or "",
                synonyms=[syn for syn, _ in kept],
                definition=row.get("definition") or "",
                xrefs=sorted(x for x in (row.get("xrefs") or []) if x),
                synonym_scopes=tuple(scope for _, scope in kept),
            )
        )
    if skipped:
        log.warning("skipped %d entities without a kind label (e.g. %s)", len(skipped), ", ".join(skipped[:3]))
    log.info("knowledge base: %d entities read from the graph", len(entries))
    return entries


# --- what the graph knows about linked entities (enrichment) ---------------------------------------------------------


@dataclass(frozen=True)
class EntityKnowledge:
    """What the graph says about one entity (names are English; empty tuples where the graph has nothing).

    Attributes:
        labels: ids of the profile-label diseases that have this phenotype, sorted.
        maps_to: names of MAPS_TO neighbours, by id.
        gnn_embedding: the R-GCN's vector as stored (None when it has written none).
    """

    id: str
    name: str
    kind: str
    definition: str = ""
    parents: tuple[str, ...] = ()
    diseases: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    maps_to: tuple[str, ...] = ()
    gnn_embedding: tuple[float, ...] | None = None


#: One read for every distinct linked id. Values are parameters; the labels come from the schema's allow-list.
ENTITY_KNOWLEDGE_QUERY = """
UNWIND $ids AS entity_id
MATCH (e:Entity {id: entity_id})
// the same concept in other sources, whichever way the edge was written
OPTIONAL MATCH (e)-[:MAPS_TO]-(m:Entity)
WITH e, collect(DISTINCT m) AS mapped
CALL (e, mapped) {
  // IS_A parents of the entity first, then of its equivalents (lexicon concepts have no IS_A of their own)
  UNWIND [e] + mapped AS s
  MATCH (s)-[:IS_A]->(p:Entity)
  WITH p, min(CASE WHEN s = e THEN 0 ELSE 1 END) AS hop
  ORDER BY hop, p.name, p.id
  LIMIT $max_parents
  RETURN collect(p.name) AS parents
}
CALL (e, mapped) {
  // for a phenotype (or its equivalents): the diseases annotated with it, most specific first — a disease with few
  // phenotypes is characterised by this one, a syndrome with hundreds is not; ties broken by name, then id
  UNWIND [e] + mapped AS s
  MATCH (d:Disease)-[:HAS_PHENOTYPE]->(s)
  WHERE e:Phenotype
  // The same diseases also give the ids of the profile labels among them (the labels a symptom-only caption points
  // to; sorted in read_entity_knowledge).
  WITH DISTINCT d
  WITH d, COUNT { (d)-[:HAS_PHENOTYPE]->() } AS degree
  ORDER BY degree, d.name, d.id
  WITH collect(d) AS found
  RETURN [x IN found | x.name][..$max_diseases] AS diseases,
         [x IN found WHERE x.profile_label = true | x.id] AS labels
}
RETURN e.id AS id,
       e.name AS name,
       [label IN labels(e) WHERE label IN $kind_labels] AS kinds,
       e.definition AS definition,
       parents,
       diseases,
       labels,
       [x IN mapped | {id: x.id, name: x.name}] AS maps_to,
       // properties(): no "unknown property" notice on a graph the R-GCN has not embedded yet
       properties(e)['gnn_embedding'] AS gnn_embedding
"""


def entity_knowledge_params(ids: Sequence[str], *, max_parents: int, max_diseases: int) -> dict[str, Any]:
    """The parameters of :data:`ENTITY_KNOWLEDGE_QUERY`."""
    return {
        "ids": list(ids), "kind_labels": list(KIND_OF_LABEL), "max_parents": max_parents, "max_diseases": max_diseases,
    }


def read_entity_knowledge(
    graph: GraphReader, ids: Sequence[str], *, max_parents: int, max_diseases: int
) -> dict[str, EntityKnowledge]:
    """:class:`EntityKnowledge` for the distinct ``ids`` in one query; ids not in the graph are absent.

    Args:
        ids: entity ids (duplicates and order do not matter; none means no query at all).
        max_parents: IS_A parent names kept per entity.
        max_diseases: names of diseases having a phenotype kept per entity.

    Raises:
        GraphUnavailable: from the graph, when Neo4j cannot be reached.
    """
    distinct = sorted(set(ids))
    if not distinct:
        return {}
    rows = graph.read(
        ENTITY_KNOWLEDGE_QUERY, entity_knowledge_params(distinct, max_parents=max_parents, max_diseases=max_diseases)
    )
    out: dict[str, EntityKnowledge] = {}
    for row in rows:
        maps_to = sorted((m for m in row.get("maps_to") or [] if m and m.get("id")), key=lambda m: m["id"])
        embedding = row.get("gnn_embedding")
        out[row["id"]] = EntityKnowledge(
            id=row["id"],
            name=row.get("name") or row["id"],
            kind=_kind(row.get("kinds")) or "",
            definition=(row.get("definition") or "").strip(),
            parents=tuple(p for p in row.get("parents") or [] if p),
            diseases=tuple(d for d in row.get("diseases") or [] if d),
            labels=tuple(sorted(d for d in row.get("labels") or [] if d)),
            maps_to=tuple(m.get("name") or m["id"] for m in maps_to),
            gnn_embedding=None if embedding is None else tuple(embedding),
        )
    return out


# --- the entity graph the R-GCN trains on ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityNode:
    """One entity as the R-GCN reads it: ``kind`` is its kind label (``"Disease"`` …; "" when it carries none)."""

    id: str
    kind: str
    name: str
    definition: str


@dataclass(frozen=True)
class EntityEdge:
    """One knowledge-graph edge between two entities, by id."""

    start: str
    type: str
    end: str


#: The relation types the R-GCN reads, from the schema's allow-list.
_EXPORT_RELATIONS: tuple[str, ...] = tuple(relation_type(name) for name in ENTITY_RELATIONS)

#: All entities in a stable order (ids are unique under the schema's constraint).
EXPORT_NODES_QUERY = (
    "MATCH (n:Entity) "
    "RETURN n.id AS id, "
    # The kind is the node's one label from the allow-list besides :Entity.
    "       head([label IN labels(n) WHERE label IN $kind_labels]) AS kind, "
    "       coalesce(n.name, '') AS name, "
    "       coalesce(n.definition, '') AS definition "
    "ORDER BY id"
)
#: All knowledge-graph edges between entities; the type list is built from the schema's allow-list only.
EXPORT_EDGES_QUERY = (
    f"MATCH (a:Entity)-[r:{'|'.join(_EXPORT_RELATIONS)}]->(b:Entity) "
    "RETURN a.id AS start, type(r) AS type, b.id AS end"
)


def read_entity_nodes(graph: GraphReader) -> list[EntityNode]:
    """Every Entity (id, kind label, name, definition), in id order."""
    rows = graph.read(EXPORT_NODES_QUERY, {"kind_labels": sorted(ENTITY_KINDS.values())})
    return [EntityNode(row["id"], row["kind"] or "", row["name"], row["definition"]) for row in rows]


def read_entity_edges(graph: GraphReader) -> list[EntityEdge]:
    """Every IS_A / HAS_PHENOTYPE / MAPS_TO edge whose ends are both Entities (duplicates included)."""
    return [EntityEdge(row["start"], row["type"], row["end"]) for row in graph.read(EXPORT_EDGES_QUERY)]
