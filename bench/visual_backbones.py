"""Claim: the default visual backbone (EfficientNet-Lite0) is cheaper per keyframe and per video than the ResNets.

For EfficientNet-Lite0, ResNet-18 and ResNet-50, side by side in one run (random weights: throughput does not depend
on the values), medians over timed repeats after warm-up:

- ``model``: forward pass only on preprocessed 224×224 batches (channels-last, inference mode), images/s;
- ``end_to_end_720p``: :meth:`VisualEncoder.encode_frames` on 720p RGB frames (resize, crop, normalise, forward,
  copy back), images/s;
- ``per_video``: :func:`encoders.visual.encode_video` on a generated 10 s 720p H.264 clip (decode key frames, pick K,
  encode; no cache), seconds per video.

On CPU, and on CUDA when available (with the encoder's autocast). Prints one JSON object, with each backbone's ratio
to EfficientNet-Lite0.

    python bench/visual_backbones.py [--batch 8] [--iters 5] [--warmup 2] [--keyframes 8] [--threads N] [--devices cpu,cuda]

``--threads`` sets torch's CPU threads (default: torch's own); on a machine shared with other jobs, 1 thread gives
steadier numbers than threads that compete for the same cores.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # one synthetic-video generator for tests and benches

from encoders.visual import BACKBONES, VisualEncoder, VisualEncoderConfig, encode_video  # noqa: E402
from videos import make_video  # noqa: E402

ORDER = ("efficientnet_lite0", "resnet18", "resnet50")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_s(fn, iters: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_one(backbone: str, device: str, batch: int, iters: int, warmup: int, video: Path, k: int) -> dict[str, object]:
    encoder = VisualEncoder(VisualEncoderConfig(backbone=backbone, weights="random", device=device, batch_size=batch))
    model = encoder.load()
    dev = encoder.device
    tensor = torch.randn(batch, 3, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.inference_mode(), encoder._autocast():
            model(tensor)

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(batch)]
    forward_s = _median_s(forward, iters, warmup, dev)
    frames_s = _median_s(lambda: encoder.encode_frames(frames), iters, warmup, dev)
    video_s = _median_s(lambda: encode_video(video, encoder, None, k=k), iters, 1, dev)
    return {
        "backbone": backbone,
        "dim": BACKBONES[backbone].dim,
        "device": str(dev),
        "model_images_per_s": round(batch / forward_s, 1),
        "end_to_end_720p_images_per_s": round(batch / frames_s, 1),
        "per_video_s": round(video_s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--keyframes", type=int, default=8)
    parser.add_argument("--devices", default="cpu,cuda", help="of cpu,cuda; cuda is skipped where there is none")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.ERROR)  # the random-weights warning is expected here
    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "clip.mp4", seconds=10, fps=30, size=(1280, 720), gop=60,
                           scenes=(0.0, 2.5, 5.0, 7.5), preset="veryfast")
        results = [
            bench_one(backbone, device, args.batch, args.iters if device == "cpu" else args.iters * 4, args.warmup,
                      video, args.keyframes)
            for device in devices
            for backbone in ORDER
        ]
    for device in devices:
        base = next(r for r in results if r["device"].startswith(device) and r["backbone"] == ORDER[0])
        for r in results:
            if r["device"].startswith(device):
                r["per_video_vs_efficientnet_lite0"] = round(r["per_video_s"] / base["per_video_s"], 2)
                r["images_per_s_vs_efficientnet_lite0"] = round(
                    r["end_to_end_720p_images_per_s"] / base["end_to_end_720p_images_per_s"], 2)
    report = {
        "bench": "visual_backbones",
        "claim": "per-keyframe and per-video cost of EfficientNet-Lite0 against ResNet-18/50",
        "setup": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "batch": args.batch,
            "keyframes": args.keyframes,
            "iters": args.iters,
            "warmup": args.warmup,
            "video": "generated 10 s 1280x720 H.264, 30 fps, GOP 60, 4 scenes",
        },
        "results": results,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
