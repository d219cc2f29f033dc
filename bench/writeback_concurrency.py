"""Claim: several worker processes writing profiles back into one Neo4j at once add up, and how often they deadlock.
Prints JSON.

    python bench/writeback_concurrency.py [--videos 512] [--processes 1,4] [--chunk-size 8] [--repeats 3]

Against the local Neo4j (`ovp neo4j start`, graph built). For each process count P, one batch of ``--videos`` videos
is recorded (as a submission does), then P processes, each with its own driver (as each Celery worker process has),
write the profiles chunk by chunk with ``write_profiles`` (the worker's write-back: one transaction per chunk, with
the batch outcomes and recount), chunks dealt out in turn. The records are those of ``bench/profile_write.py``
(SYNTHETIC: made-up profiles on real disease and phenotype ids; every video mentions and predicts the same entities,
the most contended case). Reported per P, median over ``--repeats`` interleaved runs: aggregate videos/s (all videos
over the wall time from the start signal to the last commit), and the transaction functions run again after a
transient error (deadlocks), counted by ``Graph.retries``. Every node it writes is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kg_builder.graph import Graph  # noqa: E402
from kg_builder.store.batches import batch_status, record_batch  # noqa: E402
from ovp.settings import Settings  # noqa: E402
from profile_write import PREFIX, clear, records  # noqa: E402
from worker.writeback import write_profiles  # noqa: E402


def writer(run: str, videos: int, chunk_size: int, index: int, processes: int, start: multiprocessing.Event,
           results: multiprocessing.Queue) -> None:
    """One worker process: its own driver, every ``processes``-th chunk of the batch, from the start signal on."""
    batch = records(run, videos)
    chunks = [batch[i:i + chunk_size] for i in range(0, videos, chunk_size)][index::processes]
    with Graph.connect(Settings.from_env()) as graph:
        graph.read("RETURN 1 AS ok")  # the pool's first connection, before the clock starts
        start.wait()
        for chunk in chunks:
            write_profiles(graph, chunk, batch_id=f"{PREFIX}{run}")
        results.put({"index": index, "videos": sum(len(c) for c in chunks), "finished": time.time(),
                     "retries": graph.retries})


def one_run(graph: Graph, videos: int, processes: int, chunk_size: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    record_batch(graph, f"{PREFIX}{run}", [r.video for r in records(run, videos)])
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=writer, args=(run, videos, chunk_size, i, processes, start, results))
               for i in range(processes)]
    for process in workers:
        process.start()
    time.sleep(3.0)  # every process imported and connected (spawn); the clock starts at the signal
    started = time.time()
    start.set()
    reports = [results.get(timeout=600) for _ in workers]
    for process in workers:
        process.join(timeout=60)
    wall = max(r["finished"] for r in reports) - started
    status = batch_status(graph, f"{PREFIX}{run}")
    assert status is not None and status["done"] == videos and status["status"] == "finished", status
    clear(graph)
    return {"videos_per_s": videos / wall, "retries": sum(r["retries"] for r in reports), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=512)
    parser.add_argument("--processes", default="1,4")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    counts = [int(p) for p in args.processes.split(",")]
    runs: dict[int, list[dict[str, float]]] = {p: [] for p in counts}
    with Graph.connect(Settings.from_env()) as graph:
        clear(graph)
        try:
            for _ in range(args.repeats):
                for processes in counts:  # interleaved, so drift on a shared machine hits every variant alike
                    runs[processes].append(one_run(graph, args.videos, processes, args.chunk_size))
        finally:
            clear(graph)
    rows = [{"processes": p, "videos_per_s_median": round(statistics.median(r["videos_per_s"] for r in rs), 1),
             "retries_median": statistics.median(r["retries"] for r in rs),
             "retries_each": [r["retries"] for r in rs],
             "videos_per_s_each": [round(r["videos_per_s"], 1) for r in rs]} for p, rs in runs.items()]
    for row in rows:
        row[f"speedup_over_{counts[0]}"] = round(row["videos_per_s_median"] / rows[0]["videos_per_s_median"], 2)
    print(json.dumps({"bench": "writeback_concurrency", "videos_per_batch": args.videos, "chunk_size": args.chunk_size,
                      "repeats": args.repeats, "data": "made-up profile records (SYNTHETIC) on real graph ids",
                      "machine": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
                      "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
