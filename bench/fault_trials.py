"""Fault trials: the running service put through each fault of issue 36, with figures. Prints JSON.

Usage: python bench/fault_trials.py [--trials name,name] [--videos 24] [--out results.json]

Against the real parts: the local Neo4j and Redis of the settings (``make services``, ``ovp kg build``), real
``celery -A worker.app worker`` processes, the API served by ``ovp serve``. Each trial submits its own batch (fresh
video ids), does the damage, waits, and reports:

- ``submitted``: videos in the batch; ``profiled``: videos with a profile of the model version and the outcome
  ``done``; ``failed_with_reason``: outcome ``failed`` with a non-empty reason;
- ``lost``: submitted − profiled − failed when the batch finished or the trial's deadline passed (must be 0);
- ``duplicated``: videos with two Profile nodes of one model version, or two HAS_PROFILE relationships to one
  profile, or two CONTAINS from the batch, plus any excess of the batch's done + failed over its total (must be 0);
- ``seconds``: from submission until the batch was finished.

Data: SYNTHETIC demo videos (``ovp demo-data``, with 2 corrupt files per set) and a tiny model trained on them here
(ResNet-18 with seeded random weights, the default text model, K = 4, 3 epochs): the trials measure the plumbing, not the model. The model's
training fills the feature cache, so profiling the demo videos is mostly hashing, linking and the write-back; the
hostile and slow files are new every run. The broker is database 9 of the configured Redis (results in 10); the
Redis and Neo4j trials stop and start the configured servers themselves, so run it on a machine of your own.
All trials take about 45 minutes on 2 CPU cores (the 5-minute outage alone about 7).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' worker process and synthetic-video helpers

import av  # noqa: E402
import redis  # noqa: E402

from cli.services.neo4j_server import Neo4jServer  # noqa: E402
from cli.services.redis_server import RedisServer  # noqa: E402
from fusion.training import train_on_manifest  # noqa: E402
from fusion.demo_data import generate_demo_set  # noqa: E402
from fusion.manifest import VideoEntry, read_manifest, write_manifest  # noqa: E402
from kg_builder.graph import Graph  # noqa: E402
from kg_builder.store.batches import batch_status  # noqa: E402
from ovp.errors import BrokerUnavailable, GraphUnavailable, ManifestError  # noqa: E402
from ovp.settings import Settings  # noqa: E402
from videos import make_audio_only, make_video  # noqa: E402
from worker.batches import new_batch_id, submit_batch  # noqa: E402
from worker.celery_app import make_celery  # noqa: E402
from worker_support import WorkerProcess, wait_for  # noqa: E402

TRIALS: dict[str, Callable[["Harness"], list[dict[str, Any]]]] = {}


def trial(function: Callable[["Harness"], list[dict[str, Any]]]) -> Callable[["Harness"], list[dict[str, Any]]]:
    TRIALS[function.__name__] = function
    return function


def redis_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


class Harness:
    """The settings, the SYNTHETIC demo sets, the tiny model, and the helpers every trial uses."""

    def __init__(self, work: Path, videos: int) -> None:
        self.base = Settings.from_env()
        self.work = work
        self.broker = redis_db(self.base.broker_url, 9)
        self.settings = dataclasses.replace(self.base, broker_url=self.broker, result_backend=redis_db(self.base.broker_url, 10),
                                            home=work / "home", model_dir=str(work / "model"), visual_backbone="resnet18",
                                            visual_weights="random", keyframes=4, device="cpu", chunk_size=2,
                                            visibility_timeout_s=20, dev=True)
        self.demo = self._demo_set("demo", videos)
        self.model_dir = self._model(self.demo)
        self.graph = Graph(self.base)
        self.celery = make_celery(self.settings)
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.settings.home.mkdir(parents=True, exist_ok=True)  # celery beat keeps its schedule there
        self.model_version = json.loads((self.model_dir / "metrics.json").read_text()).get("model_version")

    # --- data ---------------------------------------------------------------------------------------------------

    def _demo_set(self, name: str, videos: int) -> Path:
        folder = self.work / name
        if not (folder / "manifest.jsonl").is_file() or len(read_manifest(folder / "manifest.jsonl")) != videos + 2:
            generate_demo_set(folder, videos=videos, seed=5, corrupt=2)
        return folder / "manifest.jsonl"

    def _model(self, manifest: Path) -> Path:
        out = self.work / "model"
        if not (out / "model.pt").is_file():
            train_on_manifest(manifest, out, self.settings, seed=0, epochs=3, progress=False)
        return out

    def entries(self, manifest: Path | None = None, limit: int | None = None) -> list[VideoEntry]:
        """The demo set's entries under ids of their own (a fresh batch of videos for each trial)."""
        tag = uuid.uuid4().hex[:6]
        entries = read_manifest(manifest or self.demo)[:limit]
        return [dataclasses.replace(e, id=f"ft{tag}-{e.id}") for e in entries]

    # --- workers, submission, counting ---------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "OVP_HOME": str(self.settings.home), "OVP_MODEL_DIR": str(self.model_dir),
               "OVP_BROKER_URL": self.broker, "OVP_RESULT_BACKEND": self.settings.result_backend,
               "OVP_VISUAL_BACKBONE": "resnet18", "OVP_VISUAL_WEIGHTS": "random", "OVP_KEYFRAMES": "4", "OVP_DEVICE": "cpu",
               "OVP_CHUNK_SIZE": "2", "OVP_VISIBILITY_TIMEOUT_S": "20", "OVP_LOG_LEVEL": "INFO", "OMP_NUM_THREADS": "1",
               "PYTHONUNBUFFERED": "1", "OVP_DEV": "1", "OVP_RECONCILE_INTERVAL_S": "0"}
        env.update(extra)
        return env

    def worker(self, name: str, *, ready: bool = True, concurrency: int = 1, beat: bool = False, **extra: str) -> WorkerProcess:
        process = WorkerProcess(self.env(**extra), self.logs / f"{name}.log", name, concurrency=concurrency, beat=beat)
        if ready:
            process.wait_ready(timeout_s=600)
        return process

    def purge(self) -> None:
        client = redis.Redis.from_url(self.broker)
        client.flushdb()
        client.close()

    def queue_length(self) -> int:
        client = redis.Redis.from_url(self.broker)
        try:
            return sum(client.llen(q) for q in ("batches", "profiles")) + client.hlen("unacked")
        finally:
            client.close()

    def submit(self, entries: list[VideoEntry], manifest: Path | None = None) -> str:
        batch_id = new_batch_id()
        folder = (manifest or self.demo).resolve().parent
        submit_batch(self.graph, self.celery, batch_id, entries, media_roots=[str(folder)])
        return batch_id

    def status(self, batch_id: str) -> dict[str, Any] | None:
        try:
            return batch_status(self.graph, batch_id)
        except GraphUnavailable:
            return None

    def wait_finished(self, batch_id: str, timeout_s: float) -> float | None:
        """Seconds until the batch is finished (from now), or None when it is not within ``timeout_s``."""
        started = time.monotonic()
        try:
            wait_for(lambda: (self.status(batch_id) or {}).get("status") == "finished", timeout_s, "the batch", 1.0)
        except TimeoutError:
            return None
        return time.monotonic() - started

    def tally(self, name: str, batch_id: str, entries: list[VideoEntry], seconds: float | None,
              **facts: Any) -> dict[str, Any]:
        ids = [e.id for e in entries]
        status = wait_for(lambda: self.status(batch_id), 120, "Neo4j")
        profiled = self.graph.read(
            "UNWIND $ids AS id MATCH (:Batch {id: $b})-[c:CONTAINS {status: 'done'}]->(v:Video {id: id}) "
            "WHERE EXISTS { (v)-[:HAS_PROFILE]->(:Profile {model_version: $m}) } RETURN count(v) AS n",
            {"ids": ids, "b": batch_id, "m": self.model_version})[0]["n"]
        params = {"ids": ids, "b": batch_id}
        duplicated = sum(self.graph.read(query, params)[0]["n"] for query in (
            # two Profile nodes of one model version for one video
            "UNWIND $ids AS id MATCH (v:Video {id: id})-[:HAS_PROFILE]->(p:Profile) "
            "WITH v, p.model_version AS m, count(DISTINCT p) AS n WHERE n > 1 RETURN count(DISTINCT v) AS n",
            # two HAS_PROFILE relationships from a video to one profile
            "UNWIND $ids AS id MATCH (v:Video {id: id})-[r:HAS_PROFILE]->(p:Profile) "
            "WITH v, p, count(r) AS n WHERE n > 1 RETURN count(DISTINCT v) AS n",
            # a video counted twice in its batch
            "UNWIND $ids AS id MATCH (:Batch {id: $b})-[c:CONTAINS]->(v:Video {id: id}) "
            "WITH v, count(c) AS n WHERE n > 1 RETURN count(v) AS n",
        ))
        failed = [f for f in status["failures"] if f["reason"]]
        excess = max(0, status["done"] + status["failed"] - status["total"])
        return {"trial": name, "submitted": len(entries), "profiled": profiled, "failed_with_reason": len(failed),
                "lost": len(entries) - status["done"] - status["failed"], "duplicated": duplicated + excess,
                "seconds": None if seconds is None else round(seconds, 1), "status": status["status"],
                "failure_reasons": sorted({_short(f["reason"]) for f in failed}), **facts}

    def close(self) -> None:
        self.graph.close()


def _short(reason: str) -> str:
    # The demo's per-run paths make every reason unique; keep what it says.
    text = reason.split(": ", 1)[1] if reason.startswith("/") and ": " in reason else reason
    return text[:140]


def retry_graph(action: Callable[[], Any], timeout_s: float = 300) -> Any:
    """``action()``, retried while Neo4j is restarting."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return action()
        except GraphUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


# --- the trials ---------------------------------------------------------------------------------------------------

@trial
def sigkill_worker_x5(h: Harness) -> list[dict[str, Any]]:
    """SIGKILL of the whole worker (main and pool processes) in mid-chunk, five times, a new worker each time."""
    h.purge()
    entries = h.entries()
    worker = h.worker("kill-0")
    batch_id = h.submit(entries)
    started = time.monotonic()
    kills = 0
    for n in range(1, 6):
        done = (h.status(batch_id) or {}).get("done", 0)
        try:
            wait_for(lambda: (h.status(batch_id) or {}).get("done", 0) > done, 300, "progress", 0.2)
        except TimeoutError:
            pass
        if (h.status(batch_id) or {}).get("status") == "finished":
            break
        worker.kill()
        kills += 1
        worker = h.worker(f"kill-{n}")
    try:
        h.wait_finished(batch_id, 1200)
        return [h.tally("sigkill_worker_x5", batch_id, entries, time.monotonic() - started, kills=kills)]
    finally:
        worker.stop()


def _neo4j_outage(h: Harness, name: str, outage_s: float) -> list[dict[str, Any]]:
    h.purge()
    entries = h.entries()
    worker = h.worker(name)
    try:
        batch_id = h.submit(entries)
        started = time.monotonic()
        wait_for(lambda: (h.status(batch_id) or {}).get("done", 0) >= 2, 300, "two videos done", 0.2)
        done_at_outage = h.status(batch_id)["done"]
        stopped = time.monotonic()
        Neo4jServer(h.base).stop()
        time.sleep(outage_s)
        Neo4jServer(h.base).start()
        down_s = time.monotonic() - stopped  # the server's own stop and start included
        seconds = h.wait_finished(batch_id, 1800)
        seconds = None if seconds is None else time.monotonic() - started
        retries = (h.logs / f"{name}.log").read_text(errors="replace").count("Retry in")
        return [h.tally(name, batch_id, entries, seconds, outage_s=outage_s, neo4j_down_s=round(down_s, 1),
                        done_when_stopped=done_at_outage, task_retries=retries)]
    finally:
        worker.stop()


@trial
def neo4j_stopped_30s(h: Harness) -> list[dict[str, Any]]:
    return _neo4j_outage(h, "neo4j_stopped_30s", 30)


@trial
def neo4j_stopped_5min(h: Harness) -> list[dict[str, Any]]:
    return _neo4j_outage(h, "neo4j_stopped_5min", 300)


@trial
def redis_restarted_with_tasks_queued(h: Harness) -> list[dict[str, Any]]:
    """Submitted with no worker running; Redis stopped and started (`ovp redis stop && ovp redis start`); then a
    worker. Before the append-only file, the queue came back empty and the batch stayed 'running' for ever."""
    h.purge()
    entries = h.entries()
    batch_id = h.submit(entries)
    before = h.queue_length()
    RedisServer(h.base).stop()
    RedisServer(h.base).start()
    after = h.queue_length()
    started = time.monotonic()
    worker = h.worker("redis-restart")
    try:
        seconds = h.wait_finished(batch_id, 1200)
        seconds = None if seconds is None else time.monotonic() - started
        return [h.tally("redis_restarted_with_tasks_queued", batch_id, entries, seconds,
                        queued_before_restart=before, queued_after_restart=after)]
    finally:
        worker.stop()


@trial
def broker_down_at_submission(h: Harness) -> list[dict[str, Any]]:
    """Redis down while the batch is submitted: recorded, not enqueued (the submitter is told). Redis back, and a
    worker with celery beat (-B, reconciliation every 15 s) picks the batch up on its own."""
    h.purge()
    entries = h.entries()
    RedisServer(h.base).stop()
    started = time.monotonic()
    try:
        h.submit(entries)
        error = "none"
    except BrokerUnavailable as exc:
        error = type(exc).__name__
    finally:
        RedisServer(h.base).start()
    batch_id = h.graph.read("MATCH (b:Batch)-[:CONTAINS]->(:Video {id: $v}) RETURN b.id AS id", {"v": entries[0].id})[0]["id"]
    worker = h.worker("broker-down", beat=True, OVP_RECONCILE_INTERVAL_S="15")
    try:
        seconds = h.wait_finished(batch_id, 1200)
        seconds = None if seconds is None else time.monotonic() - started
        return [h.tally("broker_down_at_submission", batch_id, entries, seconds, submitter_error=error,
                        note="includes the reconciler's 60 s grace and its 15 s interval")]
    finally:
        worker.stop()


@trial
def four_workers_400_videos(h: Harness) -> list[dict[str, Any]]:
    """Four worker processes (one worker, --concurrency 4) writing one batch of 400 videos to one Neo4j at once."""
    h.purge()
    manifest = h._demo_set("demo400", 398)  # 398 decodable + 2 corrupt, never seen by the model: nothing cached
    entries = h.entries(manifest)
    worker = h.worker("four", concurrency=4, OVP_CHUNK_SIZE="8")
    try:
        started = time.monotonic()
        batch_id = h.submit(entries, manifest)
        seconds = h.wait_finished(batch_id, 3600)
        seconds = None if seconds is None else time.monotonic() - started
        log = (h.logs / "four.log").read_text(errors="replace")
        return [h.tally("four_workers_400_videos", batch_id, entries, seconds, pool_processes=4,
                        chunks_interrupted=log.count("chunk interrupted"))]
    finally:
        worker.stop()


def _hostile_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"fifo": folder / "fifo.mp4", "sparse_200GB": folder / "sparse.mp4", "huge_12000x12000": folder / "huge.mkv",
             "no_video_stream": folder / "voice.mp4", "dev_zero": Path("/dev/zero")}
    if not files["fifo"].exists():
        os.mkfifo(files["fifo"])
    with files["sparse_200GB"].open("wb") as handle:
        handle.truncate(200 << 30)
    if not files["huge_12000x12000"].exists():
        _huge_video(files["huge_12000x12000"])
    make_audio_only(files["no_video_stream"])
    return files


def _huge_video(path: Path, side: int = 12_000) -> None:
    """Two 12,000 × 12,000 frames (Motion JPEG: H.264 does not go that large)."""
    import numpy as np

    container = av.open(str(path), "w")
    stream = container.add_stream("mjpeg", rate=1)
    stream.width = stream.height = side
    stream.pix_fmt = "yuvj420p"
    image = np.zeros((side, side, 3), np.uint8)
    image[::97] = 200
    for i in range(2):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


@trial
def hostile_files(h: Harness) -> list[dict[str, Any]]:
    """/dev/zero, a FIFO, a 200 GB sparse file, a 12,000 × 12,000 video and a file with no video stream in one batch
    with 6 good videos. /dev is made a media root for this trial so that /dev/zero reaches the worker (with the default
    roots the submission itself refuses it, which is the second row)."""
    h.purge()
    files = _hostile_files(h.demo.parent / "hostile")
    good = [e for e in h.entries(limit=8) if "corrupt" not in e.id][:6]
    bad = [dataclasses.replace(good[0], id=f"{good[0].id.split('-')[0]}-{name}", path=path) for name, path in files.items()]
    entries = good + bad
    worker = h.worker("hostile", OVP_MEDIA_ROOTS="/dev")
    try:
        batch_id = new_batch_id()
        started = time.monotonic()
        submit_batch(h.graph, h.celery, batch_id, entries, media_roots=[str(h.demo.parent), "/dev"])
        seconds = h.wait_finished(batch_id, 900)
        seconds = None if seconds is None else time.monotonic() - started
        rows = [h.tally("hostile_files", batch_id, entries, seconds)]
    finally:
        worker.stop()
    manifest = h.demo.parent / "hostile.jsonl"
    write_manifest([dataclasses.replace(good[0], path=Path("/dev/zero"))], manifest)
    started = time.monotonic()
    try:
        read_manifest(manifest, media_roots=h.base.media_root_paths)
        refusal = "accepted"
    except ManifestError as exc:
        refusal = _short(exc.problems[0].split(": ", 2)[-1])
    rows.append({"trial": "dev_zero_with_default_media_roots", "submitted": 1, "profiled": 0, "failed_with_reason": 1,
                 "lost": 0, "duplicated": 0, "seconds": round(time.monotonic() - started, 3),
                 "status": "refused at submission", "failure_reasons": [refusal]})
    rows.append(_huge_frames_memory(files["huge_12000x12000"]))
    return rows


def _huge_frames_memory(video: Path) -> dict[str, Any]:
    """The 12,000 × 12,000 video with the frame cap raised: frames come back scaled down; peak memory of a process
    that extracts K = 8 keyframes, against the same without the downscale (full-size RGB, as before)."""
    code = ("import resource, sys, json; from encoders import keyframes; from encoders.media import MediaLimits\n"
            "if sys.argv[2] == 'full': keyframes.MAX_FRAME_PIXELS = 10**12\n"
            "ks = keyframes.extract_keyframes(sys.argv[1], k=8, limits=MediaLimits(max_pixels=200_000_000), timeout_s=600)\n"
            "print(json.dumps({'shape': list(ks.frames[0].shape), 'frames': len(ks),"
            " 'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))")
    out = {}
    for mode in ("downscaled", "full"):
        done = subprocess.run([sys.executable, "-c", code, str(video), mode], capture_output=True, text=True, cwd=ROOT,
                              timeout=900)
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {"error": done.stderr[-300:]}
    return {"trial": "huge_12000x12000_frames_with_the_cap_raised", "keyframes": out}


def _slow_video(folder: Path, repeats: int = 12) -> Path:
    """A 1080p video of key frames only, long enough that scanning it takes tens of seconds: a 20 s clip whose packets
    are muxed ``repeats`` times one after another (encoding that many frames would take much longer)."""
    path = folder / "slow.mp4"
    if path.is_file():
        return path
    clip = make_video(folder / "slow-clip.mp4", seconds=20, fps=25, size=(1920, 1080), gop=1)
    source = av.open(str(clip))
    stream = source.streams.video[0]
    # Muxing hands a packet's data to FFmpeg, so each repeat muxes fresh copies.
    packets = [(bytes(p), p.pts, p.dts, p.duration, p.time_base) for p in source.demux(stream) if p.size]
    span = max(pts for _, pts, _, _, _ in packets) + (packets[-1][3] or 1)
    out = av.open(str(path), "w")
    # New bytes every run: the same file would be answered from the feature cache of an earlier run's success.
    out.metadata["comment"] = uuid.uuid4().hex
    copy = out.add_stream_from_template(stream)
    for n in range(repeats):
        for data, pts, dts, duration, time_base in packets:
            packet = av.Packet(data)
            packet.pts, packet.dts, packet.duration, packet.time_base = pts + n * span, dts + n * span, duration, time_base
            packet.is_keyframe, packet.stream = True, copy
            out.mux(packet)
    out.close()
    source.close()
    return path


def _slow_video_batch(h: Harness, name: str, **env: str) -> dict[str, Any]:
    h.purge()
    folder = h.demo.parent / "slow"
    folder.mkdir(exist_ok=True)
    slow = _slow_video(folder)
    good = [e for e in h.entries(limit=6) if "corrupt" not in e.id][:2]
    entries = [good[0], dataclasses.replace(good[0], id=f"{good[0].id.split('-')[0]}-slow", path=slow), good[1]]
    worker = h.worker(name, OVP_CHUNK_SIZE="3", **env)
    try:
        started = time.monotonic()
        batch_id = h.submit(entries)
        seconds = h.wait_finished(batch_id, 900)
        seconds = None if seconds is None else time.monotonic() - started
        return h.tally(name, batch_id, entries, seconds, **{k.lower(): v for k, v in env.items()})
    finally:
        worker.stop()


@trial
def slow_video_deadline(h: Harness) -> list[dict[str, Any]]:
    """A video that takes longer to read and decode than its deadline, in one chunk with two good ones."""
    return [_slow_video_batch(h, "slow_video_deadline", OVP_DECODE_TIMEOUT_S="5")]


@trial
def slow_video_chunk_time_limit(h: Harness) -> list[dict[str, Any]]:
    """The same video with a deadline longer than the chunk's soft time limit: the limit is the backstop."""
    return [_slow_video_batch(h, "slow_video_chunk_time_limit", OVP_DECODE_TIMEOUT_S="600", OVP_CHUNK_TIME_LIMIT_S="5")]


@trial
def model_deleted_under_a_running_worker(h: Harness) -> list[dict[str, Any]]:
    """The model directory deleted while a worker profiles: the loaded model finishes the batch. Then its pool
    process is killed, the replacement cannot load the model, and the worker shuts down without taking the next
    batch; a worker with a model finishes that one."""
    import psutil

    h.purge()
    model = h.work / "model-doomed"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(h.model_dir, model)
    first, second = h.entries(), h.entries()
    worker = h.worker("doomed", OVP_MODEL_DIR=str(model))
    rows = []
    try:
        batch_id = h.submit(first)
        started = time.monotonic()
        wait_for(lambda: (h.status(batch_id) or {}).get("done", 0) >= 2, 300, "two videos done", 0.2)
        shutil.rmtree(model)
        seconds = h.wait_finished(batch_id, 900)
        rows.append(h.tally("model_deleted_under_a_running_worker", batch_id, first,
                            None if seconds is None else time.monotonic() - started))
        for child in psutil.Process(worker.process.pid).children(recursive=True):
            child.kill()
        # Submitted while the worker replaces its pool process, which cannot load the model: whatever the worker
        # takes of it goes back to the queue, and the worker shuts down.
        batch_id = h.submit(second)
        try:
            code = worker.process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            code = None
        queued = h.queue_length()
    finally:
        worker.stop()
    started = time.monotonic()
    rescue = h.worker("rescue")
    try:
        seconds = h.wait_finished(batch_id, 900)
        rows.append(h.tally("batch_after_the_worker_lost_its_model", batch_id, second,
                            None if seconds is None else time.monotonic() - started,
                            doomed_worker_exit_code=code, queued_while_no_worker_could_profile=queued,
                            said_so="this worker stops consuming and shuts down" in (h.logs / "doomed.log").read_text(errors="replace")))
    finally:
        rescue.stop()
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes, token: str | None = None, timeout_s: float = 300) -> tuple[int | str, float]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, time.monotonic() - started
    except (TimeoutError, urllib.error.URLError):
        return "timed out", time.monotonic() - started


@trial
def hostile_requests(h: Harness) -> list[dict[str, Any]]:
    """Deep JSON, huge integers and 100 × 20,000 characters to `/link`, against `ovp serve` (a real HTTP server)."""
    port, token = _free_port(), "fault-trial-token"
    env = {**h.env(), "OVP_API_TOKEN": token, "OVP_MEDIA_ROOTS": str(h.demo.parent)}
    log = (h.logs / "api.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get_ok(f"{base}/health"), 120, "the API")
        _post(f"{base}/link", json.dumps({"text": "青光眼"}).encode())  # builds the linker once
        deep = ("[" * 100_000 + "]" * 100_000).encode()
        entry = read_manifest(h.demo)[0].to_json_dict() | {"id": f"ft-int-{uuid.uuid4().hex[:6]}"}
        huge = json.dumps([entry | {"duration_s": int("9" * 401)}, entry | {"id": entry["id"] + "b", "author_followers": 2**63}]).encode()
        many = json.dumps({"texts": ["青光眼 not glaucoma " * 1_111] * 100}).encode()
        batches_before = h.graph.read("MATCH (b:Batch) RETURN count(b) AS n")[0]["n"]
        rows = []
        for name, path, body, auth in [("deep_json_link", "/link", deep, None),
                                       ("deep_json_batches", "/batches", deep, token),
                                       ("deep_json_query", "/queries/entities_by_quality", deep, None),
                                       ("huge_integers_batches", "/batches", huge, token),
                                       ("link_100_x_20000_chars", "/link", many, None)]:
            status, seconds = _post(base + path, body, auth)
            rows.append({"trial": name, "http_status": status, "seconds": round(seconds, 3)})
        rows[3]["batches_recorded"] = h.graph.read("MATCH (b:Batch) RETURN count(b) AS n")[0]["n"] - batches_before
        one = json.dumps({"text": ("青光眼 not glaucoma " * 1_111)[:20_000]}).encode()
        status, seconds = _post(f"{base}/link", one, token, timeout_s=600)
        rows.append({"trial": "link_1_x_20000_chars_no_sentence_break", "http_status": status, "seconds": round(seconds, 3)})
        codes = [_post(f"{base}/link", json.dumps({"text": "青光眼"}).encode())[0] for _ in range(70)]
        rows.append({"trial": "link_70_requests_in_a_row_one_address", "http_status": {str(c): codes.count(c) for c in set(codes)}})
        return rows
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status in (200, 503)
    except urllib.error.HTTPError as exc:
        return exc.code == 503
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return False


@trial
def linking_time_by_length(h: Harness) -> list[dict[str, Any]]:
    """Linking one text with no sentence break, by length: linear time gives 8x the seconds for 8x the text. Each
    length's median of 5 rounds, after a warm-up (the first text linked also pays for loading the negation rules)."""
    from encoders.linking import link_mentions, load_linker

    linker = load_linker(h.base, h.graph, semantic=False)
    unit = "青光眼 not glaucoma "
    link_mentions([unit * 50], linker)
    seconds = {}
    for n in (1_000, 2_000, 4_000, 8_000, 20_000):
        text = (unit * (n // len(unit) + 1))[:n]
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            link_mentions([text], linker)
            rounds.append(time.perf_counter() - started)
        seconds[n] = round(statistics.median(rounds), 4)
    return [{"trial": "linking_time_by_length", "median_seconds_by_chars": seconds,
             "ratio_8000_over_1000": round(seconds[8_000] / max(seconds[1_000], 1e-6), 1)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default=",".join(TRIALS), help=f"comma-separated, from: {', '.join(TRIALS)}")
    parser.add_argument("--videos", type=int, default=24, help="decodable videos per batch (plus 2 corrupt)")
    parser.add_argument("--work", type=Path, default=None, help="where the SYNTHETIC sets, model and logs go")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    names = [n.strip() for n in args.trials.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRIALS]
    if unknown:
        parser.error(f"unknown trials: {', '.join(unknown)}")
    work = args.work or Settings.from_env().home / "fault-trials"
    harness = Harness(work, args.videos)
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            started = time.monotonic()
            print(f"trial {name} …", file=sys.stderr, flush=True)
            try:
                rows.extend(TRIALS[name](harness))
            except Exception as exc:  # noqa: BLE001 - a trial that breaks is reported, and the others still run
                rows.append({"trial": name, "error": f"{type(exc).__name__}: {exc}"})
            print(f"trial {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            if args.out:
                args.out.write_text(json.dumps(_report(rows, harness), indent=2, ensure_ascii=False))
    finally:
        harness.close()
    print(json.dumps(_report(rows, harness), indent=2, ensure_ascii=False))


def _report(rows: list[dict[str, Any]], h: Harness) -> dict[str, Any]:
    return {"bench": "fault_trials", "data": "SYNTHETIC demo videos (ovp demo-data) and a tiny model trained on them",
            "model_version": h.model_version, "machine": f"{os.cpu_count()} CPU cores", "trials": rows,
            "peak_rss_mb_of_this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


if __name__ == "__main__":
    main()
