"""What the encoders read from the knowledge graph: the entities the linker can link to, what the graph knows about
linked entities (the enrichment of a caption), and the entity graph the R-GCN trains on.

Each read is one named function over one Cypher query. Values travel as parameters; kind labels and relationship types
come only from the allow-lists of :mod:`kg_builder.schema`. The functions take anything with
``read(query, params) -> list[dict]`` (:class:`kg_builder.graph.Graph`, or the read-only snapshot of
``bench/graph_snapshot.py``, which answers these exact query strings) and return typed records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kg_builder.schema import ENTITY_KINDS, ENTITY_RELATIONS, relation_type

__all__ = [
    "GraphReader",
    "EntityNode",
    "EntityEdge",
    "EXPORT_NODES_QUERY",
    "EXPORT_EDGES_QUERY",
    "read_entity_nodes",
    "read_entity_edges",
]


class GraphReader(Protocol):
    """The read side of :class:`kg_builder.graph.Graph`."""

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


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
