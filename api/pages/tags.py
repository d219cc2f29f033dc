"""A video's open-vocabulary tags as its page shows them: each tag's disease, score and sources, and its evidence put
back into the video's text so that a clinician can check it.

The evidence is the JSON the worker stores on each ``TAGGED`` relationship (``worker.writeback.source_evidence``),
keyed by source: ``named`` (the mentions that name the disease, offsets into their own ``field`` as the linked
mentions are), ``phenotypes`` (each phenotype with its information content and the term the disease has it through)
and ``similarity`` (the cosine, the span of the text that gave it, in its ``field`` or ``all`` for the whole text, and
the disease text it matched). A span whose offsets do not fit the stored text (the text changed since it was tagged)
is listed without its context.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from api.blueprints.videos import parse_json_field
from api.pages.text import WHOLE

#: Characters of context shown either side of a piece of evidence.
CONTEXT_CHARS = 40
#: Longest piece of evidence shown in full (a whole-text similarity or a long sentence is cut here).
MAX_MATCH_CHARS = 300


@dataclass(frozen=True)
class Snippet:
    """A span of one field's text with some context either side; ``clipped_*`` when the text goes on."""

    field: str
    before: str
    match: str
    after: str
    clipped_start: bool = False
    clipped_end: bool = False


@dataclass(frozen=True)
class NamedView:
    """One mention that names the disease; ``snippet`` None when its offsets do not spell it in the stored text."""

    surface: str
    score: float
    method: str
    field: str
    snippet: Snippet | None


@dataclass(frozen=True)
class PhenotypeView:
    """A phenotype of the text that points to the disease, and the term the disease has it through (itself when
    ``exact``), each with its information content (IC, in nats: higher is more specific)."""

    entity: Mapping[str, Any]
    ic: float
    via: Mapping[str, Any]
    via_ic: float
    exact: bool


@dataclass(frozen=True)
class SimilarityView:
    """The cosine of the disease's text (``matched_text``) to the part of the video's text closest to it."""

    similarity: float
    field: str
    snippet: Snippet | None
    matched_text: str

    @property
    def whole(self) -> bool:
        return self.field == WHOLE


@dataclass(frozen=True)
class TagView:
    """One open tag with its evidence, ready to render (``readable`` False when its stored evidence is not JSON)."""

    disease: Mapping[str, Any]
    score: float
    source: str
    sources: tuple[str, ...]
    rank: int
    named: tuple[NamedView, ...] = ()
    phenotypes: tuple[PhenotypeView, ...] = ()
    summed_ic: float | None = None
    matched: int | None = None
    similarity: SimilarityView | None = None
    readable: bool = True


def snippet(field: str, text: str, start: int, end: int, *, context: int = CONTEXT_CHARS,
            max_match: int = MAX_MATCH_CHARS) -> Snippet | None:
    """``text[start:end]`` with up to ``context`` characters either side (a match longer than ``max_match`` is cut
    there, without the context after it); None when the span does not lie in ``text``."""
    if not 0 <= start < end <= len(text):
        return None
    a, b = max(0, start - context), min(len(text), end + context)
    # cut the context at a space where it has one, so that it starts and ends on whole words
    if a > 0 and " " in text[a:start]:
        a = text.index(" ", a, start) + 1
    if b < len(text) and " " in text[end:b]:
        b = text.rindex(" ", end, b)
    match = text[start:end]
    if len(match) > max_match:
        return Snippet(field, text[a:start], match[:max_match], "", a > 0, True)
    return Snippet(field, text[a:start], match, text[end:b], a > 0, b < len(text))


def evidence_field(value: object) -> str:
    """The field a piece of evidence points into: its own, or the whole linked text when it names none."""
    return str(value) if value else WHOLE


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return -1


def _named(evidence: Mapping[str, Any], texts: Mapping[str, str]) -> tuple[NamedView, ...]:
    out = []
    for m in evidence.get("mentions") or []:
        if not isinstance(m, Mapping):
            continue
        field, surface = evidence_field(m.get("field")), str(m.get("surface") or "")
        start, end = _int(m.get("start")), _int(m.get("end"))
        text = texts.get(field, "")
        placed = snippet(field, text, start, end) if text[start:end] == surface and surface else None
        out.append(NamedView(surface, float(m.get("score") or 0.0), str(m.get("method") or ""), field, placed))
    return tuple(out)


def _phenotypes(evidence: Mapping[str, Any], names: Mapping[str, Mapping[str, Any]]) -> tuple[PhenotypeView, ...]:
    out = []
    for p in evidence.get("phenotypes") or []:
        if not isinstance(p, Mapping) or not p.get("id"):
            continue
        pid, via = str(p["id"]), str(p.get("via") or p["id"])
        out.append(PhenotypeView(names.get(pid, {"id": pid}), float(p.get("ic") or 0.0), names.get(via, {"id": via}),
                                 float(p.get("via_ic") or 0.0), via == pid))
    # the most specific first: that is what the score rests on
    return tuple(sorted(out, key=lambda v: -v.ic))


def _similarity(evidence: Mapping[str, Any], texts: Mapping[str, str]) -> SimilarityView | None:
    if "similarity" not in evidence:
        return None
    field = evidence_field(evidence.get("field"))
    placed = snippet(field, texts.get(field, ""), _int(evidence.get("start")), _int(evidence.get("end")))
    return SimilarityView(float(evidence.get("similarity") or 0.0), field, placed, str(evidence.get("matched_text") or ""))


def _evidence(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A tag's evidence by source, parsed from its stored JSON (None when it is not a JSON object)."""
    evidence = parse_json_field(dict(row), "evidence", "tag").get("evidence")
    return evidence if isinstance(evidence, dict) else None


def _source(evidence: Mapping[str, Any] | None, source: str) -> Mapping[str, Any]:
    found = (evidence or {}).get(source)
    return found if isinstance(found, Mapping) else {}


def evidence_ids(tags: Sequence[Mapping[str, Any]]) -> list[str]:
    """The entity ids the tags' phenotype evidence refers to (whose names the page shows)."""
    ids: list[str] = []
    for row in tags:
        for p in _source(_evidence(row), "phenotypes").get("phenotypes") or []:
            if isinstance(p, Mapping):
                ids.extend(str(x) for x in (p.get("id"), p.get("via")) if x)
    return list(dict.fromkeys(ids))


def tag_views(tags: Sequence[Mapping[str, Any]], texts: Mapping[str, str],
              names: Mapping[str, Mapping[str, Any]]) -> list[TagView]:
    """The tags as :func:`kg_builder.store.tags.video_tags` reads them (evidence still the stored JSON string), with
    their evidence placed in ``texts`` (:func:`api.pages.text.field_texts`) and the phenotypes named from ``names``."""
    out = []
    for tag in tags:
        evidence = _evidence(tag)
        named, phenotypes = _source(evidence, "named"), _source(evidence, "phenotypes")
        out.append(TagView(
            disease={"id": tag["disease_id"], "name": tag.get("name"), "name_zh": tag.get("name_zh")},
            score=float(tag.get("score") or 0.0), source=str(tag.get("source") or ""),
            sources=tuple(tag.get("sources") or ()), rank=int(tag.get("rank") or 0),
            named=_named(named, texts), phenotypes=_phenotypes(phenotypes, names),
            summed_ic=phenotypes.get("summed_ic"), matched=phenotypes.get("matched"),
            similarity=_similarity(_source(evidence, "similarity"), texts), readable=evidence is not None))
    return out
