"""The reconciler against the real Neo4j and Redis (no worker runs: every message stays where it is put): videos
pending in the graph whose work is on no queue are enqueued again, and only those; `ovp batch resume` says what it
did; a submission whose broker was down is picked up once the broker is back."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import redis
from click.testing import CliRunner

from fusion.manifest import VideoEntry
from kg_builder.graph import Graph
from kg_builder.store.batches import begin_attempt, pending_work
from ovp.errors import BrokerUnavailable
from ovp.settings import Settings
from worker.batches import record_submission, submit_batch
from worker.celery_app import make_celery
from worker.reconcile import queued_work, reconcile_batch

pytestmark = [pytest.mark.neo4j, pytest.mark.redis]


@pytest.fixture()
def broker() -> Iterator[str]:
    """A Redis database of the local server that nothing else uses (the worker tests use 7 and 8, the API 15)."""
    parts = Settings.from_env().broker_url.rsplit("/", 1)[0]
    url = f"{parts}/11"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture()
def settings(broker: str) -> Settings:
    import dataclasses

    return dataclasses.replace(Settings.from_env(), broker_url=broker, chunk_size=2)


@pytest.fixture()
def batch(graph: Graph) -> Iterator[tuple[str, list[VideoEntry]]]:
    tag = f"recon-{uuid.uuid4().hex[:8]}"
    entries = [VideoEntry(id=f"{tag}-{i}", path=Path(f"/media/{i}.mp4"), platform="other", title="t", caption="c",
                          hashtags=(), published_at=datetime(2025, 1, 1, tzinfo=timezone.utc), duration_s=5.0,
                          author_followers=1) for i in range(5)]
    yield tag, entries
    graph.write("MATCH (n) WHERE (n:Video OR n:Batch) AND n.id STARTS WITH $tag DETACH DELETE n", {"tag": tag})


def queued_chunks(url: str) -> list[tuple[str, list[str]]]:
    client = redis.Redis.from_url(url)
    out = []
    for raw in client.lrange("profiles", 0, -1):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(__import__("base64").b64decode(message["body"]))
        out.append((message["headers"]["task"], [e["id"] for e in args[1]], kwargs))
    client.close()
    return out


def test_lost_videos_are_enqueued_again_and_queued_or_running_ones_are_left_alone(
        graph: Graph, settings: Settings, broker: str, batch) -> None:
    batch_id, entries = batch
    record_submission(graph, batch_id, entries, media_roots=["/media"])
    # Video 0 is being profiled by a live worker (leased); video 1 by a worker that died long ago (lease run out).
    begin_attempt(graph, batch_id, [entries[0].id], lease_s=600)
    begin_attempt(graph, batch_id, [entries[1].id], lease_s=-1)
    report = reconcile_batch(graph, make_celery(settings), settings, batch_id, grace_s=0, pause_s=0.1)
    lost = sorted(e.id for e in entries[1:])
    assert (report.pending, report.leased, sorted(report.requeued), report.chunks) == (5, [entries[0].id], lost, 2)
    chunks = queued_chunks(broker)
    assert sorted(vid for _, ids, _ in chunks for vid in ids) == lost
    assert {task for task, _, _ in chunks} == {"ovp.profile_chunk"}
    assert all(kwargs == {"media_roots": ["/media"], "uncounted": [], "isolate": False} for _, _, kwargs in chunks)
    states = {p.video_id: p for p in pending_work(graph, batch_id)}
    assert states[entries[1].id].status == "queued" and states[entries[1].id].lease_until == 0
    # Now their messages are on the queue: a second pass enqueues nothing.
    again = reconcile_batch(graph, make_celery(settings), settings, batch_id, grace_s=0, pause_s=0.1)
    assert again.requeued == [] and sorted(again.on_broker) == lost
    assert queued_work(broker) == {(batch_id, vid) for vid in lost}


def test_a_message_a_worker_holds_unacknowledged_counts_as_queued(graph: Graph, settings: Settings, broker: str,
                                                                   batch) -> None:
    """A worker that took a message and died: Redis keeps it in its `unacked` hash (and puts it back on the queue
    after the visibility timeout). The reconciler reads that hash too, so it does not enqueue the chunk a second time."""
    batch_id, entries = batch
    record_submission(graph, batch_id, entries)
    reconcile_batch(graph, make_celery(settings), settings, batch_id, grace_s=0, pause_s=0.1)
    client = redis.Redis.from_url(broker)
    taken = client.rpop("profiles")  # as a worker's pop does, then it keeps the message until it acknowledges
    client.hset("unacked", "tag-1", json.dumps([json.loads(taken), "", "profiles"]))
    client.close()
    report = reconcile_batch(graph, make_celery(settings), settings, batch_id, grace_s=0, pause_s=0.1)
    assert report.requeued == [] and len(report.on_broker) == 5


def test_videos_queued_moments_ago_are_left_to_their_message(graph: Graph, settings: Settings, batch) -> None:
    batch_id, entries = batch
    record_submission(graph, batch_id, entries)  # recorded; its message not published yet
    report = reconcile_batch(graph, make_celery(settings), settings, batch_id, grace_s=60, pause_s=0.1)
    assert report.requeued == [] and len(report.recent) == 5


def test_a_submission_whose_broker_was_down_is_picked_up_by_resume(graph: Graph, settings: Settings, broker: str,
                                                                   batch) -> None:
    """The broker is down at submission: the batch is recorded with its videos pending and the error says how to go
    on; `ovp batch resume ID` (here after the grace period) enqueues them once the broker is back."""
    import dataclasses

    from cli import main

    batch_id, entries = batch
    down = make_celery(dataclasses.replace(settings, broker_url="redis://127.0.0.1:1/0"))
    with pytest.raises(BrokerUnavailable, match="ovp batch resume"):
        submit_batch(graph, down, batch_id, entries, retry=False)
    graph.write("MATCH (:Batch {id: $b})-[c:CONTAINS]->() SET c.queued_at = 0", {"b": batch_id})  # long ago
    result = CliRunner().invoke(main, ["batch", "resume", batch_id, "--json"],
                                env={"OVP_BROKER_URL": broker, "OVP_CHUNK_SIZE": "2"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) | {"batch_id": batch_id} == {
        "batch_id": batch_id, "pending": 5, "on_a_queue": 0, "held_by_a_worker": 0, "queued_moments_ago": 0,
        "enqueued_again": 5, "chunks": 3}
    assert sorted(vid for _, ids, _ in queued_chunks(broker) for vid in ids) == sorted(e.id for e in entries)
    unknown = CliRunner().invoke(main, ["batch", "resume", "no-such-batch"], env={"OVP_BROKER_URL": broker})
    assert unknown.exit_code == 1 and "no batch 'no-such-batch'" in unknown.output


def test_submitting_under_a_batch_id_already_used_is_refused(graph: Graph, settings: Settings, broker: str, batch,
                                                             tmp_path: Path) -> None:
    """`ovp profile --submit --batch-id ID` with an ID already in the graph: one line saying so, exit 1, nothing
    enqueued, and the first batch's total unchanged (before, the second submission rewrote it)."""
    from cli import main
    from fusion.manifest import write_manifest

    batch_id, entries = batch
    record_submission(graph, batch_id, entries)
    (tmp_path / "media").mkdir()
    manifest = write_manifest([e.__class__(**{**e.__dict__, "path": tmp_path / "media" / "x.mp4"}) for e in entries[:2]],
                              tmp_path / "manifest.jsonl")
    result = CliRunner().invoke(main, ["profile", str(manifest), "--submit", "--batch-id", batch_id],
                                env={"OVP_BROKER_URL": broker})
    assert result.exit_code == 1 and f"batch {batch_id!r} already exists" in result.output
    assert graph.read("MATCH (b:Batch {id: $b}) RETURN b.total AS t", {"b": batch_id}) == [{"t": 5}]
    assert queued_chunks(broker) == []
