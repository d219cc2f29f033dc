"""Latency and throughput of the API served by gunicorn: p50/p99 and requests/s at several concurrency levels, for
entity lookup or entity linking. Prints JSON.

Starts ``gunicorn -c api/gunicorn.conf.py api.wsgi:app`` with 2 workers on 127.0.0.1 on a free port, warms it up,
then for each level runs a bounded number of requests from that many threads, each with its own keep-alive
``http.client`` connection; a level stops early at its time cap. The requests are ``GET /entities?q=...`` (Chinese
and English terms in turn; ``--endpoint entities``, the default) or ``POST /link`` with one typical caption each
(the hand-labelled captions of ``tests/data/captions_gold.jsonl``, all under 300 characters, in turn;
``--endpoint link``). With ``--against REV`` the code of that git revision is served too (``git archive`` to a
temporary folder, its own gunicorn on another port) and each level runs on both servers, one after the other, so
that the two are measured side by side on the same machine. Gunicorn is stopped (SIGTERM to the processes this
script started) at the end, also on errors.

Usage: ``python bench/api_latency.py [--endpoint entities|link] [--against REV] [--repeat 1] [--requests 300]
[--levels 1,8,32] [--workers 2] [--cap-s 60]``
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
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
TERMS = ["青光眼", "pink eye", "白内障", "myopia", "老花眼", "dry eye", "glaucoma", "飞蚊症", "retinal detachment", "斜视"]
GOLD_FILE = ROOT / "tests" / "data" / "captions_gold.jsonl"
#: A typical caption for POST /link (longer ones are not typical; the API accepts up to OVP_MAX_TEXT_CHARS).
TYPICAL_CAPTION_CHARS = 300


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, root: Path = ROOT) -> subprocess.Popen:
    """gunicorn with the project's config, ``workers`` processes, no access log (it would dominate the timing),
    serving the code under ``root``."""
    command = [
        sys.executable, "-m", "gunicorn", "-c", str(root / "api" / "gunicorn.conf.py"),
        "-w", str(workers), "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "--log-level", "warning",
        "api.wsgi:app",
    ]
    return subprocess.Popen(command, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, start_new_session=True)


def stop_gunicorn(process: subprocess.Popen) -> None:
    """SIGTERM to the arbiter we started (it stops its workers), SIGKILL if it has not exited in 20 s; then SIGKILL
    to whatever is left of its process group (its own session: a worker stuck in a request outlives its arbiter)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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

    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self.port = port
        self.timeout_s = timeout_s

    def get(self, path: str) -> tuple[int, float]:
        return self.send(("GET", path, None))

    def send(self, request: tuple[str, str, bytes | None]) -> tuple[int, float]:
        """``(method, path, JSON body or None)`` → (status, seconds); status 0 when the connection failed."""
        method, path, body = request
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                             timeout=self.timeout_s)
        started = time.perf_counter()
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (ConnectionError, OSError, http.client.HTTPException):
            connection.close()
            self._local.connection = None
            status = 0
        return status, time.perf_counter() - started


def lookup_requests(count: int) -> list[tuple[str, str, bytes | None]]:
    """``GET /entities?q=<term>&limit=10``, the terms in turn."""
    return [("GET", f"/entities?q={quote(TERMS[i % len(TERMS)])}&limit=10", None) for i in range(count)]


def typical_captions() -> list[str]:
    """The hand-labelled captions of at most :data:`TYPICAL_CAPTION_CHARS` characters."""
    texts = [json.loads(line)["text"] for line in GOLD_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [t for t in texts if len(t) <= TYPICAL_CAPTION_CHARS]


def link_requests(count: int) -> list[tuple[str, str, bytes | None]]:
    """``POST /link`` with ``{"text": caption}``, the typical captions in turn."""
    captions = typical_captions()
    return [("POST", "/link", json.dumps({"text": captions[i % len(captions)]}).encode()) for i in range(count)]


ENDPOINTS = {
    "entities": ("GET /entities?q=<term>&limit=10", lookup_requests),
    "link": ('POST /link {"text": <caption of at most 300 characters>}', link_requests),
}


def run_level(port: int, concurrency: int, requests: int, cap_s: float, endpoint: str = "entities",
              timeout_s: float = 30.0) -> dict[str, Any]:
    """``requests`` requests to ``endpoint`` from ``concurrency`` threads (stops starting new ones after ``cap_s``)."""
    client = Client(port, timeout_s)
    paths = ENDPOINTS[endpoint][1](requests)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + cap_s

    def one(request: tuple[str, str, bytes | None]) -> None:
        nonlocal errors
        if time.monotonic() > deadline:
            return
        status, seconds = client.send(request)
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


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One level's runs: the run itself when there is one, else the medians of p50, p99 and requests/s with every
    run listed."""
    if len(runs) == 1:
        return runs[0]

    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {"concurrency": runs[0]["concurrency"], "repeats": len(runs), "median_p50_ms": median("p50_ms"),
            "median_p99_ms": median("p99_ms"), "median_requests_per_s": median("requests_per_s"),
            "errors": sum(r["errors"] for r in runs), "runs": runs}


def warm_up(port: int, concurrency: int, requests: int, endpoint: str, rounds: int = 20) -> None:
    """Rounds of ``requests`` requests until one has every request answered within a second: every worker process
    has then opened its pool, cached its plans and, for /link, built its linker (the first /link of each process
    reads the knowledge base, seconds on a busy machine). Gunicorn hands each request to whichever worker takes it,
    so a round of concurrent requests reaches every worker."""
    if endpoint != "entities":
        # every process opens its graph handle first: before 043bf00 a process whose first request was POST /link
        # hung (its linker's build waited for the graph handle's lock), and --against may name such a revision
        run_level(port, 16, 64, cap_s=600.0, endpoint="entities", timeout_s=300.0)
    for _ in range(rounds):
        level = run_level(port, concurrency, requests, cap_s=600.0, endpoint=endpoint, timeout_s=300.0)
        if level["errors"] == 0 and level["p99_ms"] is not None and level["p99_ms"] < 1000:
            return
    log.warning("the server on port %d still answers slowly after %d warm-up rounds", port, rounds)


def export_revision(rev: str, into: Path) -> Path:
    """The files of ``rev`` (``git archive``) under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="entities", help="what the requests ask")
    parser.add_argument("--against", metavar="REV", help="also serve the code of this git revision, side by side")
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--cap-s", type=float, default=60.0, help="time cap per level, seconds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per level (per side, taking turns); with more than one, medians are reported")
    parser.add_argument("--warmup", type=int, default=40,
                        help="requests per warm-up round (rounds go on until one is answered quickly throughout)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="ovp-api-latency-") as tmp:
        roots = {"this_tree": ROOT}
        if args.against:
            roots = {args.against: export_revision(args.against, Path(tmp)), **roots}
        servers: dict[str, tuple[int, subprocess.Popen]] = {}
        try:
            for side, root in roots.items():
                port = free_port()
                servers[side] = (port, start_gunicorn(port, args.workers, root))
            health = {side: wait_ready(port, process) for side, (port, process) in servers.items()}
            # Warm-up from several threads so that every worker process has its pool open and its plans cached (and,
            # for /link, its linker built: the first request of each worker reads the knowledge base).
            for port, _ in servers.values():
                warm_up(port, min(8, args.workers * 4), args.warmup, args.endpoint)
            levels: dict[str, list[dict[str, Any]]] = {side: [] for side in servers}
            for c in args.levels.split(","):
                runs: dict[str, list[dict[str, Any]]] = {side: [] for side in servers}
                for _ in range(args.repeat):
                    for side, (port, _) in servers.items():  # the sides take turns at each level
                        runs[side].append(run_level(port, int(c), args.requests, args.cap_s, args.endpoint))
                for side in servers:
                    levels[side].append(summarise(runs[side]))
        finally:
            for _, process in servers.values():
                stop_gunicorn(process)
    threads = 4  # api/gunicorn.conf.py: gthread worker, 4 threads each
    report: dict[str, Any] = {
        "benchmark": "api_entity_lookup" if args.endpoint == "entities" else "api_link",
        "endpoint": ENDPOINTS[args.endpoint][0],
        "server": {"gunicorn_workers": args.workers, "threads_per_worker": threads, "worker_class": "gthread"},
        "neo4j": health["this_tree"].get("neo4j", {}).get("version"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg": os.getloadavg()},
    }
    if args.endpoint == "entities":
        report["terms"] = TERMS
    else:
        captions = typical_captions()
        report["captions"] = {"file": str(GOLD_FILE.relative_to(ROOT)), "count": len(captions),
                              "max_chars": max(map(len, captions))}
    report["levels"] = levels["this_tree"] if not args.against else levels
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
