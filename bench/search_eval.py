"""Search by meaning on the MedQuAD eye set (issue 38): recall@10 of condition-name queries in English and Chinese.
Prints one JSON object.

Usage (Neo4j up, graph built; the graph should hold no other profiled videos, see below)::

    python bench/search_eval.py --split dev --sweep    # choose the entity weight (dev only)
    python bench/search_eval.py --split test           # the frozen weight on test: run ONCE

Pseudo-videos: every item of the half (each question and each answer passage: 720 on dev, 666 on test) becomes a
``(:Video {id: "medquad-eval-<split>-<n>", platform: "other", title: "", caption: <the item's text>})`` with a
profile of model version ``medquad-eval`` holding no predictions, written by the worker's write-back
(``worker.writeback.write_profiles``) exactly as a profiled video is: its mentions from the worker's linker
(dictionary + semantic fallback), its open-vocabulary tags from the frozen :class:`DiseaseTagger`, its text's
sentence vector. They are deleted at the end (also after a failure).

Queries: one per focus condition of the half, its name as MedQuAD writes it (English), and, where one of its graph
ids has a Chinese name (``name_zh``), that name (the first such id in id order). A hit is an item whose focus is the
query's or maps to a graph id the query's focus maps to.

Scores, macro over queries: ``recall@10`` = relevant items among the top 10 / min(10, relevant items);
``success@10`` = at least one relevant item in the top 10; ``mrr`` = mean reciprocal rank of the first relevant item
(0 beyond the top 10). Videos of the graph that are not pseudo-videos are skipped in the ranking (the bench asks for
more hits to make up for them and reports how many there were).

Rule for the entity weight, written before the sweep ran: the value of :data:`WEIGHTS` with the best mean recall@10
over the English and Chinese queries of the dev half (ties: the smaller weight); it is written into
``SearchConfig.entity_weight`` and committed before ``--split test`` runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from bench.medquad_eye import EvalItem, load_items
from bench.open_tags_eval import link_items
from encoders.disease_tags import DiseaseTagger
from encoders.linking import load_linker
from encoders.video_search import SearchConfig, VideoSearch
from kg_builder.graph import Graph
from kg_builder.store.rows import MentionRecord, VideoMeta
from kg_builder.store.tags import disease_texts
from kg_builder.store.videos import delete_videos_with_prefix, text_vector_videos
from ovp.settings import Settings
from worker.records import ProfileRecord
from worker.writeback import write_profiles

log = logging.getLogger("bench.search_eval")

PREFIX = "medquad-eval-"
MODEL_VERSION = "medquad-eval"
WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
TOP = 10


@dataclasses.dataclass(frozen=True)
class Query:
    """A condition's name in one language and the pseudo-videos that are about it."""

    focus: str
    language: str
    text: str
    relevant: frozenset[str]


def queries_for(items: Sequence[EvalItem], video_ids: Sequence[str], names_zh: dict[str, str]) -> list[Query]:
    """One English query per focus of ``items`` and a Chinese one where the graph has a Chinese name for it."""
    out = []
    for focus in sorted({i.focus for i in items}):
        gold = sorted({g for i in items if i.focus == focus for g in i.gold})
        relevant = frozenset(v for i, v in zip(items, video_ids) if i.focus == focus or set(i.gold) & set(gold))
        out.append(Query(focus, "en", focus, relevant))
        zh = next((names_zh[g] for g in gold if names_zh.get(g)), None)
        if zh:
            out.append(Query(focus, "zh", zh, relevant))
    return out


def rank_scores(ranked: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    """recall@10, success@10 and reciprocal rank of one ranking (see the module docstring)."""
    top = list(ranked)[:TOP]
    found = [v in relevant for v in top]
    first = next((r for r, hit in enumerate(found, start=1) if hit), None)
    return {"recall@10": sum(found) / min(TOP, len(relevant)), "success@10": float(any(found)),
            "mrr": 1.0 / first if first else 0.0}


def summarise(rows: Sequence[tuple[Query, dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for language in ("en", "zh", "all"):
        chosen = [s for q, s in rows if language == "all" or q.language == language]
        out[language] = {"queries": len(chosen), **{k: round(statistics.fmean(s[k] for s in chosen), 4) if chosen else None
                                                     for k in ("recall@10", "success@10", "mrr")}}
    return out


def write_pseudo_videos(graph: Graph, items: Sequence[EvalItem], split: str, settings: Settings,
                        tagger: DiseaseTagger, mentions_cache: Path | None) -> list[str]:
    """The items as profiled pseudo-videos (see the module docstring); returns their ids in item order."""
    mentions = link_items(items, settings, graph, mentions_cache)
    tagged = tagger.tag([i.text for i in items], mentions)
    ids = [f"{PREFIX}{split}-{n:04d}" for n in range(len(items))]
    records = [ProfileRecord(
        video=VideoMeta(id=vid, platform="other", caption=item.text, synthetic=False),
        model_version=MODEL_VERSION, popularity=0.0, popularity_pct=0.0, quality=0, quality_probs=(),
        mentions=tuple(MentionRecord(m.id, m.surface, m.start, m.end, float(m.score), bool(m.negated)) for m in ms),
        tags=t.tags, text_vector=tuple(float(x) for x in t.vector))
        for vid, item, ms, t in zip(ids, items, mentions, tagged)]
    for start in range(0, len(records), 100):
        write_profiles(graph, records[start:start + 100])
    return ids


def evaluate(searcher: VideoSearch, queries: Sequence[Query], extra: int) -> dict[str, Any]:
    rows = []
    for q in queries:
        hits = searcher.search(q.text, k=min(searcher.config.max_k, TOP + extra)).hits
        rows.append((q, rank_scores([h.video_id for h in hits if h.video_id.startswith(PREFIX)], q.relevant)))
    return summarise(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test"), required=True)
    parser.add_argument("--sweep", action="store_true", help="choose the entity weight on this split (dev only)")
    parser.add_argument("--mentions-cache", type=Path, default=None, help="the linked mentions, as open_tags_eval keeps them")
    args = parser.parse_args(argv)
    if args.sweep and args.split != "dev":
        parser.error("the entity weight is chosen on dev only; the test half is scored once with the frozen weight")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    settings = Settings.from_env()
    items = load_items(args.split)
    report: dict[str, Any] = {"bench": "search_eval", "split": args.split,
                              "data": "MedQuAD eye set (real NIH text, CC BY 4.0) as pseudo-videos, tests/data/medquad_eye"}
    with Graph.connect(settings) as graph:
        tagger = DiseaseTagger(graph, settings)
        delete_videos_with_prefix(graph, PREFIX)
        try:
            started = time.perf_counter()
            ids = write_pseudo_videos(graph, items, args.split, settings, tagger, args.mentions_cache)
            report["pseudo_videos"] = len(ids)
            report["write_s"] = round(time.perf_counter() - started, 1)
            extra = text_vector_videos(graph, excluding_prefix=PREFIX)
            report["other_videos_with_text_vectors"] = extra
            names_zh = {d.id: d.name_zh for d in disease_texts(graph)}
            queries = queries_for(items, ids, names_zh)
            linker = load_linker(settings, graph, semantic=False)
            config = SearchConfig()
            if args.sweep:
                sweep = {}
                for weight in WEIGHTS:
                    searcher = VideoSearch(graph, linker, tagger.encoder, dataclasses.replace(config, entity_weight=weight))
                    sweep[str(weight)] = evaluate(searcher, queries, extra)
                best = max(WEIGHTS, key=lambda w: (sweep[str(w)]["all"]["recall@10"], -w))
                report["sweep"] = sweep
                config = dataclasses.replace(config, entity_weight=best)
            report["entity_weight"] = config.entity_weight
            report["scores"] = evaluate(VideoSearch(graph, linker, tagger.encoder, config), queries, extra)
            report["vector_only"] = evaluate(
                VideoSearch(graph, linker, tagger.encoder, dataclasses.replace(config, entity_weight=0.0)), queries, extra)
        finally:
            delete_videos_with_prefix(graph, PREFIX)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
