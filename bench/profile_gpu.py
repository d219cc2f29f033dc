"""Claim: a profiling worker uses the GPU when there is one, and this is what it buys. Prints one JSON object.

Two steps, because the GPU machine some sessions are lent has no Neo4j, Redis or Java and reaches nothing:

    python bench/profile_gpu.py pack OUT [--videos 128] [--arch efficientnet_lite0] [--keyframes 4]
        Here, with Neo4j running and the graph built (``make demo`` or ``ovp kg build`` + ``ovp kg embed``): writes a
        SYNTHETIC demo set (``ovp demo-data``), a small fusion model trained on it (2 epochs: throughput does not
        depend on how well it learned), a snapshot of what profiling reads from the graph (bench/graph_snapshot.py)
        and the fusion's text model's config and tokenizer (not its weights) into OUT, a few MB.

    python bench/profile_gpu.py run OUT [--devices cuda,cpu] [--chunk-sizes 1,8,32] [--processes 1,4]
                                        [--decode-workers 1,8] [--repeats 3] [--text-weights random|installed]
        Anywhere: for each device, one worker's pipeline (``worker.pipeline.ProfilingPipeline.profile``, what a Celery
        chunk task runs between its graph reads and writes) over every video, in chunks of each size, with empty
        keyframe and feature caches, so every video is decoded and encoded. Reported per chunk size: videos/s and the
        seconds per stage, for each ``--decode-workers`` value (``OVP_DECODE_WORKERS``: threads that decode a chunk's
        videos while the network encodes). ``--processes N`` runs N such workers at once on the same device (N Celery worker
        processes sharing one GPU), each on its share of the videos, and reports their combined videos/s.

What it leaves out, and what stands in:
- The graph round trips of a chunk task (its state read, attempt counter and profile write-back) are not made; the
  enrichment read is answered from the snapshot. ``bench/profile_throughput.py`` measures a chunk's write-back and
  bookkeeping against the real Neo4j (run it here).
- ``--text-weights random`` (the default) builds the fusion's text model (bge-small-zh-v1.5 by default) from its
  config with random weights (seed 0): the same work per token, but different predictions. ``installed`` uses the
  installed weights (those of a model the set-up fetches must have been fetched on that machine).
- The visual encoder is the one the packed model was trained with (EfficientNet-Lite0 with its packaged ImageNet
  weights by default; ``--arch resnet18`` etc. need their weights there, or OVP_VISUAL_WEIGHTS=random).
- Videos are the demo set's: 160×160, 4–8 s. Real uploads (720p and up) cost more to decode; the decode share here is
  a floor.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.graph_snapshot import GraphSnapshot  # noqa: E402
from ovp.settings import Settings  # noqa: E402

#: Files of a BERT-family model directory that are not weights: what `pack` copies and a random model is built from.
TEXT_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


# --- pack (needs Neo4j) ---------------------------------------------------------------------------------------------

def pack(out: Path, *, videos: int, arch: str, keyframes: int, seed: int) -> dict[str, Any]:
    """Write the demo set, a small model, the graph snapshot and the text model's config into ``out``."""
    from encoders.text import TextEncoder, TextEncoderConfig
    from fusion.demo_data import generate_demo_set
    from fusion.features import FeatureSettings
    from fusion.training import train_on_manifest
    from kg_builder.graph import Graph

    base = Settings.from_env()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ovp-pack-"))
    settings = dataclasses.replace(base, visual_backbone=arch, keyframes=keyframes, cache_dir=work / "cache")
    _copy_entity_vectors(base.cache_dir, settings.cache_dir)
    generate_demo_set(out / "demo", videos=videos, seed=seed)
    train_on_manifest(out / "demo" / "manifest.jsonl", out / "model", settings, seed=0, epochs=2, progress=False)
    enrichment = FeatureSettings.for_model(out / "model", settings).enrichment
    with Graph.connect(settings) as graph:
        GraphSnapshot.capture(graph, enrichment).save(out / "graph_snapshot.json.gz")
    text_dir = TextEncoder(TextEncoderConfig.from_settings(settings)).model_path
    (out / "text-model").mkdir(exist_ok=True)
    for name in TEXT_MODEL_FILES:
        if (Path(text_dir) / name).is_file():
            shutil.copy2(Path(text_dir) / name, out / "text-model" / name)
    shutil.rmtree(work, ignore_errors=True)
    info = {"videos": videos, "seed": seed, "arch": arch, "keyframes": keyframes, "data": "SYNTHETIC (ovp demo-data)",
            "text_model": str(text_dir), "bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file())}
    (out / "pack.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _copy_entity_vectors(source: Path, target: Path) -> None:
    # The entity vectors are a per-machine asset a worker loads at start (minutes to compute on a CPU), not per-video
    # work: bring along whatever the source cache has.
    target.mkdir(parents=True, exist_ok=True)
    for vectors in Path(source).glob("entity_vectors_*"):
        shutil.copy2(vectors, target / vectors.name)


# --- run (no Neo4j) -------------------------------------------------------------------------------------------------

def random_text_model(packed: Path, target: Path, seed: int = 0) -> Path:
    """A model directory with ``packed``'s config and tokenizer and random weights (seeded), saved in ``target``."""
    import torch
    from transformers import AutoConfig, AutoModel

    if (target / "config.json").is_file():
        return target
    config = AutoConfig.from_pretrained(packed, local_files_only=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    for name in TEXT_MODEL_FILES:
        if name != "config.json" and (packed / name).is_file():
            shutil.copy2(packed / name, target / name)
    return target


def load_pipeline(packed: Path, device: str, cache_dir: Path, text_model: Path | None,
                  decode_workers: int = 0):  # -> ProfilingPipeline
    """The worker's pipeline over the packed model, reading the graph snapshot, on ``device``."""
    from fusion.features import FeatureExtractor, FeatureSettings
    from fusion.inference import load_model
    from worker.pipeline import ProfilingPipeline

    settings = dataclasses.replace(Settings.from_env(), device=device, cache_dir=cache_dir, decode_workers=decode_workers)
    features = FeatureSettings.for_model(packed / "model", settings)
    if text_model is not None:
        features = dataclasses.replace(features, text_model=str(text_model))
    snapshot = GraphSnapshot.load(packed / "graph_snapshot.json.gz")
    extractor = FeatureExtractor(snapshot, settings, features)
    return ProfilingPipeline(settings, extractor, load_model(packed / "model", device=device,
                                                                 precision=settings.fusion_precision))


def fresh_caches(pipeline: Any, root: Path) -> None:
    """Point the pipeline's keyframe and feature caches at an empty folder and zero its timings."""
    from encoders.feature_cache import FeatureCache
    from fusion.features import StageTimings
    from worker.pipeline import PipelineTimings

    extractor = pipeline.extractor
    load_s = extractor.timings.load_s
    extractor.visual_cache = FeatureCache(root / "visual")
    extractor.cache_root = root / "features"
    extractor.timings = StageTimings(load_s=load_s)
    pipeline.timings = PipelineTimings()


def profile_all(pipeline: Any, entries: list, chunk_size: int) -> dict[str, Any]:
    """Profile ``entries`` in chunks of ``chunk_size``; wall time, rates and seconds per stage."""
    import torch

    device = pipeline.extractor.visual.device
    cuda = getattr(device, "type", str(device)) == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    mentions, profiled, failed = 0, 0, 0
    started = time.perf_counter()
    for i in range(0, len(entries), chunk_size):
        for outcome in pipeline.profile(entries[i:i + chunk_size]):
            if outcome.record is None:
                failed += 1
            else:
                profiled += 1
                mentions += len(outcome.record.mentions)
    if cuda:
        torch.cuda.synchronize()
    total = time.perf_counter() - started
    stages = pipeline.stage_seconds()
    return {
        "chunk_size": chunk_size,
        "videos": len(entries),
        "profiled": profiled,
        "failed": failed,
        "seconds": round(total, 3),
        "videos_per_s": round(len(entries) / total, 2),
        "mentions_per_video": round(mentions / max(profiled, 1), 2),
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        "gpu_peak_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


def run_device(packed: Path, work: Path, device: str, chunk_sizes: list[int], text_model: Path | None,
               decode_entries: list, limit: int = 0, decode_workers: int = 0, repeats: int = 1) -> dict[str, Any]:
    """One worker process's pipeline on ``device``: load, warm up, then each chunk size with empty caches, ``repeats``
    times (the run with the median time is reported, with every repeat's videos/s)."""
    from encoders.keyframes import extract_keyframes
    from fusion.manifest import read_manifest

    entries = read_manifest(packed / "demo" / "manifest.jsonl")[:limit or None]
    shared = work / "cache-shared"  # entity vectors: computed by the first load on this machine, then reused
    started = time.perf_counter()
    pipeline = load_pipeline(packed, device, shared, text_model, decode_workers)
    load_s = time.perf_counter() - started
    tag = f"{device}-d{decode_workers}"
    # Warm-up (CUDA context, cuDNN's algorithm choice, the tokenizer's first call): a few videos, not counted.
    fresh_caches(pipeline, work / f"warm-{tag}")
    profile_all(pipeline, entries[:8], 8)
    runs = []
    for size in chunk_sizes:
        tries = []
        for r in range(repeats):
            fresh_caches(pipeline, work / f"cache-{tag}-{size}-{r}")
            tries.append(profile_all(pipeline, entries, size))
        median = sorted(tries, key=lambda run: run["seconds"])[len(tries) // 2]
        runs.append({**median, "repeats_videos_per_s": [run["videos_per_s"] for run in tries]})
    decode = []
    for entry in decode_entries:
        t0 = time.perf_counter()
        extract_keyframes(entry.path, k=pipeline.extractor.features.keyframes)
        decode.append(time.perf_counter() - t0)
    return {
        "device": str(pipeline.extractor.visual.device),
        "decode_workers": pipeline.settings.decode_threads,
        "load_s": round(load_s, 2),
        "visual_weights": pipeline.extractor.visual.weights_tag,
        "decode_only_s_per_video_median": round(statistics.median(decode), 4) if decode else None,
        "runs": runs,
        "best_videos_per_s": max(r["videos_per_s"] for r in runs),
    }


def run_processes(packed: Path, work: Path, device: str, processes: int, chunk_size: int, text_model: Path | None,
                  limit: int = 0, decode_workers: int = 0) -> dict[str, Any]:
    """``processes`` workers on ``device`` at once, each profiling its share of the videos after all have loaded."""
    from fusion.manifest import read_manifest

    total = len(read_manifest(packed / "demo" / "manifest.jsonl")[:limit or None])
    gate = work / f"go-{device}-{processes}"
    threads = max(1, (os.cpu_count() or 1) // processes)
    children = []
    for index in range(processes):
        cmd = [sys.executable, __file__, "_child", str(packed), "--work", str(work), "--device", device,
               "--chunk-size", str(chunk_size), "--index", str(index), "--of", str(processes), "--gate", str(gate),
               "--threads", str(threads), "--limit", str(limit), "--decode-workers", str(decode_workers)]
        if text_model is not None:
            cmd += ["--text-model", str(text_model)]
        children.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    ready = [gate.with_suffix(f".ready{i}") for i in range(processes)]
    while not all(r.exists() for r in ready):
        if any(c.poll() not in (None, 0) for c in children):
            raise RuntimeError(f"a worker process on {device} failed while loading")
        time.sleep(0.2)
    gate.touch()
    results = [json.loads(c.communicate()[0].strip().splitlines()[-1]) for c in children]
    if any(c.returncode != 0 for c in children):
        raise RuntimeError(f"a worker process on {device} failed")
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"device": device, "processes": processes, "threads_per_process": threads, "chunk_size": chunk_size,
            "decode_workers": decode_workers,
            "videos": total, "wall_s": round(wall, 2), "videos_per_s": round(total / wall, 2),
            "per_process_videos_per_s": [round(r["videos"] / (r["end"] - r["start"]), 2) for r in results]}


def child(args: argparse.Namespace) -> None:
    """One of ``run_processes``'s workers: load, say ready, wait for the gate, profile its share, print JSON."""
    import torch

    from fusion.manifest import read_manifest

    torch.set_num_threads(args.threads)
    packed = Path(args.packed)
    pipeline = load_pipeline(packed, args.device, Path(args.work) / "cache-shared",
                             Path(args.text_model) if args.text_model else None, args.decode_workers)
    entries = read_manifest(packed / "demo" / "manifest.jsonl")[:args.limit or None][args.index::args.of]
    fresh_caches(pipeline, Path(args.work) / f"warm-{args.device}-p{args.of}-{args.index}")
    profile_all(pipeline, entries[:4], 4)
    fresh_caches(pipeline, Path(args.work) / f"cache-{args.device}-p{args.of}-{args.index}")
    gate = Path(args.gate)
    gate.with_suffix(f".ready{args.index}").touch()
    while not gate.exists():
        time.sleep(0.05)
    start = time.time()
    profile_all(pipeline, entries, args.chunk_size)
    print(json.dumps({"start": start, "end": time.time(), "videos": len(entries)}))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from fusion.manifest import read_manifest

    packed = Path(args.packed)
    work = Path(args.work or tempfile.mkdtemp(prefix="ovp-profile-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    text_model = random_text_model(packed / "text-model", work / "text-random") if args.text_weights == "random" else None
    devices = [d for d in args.devices.split(",") if d and (d != "cuda" or torch.cuda.is_available())]
    chunk_sizes = [int(c) for c in args.chunk_sizes.split(",")]
    decode_entries = read_manifest(packed / "demo" / "manifest.jsonl")[:16]
    report: dict[str, Any] = {
        "bench": "profile_gpu",
        "data": "SYNTHETIC (ovp demo-data), 160x160 H.264, 4-8 s",
        "pack": json.loads((packed / "pack.json").read_text(encoding="utf-8")),
        "text_weights": "random (the text model's architecture, seed 0)" if text_model else "installed",
        "graph": "reads from a snapshot (bench/graph_snapshot.py); no write-back",
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                 "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "devices": {},
        "processes": [],
    }
    decode = [int(d) for d in args.decode_workers.split(",")]
    # The first device computes the entity vectors the others reuse (counted in its load_s).
    for device in devices:
        for workers in decode:
            report["devices"][f"{device} decode_workers={workers}"] = run_device(
                packed, work, device, chunk_sizes, text_model, decode_entries, args.videos, workers, args.repeats)
    best = {d: max(v["best_videos_per_s"] for k, v in report["devices"].items() if k.startswith(d + " ")) for d in devices}
    if "cuda" in best and "cpu" in best:
        report["cuda_over_cpu_best"] = round(best["cuda"] / best["cpu"], 2)
    for device in devices:
        for n in [int(p) for p in args.processes.split(",") if p and int(p) > 1]:
            report["processes"].append(run_processes(packed, work, device, n, max(chunk_sizes), text_model,
                                                     args.videos, args.process_decode_workers))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="demo set, model and graph snapshot into OUT (needs Neo4j)")
    p.add_argument("out")
    p.add_argument("--videos", type=int, default=128)
    p.add_argument("--arch", default="efficientnet_lite0", help="visual backbone (OVP_VISUAL_BACKBONE)")
    p.add_argument("--keyframes", type=int, default=4)
    p.add_argument("--seed", type=int, default=11)
    r = sub.add_parser("run", help="profile the packed videos on each device (no Neo4j)")
    r.add_argument("packed")
    r.add_argument("--devices", default="cuda,cpu")
    r.add_argument("--chunk-sizes", default="1,8,32")
    r.add_argument("--processes", default="1")
    r.add_argument("--text-weights", choices=["random", "installed"], default="random")
    r.add_argument("--work", default="")
    r.add_argument("--videos", type=int, default=0, help="profile only the first N packed videos (0: all)")
    r.add_argument("--decode-workers", default="0", help="OVP_DECODE_WORKERS values to compare (0: the default)")
    r.add_argument("--process-decode-workers", type=int, default=0, help="OVP_DECODE_WORKERS of each --processes worker")
    r.add_argument("--repeats", type=int, default=1, help="runs per chunk size; the median is reported")
    c = sub.add_parser("_child")
    c.add_argument("packed")
    for name in ("--work", "--device", "--gate", "--text-model"):
        c.add_argument(name, default="")
    for name in ("--chunk-size", "--index", "--of", "--threads", "--limit", "--decode-workers"):
        c.add_argument(name, type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "pack":
        print(json.dumps(pack(Path(args.out), videos=args.videos, arch=args.arch, keyframes=args.keyframes, seed=args.seed), indent=2))
    elif args.command == "run":
        print(json.dumps(run(args), indent=2))
    else:
        child(args)


if __name__ == "__main__":
    main()
