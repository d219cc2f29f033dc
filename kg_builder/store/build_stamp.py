"""The build stamp: one ``(:GraphBuild {id: 'knowledge-graph'})`` node whose ``stamp`` changes every time ``ovp kg
build`` finishes writing, so that a process holding entity data in memory can tell cheaply (one index seek) whether
what it holds is still the graph's.

The stamp is written last, after every entity and relationship of the build: a process that reads a new stamp and
then loads the entities sees the finished build. Edits to entities made outside ``ovp kg build`` (by hand in Cypher)
do not change it; run :func:`write_build_stamp` (``ovp kg build`` does) after such edits.
"""
from __future__ import annotations

import uuid

from kg_builder.graph import Graph

#: The id of the one stamp node.
STAMP_ID = "knowledge-graph"

#: Sets a fresh stamp (and when) on the stamp node, creating it on the first build.
WRITE_STAMP = """
MERGE (b:GraphBuild {id: $id})
SET b.stamp = $stamp, b.built_at = datetime()
"""

#: The current stamp; the graph_build_id constraint makes this an index seek.
READ_STAMP = "MATCH (b:GraphBuild {id: $id}) RETURN b.stamp AS stamp"


def write_build_stamp(graph: Graph) -> str:
    """Mark the graph's entities as rebuilt now; returns the new stamp (a random UUID)."""
    stamp = uuid.uuid4().hex
    graph.write(WRITE_STAMP, {"id": STAMP_ID, "stamp": stamp})
    return stamp


def read_build_stamp(graph: Graph) -> str | None:
    """The stamp of the last finished build, or None if the graph was never built by ``ovp kg build``."""
    rows = graph.read(READ_STAMP, {"id": STAMP_ID})
    return rows[0]["stamp"] if rows else None
