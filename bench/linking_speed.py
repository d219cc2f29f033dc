"""Bench: how fast the dictionary linker runs, side by side with another revision of the code. Prints one JSON object.

Run (Neo4j up, graph built)::

    python bench/linking_speed.py [--against REV] [--core 1] [--rounds 5] [--lengths 1000,10000,100000]

What it measures, for the code of this tree and, with ``--against``, for the code of ``REV`` (exported with
``git archive`` to a temporary folder), both as the API builds its linker (``load_linker(..., semantic=False)``):

* ``throughput`` — captions/s of ``link_mentions`` over the 275 gold captions (``tests/data/captions_gold.jsonl``),
  and over SYNTHETIC captions and titles (``fusion.demo_data``, seed 7), one pass per round.
* ``scaling`` — characters/s of linking one text of each length: ``punctuated`` (SYNTHETIC captions joined, their
  punctuation kept), ``unpunctuated`` (the same with every clause-breaking character replaced by a space, so the
  whole text is one clause), and ``repeated`` (``"青光眼 not glaucoma "`` over and over, the case that was
  quadratic). ``ratio_at_longest`` is characters/s at the longest length over characters/s at the shortest.
* ``identical`` — whether both revisions give the same mentions (ids, offsets, scores, negation, method,
  alternatives) for every caption and every text that both measured.

Each side runs in its own worker process (``OMP_NUM_THREADS=1``; pinned with ``taskset`` to ``--core`` when given,
the same core for both), and the rounds alternate between the two, so that a machine shared with other work slows
both alike. Medians over rounds, of wall-clock seconds (``*_per_s``) and of the worker's CPU seconds
(``*_per_cpu_s``: what one core does when it is not shared, the fairer figure on a busy machine: a long text is
preempted by other work where a short one is not); also the best round (``best_*``), the least disturbed by other
work. A length is skipped for a side when its previous length, scaled up as if linking were quadratic, predicts more
than ``--max-seconds`` (the old code needs about 25 s for 16,000 characters without a sentence break, so 100,000
would take a quarter of an hour).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
GOLD_FILE = ROOT / "tests" / "data" / "captions_gold.jsonl"
#: What the issue measured: a text with no sentence break.
REPEATED_UNIT = "青光眼 not glaucoma "
#: Clause-breaking characters (encoders/linking/clauses.py), replaced by spaces for the unpunctuated texts.
CLAUSE_BREAK_CHARS = re.compile(r"[,.;:!?\n\r。，；：！？、…]")


# --- the worker: one revision's linker, answering timing requests on stdin ------------------------------------------


def _linker_module() -> Any:
    """The linker package of the revision on ``PYTHONPATH``: ``encoders.linking``, or ``encoders.linker`` in a
    revision from before the package split (so that this bench can measure one)."""
    try:
        import encoders.linking as module
    except ImportError:
        import encoders.linker as module  # type: ignore[no-redef]
    return module


def _digest(mentions: Sequence[Sequence[Any]]) -> str:
    rows = [[{**m.to_json(), "method": m.method, "alternatives": list(m.alternatives)} for m in ms] for ms in mentions]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def serve(texts_file: Path) -> int:
    """Worker loop: load the linker, then answer one JSON request per stdin line with one JSON line."""
    linking = _linker_module()
    from kg_builder.graph import Graph
    from ovp.settings import Settings

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    settings = Settings.from_env()
    with Graph.connect(settings) as graph:
        linker = linking.load_linker(settings, graph, semantic=False)
    linker.max_text_chars = max(len(t) for t in texts["long"].values())  # the bench's long texts are not cut
    linking.link_mentions(texts["captions"]["gold"], linker)  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        batch = texts["captions"][request["captions"]] if "captions" in request else [texts["long"][request["long"]]]
        started, cpu_started = time.perf_counter(), time.process_time()
        mentions = linking.link_mentions(batch, linker)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "mentions": sum(map(len, mentions)),
                          "digest": _digest(mentions)}), flush=True)
    return 0


class Worker:
    """A worker process for the code in ``tree``."""

    def __init__(self, tree: Path, texts_file: Path, core: int | None) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(texts_file)]
        if core is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(core), *command]
        self.process = subprocess.Popen(command, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, encoding="utf-8")
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"the worker for {tree} did not start: {ready}")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a linking worker exited with code {self.process.wait()}")
        return json.loads(line)

    def ask(self, **request: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the controller ---------------------------------------------------------------------------------------------


def build_texts(lengths: Sequence[int], synthetic: int) -> dict[str, Any]:
    """The captions and long texts both sides link (built once here, so both get the same bytes)."""
    from fusion.demo_data import load_demo_lexicon, plan_demo_set

    gold = [json.loads(line)["text"] for line in GOLD_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    plans = plan_demo_set(load_demo_lexicon(), synthetic, 7)
    captions = [text for p in plans for text in (p.entry.title, p.entry.caption)]
    joined = " ".join(captions)
    while len(joined) < max(lengths):
        joined += " " + joined
    long: dict[str, str] = {}
    for n in lengths:
        long[f"punctuated/{n}"] = joined[:n]
        long[f"unpunctuated/{n}"] = CLAUSE_BREAK_CHARS.sub(" ", joined[:n])
        long[f"repeated/{n}"] = (REPEATED_UNIT * (n // len(REPEATED_UNIT) + 1))[:n]
    return {"captions": {"gold": gold, "synthetic": captions}, "long": long}


def export_revision(rev: str, into: Path) -> Path:
    """The files of ``rev`` (``git archive``) under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def measure(workers: dict[str, Worker], texts: dict[str, Any], lengths: Sequence[int], rounds: int,
            max_seconds: float) -> dict[str, Any]:
    """Alternate the sides round by round; medians per side."""
    sides = list(workers)
    results: dict[str, Any] = {"throughput": {}, "scaling": {}}
    digests: dict[str, dict[str, str]] = {side: {} for side in sides}
    for name, batch in texts["captions"].items():
        seconds: dict[str, list[float]] = {side: [] for side in sides}
        cpu: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(rounds):
            for side in sides:
                answer = workers[side].ask(captions=name)
                seconds[side].append(answer["seconds"])
                cpu[side].append(answer["cpu_seconds"])
                digests[side][f"captions/{name}"] = answer["digest"]
        results["throughput"][name] = {"captions": len(batch), **{side: {
            "captions_per_s": round(len(batch) / statistics.median(seconds[side]), 1),
            "captions_per_cpu_s": round(len(batch) / statistics.median(cpu[side]), 1),
            "best_captions_per_cpu_s": round(len(batch) / min(cpu[side]), 1),
        } for side in sides}}
    for kind in ("punctuated", "unpunctuated", "repeated"):
        row: dict[str, Any] = {side: {} for side in sides}
        last: dict[str, tuple[int, float] | None] = {side: None for side in sides}  # None once skipped
        for n in lengths:
            key = f"{kind}/{n}"
            todo = []
            for side in sides:
                previous = last[side]
                if n > lengths[0] and previous is None:
                    row[side][str(n)] = {"skipped": "a shorter text was skipped"}
                elif previous is not None and previous[1] * (n / previous[0]) ** 2 > max_seconds:
                    row[side][str(n)] = {"skipped": f"predicted over {max_seconds:.0f} s if quadratic"}
                    last[side] = None
                else:
                    todo.append(side)
            times: dict[str, list[float]] = {side: [] for side in todo}
            cpu_times: dict[str, list[float]] = {side: [] for side in todo}
            mentions: dict[str, int] = {}
            for _ in range(rounds):
                for side in todo:  # rounds alternate between the sides, as for the captions
                    answer = workers[side].ask(long=key)
                    times[side].append(answer["seconds"])
                    cpu_times[side].append(answer["cpu_seconds"])
                    mentions[side] = answer["mentions"]
                    digests[side][key] = answer["digest"]
            for side in todo:
                median, cpu_median = statistics.median(times[side]), statistics.median(cpu_times[side])
                last[side] = (n, median)
                row[side][str(n)] = {"seconds": round(median, 4), "chars_per_s": round(n / median),
                                     "chars_per_cpu_s": round(n / cpu_median),
                                     "best_chars_per_cpu_s": round(n / min(cpu_times[side])), "mentions": mentions[side]}
        for side in sides:
            measured = [row[side][str(n)] for n in lengths if "chars_per_s" in row[side][str(n)]]
            if len(measured) > 1:
                row[side]["ratio_at_longest"] = round(measured[-1]["chars_per_s"] / measured[0]["chars_per_s"], 3)
                row[side]["cpu_ratio_at_longest"] = round(
                    measured[-1]["chars_per_cpu_s"] / measured[0]["chars_per_cpu_s"], 3)
                row[side]["best_cpu_ratio_at_longest"] = round(
                    measured[-1]["best_chars_per_cpu_s"] / measured[0]["best_chars_per_cpu_s"], 3)
        results["scaling"][kind] = row
    if len(sides) == 2:
        a, b = sides
        shared = sorted(set(digests[a]) & set(digests[b]))
        results["identical"] = {"compared": shared, "all_equal": all(digests[a][k] == digests[b][k] for k in shared),
                                "different": [k for k in shared if digests[a][k] != digests[b][k]]}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also measure the code of this git revision, side by side")
    parser.add_argument("--core", type=int, help="pin both workers to this CPU core (taskset)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per measurement and side")
    parser.add_argument("--lengths", default="1000,10000,100000", help="comma-separated text lengths, characters")
    parser.add_argument("--synthetic", type=int, default=1000,
                        help="SYNTHETIC videos whose caption and title are linked")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="skip a length predicted to take longer")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    lengths = sorted(int(n) for n in args.lengths.split(","))
    with tempfile.TemporaryDirectory(prefix="ovp-linking-speed-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts = build_texts(lengths, args.synthetic)
        texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        trees = {"this_tree": ROOT}
        if args.against:
            (Path(tmp) / "against").mkdir()
            trees = {args.against: export_revision(args.against, Path(tmp) / "against"), **trees}
        workers: dict[str, Worker] = {}
        try:
            for side, tree in trees.items():
                workers[side] = Worker(tree, texts_file, args.core)
            results = measure(workers, texts, lengths, args.rounds, args.max_seconds)
        finally:
            for worker in workers.values():
                worker.close()
    print(json.dumps({
        "benchmark": "linking_speed",
        "linker": "load_linker(settings, graph, semantic=False), as the API builds it",
        "sides": list(trees),
        "data": {
            "gold": str(GOLD_FILE.relative_to(ROOT)),
            "synthetic": f"SYNTHETIC, fusion.demo_data, {args.synthetic} videos, seed 7, caption and title each",
            "lengths": lengths,
            "rounds": args.rounds,
        },
        "machine": {"cpus": os.cpu_count(), "core": args.core, "load_avg": os.getloadavg(),
                    "python": platform.python_version()},
        **results,
    }, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
