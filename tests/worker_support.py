"""Helpers for the worker tests: a tiny SYNTHETIC demo batch, a small trained model, real Celery worker processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from kg_builder.graph import Graph
from ovp.settings import PROJECT_ROOT, Settings

def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


#: Redis databases of their own on the configured server, so the tests never see (or purge) a service's messages.
TEST_BROKER = _redis_db(Settings.from_env().broker_url, 7)
TEST_BACKEND = _redis_db(Settings.from_env().broker_url, 8)


def worker_env(model_dir: Path, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a test worker: the default encoders with K = 4 keyframes, small chunks, and a short
    visibility timeout so a killed worker's chunk comes back within the test."""
    env = {
        **os.environ,
        "OVP_HOME": str(home),
        "OVP_MODEL_DIR": str(model_dir),
        "OVP_BROKER_URL": TEST_BROKER,
        "OVP_RESULT_BACKEND": TEST_BACKEND,
        "OVP_KEYFRAMES": "4",
        "OVP_DEVICE": "cpu",
        "OVP_CHUNK_SIZE": "3",
        "OVP_VISIBILITY_TIMEOUT_S": "20",
        "OVP_LOG_LEVEL": "INFO",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


class WorkerProcess:
    """A real ``celery -A worker.app worker`` in its own process group (so SIGKILL reaches its pool children too).

    ``concurrency``: pool processes; ``beat``: run celery beat inside it (``-B``: the periodic reconciliation).
    """

    def __init__(self, env: dict[str, str], log_file: Path, name: str, *, concurrency: int = 1, beat: bool = False) -> None:
        self.log_file = log_file
        self._log = log_file.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", "batches,profiles",
             "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO", "-n", f"{name}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat", *(["-B"] if beat else [])],
            cwd=PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 240.0) -> None:
        """Until the worker says it is ready (models load in the pool process before that)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_file}")
            if b" ready." in self.log_file.read_bytes():
                return
            time.sleep(0.5)
        raise TimeoutError(f"worker not ready after {timeout_s} s; see {self.log_file}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): nothing gets to acknowledge or clean up."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def graph_counts(graph: Graph, video_ids: list[str]) -> dict[str, int]:
    """Nodes and relationships hanging off these videos: what a repeated batch must not grow."""
    return graph.read(
        """
        UNWIND $ids AS id
        MATCH (v:Video {id: id})
        RETURN count(v) AS videos,
               sum(COUNT { (v)-[:MENTIONS]->() }) AS mentions,
               sum(COUNT { (v)-[:HAS_PROFILE]->() }) AS profiles,
               sum(COUNT { (v)-[:HAS_PROFILE]->(:Profile {latest: true}) }) AS latest,
               sum(COUNT { (v)-[:HAS_PROFILE]->()-[:PREDICTS]->() }) AS predicts
        """,
        {"ids": video_ids},
    )[0]


def latest_profiles(graph: Graph, video_ids: list[str]) -> dict[str, int]:
    """Per video: how many of its profiles are marked latest."""
    rows = graph.read(
        "UNWIND $ids AS id MATCH (v:Video {id: id}) RETURN v.id AS id, COUNT { (v)-[:HAS_PROFILE]->(:Profile {latest: true}) } AS n",
        {"ids": video_ids},
    )
    return {row["id"]: row["n"] for row in rows}
