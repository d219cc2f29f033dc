"""Search latency with 10,000 SYNTHETIC videos in the graph: ``GET /search`` p50/p99 at concurrency 8 through
gunicorn, and the in-process stages of one search. Prints JSON.

Usage (Neo4j up, graph built): ``python bench/search_latency.py [--videos 10000] [--requests 400] [--levels 1,8]``

The videos are SYNTHETIC: ``(:Video {id: "bench-search-<n>", synthetic: true})`` written through the store's profile
write (``kg_builder.store.profiles.write_profiles``, 500 per transaction), each about one disease of the graph (half
of them about the lexicon's 56 common eye diseases, half about any of the 6,625), with a profile, a MENTIONS of that
disease and a TAGGED to it, and a text vector near that disease's own vector (its sentence vector plus Gaussian noise,
unit length; the cosine to it is about 0.83). They are deleted at the end, also after a failure.

Queries: the English and Chinese names of the lexicon's diseases in turn (``k=10``), so every query names a concept
that hundreds of videos share and the entity branch is exercised. Gunicorn: ``api/gunicorn.conf.py`` with 2 workers
(4 threads each); each worker loads the sentence encoder on its first search, during the warm-up.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from typing import Any
from urllib.parse import quote

import numpy as np

from bench.api_latency import free_port, run_level, start_gunicorn, stop_gunicorn, wait_ready
from encoders.disease_tags import DiseaseTagger
from encoders.linking import load_linker
from encoders.video_search import VideoSearch
from kg_builder.graph import Graph
from kg_builder.schema import apply_schema
from kg_builder.store.profiles import write_profiles
from kg_builder.store.rows import DiseaseTagRow, MentionRecord, ProfileProperties, ProfileRow, VideoMeta
from kg_builder.store.tags import disease_texts
from kg_builder.store.videos import delete_videos_with_prefix
from ovp.settings import Settings

log = logging.getLogger("bench.search_latency")

PREFIX = "bench-search-"
NOISE = 0.03  # per-dimension σ of the noise added to a disease's vector (512 dims: cosine to it about 0.83)


def synthetic_rows(tagger: DiseaseTagger, lexicon: list[str], n: int, seed: int) -> list[ProfileRow]:
    """``n`` SYNTHETIC videos, each about one disease (see the module docstring)."""
    rng = np.random.default_rng(seed)
    first_row = {}
    for row, disease_id in enumerate(tagger.row_disease):
        first_row.setdefault(disease_id, row)
    every = sorted(first_row)
    rows = []
    for i in range(n):
        disease_id = lexicon[rng.integers(len(lexicon))] if i % 2 == 0 else every[rng.integers(len(every))]
        vector = tagger.disease_matrix[first_row[disease_id]] + rng.normal(0, NOISE, tagger.disease_matrix.shape[1])
        vector = vector / np.linalg.norm(vector)
        video_id = f"{PREFIX}{i:05d}"
        profile = ProfileProperties(
            id=f"{video_id}@synthetic", video_id=video_id, model_version="synthetic", created_at="2026-01-01T00:00:00Z",
            popularity=float(rng.random() * 10), popularity_pct=float(rng.random() * 100), quality=int(rng.integers(1, 6)),
            quality_probs=(0.2,) * 5, top_keyframe_times=(), top_keyframe_weights=(), top_entity_ids=(),
            top_entity_weights=(), explanation="{}", visual_backbone="none", visual_weights="none", text_model="none")
        rows.append(ProfileRow(
            video=VideoMeta(id=video_id, platform="other", title=f"SYNTHETIC video {i} about {disease_id}",
                            caption="SYNTHETIC", synthetic=True),
            profile=profile, mentions=(MentionRecord(disease_id, "x", 0, 1, 1.0),),
            tags=(DiseaseTagRow(disease_id, 1.0, "named", ("named",), 1, "{}"),),
            text_vector=tuple(float(x) for x in vector)))
    return rows


def in_process(graph: Graph, settings: Settings, tagger: DiseaseTagger, queries: list[str]) -> dict[str, Any]:
    """One thread: the median seconds of linking, encoding and the graph query, over ``queries``."""
    searcher = VideoSearch(graph, load_linker(settings, graph, semantic=False), tagger.encoder)
    stages: dict[str, list[float]] = {"link_s": [], "encode_s": [], "graph_s": [], "total_s": []}
    from encoders.linking import link_mentions
    from kg_builder.store.search import concepts, search_videos

    for text in queries:
        t0 = time.perf_counter()
        mentions = link_mentions([text], searcher.linker)[0]
        found = concepts(graph, [m.id for m in mentions if not m.negated])
        t1 = time.perf_counter()
        vector = tagger.encoder.encode([text])[0]
        t2 = time.perf_counter()
        c = searcher.config
        search_videos(graph, vector.tolist(), found, k=10, candidates=c.candidates, entity_candidates=c.entity_candidates,
                      entity_weight=c.entity_weight)
        t3 = time.perf_counter()
        for key, value in (("link_s", t1 - t0), ("encode_s", t2 - t1), ("graph_s", t3 - t2), ("total_s", t3 - t0)):
            stages[key].append(value)
    return {key: round(1000 * statistics.median(values), 2) for key, values in stages.items()} | {"unit": "ms, median"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,8")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cap-s", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    settings = Settings.from_env()
    with Graph.connect(settings) as graph:
        tagger = DiseaseTagger(graph, settings)
        diseases = [d for d in disease_texts(graph) if d.id.startswith("OVP:")]
        queries = [q for d in diseases for q in (d.name, d.name_zh) if q]
        delete_videos_with_prefix(graph, PREFIX)
        try:
            started = time.perf_counter()
            rows = synthetic_rows(tagger, [d.id for d in diseases], args.videos, args.seed)
            for start in range(0, len(rows), 500):
                write_profiles(graph, rows[start:start + 500])
            write_s = time.perf_counter() - started
            apply_schema(graph)  # idempotent; waits until the vector index has taken the new videos in
            log.info("%d SYNTHETIC videos written in %.0fs", len(rows), write_s)
            stages = in_process(graph, settings, tagger, queries[:60])
            port = free_port()
            process = start_gunicorn(port, args.workers)
            try:
                health = wait_ready(port, process)
                paths = [f"/search?q={quote(queries[i % len(queries)])}&k=10" for i in range(args.requests)]
                run_level(port, args.workers * 4, paths[:40], args.cap_s)  # loads each worker's encoder and plans
                levels = [run_level(port, int(c), paths, args.cap_s) for c in args.levels.split(",")]
            finally:
                stop_gunicorn(process)
        finally:
            delete_videos_with_prefix(graph, PREFIX)
    print(json.dumps({
        "bench": "search_latency",
        "data": f"SYNTHETIC: {args.videos} videos with 512-d text vectors, mentions and tags, in the real knowledge graph",
        "endpoint": "GET /search?q=<a lexicon disease's English or Chinese name>&k=10",
        "queries": len(queries),
        "server": {"gunicorn_workers": args.workers, "threads_per_worker": 4, "worker_class": "gthread"},
        "neo4j": health.get("neo4j", {}).get("version"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "write_s": round(write_s, 1),
        "in_process_one_thread": stages,
        "levels": levels,
    }, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
