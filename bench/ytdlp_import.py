"""Claims: ``ovp import ytdlp`` reads a folder of yt-dlp downloads fast (videos per second over 1,000 info files), and
how many manifest fields each platform's info file fills.

Copies the fixtures of ``tests/data/ytdlp`` (shaped after yt-dlp's YouTube, Bilibili, Douyin, TikTok and Vimeo
extractors) ``--videos`` / 5 times each under new ids, with a stand-in media file beside each (the import does not
decode media) and their subtitles, then times :func:`fusion.ytdlp_import.import_ytdlp` (median of ``--repeats``).
The fields filled are counted on the fixtures themselves. Prints JSON.

    python bench/ytdlp_import.py [--videos 1000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fixtures and folder builder the tests use

from fusion.manifest import VideoEntry  # noqa: E402
from fusion.ytdlp_import import filled_fields, import_ytdlp  # noqa: E402
from ytdlp_folder import build_download_folder, fixture_infos  # noqa: E402

#: What an import can fill; the labels a person gives (quality) and the flags are not import fields.
IMPORT_FIELDS = tuple(f.name for f in dataclasses.fields(VideoEntry)
                      if f.name not in ("quality", "synthetic", "diseases", "diseases_weak"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        build_download_folder(folder, copies=-(-args.videos // len(fixture_infos())))
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = import_ytdlp(folder)
            seconds.append(time.perf_counter() - started)
    videos = len(result.entries)
    assert not result.problems, result.summary()
    with tempfile.TemporaryDirectory() as scratch:
        build_download_folder(Path(scratch))
        per_platform = {e.platform: filled_fields(e) for e in import_ytdlp(Path(scratch)).entries}
    median = statistics.median(seconds)
    print(json.dumps({
        "bench": "ytdlp_import", "videos": videos, "repeats": args.repeats,
        "import_s_median": round(median, 3), "import_s_all": [round(s, 3) for s in seconds],
        "videos_per_s": round(videos / median, 1),
        "fields_filled": {p: {"filled": len([f for f in fields if f in IMPORT_FIELDS]), "of": len(IMPORT_FIELDS),
                              "missing": [f for f in IMPORT_FIELDS if f not in fields]}
                          for p, fields in sorted(per_platform.items())},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
