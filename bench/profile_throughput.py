"""Profiling throughput of one worker process, with the time per stage. Prints JSON.

Usage: python bench/profile_throughput.py [--videos 16] [--chunk-sizes 1,4,8] [--keyframes K]
           [--visual-backbone efficientnet_lite0|resnet18|resnet50] [--visual-weights pretrained|random]
           [--text-model bge-small-zh-v1.5|all-MiniLM-L6-v2] [--tags off,on] [--repeats N] [--cprofile FILE]
           [--torch-threads 2,1]

On SYNTHETIC demo videos (`ovp demo-data`) with a tiny model trained here (2 epochs: throughput does not depend on
how well it learned). Each chunk size runs with empty feature caches, so every video is decoded and encoded; one
process plays the worker (the same `profile_in_process` → `run_chunk` path a Celery task runs). Decode is timed in a
separate pass over the same files (keyframe extraction alone); `visual` in the pipeline is decode + CNN together.
The encoders default to the settings' (EfficientNet-Lite0 with ImageNet weights, bge-small-zh-v1.5).
With ``--tags off,on`` every chunk size runs twice, side by side, without and with the open-vocabulary disease tags
(``OVP_OPEN_TAGS``; their sentence vectors, phenotype scoring and similarity, and the TAGGED write), each with empty
caches, and ``tags_cost`` gives the ratio of their throughputs (medians over ``--repeats`` rounds, each round running
every variant once, in turn).
With ``--torch-threads 2,1`` every variant also runs once per intra-op thread count (``OVP_TORCH_THREADS``; 0 is the
setting's default) and ``threads_effect`` gives the median throughput of each.
With ``--cprofile FILE`` the profiling runs (not the training, not the decode-only pass) run under cProfile and
its statistics are written to FILE (read them with ``python -m pstats FILE``).
Needs Neo4j with the knowledge graph built. Uses the GPU when one is present (OVP_DEVICE=auto).
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from encoders.keyframes import extract_keyframes
from fusion.training import train_on_manifest
from fusion.demo_data import generate_demo_set
from fusion.manifest import read_manifest
from kg_builder.graph import Graph
from ovp.settings import Settings
from worker.pipeline import ProfilingPipeline, profile_in_process


def run_variant(graph: Graph, settings: Settings, entries: list, work: Path, chunk_size: int, tags: str, threads: int,
                repeat: int, default_threads: int, decode_total: float, profiler: cProfile.Profile | None) -> dict:
    """One profiling run of every video with empty keyframe and feature caches: its throughput, stage seconds and the
    share of its wall time outside the models."""
    run_settings = dataclasses.replace(settings, chunk_size=chunk_size, open_tags=int(tags == "on"),
                                       torch_threads=threads,
                                       cache_dir=work / f"cache-{chunk_size}-{tags}-{threads}-{repeat}")
    # Empty keyframe/feature caches (every video is decoded), with the vectors the training had.
    run_settings.cache_dir.mkdir(parents=True, exist_ok=True)
    for vectors in settings.cache_dir.glob("entity_vectors_*"):
        shutil.copy2(vectors, run_settings.cache_dir / vectors.name)
    torch.set_num_threads(default_threads)  # a variant with OVP_TORCH_THREADS=0 gets torch's own count
    pipeline = ProfilingPipeline.load(run_settings, settings.model_path, graph)
    pipeline_threads = torch.get_num_threads()
    load_s = pipeline.extractor.timings.load_s
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    profile_in_process(graph, run_settings, entries, batch_id=f"bench-{chunk_size}-{time.time_ns()}", pipeline=pipeline)
    if profiler is not None:
        profiler.disable()
    total = time.perf_counter() - started
    t, p = pipeline.extractor.timings, pipeline.timings
    stages = pipeline.stage_seconds()
    stages["write_and_bookkeeping"] = max(total - sum(stages.values()), 0.0)
    # The models: the CNN (visual less decoding), the text encoder, fusion, and the text encoders inside the
    # semantic linking and the open tags (span and sentence vectors against the graph's).
    semantic = pipeline.extractor.linker.semantic
    linking_models = semantic.similarity_s if semantic is not None else 0.0
    tags_models = pipeline.tagger.timings.encode_s if pipeline.tagger is not None else 0.0
    in_models = max(t.visual_s - decode_total, 0.0) + t.text_s + p.fusion_s + linking_models + tags_models
    return {
        "chunk_size": chunk_size,
        "open_tags": tags,
        "torch_threads": pipeline_threads,
        "repeat": repeat,
        "videos": len(entries),
        "seconds": round(total, 2),
        "videos_per_s": round(len(entries) / total, 3),
        "model_load_s": round(load_s, 2),
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        "model_seconds_inside_stages": {"link_and_enrich": round(linking_models, 3),
                                        "open_tags": round(tags_models, 3)},
        "share_outside_models": round(1 - in_models / total, 3),
        "encoders": {"device": str(getattr(pipeline.extractor.visual, "device", settings.device)),
                     "visual": pipeline.extractor.visual.features_name, "text": pipeline.extractor.text.name},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--chunk-sizes", default="1,4,8")
    parser.add_argument("--visual-backbone", default=None, help="default: OVP_VISUAL_BACKBONE")
    parser.add_argument("--visual-weights", default=None, help="default: OVP_VISUAL_WEIGHTS")
    parser.add_argument("--text-model", default=None, help="default: OVP_TEXT_MODEL")
    parser.add_argument("--keyframes", type=int, default=4)
    parser.add_argument("--tags", default="on", help="open-vocabulary tags: on, off, or both in turn (off,on)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every variant (medians are reported)")
    parser.add_argument("--torch-threads", default="0", help="comma-separated OVP_TORCH_THREADS values (0: default)")
    parser.add_argument("--cprofile", type=Path, help="write cProfile statistics of the profiling runs to this file")
    args = parser.parse_args()
    tag_modes = [mode.strip() for mode in args.tags.split(",")]
    if not tag_modes or any(mode not in ("on", "off") for mode in tag_modes):
        parser.error("--tags takes on, off or a comma-separated list of them")

    base = Settings.from_env()
    work = Path(tempfile.mkdtemp(prefix="ovp-throughput-"))
    encoders = {"visual_backbone": args.visual_backbone, "visual_weights": args.visual_weights,
                "text_model": args.text_model}
    settings = dataclasses.replace(base, keyframes=args.keyframes, cache_dir=work / "cache-train",
                                   model_dir=str(work / "model"), **{k: v for k, v in encoders.items() if v is not None})
    generate_demo_set(work / "demo", videos=args.videos, seed=7)
    manifest = work / "demo" / "manifest.jsonl"
    # Ids of their own, so the bench never touches the demo's videos in a shared graph (it removes its own at the end).
    entries = [dataclasses.replace(e, id=f"bench-{e.id}") for e in read_manifest(manifest)]
    # The entity (and disease) vectors of the graph are a per-machine asset a worker loads at start, not per-video
    # work: the training and every run start from the ones in OVP_CACHE_DIR (computing them takes minutes).
    settings.cache_dir.mkdir(parents=True)
    for vectors in base.cache_dir.glob("entity_vectors_*"):
        shutil.copy2(vectors, settings.cache_dir / vectors.name)
    train_on_manifest(manifest, settings.model_path, settings, seed=0, epochs=2, progress=False)

    decode = []
    for entry in entries:
        started = time.perf_counter()
        extract_keyframes(entry.path, k=args.keyframes, timeout_s=settings.decode_timeout_s)
        decode.append(time.perf_counter() - started)

    runs = []
    default_threads = torch.get_num_threads()
    profiler = cProfile.Profile() if args.cprofile else None
    with Graph.connect(settings) as graph:
        variants = [(int(c), mode, int(n)) for c in args.chunk_sizes.split(",") for mode in tag_modes
                    for n in args.torch_threads.split(",")]
        for repeat, (chunk_size, tags, threads) in [(r, v) for r in range(args.repeats) for v in variants]:
            runs.append(run_variant(graph, settings, entries, work, chunk_size, tags, threads, repeat,
                                    default_threads, sum(decode), profiler))
        ids = [e.id for e in entries]
        graph.write("MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile) WHERE v.id IN $ids DETACH DELETE p", {"ids": ids})
        graph.write("MATCH (n) WHERE (n:Video AND n.id IN $ids) OR (n:Batch AND n.id STARTS WITH 'bench-') DETACH DELETE n",
                    {"ids": ids})

    if profiler is not None:
        profiler.dump_stats(args.cprofile)
    best = max(runs, key=lambda r: r["videos_per_s"])
    by_run = {key: statistics.median(r["videos_per_s"] for r in runs if (r["chunk_size"], r["open_tags"]) == key)
              for key in {(r["chunk_size"], r["open_tags"]) for r in runs}}
    threads_effect = {n: statistics.median(r["videos_per_s"] for r in runs if r["torch_threads"] == n)
                      for n in sorted({r["torch_threads"] for r in runs})}
    tags_cost = [{"chunk_size": c, "median_videos_per_s_without": by_run[c, "off"],
                  "median_videos_per_s_with": by_run[c, "on"],
                  "with_over_without": round(by_run[c, "on"] / by_run[c, "off"], 3)}
                 for c in sorted({c for c, _ in by_run}) if (c, "off") in by_run and (c, "on") in by_run]
    print(json.dumps({
        "bench": "profile_throughput",
        "data": "SYNTHETIC (ovp demo-data), 160x160 H.264, 4-8 s",
        "device": runs[0]["encoders"]["device"],
        "visual_encoder": f"{runs[0]['encoders']['visual']}, K={args.keyframes}",
        "text_encoder": runs[0]["encoders"]["text"],
        "decode_only_s_per_video_median": round(statistics.median(decode), 3),
        "runs": runs,
        "tags_cost": tags_cost,
        "threads_effect": {f"median_videos_per_s_at_{n}_torch_threads": v for n, v in threads_effect.items()},
        "best_chunk_size": best["chunk_size"],
        "best_videos_per_s": best["videos_per_s"],
    }, indent=2))
    shutil.rmtree(work, ignore_errors=True)  # the demo videos, models and caches: a few hundred MB per run


if __name__ == "__main__":
    main()
