"""Profiling throughput of one worker process, with the time per stage. Prints JSON.

Usage: python bench/profile_throughput.py [--videos 16] [--chunk-sizes 1,4,8] [--arch resnet18|resnet50] [--keyframes K]

On SYNTHETIC demo videos (`ovp demo-data`) with a tiny model trained here (2 epochs: throughput does not depend on
how well it learned). Each chunk size runs with empty feature caches, so every video is decoded and encoded; one
process plays the worker (the same `profile_in_process` → `run_chunk` path a Celery task runs). Decode is timed in a
separate pass over the same files (keyframe extraction alone); `visual` in the pipeline is decode + ResNet together.
Needs Neo4j with the knowledge graph built. Uses the GPU when one is present (OVP_DEVICE=auto).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from encoders.keyframes import extract_keyframes
from fusion.training import train_on_manifest
from fusion.demo_data import generate_demo_set
from fusion.manifest import read_manifest
from kg_builder.graph import Graph
from ovp.settings import Settings
from worker.pipeline import ProfilingPipeline, profile_in_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--chunk-sizes", default="1,4,8")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--keyframes", type=int, default=4)
    args = parser.parse_args()

    base = Settings.from_env()
    work = Path(tempfile.mkdtemp(prefix="ovp-throughput-"))
    settings = dataclasses.replace(base, resnet_arch=args.arch, keyframes=args.keyframes, cache_dir=work / "cache-train",
                                   model_dir=str(work / "model"))
    generate_demo_set(work / "demo", videos=args.videos, seed=7)
    manifest = work / "demo" / "manifest.jsonl"
    # Ids of their own, so the bench never touches the demo's videos in a shared graph (it removes its own at the end).
    entries = [dataclasses.replace(e, id=f"bench-{e.id}") for e in read_manifest(manifest)]
    train_on_manifest(manifest, settings.model_path, settings, seed=0, epochs=2, progress=False)

    decode = []
    for entry in entries:
        started = time.perf_counter()
        extract_keyframes(entry.path, k=args.keyframes, timeout_s=settings.decode_timeout_s)
        decode.append(time.perf_counter() - started)

    runs = []
    with Graph.connect(settings) as graph:
        for chunk_size in [int(c) for c in args.chunk_sizes.split(",")]:
            run_settings = dataclasses.replace(settings, chunk_size=chunk_size, cache_dir=work / f"cache-{chunk_size}")
            # Empty keyframe/feature caches (every video is decoded), but the entity vectors of the graph are a
            # per-machine asset a worker loads at start, not per-video work: bring them along.
            run_settings.cache_dir.mkdir(parents=True, exist_ok=True)
            for vectors in base.cache_dir.glob("entity_vectors_*"):
                shutil.copy2(vectors, run_settings.cache_dir / vectors.name)
            pipeline = ProfilingPipeline.load(run_settings, settings.model_path, graph)
            load_s = pipeline.extractor.timings.load_s
            started = time.perf_counter()
            profile_in_process(graph, run_settings, entries, batch_id=f"bench-{chunk_size}-{time.time_ns()}", pipeline=pipeline)
            total = time.perf_counter() - started
            t, p = pipeline.extractor.timings, pipeline.timings
            stages = pipeline.stage_seconds()
            stages["write_and_bookkeeping"] = max(total - sum(stages.values()), 0.0)
            decode_total = sum(decode)
            in_models = max(t.visual_s - decode_total, 0.0) + t.text_s + p.fusion_s
            runs.append({
                "chunk_size": chunk_size,
                "videos": len(entries),
                "seconds": round(total, 2),
                "videos_per_s": round(len(entries) / total, 3),
                "model_load_s": round(load_s, 2),
                "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
                "share_outside_models": round(1 - in_models / total, 3),
            })
        ids = [e.id for e in entries]
        graph.write("MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile) WHERE v.id IN $ids DETACH DELETE p", {"ids": ids})
        graph.write("MATCH (n) WHERE (n:Video AND n.id IN $ids) OR (n:Batch AND n.id STARTS WITH 'bench-') DETACH DELETE n",
                    {"ids": ids})

    best = max(runs, key=lambda r: r["videos_per_s"])
    print(json.dumps({
        "bench": "profile_throughput",
        "data": "SYNTHETIC (ovp demo-data), 160x160 H.264, 4-8 s",
        "device": str(getattr(pipeline.extractor.visual, "device", settings.device)),
        "visual_encoder": f"{args.arch}, K={args.keyframes}, weights={pipeline.extractor.visual.weights_tag}",
        "decode_only_s_per_video_median": round(statistics.median(decode), 3),
        "runs": runs,
        "best_chunk_size": best["chunk_size"],
        "best_videos_per_s": best["videos_per_s"],
    }, indent=2))


if __name__ == "__main__":
    main()
