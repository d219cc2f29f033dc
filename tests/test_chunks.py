"""The chunk runner against the real Neo4j: finished videos are skipped, bad input is recorded, a video that kept
killing its worker is given up on after the bounded number of deliveries, and only that video."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pytest

from fusion.manifest import VideoEntry
from kg_builder.graph import Graph
from kg_builder.store.batches import batch_status, record_batch
from worker.batches import chunked
from worker.chunks import VideoOutcome, run_chunk
from worker.records import ProfileRecord, video_meta

pytestmark = pytest.mark.neo4j


class RecordingProfiler:
    """Profiles every video except those named bad; remembers which groups it was asked to profile."""

    model_version = "test-model"

    def __init__(self, bad: set[str] = frozenset()) -> None:
        self.bad = bad
        self.calls: list[list[str]] = []

    def profile(self, entries: Sequence[VideoEntry]) -> list[VideoOutcome]:
        self.calls.append([e.id for e in entries])
        return [
            VideoOutcome(e.id, error=f"VideoDecodeError: {e.path}: not a video") if e.id in self.bad
            else VideoOutcome(e.id, record=ProfileRecord(video=video_meta(e), model_version=self.model_version,
                                                         popularity=1.0, popularity_pct=50.0, quality=3,
                                                         quality_probs=(0.2,) * 5))
            for e in entries
        ]


@pytest.fixture()
def batch(graph: Graph):
    tag = f"test-{uuid.uuid4().hex[:8]}"
    entries = [
        VideoEntry(id=f"{tag}-{i}", path=Path(f"/nonexistent/{i}.mp4"), platform="douyin", title="t", caption="c",
                   hashtags=(), published_at=datetime(2025, 1, 1, tzinfo=timezone.utc), duration_s=5.0, author_followers=10)
        for i in range(4)
    ]
    record_batch(graph, tag, [video_meta(e) for e in entries])
    yield tag, entries
    graph.write("MATCH (n) WHERE (n:Video OR n:Batch) AND n.id STARTS WITH $tag DETACH DELETE n", {"tag": tag})
    graph.write("MATCH (p:Profile) WHERE p.video_id STARTS WITH $tag DETACH DELETE p", {"tag": tag})


def test_a_chunk_runs_as_one_group_records_bad_input_and_skips_on_redelivery(graph: Graph, batch) -> None:
    batch_id, entries = batch
    profiler = RecordingProfiler(bad={entries[1].id})
    report = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3)
    assert profiler.calls == [[e.id for e in entries]]  # one forward pass for the chunk
    assert (len(report.done), report.failed) == (3, [entries[1].id])
    again = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3)
    assert len(again.skipped) == 4 and len(profiler.calls) == 1
    status = batch_status(graph, batch_id)
    assert (status["done"], status["failed"], status["status"]) == (3, 1, "finished")
    assert "not a video" in status["failures"][0]["reason"]


def test_a_redelivered_chunk_isolates_videos_and_gives_up_only_on_the_one_that_kills_workers(graph: Graph, batch) -> None:
    batch_id, entries = batch
    # As if earlier deliveries died: entry 2 was tried max_deliveries times, the others once (in the first pass).
    graph.write(
        "UNWIND $rows AS r MATCH (:Batch {id: $b})-[c:CONTAINS]->(:Video {id: r.id}) SET c.attempts = r.n, c.status = 'running'",
        {"b": batch_id, "rows": [{"id": e.id, "n": 3 if i == 2 else 1} for i, e in enumerate(entries)]},
    )
    profiler = RecordingProfiler()
    report = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3)
    assert profiler.calls == [[entries[0].id], [entries[1].id], [entries[3].id]]  # one at a time, poison skipped
    assert report.failed == [entries[2].id] and len(report.done) == 3
    reason = batch_status(graph, batch_id)["failures"][0]["reason"]
    assert reason.startswith("gave up after 3 deliveries")


def test_a_profile_neo4j_refuses_fails_only_its_own_video(graph: Graph, batch) -> None:
    """A chunk's profiles are one transaction; when Neo4j refuses it (here a list holding null, which it cannot store),
    the chunk is written one video at a time, the refused video is recorded as failed with the server's reason, and
    every other video of the chunk is profiled. Nothing raises, so the task is not retried for bad data."""
    import dataclasses

    batch_id, entries = batch

    class RefusedProfiler(RecordingProfiler):
        def profile(self, group: Sequence[VideoEntry]) -> list[VideoOutcome]:
            outcomes = super().profile(group)
            return [dataclasses.replace(o, record=dataclasses.replace(o.record, video=dataclasses.replace(
                o.record.video, hashtags=("ok", None)))) if o.video_id == entries[2].id else o for o in outcomes]

    report = run_chunk(graph, RefusedProfiler(), batch_id, entries, max_deliveries=3)
    assert sorted(report.done) == sorted(e.id for e in entries if e is not entries[2]) and report.failed == [entries[2].id]
    status = batch_status(graph, batch_id)
    assert (status["done"], status["failed"], status["status"]) == (3, 1, "finished")
    [failure] = status["failures"]
    assert failure["video_id"] == entries[2].id and "Neo4j refused to store the profile" in failure["reason"]
    profiles = graph.read("MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile) WHERE v.id STARTS WITH $tag RETURN v.id AS id",
                          {"tag": batch_id})
    assert sorted(r["id"] for r in profiles) == sorted(report.done)


def test_chunked_rejects_a_non_positive_size() -> None:
    with pytest.raises(ValueError, match="chunk size must be at least 1"):
        chunked([], 0)
