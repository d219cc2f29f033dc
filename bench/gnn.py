"""Does message passing help? Held-out link prediction of the R-GCN against its untrained self and an MLP. Prints JSON.

Usage: python bench/gnn.py [--epochs 200] [--seed 0] [--features text|hashed] [--threads 1] [--write]
                            [--save-export FILE | --from-export FILE [--device auto|cpu|cuda]]
Needs the local Neo4j with the built knowledge graph (`ovp neo4j start`, `ovp kg build`). Reads only, unless --write
(which writes gnn_embedding on every Entity and saves the model, as `ovp kg embed` does).
--save-export writes what training reads (node inputs and triples, .npz) and stops; --from-export trains from such a
file without Neo4j or the text model, on --device (how the GPU numbers were taken on a machine that has neither).
Metrics: filtered MRR and Hits@10 over all entities, head and tail sides averaged, on 10 % held-out edges per type.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from encoders.graph import TrainConfig, export_graph, kg_embed, node_features, node_texts, train_on_triples
from encoders.graph_model import GraphModelConfig
from ovp.settings import Settings


def save_export(path: Path, features: str) -> None:
    """The node inputs and triples ``kg_embed`` trains on, from the local Neo4j, to ``path`` (.npz)."""
    from kg_builder.graph import Graph

    settings = Settings.from_env()
    with Graph.connect(settings) as graph:
        export = export_graph(graph)
    x = node_features(node_texts(export), settings, features=features)
    np.savez_compressed(path, x=x.astype(np.float32), triples=export.triples)
    print(json.dumps({"saved": str(path), "nodes": int(x.shape[0]), "edges": int(len(export.triples))}))


def from_export(path: Path, args: argparse.Namespace) -> None:
    """Train and evaluate the R-GCN (and the MLP baseline) from a ``save_export`` file on ``args.device``."""
    from encoders.device import resolve_device

    data = np.load(path)
    x = torch.from_numpy(data["x"])
    device = resolve_device(args.device)
    started = time.perf_counter()
    _, comparison = train_on_triples(x, data["triples"], GraphModelConfig(in_channels=int(x.shape[1])),
                                     TrainConfig(epochs=args.epochs, seed=args.seed), device=device, threads=args.threads)
    print(json.dumps({
        "export": str(path), "nodes": int(x.shape[0]), "edges": int(len(data["triples"])), "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "metrics": {name: m.to_dict() for name, m in comparison.metrics.items()},
        "train_s": {name: round(run.seconds, 1) for name, run in comparison.training.items()},
        "total_s": round(time.perf_counter() - started, 1), "epochs": args.epochs, "seed": args.seed,
        "threads": args.threads,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
    }, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", choices=["text", "hashed"], default="text")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="also write gnn_embedding on every Entity and save the model under <OVP_HOME>/models/gnn")
    parser.add_argument("--save-export", type=Path, help="write the training inputs to this .npz and stop")
    parser.add_argument("--from-export", type=Path, help="train from this .npz (no Neo4j)")
    parser.add_argument("--device", default="auto", help="with --from-export: auto, cpu or cuda")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.save_export:
        save_export(args.save_export, args.features)
        return
    if args.from_export:
        from_export(args.from_export, args)
        return

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
