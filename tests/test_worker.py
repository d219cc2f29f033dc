"""Profiling end to end: in-process (`ovp profile`) and through real Celery worker processes on the real Redis and
Neo4j — corrupt videos recorded with reasons, repeats without duplicates, a SIGKILLed worker and a Neo4j outage
mid-batch that lose nothing. The demo videos are SYNTHETIC; the model is tiny (this pins behaviour, not quality)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis

from fusion.demo_data import generate_demo_set
from fusion.manifest import read_manifest, write_manifest
from fusion.training import train_on_manifest
from kg_builder.graph import Graph
from cli.services.neo4j_server import Neo4jServer
from ovp.settings import Settings
from kg_builder.store.batches import batch_status
from worker.batches import new_batch_id, submit_batch
from worker.celery_app import make_celery
from worker.pipeline import ProfilingPipeline, profile_in_process
from worker_support import WorkerProcess, graph_counts, latest_profiles, wait_for, worker_env

pytestmark = [pytest.mark.neo4j, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, graph: Graph, built_kg) -> Path:
    """10 decodable SYNTHETIC videos and 2 corrupt files, with ids unique to this test run."""
    out = tmp_path_factory.mktemp("worker-demo")
    generate_demo_set(out, videos=10, seed=11, corrupt=2)
    tag = uuid.uuid4().hex[:6]
    entries = [dataclasses.replace(e, id=f"wt{tag}-{e.id}") for e in read_manifest(out / "manifest.jsonl")]
    manifest = out / "batch.jsonl"
    write_manifest(entries, manifest)
    yield manifest
    ids = [e.id for e in entries]
    graph.write("MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile) WHERE v.id IN $ids DETACH DELETE p", {"ids": ids})
    graph.write("MATCH (b:Batch)-[:CONTAINS]->(v:Video) WHERE v.id IN $ids DETACH DELETE b", {"ids": ids})
    graph.write("MATCH (v:Video) WHERE v.id IN $ids DETACH DELETE v", {"ids": ids})


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-home")


@pytest.fixture(scope="module")
def settings(home: Path) -> Settings:
    env = worker_env(home / "model", home)
    return Settings.from_env({k: v for k, v in env.items() if k.startswith("OVP_")})


@pytest.fixture(scope="module")
def model_dir(demo: Path, settings: Settings) -> Path:
    """A tiny model trained on the batch itself (3 epochs): enough to produce profiles, and its features are cached."""
    train_on_manifest(demo, settings.model_path, settings, seed=0, epochs=3, progress=False)
    return settings.model_path


@pytest.fixture(scope="module")
def entries(demo: Path):
    return read_manifest(demo)


def good_ids(entries) -> list[str]:
    return [e.id for e in entries if "corrupt" not in e.id]


def test_profile_in_process_records_profiles_and_failures(graph: Graph, settings: Settings, model_dir: Path, entries) -> None:
    pipeline = ProfilingPipeline.load(settings, model_dir, graph)
    batch_id = f"local-{new_batch_id()}"
    profile_in_process(graph, settings, entries, batch_id=batch_id, pipeline=pipeline)
    status = batch_status(graph, batch_id)
    assert (status["total"], status["done"], status["failed"], status["status"]) == (12, 10, 2, "finished")
    assert all("synthetic_corrupt" in f["video_id"] and f["reason"] for f in status["failures"])
    assert set(latest_profiles(graph, good_ids(entries)).values()) == {1}
    profile = graph.read(
        "MATCH (v:Video {id: $id})-[:HAS_PROFILE]->(p:Profile {latest: true}) RETURN p", {"id": good_ids(entries)[0]}
    )[0]["p"]
    assert 1 <= profile["quality"] <= 5 and len(profile["quality_probs"]) == 5
    assert profile["model_version"] == pipeline.model_version
    # The profile says which encoders made it: the defaults, with real ImageNet weights.
    assert (profile["visual_backbone"], profile["visual_weights"], profile["text_model"]) == (
        "efficientnet_lite0", "efficientnet-lite0-57934424", "bge-small-zh-v1.5")
    assert len(profile["top_keyframe_times"]) >= 1 and '"keyframes"' in profile["explanation"]
    # Every profile explains each predicted disease: named or related by the graph, the prior's and the keyframes'
    # path's shares of the log-odds beside what the fused head added (the three sum to the logit of the stored
    # probability), and the keyframe the path leaned on, one of the video's keyframes.
    rows = graph.read(
        "MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true, model_version: $m})-[r:PREDICTS]->(d) "
        "RETURN v.id AS v, v.caption AS caption, p.explanation AS e, d.id AS d, r.prob AS prob ORDER BY v.id, r.rank",
        {"m": pipeline.model_version})
    assert rows, "the demo model predicted no disease above the threshold for any video"
    for row in rows:
        (evidence,) = [x for x in json.loads(row["e"])["diseases"] if x["id"] == row["d"]]
        logit = math.log(row["prob"] / (1 - row["prob"]))
        assert evidence["prior_logit"] + evidence["frames_logit"] + evidence["head_logit"] == pytest.approx(logit, abs=1e-3)
        assert 0 < evidence["keyframe"]["weight"] <= 1 and evidence["keyframe"]["t"] >= 0
        assert isinstance(evidence["named"], bool) and all(v.startswith("OVP:") for v in evidence["via"])
        assert evidence["by_rule"] is (row["prob"] < settings.predict_threshold)
    # Every demo video is labelled with a disease, so the model applies the at-least-one rule: each profile predicts one.
    assert bool(pipeline.model.model.at_least_one)
    assert {row["v"] for row in rows} == set(good_ids(entries))
    # Open-vocabulary tags were written in the same transaction: every disease the text names affirmatively (the
    # demo captions name theirs) is tagged "named" with its mentions as evidence, and every video has a text vector.
    tags = graph.read(
        "MATCH (v:Video)-[:HAS_PROFILE]->(:Profile {latest: true, model_version: $m})-[t:TAGGED]->(d) "
        "RETURN v.id AS v, d.id AS d, t.sources AS sources, t.evidence AS e", {"m": pipeline.model_version})
    named = {(t["v"], t["d"]) for t in tags if "named" in t["sources"]}
    affirmed = {(r["v"], r["d"]) for r in graph.read(
        "MATCH (v:Video)-[m:MENTIONS]->(d:Disease) WHERE v.id IN $ids AND NOT m.negated AND m.score >= 0.85 "
        "RETURN v.id AS v, d.id AS d", {"ids": good_ids(entries)})}
    assert affirmed and named == affirmed
    assert all(set(json.loads(t["e"])) == set(t["sources"]) for t in tags)
    assert graph.read("MATCH (v:Video) WHERE v.id IN $ids AND size(v.text_vector) = 512 RETURN count(v) AS n",
                      {"ids": good_ids(entries)}) == [{"n": len(good_ids(entries))}]


def test_cli_submit_records_the_batch_before_any_worker_runs(graph: Graph, demo: Path) -> None:
    """`ovp profile --submit` records the batch with every video pending before it enqueues the task, so `ovp batch
    status` answers at once; here no worker ever runs (the message waits on a broker database no worker reads)."""
    from click.testing import CliRunner
    from test_api import broker_url_for_tests, purge_test_queue

    from cli import main

    broker = broker_url_for_tests(Settings.from_env())
    batch_id = f"cli-{new_batch_id()}"
    runner = CliRunner()
    purge_test_queue(broker)
    try:
        submitted = runner.invoke(main, ["profile", str(demo), "--submit", "--batch-id", batch_id, "--json"],
                                  env={"OVP_BROKER_URL": broker})
        assert submitted.exit_code == 0, submitted.output
        assert json.loads(submitted.stdout) == {"id": batch_id, "status": "submitted", "total": 12}
        shown = runner.invoke(main, ["batch", "status", batch_id, "--json"], env={"OVP_BROKER_URL": broker})
        assert shown.exit_code == 0, shown.output
        status = json.loads(shown.stdout)
        assert (status["total"], status["done"], status["failed"], status["status"]) == (12, 0, 0, "running")
        assert sorted(status["pending"]) == sorted(e.id for e in read_manifest(demo))
        queue = redis.Redis.from_url(broker)
        messages = [json.loads(m) for m in queue.lrange("batches", 0, -1)]
        queue.close()
        assert [m["headers"]["task"] for m in messages] == ["ovp.profile_batch"]
    finally:
        graph.write("MATCH (b:Batch {id: $id}) DETACH DELETE b", {"id": batch_id})
        purge_test_queue(broker)


@pytest.fixture()
def celery_app(settings: Settings):
    app = make_celery(settings)
    with app.connection_for_write() as conn:  # start from empty queues in the test database
        for queue in ("batches", "profiles"):
            conn.default_channel.queue_purge(queue)
    return app


def submit(graph: Graph, app, entries) -> str:  # type: ignore[no-untyped-def]
    """As `ovp profile --submit` does: record the batch, then enqueue it, its videos allowed from the folder that
    holds them (the manifest's)."""
    batch_id = new_batch_id()
    submit_batch(graph, app, batch_id, entries, media_roots=[os.path.commonpath([str(e.path) for e in entries])])
    return batch_id


def finished(graph: Graph, batch_id: str):  # type: ignore[no-untyped-def]
    status = batch_status(graph, batch_id)
    return status if status and status["status"] == "finished" else None


def test_worker_batch_records_failures_then_repeat_adds_nothing(
    graph: Graph, celery_app, model_dir: Path, home: Path, entries, tmp_path: Path
) -> None:
    worker = WorkerProcess(worker_env(model_dir, home), tmp_path / "worker.log", "w1")
    try:
        worker.wait_ready()
        batch_id = submit(graph, celery_app, entries)
        status = wait_for(lambda: finished(graph, batch_id), 600, "the first batch to finish")
        assert (status["done"], status["failed"]) == (10, 2)
        reasons = {f["video_id"]: f["reason"] for f in status["failures"]}
        assert all("synthetic_corrupt" in vid for vid in reasons) and all(reasons.values())
        ids = [e.id for e in entries]
        before = graph_counts(graph, ids)
        assert before["latest"] == 10

        again = submit(graph, celery_app, entries)
        wait_for(lambda: finished(graph, again), 600, "the repeated batch to finish")
        assert graph_counts(graph, ids) == before  # no duplicate nodes or relationships
    finally:
        worker.stop()


def test_sigkilled_worker_mid_batch_loses_nothing(
    graph: Graph, celery_app, model_dir: Path, home: Path, entries, tmp_path: Path
) -> None:
    env = worker_env(model_dir, home, OVP_CHUNK_SIZE="1")
    first = WorkerProcess(env, tmp_path / "worker1.log", "w2a")
    first.wait_ready()
    batch_id = submit(graph, celery_app, entries)
    wait_for(lambda: (batch_status(graph, batch_id) or {}).get("done", 0) >= 2, 300, "two videos done", 0.2)
    first.kill()
    assert batch_status(graph, batch_id)["status"] == "running"
    second = WorkerProcess(env, tmp_path / "worker2.log", "w2b")
    try:
        second.wait_ready()
        status = wait_for(lambda: finished(graph, batch_id), 600, "the batch to finish after the kill")
        assert (status["done"], status["failed"]) == (10, 2)
        assert latest_profiles(graph, good_ids(entries)) == {vid: 1 for vid in good_ids(entries)}
    finally:
        second.stop()


def test_neo4j_outage_mid_batch_is_retried(graph: Graph, celery_app, model_dir: Path, home: Path, entries, tmp_path: Path) -> None:
    shared = Settings.from_env()
    worker = WorkerProcess(worker_env(model_dir, home, OVP_CHUNK_SIZE="1"), tmp_path / "worker.log", "w3")
    try:
        worker.wait_ready()
        batch_id = submit(graph, celery_app, entries)
        wait_for(lambda: (batch_status(graph, batch_id) or {}).get("done", 0) >= 1, 300, "a first video done", 0.2)
        # An abrupt outage (as in a crash or a failover): gone at once, back a few seconds later.
        done_at_outage = batch_status(graph, batch_id)["done"]
        os.kill(Neo4jServer(shared).status().pid, signal.SIGKILL)
        try:
            time.sleep(5)
        finally:
            Neo4jServer(shared).start()
        assert done_at_outage < 10  # the outage really fell in the middle of the batch
        status = wait_for(lambda: finished(graph, batch_id), 600, "the batch to finish after the outage")
        assert (status["done"], status["failed"]) == (10, 2)
        assert latest_profiles(graph, good_ids(entries)) == {vid: 1 for vid in good_ids(entries)}
        # The outage outlasted the driver's own retries in the worker (worker.tasks.GRAPH_RETRY_S), so Celery retried.
        assert b"Retry in" in (tmp_path / "worker.log").read_bytes()
    finally:
        worker.stop()


def queue_length(app) -> int:  # type: ignore[no-untyped-def]
    with app.connection_for_write() as conn:
        return sum(conn.default_channel.client.llen(q) for q in ("batches", "profiles"))


def test_a_worker_without_its_model_refuses_to_start_and_takes_no_message(
    graph: Graph, celery_app, home: Path, entries, tmp_path: Path
) -> None:
    """No model at OVP_MODEL_DIR: the worker's main process says so loudly and exits before it consumes, so the
    submitted batch's message stays on the queue for a worker that can profile it (before, the worker consumed the
    queue and every chunk failed and was dropped)."""
    batch_id = submit(graph, celery_app, entries)
    worker = WorkerProcess(worker_env(tmp_path / "no-model", home), tmp_path / "worker.log", "w4")
    try:
        code = worker.process.wait(timeout=240)
    finally:
        worker.stop()
    text = (tmp_path / "worker.log").read_text()
    assert code != 0 and "the worker will not start, so it takes no message" in text and "lacks model.pt" in text
    assert queue_length(celery_app) == 1 and batch_status(graph, batch_id)["pending"]


def test_a_worker_whose_pool_cannot_load_the_models_stops_and_puts_its_message_back(
    graph: Graph, celery_app, model_dir: Path, home: Path, entries, tmp_path: Path
) -> None:
    """The model loads in the main process but the pool process cannot build the pipeline (here its feature
    settings are corrupt): the worker shuts down loudly, and the batch's message is back on the queue, untouched."""
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(model_dir, broken)
    (broken / "features.json").write_text("{ not json")
    batch_id = submit(graph, celery_app, entries)
    worker = WorkerProcess(worker_env(broken, home), tmp_path / "worker.log", "w5")
    try:
        worker.process.wait(timeout=300)
    finally:
        worker.stop()
    assert "this worker stops consuming and shuts down" in (tmp_path / "worker.log").read_text()
    assert queue_length(celery_app) == 1
    status = batch_status(graph, batch_id)
    assert (status["done"], status["failed"], len(status["pending"])) == (0, 0, 12)


def test_a_worker_with_several_openmp_threads_starts_its_pool(model_dir: Path, home: Path, tmp_path: Path) -> None:
    # The other tests run workers with OMP_NUM_THREADS=1. With more, a parallel tensor operation in the main process
    # (the model check before consuming) starts GNU OpenMP's thread pool, which does not survive the fork: the pool
    # process then hung in its own first parallel operation, loading the models, and never became ready.
    worker = WorkerProcess(worker_env(model_dir, home, OMP_NUM_THREADS="2"), tmp_path / "worker.log", "omp2")
    try:
        worker.wait_ready(timeout_s=240)  # the main process says "ready" before its pool process has loaded
        wait_for(lambda: b"profiling pipeline ready" in (tmp_path / "worker.log").read_bytes(), 240,
                 "the pool process to load the profiling pipeline")
    finally:
        worker.stop()
