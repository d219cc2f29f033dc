"""Batched UNWIND … MERGE against one transaction per node, on 20,000 nodes. Prints JSON.

Usage: python bench/graph_write.py [--nodes 20000] [--repeats 3]
Needs the local Neo4j (`ovp neo4j start`). Writes and then deletes nodes labelled :OvpBenchNode.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from kg_builder.graph import Graph
from ovp.settings import Settings

MERGE_ROWS = "UNWIND $rows AS row MERGE (n:OvpBenchNode {id: row.id}) SET n.run = row.run, n.value = row.value"
MERGE_ONE = "MERGE (n:OvpBenchNode {id: $id}) SET n.run = $run, n.value = $value"


def _rows(count: int) -> list[dict]:
    run = uuid.uuid4().hex
    return [{"id": f"{run}-{i}", "run": run, "value": i} for i in range(count)]


def _clear(graph: Graph) -> None:
    while graph.write("MATCH (n:OvpBenchNode) WITH n LIMIT 10000 DELETE n").get("nodes_deleted"):
        pass


def _time_batched(graph: Graph, rows: list[dict], batch_size: int) -> float:
    start = time.perf_counter()
    graph.write_batches(MERGE_ROWS, rows, batch_size=batch_size)
    return time.perf_counter() - start


def _time_per_node(graph: Graph, rows: list[dict]) -> float:
    start = time.perf_counter()
    for row in rows:
        graph.write(MERGE_ONE, row)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with Graph.connect(Settings.from_env()) as graph:
        # An index on the merge key, as the real schema has for every id; without it MERGE scans.
        graph.write("CREATE CONSTRAINT ovp_bench_id IF NOT EXISTS FOR (n:OvpBenchNode) REQUIRE n.id IS UNIQUE")
        results: dict[str, list[float]] = {"batched_1k": [], "batched_10k": [], "per_node": []}
        # Interleave the variants in each repeat so drift on this shared machine hits all of them alike.
        for _ in range(args.repeats):
            for name, timer in (
                ("batched_1k", lambda rows: _time_batched(graph, rows, 1_000)),
                ("batched_10k", lambda rows: _time_batched(graph, rows, 10_000)),
                ("per_node", lambda rows: _time_per_node(graph, rows)),
            ):
                _clear(graph)
                results[name].append(timer(_rows(args.nodes)))
        _clear(graph)
        graph.write("DROP CONSTRAINT ovp_bench_id IF EXISTS")

    medians = {name: statistics.median(times) for name, times in results.items()}
    rate = {name: args.nodes / seconds for name, seconds in medians.items()}
    print(json.dumps({
        "bench": "graph_write",
        "nodes": args.nodes,
        "repeats": args.repeats,
        "median_seconds": {k: round(v, 3) for k, v in medians.items()},
        "nodes_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ratio_batched_1k_over_per_node": round(rate["batched_1k"] / rate["per_node"], 1),
        "ratio_batched_10k_over_per_node": round(rate["batched_10k"] / rate["per_node"], 1),
    }, indent=2))


if __name__ == "__main__":
    main()
