"""`ovp kg …`: build, inspect and search the knowledge graph (thin shells over kg_builder.build)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from kg_builder.build import build as build_graph
from kg_builder.build import stats as graph_stats
from kg_builder.graph import Graph
from kg_builder.source_config import LEXICON_FILE, SOURCE_ORDER, parse_source_keys
from kg_builder.store.entities import EntityDictionary
from kg_builder.store.entities import lookup as lookup_entities
from ovp.settings import Settings


@click.group()
def kg() -> None:
    """Build, inspect and search the knowledge graph."""


@kg.command("build")
@click.option("--sources", "sources", default=",".join(SOURCE_ORDER), show_default=True,
              help="Comma-separated sources to build.")
@click.option("--reset", is_flag=True, help="First delete the Entity nodes of these sources (never videos or profiles).")
@click.option("--lexicon", "lexicon", type=click.Path(dir_okay=False, path_type=Path), default=LEXICON_FILE,
              show_default="kg_builder/data/lexicon.jsonl", help="Lexicon file to read.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON instead of one line.")
@click.pass_obj
def build_cmd(settings: Settings, sources: str, reset: bool, lexicon: Path, as_json: bool) -> None:
    """Read, validate, then write the selected terminology sources (idempotent)."""
    try:
        keys = parse_source_keys(sources)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sources") from exc
    with Graph.connect(settings) as graph:
        report = build_graph(graph, keys, reset=reset, lexicon_path=lexicon)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())


@kg.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats_cmd(settings: Settings, as_json: bool) -> None:
    """Counts per label and relationship type, source versions, Chinese names per kind, profile-label diseases."""
    with Graph.connect(settings) as graph:
        report = graph_stats(graph)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for label, n in report["labels"].items():
        click.echo(f"{label}: {n}")
    for rel, n in report["relationships"].items():
        click.echo(f"[{rel}]: {n}")
    for source, info in report["sources"].items():
        click.echo(f"{source} {info['version']}: {info['nodes']} nodes")
    for source, info in report["synonym_sources"].items():
        click.echo(f"{source} {info['version']}: {info['synonyms']} synonyms on {info['entities']} entities")
    for kind, counts in report["chinese_names"].items():
        click.echo(f"Chinese names, {kind}: {counts['name_zh']} of {counts['entities']} "
                   f"({counts['name_zh_or_synonym']} with a Chinese name or synonym)")
    click.echo(f"profile-label diseases: {report['profile_label_diseases']}")
    click.echo(f"up to date: {'yes' if report['up_to_date'] else 'no (run `ovp kg build`)'}")


@kg.command("lookup")
@click.argument("text")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="Hits to return.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
@click.pass_obj
def lookup_cmd(settings: Settings, text: str, limit: int, as_json: bool) -> None:
    """Full-text lookup of TEXT (Chinese or English) over entity names and synonyms, best first."""
    with Graph.connect(settings) as graph:
        hits = lookup_entities(graph, EntityDictionary.load(graph), text, limit=limit)
    if as_json:
        click.echo(json.dumps([hit.to_dict() for hit in hits], indent=2, ensure_ascii=False))
        return
    for hit in hits:
        zh = f" / {hit.name_zh}" if hit.name_zh else ""
        xrefs = f"  → {', '.join(hit.xrefs)}" if hit.xrefs else ""
        click.echo(f"{hit.score:8.3f}  {hit.id}  [{hit.kind}] {hit.name}{zh}{xrefs}")


# `ovp kg embed` lives with the graph encoder's CLI; it joins the kg group here.
from cli.kg_embed_cmd import embed  # noqa: E402

kg.add_command(embed)
