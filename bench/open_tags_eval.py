"""Open-vocabulary disease tags on the MedQuAD eye set (issue 38): precision and recall per source and combined.
Prints one JSON object.

Usage (Neo4j up, graph built)::

    python bench/open_tags_eval.py --split dev --sweep   # choose the thresholds (dev only)
    python bench/open_tags_eval.py --split dev           # the current thresholds on dev
    python bench/open_tags_eval.py --split test          # the frozen thresholds on test: run ONCE

Each item's text (a consumer question, or an NIH answer passage) is profiled as a video's text would be: linked by the
worker's linker (dictionary + semantic fallback, ``load_linker(semantic=True)``), then tagged by
:class:`encoders.disease_tags.DiseaseTagger`. Gold: the Disease ids the item's focus condition maps to
(``focus_mapping.tsv``, written before any threshold); an item whose focus has no graph disease has an empty gold, so
every tag on it is wrong.

Scores, per source (the tags that source gave) and combined (every tag):
- ``precision``: tags whose disease is in the item's gold / all tags (micro, over the items);
- ``recall``: items with a non-empty gold that got at least one gold tag / those items (the condition was found);
- ``f1`` of the two; also per item kind (question, answer) and the mean number of tags per item.

Rule for the thresholds, written before the sweep ran: each source's thresholds are the F1-best point of its grid
(:data:`GRIDS`) on the dev half, ties to the stricter (fewer tags) point; the combined tagger is the union of the
three at those points. The chosen values are then written into ``TagThresholds``' defaults and committed, and the
test half is scored once, with ``--split test``, which refuses ``--sweep``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from bench.medquad_eye import EvalItem, load_items
from encoders.disease_tags import (SOURCES, DiseaseTagger, SourceTag, TagThresholds, combine_tags, named_tags,
                                   similarity_tags, sentence_spans)
from encoders.linking import Mention, link_mentions, load_linker
from encoders.phenotype_ic import PhenotypeThresholds
from kg_builder.graph import Graph
from ovp.settings import Settings

log = logging.getLogger("bench.open_tags_eval")

#: The grids the dev sweep walks, per source.
GRIDS: dict[str, list[dict[str, Any]]] = {
    "named": [{"named_min_score": s} for s in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)],
    "phenotypes": [{"min_matched": m, "min_ic": ic, "min_score": sc, "max_tags": k}
                   for m, ic, sc, k in itertools.product((1, 2, 3), (0.0, 2.0, 4.0, 6.0, 8.0, 10.0),
                                                         (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7), (1, 3, 5))],
    "similarity": [{"similarity_min": s, "similarity_max_tags": k}
                   for s, k in itertools.product((0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8), (1, 2, 3, 5))],
}


def score(items: Sequence[EvalItem], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Precision (tag level), recall (item level: the condition found) and F1, as the module docstring defines them."""
    tags = correct = found = with_gold = 0
    for item, ids in zip(items, predicted):
        distinct = list(dict.fromkeys(ids))
        gold = set(item.gold)
        tags += len(distinct)
        correct += sum(1 for d in distinct if d in gold)
        if gold:
            with_gold += 1
            found += any(d in gold for d in distinct)
    precision = correct / tags if tags else 0.0
    recall = found / with_gold if with_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"items": len(items), "items_with_gold": with_gold, "tags": tags, "tags_per_item": round(tags / max(len(items), 1), 3),
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def scored(items: Sequence[EvalItem], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """:func:`score` over all items and per item kind."""
    out = score(items, predicted)
    for kind in ("question", "answer"):
        pairs = [(i, p) for i, p in zip(items, predicted) if i.kind == kind]
        out[kind] = score([i for i, _ in pairs], [p for _, p in pairs])
    return out


class Candidates:
    """Everything the sources need for the items, computed once: mentions, segment vectors; then each grid point
    runs the tagger's own pure functions on them."""

    def __init__(self, items: Sequence[EvalItem], mentions: Sequence[Sequence[Mention]], tagger: DiseaseTagger) -> None:
        self.items = items
        self.mentions = mentions
        self.tagger = tagger
        max_segments = tagger.thresholds.max_segments
        self.spans = [sentence_spans(i.text, max_segments) for i in items]
        flat = [i.text[a:b] for i, ss in zip(items, self.spans) for a, b in ss]
        started = time.perf_counter()
        vectors = tagger.encoder.encode(flat)
        log.info("encoded %d segments in %.0fs", len(flat), time.perf_counter() - started)
        self.vectors = []
        offset = 0
        for ss in self.spans:
            self.vectors.append(vectors[offset: offset + len(ss)])
            offset += len(ss)
        # Every disease's phenotype support per item, once: each grid point only selects from it (the tagger's
        # PhenotypeIndex.match is scores(...).select(...) too).
        self.phenotype_scores = [tagger.phenotypes.scores([m.id for m in ms if not m.negated]) for ms in mentions]

    def named(self, t: TagThresholds) -> list[list[SourceTag]]:
        return [named_tags(ms, self.tagger.disease_ids, t.named_min_score) for ms in self.mentions]

    def phenotypes(self, t: TagThresholds) -> list[list[SourceTag]]:
        return [[SourceTag(p.disease_id, "phenotypes", p.score) for p in
                 (s.select(t.phenotypes) if len(s.terms) >= t.phenotypes.min_matched else [])]
                for s in self.phenotype_scores]

    def similarity(self, t: TagThresholds) -> list[list[SourceTag]]:
        g = self.tagger
        return [similarity_tags(v, ss, g.disease_matrix, g.row_disease, g.row_text, min_similarity=t.similarity_min,
                                max_tags=t.similarity_max_tags) for v, ss in zip(self.vectors, self.spans)]

    def by_source(self, t: TagThresholds) -> dict[str, list[list[SourceTag]]]:
        return {"named": self.named(t), "phenotypes": self.phenotypes(t), "similarity": self.similarity(t)}


def with_point(base: TagThresholds, source: str, point: dict[str, Any]) -> TagThresholds:
    if source == "phenotypes":
        return dataclasses.replace(base, phenotypes=PhenotypeThresholds(**point))
    return dataclasses.replace(base, **point)


def sweep(candidates: Candidates, base: TagThresholds) -> tuple[TagThresholds, dict[str, Any]]:
    """The F1-best point of each source's grid on these items (ties: fewer tags), and the grid's results."""
    chosen = base
    report: dict[str, Any] = {}
    for source in SOURCES:
        results = []
        for point in GRIDS[source]:
            t = with_point(base, source, point)
            tags = getattr(candidates, source)(t)
            results.append((point, score(candidates.items, [[x.disease_id for x in ts] for ts in tags])))
        best_point, best = max(results, key=lambda r: (r[1]["f1"], -r[1]["tags"]))
        chosen = with_point(chosen, source, best_point)
        top = sorted(results, key=lambda r: (-r[1]["f1"], r[1]["tags"]))[:5]
        report[source] = {"chosen": best_point, "dev": best, "grid_points": len(results),
                          "next_best": [{"point": p, **{k: s[k] for k in ("precision", "recall", "f1", "tags")}}
                                        for p, s in top[1:]]}
    return chosen, report


def evaluate(candidates: Candidates, t: TagThresholds) -> dict[str, Any]:
    """Per source and combined, at thresholds ``t``."""
    by_source = candidates.by_source(t)
    out = {source: scored(candidates.items, [[x.disease_id for x in ts] for ts in by_source[source]])
           for source in SOURCES}
    combined = [combine_tags(*(by_source[s][i] for s in SOURCES)) for i in range(len(candidates.items))]
    out["combined"] = scored(candidates.items, [[x.disease_id for x in ts] for ts in combined])
    return out


def link_items(items: Sequence[EvalItem], settings: Settings, graph: Graph, cache: Path | None) -> list[list[Mention]]:
    """The items' mentions by the worker's linker; read from ``cache`` when it holds these texts (JSON, keyed by
    the texts' digest), else linked (about a second per item on two shared cores) and written there."""
    digest = hashlib.sha256("\x00".join(i.text for i in items).encode()).hexdigest()[:16]
    if cache and cache.is_file():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("digest") == digest:
            return [[Mention(**{**m, "xrefs": tuple(m["xrefs"]), "alternatives": tuple(m["alternatives"])})
                     for m in ms] for ms in stored["mentions"]]
    linker = load_linker(settings, graph, semantic=True)
    started = time.perf_counter()
    mentions = link_mentions([i.text for i in items], linker, batch_size=16)
    log.info("linked %d items in %.0fs", len(items), time.perf_counter() - started)
    if cache:
        cache.write_text(json.dumps({"digest": digest, "mentions": [[dataclasses.asdict(m) for m in ms] for ms in mentions]},
                                    ensure_ascii=False), encoding="utf-8")
    return mentions


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test"), required=True)
    parser.add_argument("--sweep", action="store_true", help="choose the thresholds on this split (dev only)")
    parser.add_argument("--mentions-cache", type=Path, default=None,
                        help="JSON file keeping the items' linked mentions between runs")
    args = parser.parse_args(argv)
    if args.sweep and args.split != "dev":
        parser.error("thresholds are chosen on dev only; the test half is scored once with the frozen thresholds")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    settings = Settings.from_env()
    items = load_items(args.split)
    with Graph.connect(settings) as graph:
        tagger = DiseaseTagger(graph, settings)
        mentions = link_items(items, settings, graph, args.mentions_cache)
    candidates = Candidates(items, mentions, tagger)
    thresholds = tagger.thresholds
    report: dict[str, Any] = {"bench": "open_tags_eval", "split": args.split,
                              "data": "MedQuAD eye set (real NIH text, CC BY 4.0), tests/data/medquad_eye"}
    if args.sweep:
        thresholds, report["sweep"] = sweep(candidates, thresholds)
    report["thresholds"] = dataclasses.asdict(thresholds)
    report["scores"] = evaluate(candidates, thresholds)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
