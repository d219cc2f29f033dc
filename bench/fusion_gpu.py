"""Claim: fusion training and prediction use the GPU when there is one, and say what it buys. Prints one JSON object.

    python bench/fusion_gpu.py [--videos 600] [--epochs 6] [--batch-sizes 32,128] [--devices cpu,cuda]
                               [--concurrency 1,4,8] [--threads 1]

Features are random arrays with the shapes of the demo set's (4 keyframes × 512 from ResNet-18, 40–200 token states
× 384, 0–5 entities × 64, the metadata vector, 20 disease labels): time per epoch does not depend on the values, so
the model learns nothing here and no metric is reported. For each device, precision and batch size one model of the
ablation's size (width 128) trains a fixed number of epochs without early stopping or head refit; reported are the
median seconds per epoch (the first epoch, with its warm-up, left out), prediction throughput and peak GPU memory.
On CUDA plain fp32 (the default) is compared with bf16 autocast (``OVP_FUSION_PRECISION=bf16``: the precision
``fusion.training.train`` and ``fusion.inference.load_model`` are given). ``--concurrency N`` starts N processes that
each train one model on the same GPU at once (as N Celery workers or N ablation processes would) and reports the
wall-clock time for all of them, against N times one model alone.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fusion import training  # noqa: E402
from fusion.config import FusionConfig  # noqa: E402
from fusion.records import METADATA_DIM, LabelMap, VideoFeatures  # noqa: E402

LABELS = LabelMap(tuple(f"OVP:bench_{i:02d}" for i in range(20)))


def make_items(n: int, seed: int) -> list[VideoFeatures]:
    """``n`` random videos shaped like the demo set's features, with random labels."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        tokens, entities = int(rng.integers(40, 201)), int(rng.integers(0, 6))
        items.append(VideoFeatures(
            video_id=f"bench-{i:05d}",
            frames=rng.standard_normal((4, 512), dtype=np.float32),
            frame_times=np.arange(4, dtype=np.float32),
            tokens=rng.standard_normal((tokens, 384), dtype=np.float32),
            token_text=["tok"] * tokens,
            entities=rng.standard_normal((entities, 64), dtype=np.float32),
            entity_ids=[LABELS.disease_ids[int(j)] for j in rng.integers(0, 20, entities)],
            metadata=rng.standard_normal(METADATA_DIM, dtype=np.float32),
            diseases=[LABELS.disease_ids[int(rng.integers(0, 20))]],
            popularity=float(rng.normal(8.0, 1.5)),
            quality=int(rng.integers(1, 6)),
            synthetic=True,
            related_ids=[LABELS.disease_ids[int(j)] for j in rng.integers(0, 20, 2)],
        ))
    return items


def config(items: list[VideoFeatures], epochs: int, batch_size: int) -> FusionConfig:
    return FusionConfig.from_items(items, LABELS, width=128, dropout=0.2, lr=2e-3, epochs=epochs, min_epochs=epochs,
                                   patience=epochs, head_refit_epochs=0, batch_size=batch_size)


def one_run(items: list[VideoFeatures], device: str, precision: str, epochs: int, batch_size: int) -> dict[str, float]:
    """Train one model on 80 % of ``items`` (validated on the rest each epoch) and time it and its predictions."""
    cut = int(len(items) * 0.8)
    train_items, val_items = items[:cut], items[cut:]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = training.train(train_items, val_items, config(items, epochs, batch_size), LABELS, progress=False,
                            device=device, precision=precision)
    total = time.perf_counter() - started
    epoch_s = [h["seconds"] for h in result.history[1:]] or [result.history[0]["seconds"]]
    result.predictor.predict(items[:64], batch_size=batch_size)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    result.predictor.predict(items, batch_size=batch_size)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    predict_s = time.perf_counter() - started
    out = {"epoch_s_median": round(statistics.median(epoch_s), 3), "train_s_total": round(total, 2),
           "predict_videos_per_s": round(len(items) / predict_s, 1)}
    if device.startswith("cuda"):
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def concurrent(n: int, args: argparse.Namespace) -> dict[str, float]:
    """Wall-clock seconds for ``n`` processes each training one model on the GPU at the same time."""
    cmd = [sys.executable, __file__, "--child", "--videos", str(args.videos), "--epochs", str(args.epochs),
           "--threads", str(args.threads)]
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise SystemExit(f"a child process failed: {[p.returncode for p in procs]}")
    per_model = [json.loads(o.strip().splitlines()[-1])["train_s_total"] for o in outs]
    return {"processes": n, "wall_s": round(wall, 1), "train_s_median_per_process": round(statistics.median(per_model), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = make_items(args.videos, seed=0)
    if args.child:
        print(json.dumps(one_run(items, "cuda", "fp32", args.epochs, 32)))
        return

    cuda = torch.cuda.is_available()
    runs = []
    for device in args.devices.split(","):
        if device == "cuda" and not cuda:
            continue
        for precision in (["fp32", "bf16"] if device == "cuda" else ["fp32"]):
            for batch_size in (int(b) for b in args.batch_sizes.split(",")):
                runs.append({"device": device, "precision": precision, "batch_size": batch_size,
                             **one_run(items, device, precision, args.epochs, batch_size)})
    shared = [concurrent(int(n), args) for n in args.concurrency.split(",")] if cuda and args.concurrency else []
    print(json.dumps({
        "benchmark": "fusion training and prediction by device (random features of the demo set's shapes)",
        "videos": args.videos, "epochs": args.epochs, "threads_per_process": args.threads,
        "runs": runs, "concurrent_processes_on_one_gpu": shared,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(0) if cuda else None},
    }, indent=2))


if __name__ == "__main__":
    main()
