"""Entity-lookup latency and throughput of the API served by gunicorn: p50/p99 and requests/s at several concurrency
levels. Prints JSON.

Starts ``gunicorn -c api/gunicorn.conf.py api.wsgi:app`` with 2 workers on 127.0.0.1 on a free port, warms it up,
then for each level runs a bounded number of ``GET /entities?q=...`` requests (Chinese and English terms in turn)
from that many threads, each with its own keep-alive ``http.client`` connection; a level stops early at its time
cap. Gunicorn is stopped (SIGTERM to the process this script started) at the end, also on errors.

Usage: ``python bench/api_latency.py [--requests 300] [--levels 1,8,32] [--workers 2] [--cap-s 60]``
Needs Neo4j with the knowledge graph built, and the broker (only for the readiness check on /health).
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
TERMS = ["青光眼", "pink eye", "白内障", "myopia", "老花眼", "dry eye", "glaucoma", "飞蚊症", "retinal detachment", "斜视"]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    """gunicorn with the project's config, ``workers`` processes, no access log (it would dominate the timing)."""
    command = [
        sys.executable, "-m", "gunicorn", "-c", str(ROOT / "api" / "gunicorn.conf.py"),
        "-w", str(workers), "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "--log-level", "warning",
        "api.wsgi:app",
    ]
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True)


def stop_gunicorn(process: subprocess.Popen) -> None:
    """SIGTERM to the arbiter we started (it stops its workers), SIGKILL if it has not exited in 20 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(port: int, process: subprocess.Popen, timeout_s: float = 60.0) -> dict[str, Any]:
    """Poll /health until it answers 200; return its body."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {process.returncode} before answering")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            response = connection.getresponse()
            body = json.loads(response.read())
            connection.close()
            if response.status == 200:
                return body
            raise RuntimeError(f"/health answered {response.status}: {body}")
        except (ConnectionError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"gunicorn did not answer on port {port} within {timeout_s} s")


class Client:
    """One keep-alive connection per thread."""

    _local = threading.local()

    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str) -> tuple[int, float]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.perf_counter()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (ConnectionError, OSError, http.client.HTTPException):
            connection.close()
            self._local.connection = None
            status = 0
        return status, time.perf_counter() - started


def run_level(port: int, concurrency: int, requests: int, cap_s: float, paths: list[str] | None = None) -> dict[str, Any]:
    """``requests`` GETs from ``concurrency`` threads (stops starting new ones after ``cap_s``): ``paths`` in turn,
    or entity lookups of :data:`TERMS`."""
    client = Client(port)
    base = paths or [f"/entities?q={quote(term)}&limit=10" for term in TERMS]
    paths = [base[i % len(base)] for i in range(requests)]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + cap_s

    def one(path: str) -> None:
        nonlocal errors
        if time.monotonic() > deadline:
            return
        status, seconds = client.get(path)
        with lock:
            if status == 200:
                latencies.append(seconds)
            else:
                errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, paths))
    wall = time.perf_counter() - started
    latencies.sort()
    done = len(latencies)
    return {
        "concurrency": concurrency,
        "requests": done + errors,
        "errors": errors,
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(1000 * latencies[min(done - 1, int(0.99 * done))], 2) if latencies else None,
        "mean_ms": round(1000 * statistics.fmean(latencies), 2) if latencies else None,
        "requests_per_s": round(done / wall, 1) if wall else None,
        "wall_s": round(wall, 2),
        "capped": time.monotonic() > deadline,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--cap-s", type=float, default=60.0, help="time cap per level, seconds")
    parser.add_argument("--warmup", type=int, default=40, help="requests sent before measuring (compiles query plans)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    port = free_port()
    process = start_gunicorn(port, args.workers)
    try:
        health = wait_ready(port, process)
        # Warm-up from several threads so that every worker process has its pool open and its plans cached.
        run_level(port, min(8, args.workers * 4), args.warmup, args.cap_s)
        levels = [run_level(port, int(c), args.requests, args.cap_s) for c in args.levels.split(",")]
    finally:
        stop_gunicorn(process)
    threads = 4  # api/gunicorn.conf.py: gthread worker, 4 threads each
    print(json.dumps({
        "benchmark": "api_entity_lookup",
        "endpoint": "GET /entities?q=<term>&limit=10",
        "terms": TERMS,
        "server": {"gunicorn_workers": args.workers, "threads_per_worker": threads, "worker_class": "gthread"},
        "neo4j": health.get("neo4j", {}).get("version"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "levels": levels,
    }, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
