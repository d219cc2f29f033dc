"""`ovp db …` and `ovp config`: schema and settings."""
from __future__ import annotations

import json

import click

from kg_builder.graph import Graph
from kg_builder.schema import apply_schema, describe_schema
from ovp.settings import Settings, describe


@click.group()
def db() -> None:
    """Apply the graph schema and inspect the database."""


@db.command("init")
@click.pass_obj
def init(settings: Settings) -> None:
    """Apply cypher/schema.cypher (constraints, full-text and vector indexes). Safe to repeat."""
    with Graph.connect(settings) as graph:
        count = apply_schema(graph)
        schema = describe_schema(graph)
    click.echo(f"schema applied: {count} statements; {len(schema['constraints'])} constraints, {len(schema['indexes'])} indexes")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Server version and the schema present."""
    with Graph.connect(settings) as graph:
        report = {**graph.verify(), **describe_schema(graph)}
    click.echo(json.dumps(report, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in report.items()))


@click.command()
@click.pass_obj
def config(settings: Settings) -> None:
    """Print every OVP_* variable, its current value and what it means (the password is masked)."""
    for env, _default, doc in describe():
        name = env.removeprefix("OVP_").lower()
        value = getattr(settings, name, "")
        if "password" in name or "token" in name or "secret" in name:
            value = "****"
        click.echo(f"{env}={value}    # {doc}")
