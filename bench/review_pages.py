"""The video page's time to first byte and full load, with N profiled SYNTHETIC videos in the graph (default 500).

Seeds N profiled videos (ids ``benchpage_*``, each pointing at one small H.264 file under a temporary media root),
serves the app on a loopback port (Werkzeug's threaded server, in this process) and opens a sample of video pages:

- ``ttfb_ms``: time to the first byte of the HTML over a raw HTTP connection (the server's work: Neo4j queries and
  rendering), anonymous and as a signed-in reviewer;
- ``load_ms``: headless Chromium's navigation timing from the request to the load event, signed in, i.e. with the
  player's metadata request and the four keyframe thumbnails; ``load_cold_ms`` is the first visit of each page (the
  thumbnails are made from the video file then), ``load_warm_ms`` a second visit (thumbnails from the disk cache;
  the browser cache is bypassed with a fresh query string).

Prints one JSON object; every number is on SYNTHETIC data. The seeded videos, their reviewer and the thumbnails are
removed at the end. Usage: ``python bench/review_pages.py [--videos 500] [--pages 20]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the shared synthetic-video, seeding and browser helpers

from api.app import create_app  # noqa: E402
from api.db import close_graph  # noqa: E402
from browser import headless_chromium, serve_app  # noqa: E402
from kg_builder.graph import Graph  # noqa: E402
from ovp.settings import Settings  # noqa: E402
from review_support import add_reviewer, delete_review_data, media_video, seed_profiled_videos  # noqa: E402

PREFIX = "benchpage_"


def ttfb_ms(base: str, path: str, cookie: str | None) -> float:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Cookie": cookie} if cookie else {}
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read(1)
    elapsed = (time.perf_counter() - started) * 1000
    response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return elapsed


def navigation_ms(driver, url: str) -> dict[str, float]:
    driver.get(url)
    timing = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {ttfb: n.responseStart - n.requestStart, load: n.loadEventEnd - n.startTime,"
        " images: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length};")
    return timing


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
            "min": round(ordered[0], 1), "max": round(ordered[-1], 1), "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--pages", type=int, default=20, help="video pages sampled (evenly over the seeded ids)")
    args = parser.parse_args()
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="ovp-bench-pages-") as tmp, Graph.connect(settings) as graph:
        media_root = Path(tmp) / "media"
        media = media_video(media_root, "clip")
        cache = Path(tmp) / "cache"
        delete_review_data(graph, PREFIX)
        started = time.perf_counter()
        ids = seed_profiled_videos(graph, PREFIX, args.videos, media)
        seed_s = time.perf_counter() - started
        total_videos = graph.read("MATCH (v:Video) RETURN count(v) AS n")[0]["n"]
        reviewer = add_reviewer(graph, f"{PREFIX}reviewer")
        app = create_app(dataclasses.replace(settings, media_roots=str(media_root), cache_dir=cache,
                                             secret_key=uuid.uuid4().hex),
                         {"RATELIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex}"})
        sample = ids[:: max(1, len(ids) // args.pages)][: args.pages]
        try:
            with serve_app(app) as base, headless_chromium() as driver:
                for video_id in sample[:3]:  # warm the connection pool and Jinja's template cache
                    ttfb_ms(base, f"/ui/videos/{video_id}", None)
                anonymous = [ttfb_ms(base, f"/ui/videos/{v}", None) for v in sample]
                driver.get(f"{base}/ui/sign-in")
                driver.find_element("id", "name").send_keys(reviewer.name)
                driver.find_element("id", "password").send_keys(reviewer.password)
                driver.find_element("id", "sign-in").click()
                cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
                signed_in = [ttfb_ms(base, f"/ui/videos/{v}", cookie) for v in sample]
                cold = [navigation_ms(driver, f"{base}/ui/videos/{v}") for v in sample]
                warm = [navigation_ms(driver, f"{base}/ui/videos/{v}?again=1") for v in sample]
                listing = [ttfb_ms(base, "/ui/videos", cookie) for _ in range(5)]
        finally:
            close_graph(app)
            delete_review_data(graph, PREFIX)
    print(json.dumps({
        "bench": "review_pages",
        "data": f"SYNTHETIC: {args.videos} profiled videos seeded ({total_videos} videos in the graph in all)",
        "pages_sampled": len(sample),
        "server": "Werkzeug threaded server in the bench process, Neo4j on 127.0.0.1",
        "ttfb_ms_anonymous": summary(anonymous),
        "ttfb_ms_signed_in": summary(signed_in),
        "browser_ttfb_ms": summary([c["ttfb"] for c in cold]),
        "load_cold_ms": summary([c["load"] for c in cold]),
        "load_warm_ms": summary([w["load"] for w in warm]),
        "thumbnails_loaded_per_page": min(c["images"] for c in cold),
        "video_list_ttfb_ms": summary(listing),
        "seed_s": round(seed_s, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1min": round(os.getloadavg()[0], 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
