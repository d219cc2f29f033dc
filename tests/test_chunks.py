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

#: How long a chunk holds its videos (the worker uses the chunk's hard time limit and a minute).
LEASE_S = 600


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
    report = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S)
    assert profiler.calls == [[e.id for e in entries]]  # one forward pass for the chunk
    assert (len(report.done), report.failed) == (3, [entries[1].id])
    again = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S)
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
    report = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S)
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

    report = run_chunk(graph, RefusedProfiler(), batch_id, entries, max_deliveries=3, lease_s=LEASE_S)
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


class FailingProfiler(RecordingProfiler):
    """Raises ``error`` when asked to profile a group for which ``when(ids)`` is true; profiles otherwise."""

    def __init__(self, error: BaseException, when) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.error, self.when = error, when

    def profile(self, entries: Sequence[VideoEntry]) -> list[VideoOutcome]:
        if self.when([e.id for e in entries]):
            self.calls.append([e.id for e in entries])
            raise self.error
        return super().profile(entries)


def attempts_of(graph: Graph, batch_id: str) -> dict[str, int]:
    rows = graph.read("MATCH (:Batch {id: $b})-[c:CONTAINS]->(v:Video) RETURN v.id AS id, c.attempts AS n", {"b": batch_id})
    return {row["id"]: row["n"] for row in rows}


def test_an_exception_in_a_group_fails_only_the_video_that_raises_it(graph: Graph, batch) -> None:
    """Any exception while a group is profiled: the group is profiled again one video at a time, and only the video
    that raises is recorded as failed, with the exception as its reason (before, the task failed and the message, with
    every video of the chunk, was acknowledged and dropped)."""
    batch_id, entries = batch
    bad = entries[1].id
    profiler = FailingProfiler(ValueError("a caption the tokenizer chokes on"), lambda ids: bad in ids)
    report = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S)
    assert profiler.calls[0] == [e.id for e in entries] and [c for c in profiler.calls[1:]] == [[e.id] for e in entries]
    assert report.failed == [bad] and sorted(report.done) == sorted(e.id for e in entries if e.id != bad)
    status = batch_status(graph, batch_id)
    assert (status["done"], status["failed"], status["status"]) == (3, 1, "finished")
    assert status["failures"][0]["reason"] == "ValueError: a caption the tokenizer chokes on"
    assert set(attempts_of(graph, batch_id).values()) == {1}  # isolating counts no second delivery


def test_an_outage_interrupts_the_chunk_without_using_up_deliveries(graph: Graph, batch) -> None:
    """A graph outage during a chunk (here five in a row, each outlasting the driver's retries) ends in
    ChunkInterrupted, whose retry does not count the cut-short attempt again: after the outage the chunk runs as one
    group, every video is profiled, and each has one attempt (before, each outage counted a delivery, the chunk was
    then split as if its worker had died, and the third outage gave a good video up as 'stopped its worker')."""
    from ovp.errors import GraphUnavailable
    from worker.chunks import ChunkInterrupted

    batch_id, entries = batch
    outages = {"left": 5}

    def down(ids: list[str]) -> bool:
        outages["left"] -= 1
        return outages["left"] >= 0

    profiler = FailingProfiler(GraphUnavailable("Neo4j is not reachable"), down)
    uncounted: list[str] = []
    for _ in range(5):
        with pytest.raises(ChunkInterrupted) as interrupted:
            run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S, uncounted=uncounted)
        assert not interrupted.value.isolate and not interrupted.value.soon
        uncounted = interrupted.value.uncounted
        assert sorted(uncounted) == sorted(e.id for e in entries)
    report = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S, uncounted=uncounted)
    assert len(report.done) == 4 and profiler.calls[-1] == [e.id for e in entries]  # one group: no isolation
    assert set(attempts_of(graph, batch_id).values()) == {1}
    assert batch_status(graph, batch_id)["status"] == "finished"


def test_out_of_memory_profiles_the_group_one_video_at_a_time_then_retries_a_lone_video(graph: Graph, batch) -> None:
    """CUDA out of memory on a group: the videos are profiled one at a time at once. Out of memory on one video
    alone: retried later (the accelerator is shared), and that attempt is counted, so a video that never fits is
    given up after max_deliveries."""
    import torch

    from worker.chunks import ChunkInterrupted

    batch_id, entries = batch
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    report = run_chunk(graph, FailingProfiler(oom, lambda ids: len(ids) > 1), batch_id, entries[:2],
                       max_deliveries=3, lease_s=LEASE_S)
    assert sorted(report.done) == sorted(e.id for e in entries[:2])
    lone = entries[2]
    with pytest.raises(ChunkInterrupted) as interrupted:
        run_chunk(graph, FailingProfiler(oom, lambda ids: True), batch_id, [lone], max_deliveries=3, lease_s=LEASE_S)
    assert interrupted.value.isolate and lone.id not in interrupted.value.uncounted
    for _ in range(2):
        with pytest.raises(ChunkInterrupted):
            run_chunk(graph, FailingProfiler(oom, lambda ids: True), batch_id, [lone], max_deliveries=3,
                      lease_s=LEASE_S, isolate=True)
    report = run_chunk(graph, FailingProfiler(oom, lambda ids: True), batch_id, [lone], max_deliveries=3,
                       lease_s=LEASE_S, isolate=True)
    assert report.failed == [lone.id]
    assert batch_status(graph, batch_id)["failures"][0]["reason"].startswith("gave up after 3 deliveries")


def test_the_soft_time_limit_fails_the_hung_video_alone_and_the_rest_of_the_chunk_is_finished(graph: Graph, batch) -> None:
    """The chunk's soft time limit while a group runs: retried at once, one video at a time; when it strikes a video
    profiled alone, that video is failed with the reason and the rest of the chunk is retried at once, and finishes."""
    from celery.exceptions import SoftTimeLimitExceeded

    from worker.chunks import ChunkInterrupted

    batch_id, entries = batch
    hung = entries[2].id
    profiler = FailingProfiler(SoftTimeLimitExceeded(), lambda ids: hung in ids)
    with pytest.raises(ChunkInterrupted) as first:
        run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S, time_limit_s=300)
    assert first.value.isolate and first.value.soon
    with pytest.raises(ChunkInterrupted) as second:
        run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S, time_limit_s=300,
                  uncounted=first.value.uncounted, isolate=True)
    assert second.value.soon and hung not in second.value.uncounted
    report = run_chunk(graph, profiler, batch_id, entries, max_deliveries=3, lease_s=LEASE_S, time_limit_s=300,
                       uncounted=second.value.uncounted, isolate=second.value.isolate)
    status = batch_status(graph, batch_id)
    assert (status["done"], status["failed"], status["status"]) == (3, 1, "finished")
    assert status["failures"] == [{"video_id": hung, "reason": status["failures"][0]["reason"]}]
    assert "time limit of 300 s" in status["failures"][0]["reason"] and hung in report.skipped
    assert set(attempts_of(graph, batch_id).values()) == {1}


def test_a_video_outside_the_allowed_folders_is_failed_without_being_read(graph: Graph, batch, tmp_path: Path) -> None:
    """The worker confines every path again (the submitter did too): a path that resolves outside the batch's and the
    worker's media roots, through '..' or a symlink, is failed with the reason and never handed to the profiler."""
    import dataclasses

    batch_id, entries = batch
    root, outside = tmp_path / "media", tmp_path / "private"
    root.mkdir(), outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    (root / "link.mp4").symlink_to(outside / "secret.mp4")
    paths = [root / "ok.mp4", root / ".." / "private" / "secret.mp4", root / "link.mp4", root / "sub" / "ok.mp4"]
    placed = [dataclasses.replace(e, path=p) for e, p in zip(entries, paths)]
    profiler = RecordingProfiler()
    report = run_chunk(graph, profiler, batch_id, placed, max_deliveries=3, lease_s=LEASE_S, media_roots=[root])
    assert profiler.calls == [[placed[0].id, placed[3].id]]
    assert sorted(report.failed) == sorted([placed[1].id, placed[2].id])
    reasons = [f["reason"] for f in batch_status(graph, batch_id)["failures"]]
    assert all("outside the folders videos may be read from" in r for r in reasons)


def test_an_integer_the_driver_cannot_send_fails_only_its_video(graph: Graph, batch) -> None:
    """A value the driver refuses before it reaches Neo4j (an integer beyond 64 bits): not a ClientError, so before it
    failed the task and the chunk's message was dropped; now the chunk's videos are written one at a time and only
    that video fails, with the driver's reason."""
    import dataclasses

    batch_id, entries = batch

    class HugeProfiler(RecordingProfiler):
        def profile(self, group: Sequence[VideoEntry]) -> list[VideoOutcome]:
            outcomes = super().profile(group)
            return [dataclasses.replace(o, record=dataclasses.replace(o.record, video=dataclasses.replace(
                o.record.video, author_followers=2**64))) if o.video_id == entries[1].id else o for o in outcomes]

    report = run_chunk(graph, HugeProfiler(), batch_id, entries, max_deliveries=3, lease_s=LEASE_S)
    assert report.failed == [entries[1].id] and len(report.done) == 3
    [failure] = batch_status(graph, batch_id)["failures"]
    assert failure["video_id"] == entries[1].id and failure["reason"]
