"""The linker's knowledge base: the entities it can link to, by id, and how they are read from the graph."""
from __future__ import annotations

from typing import Iterable, Iterator

from kg_builder.store.knowledge import GraphReader, KBEntry, read_knowledge_base

__all__ = ["KBEntry", "KnowledgeBase"]


class KnowledgeBase:
    """The entities the linker can return, by id.

    Args:
        entries: the entries; ids must be unique.

    Raises:
        ValueError: two entries share an id.
    """

    def __init__(self, entries: Iterable[KBEntry]) -> None:
        self.entries: list[KBEntry] = list(entries)
        self._by_id: dict[str, KBEntry] = {}
        for entry in self.entries:
            if entry.id in self._by_id:
                raise ValueError(f"duplicate KB id {entry.id}")
            self._by_id[entry.id] = entry

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[KBEntry]:
        return iter(self.entries)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._by_id

    def get(self, entity_id: str) -> KBEntry:
        """The entry with that id; KeyError when absent."""
        return self._by_id[entity_id]

    @classmethod
    def from_graph(cls, graph: GraphReader) -> KnowledgeBase:
        """Read every ``:Entity`` node with its kind label and MAPS_TO neighbours (one query).

        Nodes without a known kind label are skipped with a warning; a node with several takes the first in
        :data:`kg_builder.schema.ENTITY_KINDS` order (:func:`kg_builder.store.knowledge.read_knowledge_base`).

        Args:
            graph: anything with ``read(query, params) -> list[dict]`` (``kg_builder.graph.Graph``).

        Raises:
            GraphUnavailable: from the graph, when Neo4j cannot be reached.
        """
        return cls(read_knowledge_base(graph))
