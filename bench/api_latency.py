"""Entity-lookup and linking latency and throughput of the API served by gunicorn: p50/p99 and requests/s at several
concurrency levels, for this tree and (``--base-tree``) another checkout side by side in one run. Prints JSON.

Starts ``gunicorn -c api/gunicorn.conf.py api.wsgi:app`` with 2 workers on 127.0.0.1 on a free port (one per tree,
each from its own checkout), warms it up, then for each level runs a bounded number of ``GET /entities?q=...``
requests (``POST /link`` for the ``link`` mix) from that many threads, each with its own keep-alive ``http.client`` connection; a level stops early at its
time cap. With two trees the levels alternate between them (base first at odd levels, this tree first at even ones).
Gunicorn is stopped (SIGTERM to the processes this script started) at the end, also on errors.

Three mixes of questions (``--mixes``):

* ``terms``: the ten terms below in turn, Chinese and English (what issue 37's baseline measured): a server that
  remembers answers answers these from memory after the first time.
* ``cold``: the 200 fixed queries of ``bench/data/entity_queries.jsonl`` in order, each request a question the server
  has not been asked before (the ``limit`` goes 10, 11, 12, … with each pass over the list), so every answer is
  computed.
* ``link``: ``POST /link`` with ``{"text": caption}`` for the captions of ``tests/data/captions_gold.jsonl`` of at
  most 300 characters (issue 37's "typical caption"), in turn.

With ``--base-tree``, both servers first answer the 200 fixed queries (limit 10) and the JSON bodies are compared:
``equivalence`` reports how many are identical and lists the ones that differ; with the ``link`` mix the same is done
for the mentions of every caption (``link_equivalence``).

Usage: ``python bench/api_latency.py [--base-tree /path/to/base-checkout] [--requests 300] [--levels 1,8,32]
[--mixes terms,cold,link] [--workers 2] [--cap-s 60]``
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
QUERIES_FILE = ROOT / "bench" / "data" / "entity_queries.jsonl"
CAPTIONS_FILE = ROOT / "tests" / "data" / "captions_gold.jsonl"
#: The longest caption the ``link`` mix sends: issue 37's "typical caption".
TYPICAL_CAPTION_CHARS = 300
TERMS = ["青光眼", "pink eye", "白内障", "myopia", "老花眼", "dry eye", "glaucoma", "飞蚊症", "retinal detachment", "斜视"]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, tree: Path = ROOT) -> subprocess.Popen:
    """gunicorn serving the checkout ``tree`` with its config, ``workers`` processes, no access log (it would
    dominate the timing)."""
    command = [
        sys.executable, "-m", "gunicorn", "-c", str(tree / "api" / "gunicorn.conf.py"),
        "-w", str(workers), "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "--log-level", "warning",
        "api.wsgi:app",
    ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen(command, cwd=tree, env=env, start_new_session=True)


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

    def get(self, path: str) -> tuple[int, float, bytes]:
        """(status, seconds, body) of ``GET path``; status 0 when the connection failed."""
        return self.send(Request(path))

    def send(self, request: "Request") -> tuple[int, float, bytes]:
        """(status, seconds, body) of ``request``; status 0 when the connection failed."""
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get(self.port)
        if connection is None:
            connection = connections[self.port] = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.perf_counter()
        body = b""
        try:
            if request.body is None:
                connection.request("GET", request.path)
            else:
                connection.request("POST", request.path, body=request.body,
                                   headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            body = response.read()
            status = response.status
        except (ConnectionError, OSError, http.client.HTTPException):
            connection.close()
            connections.pop(self.port, None)
            status = 0
        return status, time.perf_counter() - started, body


@dataclass(frozen=True)
class Request:
    """One request of a mix: ``GET path``, or ``POST path`` with a JSON ``body``."""

    path: str
    body: bytes | None = None


def read_queries(path: Path = QUERIES_FILE) -> list[str]:
    """The fixed lookup queries (``q`` of each JSON line)."""
    return [json.loads(line)["q"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_captions(path: Path = CAPTIONS_FILE, max_chars: int = TYPICAL_CAPTION_CHARS) -> list[str]:
    """The gold captions (``text`` of each JSON line) of at most ``max_chars`` characters, in file order."""
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [text for text in texts if len(text) <= max_chars]


def link_request(text: str) -> Request:
    return Request("/link", json.dumps({"text": text}, ensure_ascii=False).encode("utf-8"))


class Questions:
    """The requests of one mix for one server; ``cold`` never repeats a (query, limit) pair for that server."""

    def __init__(self, mix: str, queries: list[str], captions: list[str]) -> None:
        if mix not in ("terms", "cold", "link"):
            raise ValueError(f"unknown mix {mix!r}; expected terms, cold or link")
        self.mix, self.queries, self.captions, self.asked = mix, queries, captions, 0

    def take(self, n: int) -> list[Request]:
        if self.mix == "terms":
            return [Request(f"/entities?q={quote(TERMS[i % len(TERMS)])}&limit=10") for i in range(n)]
        if self.mix == "link":
            requests = [link_request(self.captions[i % len(self.captions)]) for i in range(self.asked, self.asked + n)]
            self.asked += n
            return requests
        # The equivalence pass asked every query at limit 10; pass p asks them at limit 11 + p.
        paths = []
        for i in range(self.asked, self.asked + n):
            paths.append(Request(
                f"/entities?q={quote(self.queries[i % len(self.queries)])}&limit={11 + i // len(self.queries)}"))
        self.asked += n
        return paths


def compare_answers(old_port: int, new_port: int, requests: dict[str, Request]) -> dict[str, Any]:
    """Send both servers every request (keyed by what it asks) and compare the statuses and JSON bodies."""
    old_client, new_client = Client(old_port), Client(new_port)
    differ = []
    for asked, request in requests.items():
        old, new = old_client.send(request), new_client.send(request)
        if (old[0], json.loads(old[2] or b"null")) != (new[0], json.loads(new[2] or b"null")):
            differ.append({"asked": asked, "old": json.loads(old[2] or b"null"), "new": json.loads(new[2] or b"null")})
    return {"requests": len(requests), "identical": len(requests) - len(differ), "differ": differ}


def run_level(port: int, concurrency: int, requests: list[Request], cap_s: float) -> dict[str, Any]:
    """The ``requests`` from ``concurrency`` threads (stops starting new ones after ``cap_s``)."""
    client = Client(port)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + cap_s

    def one(request: Request) -> None:
        nonlocal errors
        if time.monotonic() > deadline:
            return
        status, seconds, _ = client.send(request)
        with lock:
            if status == 200:
                latencies.append(seconds)
            else:
                errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, requests))
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
    parser.add_argument("--base-tree", type=Path, help="another checkout (e.g. a worktree of the base commit) to serve "
                        "side by side with this tree")
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--mixes", default="terms,cold", help="comma-separated question mixes: terms, cold, link")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--cap-s", type=float, default=60.0, help="time cap per level, seconds")
    parser.add_argument("--warmup", type=int, default=40, help="requests sent before measuring (compiles query plans)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    trees = {"new": ROOT} if args.base_tree is None else {"old": args.base_tree.resolve(), "new": ROOT}
    queries = read_queries()
    captions = read_captions()
    mixes = [mix.strip() for mix in args.mixes.split(",")]
    ports = {name: free_port() for name in trees}
    processes: dict[str, subprocess.Popen] = {}
    result: dict[str, Any] = {}
    try:
        for name, tree in trees.items():
            processes[name] = start_gunicorn(ports[name], args.workers, tree)
        health = {name: wait_ready(ports[name], processes[name]) for name in trees}
        for name in trees:
            # Warm-up from several threads so that every worker process has its pool open and its plans cached.
            # The link mix warms up the linker too: each worker process builds it on its first POST /link.
            for mix in ("terms", "link") if "link" in mixes else ("terms",):
                warmup = Questions(mix, queries, captions).take(args.warmup)
                run_level(ports[name], min(8, args.workers * 4), warmup, args.cap_s)
        if "old" in trees:
            result["equivalence"] = compare_answers(
                ports["old"], ports["new"], {q: Request(f"/entities?q={quote(q)}&limit=10") for q in queries})
            if "link" in mixes:
                result["link_equivalence"] = compare_answers(
                    ports["old"], ports["new"], {text: link_request(text) for text in captions})
        questions = {(name, mix): Questions(mix, queries, captions) for name in trees for mix in mixes}
        for mix in mixes:
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for index, level in enumerate(int(c) for c in args.levels.split(",")):
                order = list(trees) if index % 2 == 0 else list(reversed(trees))
                for name in order:
                    rows[name].append(run_level(ports[name], level, questions[name, mix].take(args.requests), args.cap_s))
            result[mix] = rows
    finally:
        for process in processes.values():
            stop_gunicorn(process)
    threads = 4  # api/gunicorn.conf.py: gthread worker, 4 threads each
    print(json.dumps({
        "benchmark": "api_entity_lookup",
        "endpoints": {"terms": "GET /entities?q=<term>&limit=10", "cold": "GET /entities?q=<query>&limit=<10+pass>",
                      "link": 'POST /link {"text": <caption>}'},
        "trees": {name: str(tree) for name, tree in trees.items()},
        "terms": TERMS,
        "queries_file": str(QUERIES_FILE.relative_to(ROOT)),
        "captions": {"file": str(CAPTIONS_FILE.relative_to(ROOT)), "max_chars": TYPICAL_CAPTION_CHARS,
                     "count": len(captions)},
        "server": {"gunicorn_workers": args.workers, "threads_per_worker": threads, "worker_class": "gthread"},
        "neo4j": health["new"].get("neo4j", {}).get("version"),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "platform": platform.platform()},
        **result,
    }, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
