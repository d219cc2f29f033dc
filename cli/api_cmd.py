"""`ovp serve` (the Flask development server) and `ovp query` (named read-only Cypher queries from cypher/queries)."""
from __future__ import annotations

import json
from typing import Any

import click

from ovp.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--debug", is_flag=True, help="Flask debug mode (reloader, tracebacks in the log). Never in production.")
@click.pass_obj
def serve(settings: Settings, host: str, port: int, debug: bool) -> None:
    """Run the API with Flask's development server (production: gunicorn -c api/gunicorn.conf.py api.wsgi:app)."""
    from api.app import create_app

    app = create_app(settings)
    click.echo(f"OVP API on http://{host}:{port} (development server; see docs/api.md for gunicorn)", err=True)
    app.run(host=host, port=port, debug=debug, threaded=True)


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("k=v", ...)`` → ``{"k": "v"}`` (values stay strings; the query's declaration converts and checks them)."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        params[key.strip()] = value
    return params


@click.command()
@click.argument("name", required=False)
@click.option("--param", "-p", "pairs", multiple=True, metavar="NAME=VALUE", help="A query parameter (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="List the named queries and their parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def query(settings: Settings, name: str | None, pairs: tuple[str, ...], list_only: bool, as_json: bool) -> None:
    """Run the named read-only query NAME (see --list) with validated parameters."""
    from kg_builder.graph import Graph
    from kg_builder.named_queries import load_queries, run_named_query

    queries = load_queries()
    if list_only or name is None:
        if as_json:
            click.echo(json.dumps([q.to_json() for q in queries.values()], indent=2, ensure_ascii=False))
            return
        for q in queries.values():
            click.echo(f"{q.name}: {q.description}")
            for p in q.params:
                bounds = f" [{_num(p.minimum)}..{_num(p.maximum)}]" if p.minimum is not None or p.maximum is not None else ""
                default = "required" if p.required else f"default {p.default}"
                click.echo(f"    {p.name} ({p.type}{bounds}, {default}): {p.description}")
        return
    params = parse_params(pairs)
    with Graph.connect(settings) as graph:
        rows = run_named_query(graph, name, params, queries=queries, timeout_s=settings.query_timeout_s)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    if not rows:
        click.echo("(no rows)")
        return
    columns = list(rows[0])
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join(_cell(row.get(c)) for c in columns))


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)
