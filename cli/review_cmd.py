"""`ovp raters` (reviewer accounts) and `ovp ratings export` (the rated videos as a training manifest): thin shells
over api.accounts and fusion.consensus."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ovp.settings import Settings


@click.group()
def raters() -> None:
    """Reviewer accounts for the review pages and the ratings API."""


@raters.command("add")
@click.argument("name")
@click.pass_obj
def add(settings: Settings, name: str) -> None:
    """Create reviewer NAME; prints a one-time password and an API token (shown only now, stored hashed)."""
    from api.accounts import add_rater
    from kg_builder.graph import Graph

    with Graph.connect(settings) as graph:
        created = add_rater(graph, name)
    click.echo(f"reviewer {created.name} created. Shown once, store them now:")
    click.echo(f"  password:  {created.password}")
    click.echo(f"  API token: {created.token}")


@raters.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke(settings: Settings, name: str) -> None:
    """Revoke reviewer NAME: sign-in, sessions and token stop working; the ratings stay."""
    from api.accounts import remove_rater
    from kg_builder.graph import Graph

    with Graph.connect(settings) as graph:
        remove_rater(graph, name)
    click.echo(f"reviewer {name} revoked")


@raters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(settings: Settings, as_json: bool) -> None:
    """Every reviewer account with its state and number of ratings."""
    from kg_builder.graph import Graph
    from kg_builder.store.raters import list_raters

    with Graph.connect(settings) as graph:
        rows = list_raters(graph)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        state = "active" if row["active"] else f"revoked {row['revoked_at'] or ''}".strip()
        click.echo(f"{row['name']:<24} {state:<32} {row['ratings']:>5} ratings")
    if not rows:
        click.echo("(no reviewers; add one with `ovp raters add NAME`)")


@click.group()
def ratings() -> None:
    """Reviewers' ratings."""


@ratings.command("export")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Manifest to write.")
@click.option("--min-raters", type=click.IntRange(min=1), default=1, show_default=True,
              help="Only videos rated by at least this many reviewers.")
@click.pass_obj
def export(settings: Settings, out: Path, min_raters: int) -> None:
    """Write the rated videos with their consensus labels (docs/review-app.md) as a manifest for `ovp train`."""
    from fusion.consensus import export_manifest
    from kg_builder.graph import Graph
    from kg_builder.store.ratings import latest_ratings

    with Graph.connect(settings) as graph:
        summary = export_manifest(latest_ratings(graph), out, min_raters=min_raters)
    click.echo(summary.line())
