"""Claim: decoding only key frames is far cheaper than decoding every frame, so keyframe extraction scales with
the number of GOPs, not the number of frames.

Generates 720p H.264 videos (libx264 via PyAV; synthetic scrolling-texture content, GOP 60 at 30 fps), then for each
video measures (median over repeats) wall time of: key-frame-only decoding (``skip_frame = "NONKEY"``), decoding every
frame, and the full ``extract_keyframes`` (K=8). Prints one JSON object to stdout.

    python bench/keyframes.py [--videos 3] [--seconds 10] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # one synthetic-video generator for tests and benches

from encoders.keyframes import extract_keyframes  # noqa: E402
from videos import make_video  # noqa: E402


def decode(path: Path, keyframes_only: bool) -> int:
    """Decode the video stream (no colour conversion); returns frames decoded."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"  # the same threading in both modes
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        return sum(1 for _ in container.decode(stream))


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--gop", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the generated videos")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = [
            make_video(
                Path(tmp) / f"v{i}.mp4", seconds=args.seconds, fps=args.fps, size=(1280, 720), gop=args.gop,
                scenes=(0.0, args.seconds * (i + 1) / (args.videos + 1)), preset=args.preset,
            )
            for i in range(args.videos)
        ]
        generate_s = time.perf_counter() - start
        rows = []
        for path in paths:
            key_s, key_frames = timed(lambda: decode(path, True), args.repeats)
            all_s, all_frames = timed(lambda: decode(path, False), args.repeats)
            extract_s, picked = timed(lambda: extract_keyframes(path, k=8, timeout_s=600), args.repeats)
            rows.append({
                "video": path.name,
                "bytes": path.stat().st_size,
                "key_frames": key_frames,
                "all_frames": all_frames,
                "keyonly_s": round(key_s, 4),
                "all_s": round(all_s, 4),
                "extract_k8_s": round(extract_s, 4),
                "extract_reasons": sorted(set(picked.reasons)),
            })
        duration = args.seconds
        key_s = statistics.median(r["keyonly_s"] for r in rows)
        all_s = statistics.median(r["all_s"] for r in rows)
        extract_s = statistics.median(r["extract_k8_s"] for r in rows)
        key_frames = statistics.median(r["key_frames"] for r in rows)
        all_frames = statistics.median(r["all_frames"] for r in rows)
        report = {
            "bench": "keyframes",
            "claim": "key-frame-only decoding vs decoding every frame (720p H.264, synthetic content)",
            "setup": {
                "videos": args.videos, "seconds": args.seconds, "fps": args.fps, "gop": args.gop, "size": "1280x720",
                "preset": args.preset, "repeats": args.repeats, "generate_s": round(generate_s, 1),
                "cpu_count": os.cpu_count(), "python": platform.python_version(), "pyav": av.__version__,
                "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
            },
            "keyframe_only": {
                "keyframes_per_s": round(key_frames / key_s, 1),
                "video_s_per_wall_s": round(duration / key_s, 1),
                "median_s_per_video": round(key_s, 4),
            },
            "every_frame": {
                "frames_per_s": round(all_frames / all_s, 1),
                "video_s_per_wall_s": round(duration / all_s, 2),
                "median_s_per_video": round(all_s, 4),
            },
            "extract_keyframes_k8": {
                "video_s_per_wall_s": round(duration / extract_s, 1),
                "median_s_per_video": round(extract_s, 4),
            },
            "speedup_keyonly_vs_every_frame": round(all_s / key_s, 1),
            "per_video": rows,
        }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
