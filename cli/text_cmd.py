"""`ovp link` and `ovp enrich`: thin shells over :func:`encoders.linking.load_linker`, :func:`link_mentions` and
:class:`encoders.enrichment.KnowledgeEnricher`.

``ovp link --json "TEXT"`` prints ``{"text": …, "mentions": [...]}``. With no TEXT it reads standard input as bytes,
one text per line, and prints one JSON object per line in input order; each line is decoded as UTF-8 on its own, so
one bad line gives ``{"line": N, "error": "invalid UTF-8 at byte K"}`` (N from 1, K from 0 within the line) and the
rest still link. Texts longer than ``OVP_MAX_TEXT_CHARS`` are cut there, with a warning on stderr.
"""
from __future__ import annotations

import json
import logging
from typing import IO, Any, Iterator, Sequence

import click

from ovp.settings import Settings

log = logging.getLogger(__name__)

#: Lines linked per batch when reading standard input (one encoder call per batch for the semantic fallback).
STDIN_BATCH = 64


def decode_lines(stream: IO[bytes]) -> Iterator[tuple[int, str | None, str]]:
    """``(line number from 1, text or None, error)`` per line of a byte stream; line endings are stripped.

    A line that is not valid UTF-8 gives ``(n, None, "invalid UTF-8 at byte K")``; the next line is unaffected.
    """
    for number, raw in enumerate(stream, start=1):
        raw = raw.rstrip(b"\n")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            yield number, raw.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            yield number, None, f"invalid UTF-8 at byte {exc.start}"


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, warning on stderr when it was longer."""
    if len(text) <= limit:
        return text
    click.echo(
        f"warning: text of {len(text)} chars cut to {limit} (OVP_MAX_TEXT_CHARS); mentions after the cut are not linked",
        err=True,
    )
    return text[:limit]


def _dump(obj: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(obj, ensure_ascii=False)
    if "error" in obj:
        return f"line {obj['line']}: {obj['error']}"
    parts = [
        f"{m['surface']}→{m['id']}({m['kind']}{', negated' if m['negated'] else ''}, {m['score']})" for m in obj["mentions"]
    ]
    return "; ".join(parts) if parts else "(no mentions)"


@click.command()
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per text).")
@click.option("--no-semantic", is_flag=True, help="Dictionary only: skip the semantic fallback (no text model).")
@click.pass_obj
def link(settings: Settings, text: str | None, as_json: bool, no_semantic: bool) -> None:
    """Link graph entities in TEXT, or in each line of standard input when TEXT is omitted."""
    from encoders.linking import link_mentions, load_linker
    from kg_builder.graph import Graph

    with Graph.connect(settings) as graph:
        linker = load_linker(settings, graph, semantic=not no_semantic)
    limit = settings.max_text_chars

    def emit(texts: Sequence[str]) -> None:
        if not texts:
            return
        # one write per batch: a write (and flush) per line cost as much as linking the line
        click.echo("\n".join(_dump({"text": t, "mentions": [m.to_json() for m in mentions]}, as_json)
                             for t, mentions in zip(texts, link_mentions(list(texts), linker))))

    if text is not None:
        emit([cut(text, limit)])
        return
    stdin = click.get_binary_stream("stdin")
    batch: list[str] = []
    for number, line, error in decode_lines(stdin):
        if line is None:
            emit(batch)  # keep output in input order: flush what came before the bad line
            batch = []
            click.echo(_dump({"line": number, "error": error}, as_json))
            continue
        batch.append(cut(line, limit))
        if len(batch) >= STDIN_BATCH:
            emit(batch)
            batch = []
    emit(batch)


@click.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the enriched text, its annotations and mentions.")
@click.option("--no-semantic", is_flag=True, help="Dictionary only: skip the semantic fallback.")
@click.pass_obj
def enrich(settings: Settings, text: str, as_json: bool, no_semantic: bool) -> None:
    """Print TEXT enriched with what the graph knows about the entities linked in it."""
    from encoders.enrichment import KnowledgeEnricher
    from encoders.linking import link_mentions, load_linker
    from kg_builder.graph import Graph

    text = cut(text, settings.max_text_chars)
    with Graph.connect(settings) as graph:
        linker = load_linker(settings, graph, semantic=not no_semantic)
        mentions = link_mentions([text], linker)[0]
        enriched = KnowledgeEnricher(graph).run([text], [mentions])[0]
    if not as_json:
        click.echo(enriched.text)
        return
    click.echo(json.dumps({
        "text": text,
        "enriched": enriched.text,
        "annotations": list(enriched.annotations),
        "entity_ids": list(enriched.entity_ids),
        "mentions": [m.to_json() for m in mentions],
    }, ensure_ascii=False))
