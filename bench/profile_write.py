"""Claim: writing a chunk's profiles in one transaction costs a fraction of one transaction per video. Prints JSON.

    python bench/profile_write.py [--videos 256] [--chunk-sizes 1,8,32] [--batch-sizes 256,4096] [--repeats 3]

Against the local Neo4j (`ovp neo4j start`, graph built). For each batch size B, a batch of B videos is recorded
(``record_batch``, as a submission does); then the profiles of ``--videos`` of them are written as a worker writes
them: ``write_profiles`` per chunk, where chunk size 1 is what ``write_profile`` did for every video before chunks
were written together. The profiles are made-up records of the shape the pipeline writes (2 mentions, 2 predictions,
a 256-d embedding, the explanation) on real disease and phenotype ids. The variants run interleaved, ``--repeats``
times each; reported is the median milliseconds per video. Every node it writes is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg_builder.graph import Graph  # noqa: E402
from kg_builder.store.batches import record_batch  # noqa: E402
from kg_builder.store.rows import DiseasePrediction, MentionRecord, VideoMeta  # noqa: E402
from ovp.settings import Settings  # noqa: E402
from worker.records import Explanation, ProfileRecord  # noqa: E402
from worker.writeback import write_profiles  # noqa: E402

PREFIX = "bench-write-"


def records(run: str, count: int) -> list[ProfileRecord]:
    """``count`` profile records shaped like the pipeline's, on real graph ids."""
    return [
        ProfileRecord(
            video=VideoMeta(id=f"{PREFIX}{run}-{i:06d}", platform="douyin", title="青光眼", caption="#青光眼 眼压高，看灯有光圈",
                            hashtags=("青光眼",), duration_s=6.0, published_at="2024-05-01T20:00:00+08:00",
                            author_followers=5000, synthetic=True),
            model_version="bench",
            popularity=7.5, popularity_pct=81.0, quality=4, quality_probs=(0.0, 0.1, 0.1, 0.6, 0.2),
            predictions=(DiseasePrediction("OVP:glaucoma", 0.9, 1), DiseasePrediction("OVP:cataract", 0.6, 2)),
            mentions=(MentionRecord("OVP:ocular_hypertension", "眼压高", 5, 8, 0.95), MentionRecord("OVP:glaucoma", "青光眼", 1, 4, 1.0)),
            explanation=Explanation(keyframes=((1.0, 0.5), (3.0, 0.3)), entities=(("OVP:glaucoma", 0.7),)),
            embedding=tuple(float((i * 7 + j) % 11) / 11 for j in range(256)),
            visual_weights="random",
        )
        for i in range(count)
    ]


def clear(graph: Graph) -> None:
    graph.write("MATCH (p:Profile) WHERE p.video_id STARTS WITH $p DETACH DELETE p", {"p": PREFIX})
    while graph.write("MATCH (n) WHERE (n:Video OR n:Batch) AND n.id STARTS WITH $p WITH n LIMIT 5000 DETACH DELETE n",
                      {"p": PREFIX}).get("nodes_deleted"):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=256)
    parser.add_argument("--chunk-sizes", default="1,8,32")
    parser.add_argument("--batch-sizes", default="256,4096")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chunks = [int(c) for c in args.chunk_sizes.split(",")]
    times: dict[tuple[int, int], list[float]] = {}
    with Graph.connect(Settings.from_env()) as graph:
        clear(graph)
        try:
            for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
                for _ in range(args.repeats):
                    for chunk in chunks:  # interleaved, so drift on a shared machine hits every variant alike
                        run = uuid.uuid4().hex[:8]
                        batch = records(run, max(batch_size, args.videos))
                        batch_id = f"{PREFIX}{run}"
                        record_batch(graph, batch_id, [r.video for r in batch])
                        started = time.perf_counter()
                        for start in range(0, args.videos, chunk):
                            write_profiles(graph, batch[start:min(start + chunk, args.videos)], batch_id=batch_id)
                        times.setdefault((batch_size, chunk), []).append((time.perf_counter() - started) / args.videos)
                        clear(graph)
        finally:
            clear(graph)
    rows = [{"batch_videos": b, "chunk_size": c, "ms_per_video_median": round(1000 * statistics.median(t), 2),
             "ms_per_video_each": [round(1000 * x, 2) for x in t]} for (b, c), t in times.items()]
    for row in rows:
        one = next(r for r in rows if r["batch_videos"] == row["batch_videos"] and r["chunk_size"] == chunks[0])
        row[f"speedup_over_chunk_{chunks[0]}"] = round(one["ms_per_video_median"] / row["ms_per_video_median"], 2)
    print(json.dumps({"bench": "profile_write", "videos_written": args.videos, "repeats": args.repeats,
                      "data": "made-up profile records (SYNTHETIC) on real graph ids", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
