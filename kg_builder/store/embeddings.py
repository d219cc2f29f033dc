"""The R-GCN's vectors written back onto the entities (``gnn_embedding``, ``gnn_model_version``).

Read back by enrichment (:func:`kg_builder.store.knowledge.read_entity_knowledge`); written by ``ovp kg embed``
(:func:`encoders.graph.kg_embed`). Ids and vectors travel as parameters, in batched ``UNWIND`` writes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Sequence

if TYPE_CHECKING:
    from kg_builder.graph import Graph

__all__ = ["WRITE_EMBEDDINGS_QUERY", "write_entity_embeddings"]

#: Write-back: ids and vectors travel as parameters; an id no longer in the graph matches nothing.
WRITE_EMBEDDINGS_QUERY = (
    "UNWIND $rows AS row "
    "MATCH (n:Entity {id: row.id}) "
    "SET n.gnn_embedding = row.embedding, n.gnn_model_version = row.version"
)


def write_entity_embeddings(
    graph: "Graph",
    ids: Sequence[str],
    vectors: Iterable[Sequence[float]],
    version: str,
    *,
    batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Set ``gnn_embedding`` (list of floats) and ``gnn_model_version`` on each Entity of ``ids``; return rows sent.

    An id no longer in the graph is skipped silently. Each batch is its own transaction (see
    :meth:`kg_builder.graph.Graph.write_batches`), so an interrupted write can simply be repeated.

    Args:
        ids: entity ids, one per vector.
        vectors: the embeddings, in ``ids`` order.
        version: the model version stored beside each vector.
        on_batch: called with the rows of each batch written (a progress bar's ``update``).
    """
    rows = (
        {"id": node_id, "embedding": [float(v) for v in vector], "version": version}
        for node_id, vector in zip(ids, vectors)
    )
    return graph.write_batches(WRITE_EMBEDDINGS_QUERY, rows, batch_size=batch_size, on_batch=on_batch)
