"""Does message passing help? Held-out link prediction of the R-GCN against its untrained self and an MLP. Prints JSON.

Usage: python bench/gnn.py [--epochs 200] [--seed 0] [--features text|hashed] [--threads 1] [--write]
Needs the local Neo4j with the built knowledge graph (`ovp neo4j start`, `ovp kg build`). Reads only, unless --write
(which writes gnn_embedding on every Entity and saves the model, as `ovp kg embed` does).
Metrics: filtered MRR and Hits@10 over all entities, head and tail sides averaged, on 10 % held-out edges per type.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform

import torch

from encoders.graph import TrainConfig, kg_embed
from ovp.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", choices=["text", "hashed"], default="text")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="also write gnn_embedding on every Entity and save the model under <OVP_HOME>/models/gnn")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    report = kg_embed(
        Settings.from_env(),
        train_config=TrainConfig(epochs=args.epochs, seed=args.seed),
        features=args.features,
        write=args.write,
        save=args.write,
        threads=args.threads,
    )
    print(json.dumps(
        {
            "nodes": report.nodes,
            "edges": report.edges,
            "held_out_test_edges": report.held_out,
            "evaluation": report.evaluation,
            "features": report.features,
            "metrics": {name: m.to_dict() for name, m in report.metrics.items()},
            "epochs": report.epochs,
            "best_epoch": report.best_epoch,
            "seconds": {name: round(s, 1) for name, s in report.seconds.items()},
            "seed": args.seed,
            "threads": args.threads,
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        },
        indent=2,
    ))


if __name__ == "__main__":
    main()
