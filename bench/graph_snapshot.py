"""A read-only copy of what profiling reads from the knowledge graph, for a machine that has no Neo4j.

The GPU machine some sessions are lent has no Java, Neo4j or Redis and reaches nothing, so a worker cannot run there
as it does in production. What the profiling pipeline (:class:`worker.pipeline.ProfilingPipeline`) reads from the
graph is small and fixed, three queries:

* the linker's knowledge base (:data:`kg_builder.store.knowledge.KNOWLEDGE_BASE_QUERY`, once at load),
* the label map (:data:`kg_builder.store.labels.PROFILE_LABELS_QUERY`, once at load),
* the enrichment rows (:data:`kg_builder.store.knowledge.ENTITY_KNOWLEDGE_QUERY`, once per chunk, for the chunk's
  linked ids).

Each enrichment row depends on its own entity only (the query UNWINDs ``$ids`` and reads each entity's
neighbourhood), so :meth:`GraphSnapshot.capture` reads the rows of *every* entity once and :meth:`GraphSnapshot.read`
answers any id list by filtering them, in the order the ids were given. Any other query, or the enrichment query with
bounds other than the captured ones, raises :class:`SnapshotMiss` naming it; there are no writes. A profile's write-back
is not here: ``bench/profile_throughput.py`` measures it against the real Neo4j.

Used by ``bench/profile_gpu.py``; not by the service itself, which always reads the live graph.
"""
from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoders.enrichment import EnrichmentConfig
from kg_builder.store.knowledge import (
    ENTITY_KNOWLEDGE_QUERY,
    KNOWLEDGE_BASE_QUERY,
    entity_knowledge_params,
    knowledge_base_params,
)
from kg_builder.store.labels import PROFILE_LABELS_QUERY

log = logging.getLogger(__name__)

#: Bumped when the file's layout changes; a snapshot of another format is refused with a message.
SNAPSHOT_FORMAT = 1


class SnapshotMiss(LookupError):
    """A query the snapshot cannot answer (the pipeline read something it did not capture)."""


def _enrich_params(config: EnrichmentConfig) -> dict[str, Any]:
    # The parameters of ENTITY_KNOWLEDGE_QUERY other than the ids, as fusion's KnowledgeEnricher passes them.
    params = entity_knowledge_params([], max_parents=config.max_parents, max_diseases=config.max_diseases)
    del params["ids"]
    return params


@dataclass
class GraphSnapshot:
    """The three result sets profiling reads, answered like ``kg_builder.graph.Graph.read``.

    Attributes:
        kb_rows: rows of ``KNOWLEDGE_BASE_QUERY``.
        label_rows: rows of ``PROFILE_LABELS_QUERY``.
        enrich_rows: rows of ``ENTITY_KNOWLEDGE_QUERY`` by entity id, for every entity of the graph.
        enrich_params: the non-id parameters those rows were read with.
    """

    kb_rows: list[dict[str, Any]]
    label_rows: list[dict[str, Any]]
    enrich_rows: dict[str, dict[str, Any]]
    enrich_params: dict[str, Any]

    @classmethod
    def capture(cls, graph: Any, config: EnrichmentConfig | None = None) -> "GraphSnapshot":
        """Read the three result sets from ``graph`` (anything with ``read(query, params)``).

        Raises:
            GraphUnavailable: Neo4j cannot be reached.
        """
        params = _enrich_params(config or EnrichmentConfig())
        kb_rows = graph.read(KNOWLEDGE_BASE_QUERY, knowledge_base_params())
        label_rows = graph.read(PROFILE_LABELS_QUERY)
        ids = sorted({row["id"] for row in kb_rows if row.get("id")})
        enrich_rows = {row["id"]: row for row in graph.read(ENTITY_KNOWLEDGE_QUERY, {"ids": ids, **params})}
        log.info("graph snapshot: %d entities, %d labels, %d enrichment rows", len(kb_rows), len(label_rows), len(enrich_rows))
        return cls(kb_rows, label_rows, enrich_rows, params)

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows the live graph gives for ``query`` and ``params``, for the three captured queries.

        Raises:
            SnapshotMiss: another query, or the enrichment query with other bounds than the captured ones.
        """
        params = params or {}
        if query == KNOWLEDGE_BASE_QUERY:
            return [dict(row) for row in self.kb_rows]
        if query == PROFILE_LABELS_QUERY:
            return [dict(row) for row in self.label_rows]
        if query == ENTITY_KNOWLEDGE_QUERY:
            asked = {k: v for k, v in params.items() if k != "ids"}
            if asked != self.enrich_params:
                raise SnapshotMiss(f"enrichment read with {asked}, but the snapshot holds rows read with {self.enrich_params}")
            return [dict(self.enrich_rows[i]) for i in params.get("ids", []) if i in self.enrich_rows]
        raise SnapshotMiss(f"the graph snapshot cannot answer this query (only the linker's, the label map's and the "
                           f"enrichment's): {' '.join(query.split())[:120]}")

    def write(self, query: str, params: dict[str, Any] | None = None) -> dict[str, int]:
        raise SnapshotMiss("a graph snapshot is read-only: profiles are not written back from it")

    def save(self, path: Path) -> None:
        """Write the snapshot as gzipped JSON."""
        data = {"format": SNAPSHOT_FORMAT, "kb_rows": self.kb_rows, "label_rows": self.label_rows,
                "enrich_rows": self.enrich_rows, "enrich_params": self.enrich_params}
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)

    @classmethod
    def load(cls, path: Path) -> "GraphSnapshot":
        """Read a snapshot written by :meth:`save`.

        Raises:
            ValueError: the file is not a snapshot of this format (capture it again with ``profile_gpu.py pack``).
        """
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"{path} is not a graph snapshot of format {SNAPSHOT_FORMAT}: run `bench/profile_gpu.py pack` again")
        return cls(data["kb_rows"], data["label_rows"], data["enrich_rows"], data["enrich_params"])
