"""`ovp kg embed`: train the R-GCN on the knowledge graph and write ``gnn_embedding`` on every Entity.

A thin shell over :func:`encoders.graph.kg_embed`; the ``kg`` group attaches this command.
"""
from __future__ import annotations

import json

import click

from ovp.settings import Settings


@click.command("embed")
@click.option("--epochs", default=200, show_default=True, type=click.IntRange(min=1), help="Most training epochs (early stopping may end sooner).")
@click.option("--seed", default=0, show_default=True, type=int, help="Fixes the hold-out split, the initial weights and the negatives.")
@click.option("--features", default="text", show_default=True, type=click.Choice(["text", "hashed"]),
              help="Node inputs: sentence-encoder vectors of 'name. definition', or hashed bag-of-words (no model needed).")
@click.option("--no-baseline", is_flag=True, help="Skip training the MLP baseline (its metrics are then absent).")
@click.option("--no-write", is_flag=True, help="Train and evaluate only; leave the graph untouched.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="CPU threads for training; 1 is fastest on a small shared machine (many tiny kernels).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of one line.")
@click.pass_obj
def embed(settings: Settings, epochs: int, seed: int, features: str, no_baseline: bool, no_write: bool, threads: int, as_json: bool) -> None:
    """Train R-GCN entity embeddings by link prediction; report held-out MRR; write gnn_embedding on every Entity."""
    from encoders.graph import TrainConfig, kg_embed

    report = kg_embed(
        settings,
        train_config=TrainConfig(epochs=epochs, seed=seed),
        features=features,
        write=not no_write,
        baseline=not no_baseline,
        threads=threads,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    m = report.metrics
    mlp = f", mlp {m['mlp'].mrr:.4f}" if "mlp" in m else ""
    click.echo(
        f"{report.nodes:,} entities embedded ({report.model_version}, {report.written:,} written) after {report.epochs} epochs "
        f"in {report.seconds['total']:.0f} s; test MRR rgcn {m['rgcn'].mrr:.4f} (Hits@10 {m['rgcn'].hits_at_10:.4f}), "
        f"untrained {m['rgcn_untrained'].mrr:.4f}{mlp} — {report.evaluation}"
    )
