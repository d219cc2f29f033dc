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
import tempfile
import time
from pathlib import Path

from fusion.manifest import VideoEntry
from fusion.ytdlp_import import filled_fields, import_ytdlp

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "ytdlp"
#: What an import can fill; the labels a person gives (quality) and the flags are not import fields.
IMPORT_FIELDS = tuple(f.name for f in dataclasses.fields(VideoEntry)
                      if f.name not in ("quality", "synthetic", "diseases", "diseases_weak"))


def make_folder(folder: Path, videos: int) -> None:
    infos = sorted(FIXTURES.glob("*.info.json"))
    for n in range(videos):
        source = infos[n % len(infos)]
        info = json.loads(source.read_text(encoding="utf-8"))
        stem = f"video {n:05d} [{info['id']}{n}]"
        info["id"] = f"{info['id']}{n}"
        (folder / f"{stem}.info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        (folder / f"{stem}.{info['ext']}").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        old = source.name.removesuffix(".info.json")
        for sub in FIXTURES.glob(f"{glob_escape(old)}.*"):
            if not sub.name.endswith(".info.json"):
                (folder / (stem + sub.name[len(old):])).write_bytes(sub.read_bytes())


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "[]*?" else c for c in text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        make_folder(folder, args.videos)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = import_ytdlp(folder)
            seconds.append(time.perf_counter() - started)
    assert len(result.entries) == args.videos and not result.problems, result.summary()
    with tempfile.TemporaryDirectory() as scratch:
        make_folder(Path(scratch), len(list(FIXTURES.glob("*.info.json"))))
        per_platform = {e.platform: filled_fields(e) for e in import_ytdlp(Path(scratch)).entries}
    median = statistics.median(seconds)
    print(json.dumps({
        "bench": "ytdlp_import", "videos": args.videos, "repeats": args.repeats,
        "import_s_median": round(median, 3), "import_s_all": [round(s, 3) for s in seconds],
        "videos_per_s": round(args.videos / median, 1),
        "fields_filled": {p: {"filled": len([f for f in fields if f in IMPORT_FIELDS]), "of": len(IMPORT_FIELDS),
                              "missing": [f for f in IMPORT_FIELDS if f not in fields]}
                          for p, fields in sorted(per_platform.items())},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
