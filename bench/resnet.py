"""Claim: ResNet keyframe features are affordable on CPU and cheap on a GPU (images/s at batch 8).

For ResNet-50 and ResNet-18 (random weights: throughput does not depend on the values) measures, as medians over
timed batches after warm-up: ``model`` — forward pass only on preprocessed 224×224 batches (channels-last,
inference mode); ``end_to_end`` — :meth:`VisualEncoder.encode_frames` on 720p RGB frames (resize, crop, normalise,
forward, copy back). On CPU, and on CUDA when available (with the encoder's autocast). Prints one JSON object.

    python bench/resnet.py [--batch 8] [--iters 5] [--warmup 2] [--devices cpu,cuda]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encoders.visual import VisualEncoder, VisualEncoderConfig  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_rate(fn, images: int, iters: int, warmup: int, device: torch.device) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"images_per_s": round(images / median, 1), "median_batch_s": round(median, 4)}


def bench_one(arch: str, device: str, batch: int, iters: int, warmup: int) -> dict[str, object]:
    encoder = VisualEncoder(VisualEncoderConfig(arch=arch, weights="none", device=device, batch_size=batch))
    model = encoder.load()
    dev = encoder.device
    tensor = torch.randn(batch, 3, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.inference_mode(), encoder._autocast():
            model(tensor)

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(batch)]
    return {
        "arch": arch,
        "device": str(dev),
        "batch": batch,
        "autocast": dev.type == "cuda",
        "model": _median_rate(forward, batch, iters, warmup, dev),
        "end_to_end_720p": _median_rate(lambda: encoder.encode_frames(frames), batch, iters, warmup, dev),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--devices", default="cpu,cuda", help="of cpu,cuda; cuda is skipped where there is none")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the random-weights warning is expected here
    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    results = [
        bench_one(arch, device, args.batch, args.iters if device == "cpu" else args.iters * 4, args.warmup)
        for device in devices
        for arch in ("resnet50", "resnet18")
    ]
    report = {
        "bench": "resnet",
        "claim": "ResNet-50 / ResNet-18 keyframe feature throughput at batch 8",
        "setup": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "iters": args.iters,
            "warmup": args.warmup,
        },
        "results": results,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
