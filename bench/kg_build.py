"""Full knowledge-graph build (parsing included): seconds, nodes/s, relationships/s and counts. Prints JSON.

Usage: python bench/kg_build.py [--repeats 1] [--reset]
Needs the local Neo4j (`ovp neo4j start`). Builds into the real graph: every write is an idempotent MERGE, so a
repeat leaves the same graph; `--reset` also deletes and rewrites every relationship the sources own (slower).
Target: under 60 s on the 2-core development machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics

from kg_builder.build import build, stats
from kg_builder.graph import Graph
from kg_builder.source_config import LEXICON_FILE, SOURCE_ORDER
from ovp.settings import Settings

TARGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="builds to time (the median is reported)")
    parser.add_argument("--reset", action="store_true", help="build with --reset")
    args = parser.parse_args()
    keys = SOURCE_ORDER if LEXICON_FILE.is_file() else tuple(k for k in SOURCE_ORDER if k != "lexicon")
    with Graph.connect(Settings.from_env()) as graph:
        was_built = bool(stats(graph)["labels"].get("Entity"))
        reports = [build(graph, keys, reset=args.reset, progress=False) for _ in range(max(1, args.repeats))]
        after = stats(graph)
    seconds = statistics.median(r.seconds for r in reports)
    last = reports[-1]
    print(json.dumps({
        "benchmark": "kg_build",
        "sources": list(keys),
        "reset": args.reset,
        "graph_already_built": was_built,
        "repeats": len(reports),
        "seconds": round(seconds, 2),
        "all_seconds": [r.seconds for r in reports],
        "read_s": last.read_s,
        "write_s": last.write_s,
        "nodes_per_s": round(last.entities / last.seconds, 1),
        "relationships_per_s": round(last.relationships / last.seconds, 1),
        "entities_written": last.entities,
        "relationships_written": last.relationships,
        "labels": after["labels"],
        "relationships": after["relationships"],
        "source_versions": {s: info["version"] for s, info in after["sources"].items()},
        "profile_label_diseases": after["profile_label_diseases"],
        "target_s": TARGET_S,
        "meets_target": seconds < TARGET_S,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
