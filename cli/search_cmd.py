"""`ovp search`: videos found by the meaning of a Chinese or English text (a thin shell over
:class:`encoders.video_search.VideoSearch`)."""
from __future__ import annotations

import json

import click

from ovp.settings import Settings


@click.command()
@click.argument("text")
@click.option("--k", "k", default=10, show_default=True, type=int, help="How many videos to return (1-100).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON: {query, concepts, count, hits}.")
@click.pass_obj
def search(settings: Settings, text: str, k: int, as_json: bool) -> None:
    """Videos whose text is closest in meaning to TEXT and that share its graph concepts, with the reason for each."""
    from encoders.linking import load_linker
    from encoders.sentence_vectors import SentenceVectorEncoder
    from encoders.video_search import VideoSearch
    from kg_builder.graph import Graph

    with Graph.connect(settings) as graph:
        searcher = VideoSearch(graph, load_linker(settings, graph, semantic=False), SentenceVectorEncoder())
        try:
            result = searcher.search(text, k)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    if result.concepts:
        click.echo("concepts: " + ", ".join(f"{c.name or c.id} ({c.id})" for c in result.concepts))
    if not result.hits:
        click.echo("(no videos: profile some with `ovp profile`; only profiles written with OVP_OPEN_TAGS=1 have text vectors)")
    for rank, hit in enumerate(result.hits, start=1):
        click.echo(f"{rank:>3}. {hit.video_id}\t{hit.score:.3f}\t{hit.title[:60]}\t{hit.reason}")
