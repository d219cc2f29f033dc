"""Screenshots of the review pages for docs/screenshots/, taken through headless Chromium on the graph as it is.

Run it after profiling SYNTHETIC videos (e.g. ``ovp demo-data .ovp/demo`` → ``ovp train`` → ``ovp profile``), with
``--media-root`` the folder of their files. It adds two reviewers (``screenshot_a``, ``screenshot_b``) whose ratings
of the demo videos are SYNTHETIC too (drawn near each video's manifest GQS, so the agreement page has something to
show), signs in as one, saves full-page PNGs in English and Chinese, and removes the two reviewers and their ratings
again (``--keep`` leaves them).

Usage: ``python scripts/screenshots.py --media-root .ovp/demo --manifest .ovp/demo/manifest.jsonl``
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the shared browser helper

from api.accounts import add_rater  # noqa: E402
from api.app import create_app  # noqa: E402
from api.db import close_graph  # noqa: E402
from api.ratings import RatingInput, store_rating  # noqa: E402
from browser import headless_chromium, serve_app  # noqa: E402
from fusion.manifest import read_manifest  # noqa: E402
from kg_builder.graph import Graph  # noqa: E402
from ovp.settings import Settings  # noqa: E402
from review_support import add_reviewer, delete_review_data  # noqa: E402

PREFIX = "screenshot_"
OUT = ROOT / "docs" / "screenshots"


def synthetic_ratings(graph: Graph, manifest: Path, count: int, seed: int = 0) -> None:
    """Two reviewers rate ``count`` videos of the manifest: GQS near the manifest's label, noisy yes/no items."""
    rng = random.Random(seed)
    entries = [e for e in read_manifest(manifest) if e.quality is not None][:count]
    reviewers = [add_rater(graph, f"{PREFIX}{name}").name for name in ("a", "b")]
    for i, entry in enumerate(entries):
        for reviewer in reviewers if i % 3 else reviewers[:1]:
            gqs = min(5, max(1, entry.quality + rng.choice((-1, 0, 0, 0, 1))))
            discern = tuple(rng.random() < 0.3 + 0.12 * gqs for _ in range(5))
            jama = tuple(rng.random() < 0.5 for _ in range(4))
            diseases = tuple(entry.diseases or ()) if rng.random() < 0.85 else ()
            store_rating(graph, reviewer, entry.id, RatingInput(gqs=gqs, discern=discern, jama=jama, diseases=diseases,
                                                                note="SYNTHETIC rating (scripts/screenshots.py)"))


def full_page(driver, url: str, path: Path, width: int = 1360) -> None:
    driver.set_window_size(width, 900)
    driver.get(url)
    driver.execute_script("return document.readyState")
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(int(height) + 40, 6000))
    driver.get(url)  # again at the full height, so every image is in view and loaded
    driver.save_screenshot(str(path))
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media-root", required=True, type=Path)
    parser.add_argument("--manifest", required=True, type=Path, help="the SYNTHETIC manifest the videos came from")
    parser.add_argument("--video", help="the video to show (default: a rated one with the most kinds of open-tag "
                                          "evidence, then the most predicted diseases)")
    parser.add_argument("--entity", default="OVP:glaucoma")
    parser.add_argument("--query", default="青光眼 眼压高怎么办", help="what the search screenshots search for")
    parser.add_argument("--ratings", type=int, default=30, help="videos the two synthetic reviewers rate")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic reviewers and their ratings")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    settings = dataclasses.replace(Settings.from_env(), media_roots=str(args.media_root.resolve()),
                                   secret_key=uuid.uuid4().hex)
    with Graph.connect(settings) as graph:
        delete_review_data(graph, PREFIX)
        synthetic_ratings(graph, args.manifest, args.ratings)
        viewer = add_reviewer(graph, f"{PREFIX}viewer")
        video = args.video or graph.read(
            "MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true}) WHERE v.synthetic "
            "RETURN v.id AS id ORDER BY COUNT { (v)<-[:RATES]-() } DESC, "
            "size(COLLECT { MATCH (p)-[t:TAGGED]->() UNWIND t.sources AS s RETURN DISTINCT s }) DESC, "
            "COUNT { (p)-[:PREDICTS]->() } DESC, "
            "COUNT { (v)-[:MENTIONS]->() } DESC, v.id LIMIT 1")[0]["id"]
        app = create_app(settings, {"RATELIMIT_KEY_PREFIX": f"shots-{uuid.uuid4().hex}"})
        try:
            with serve_app(app) as base, headless_chromium() as driver:
                driver.get(f"{base}/ui/sign-in?lang=en")
                driver.find_element("id", "name").send_keys(viewer.name)
                driver.find_element("id", "password").send_keys(viewer.password)
                driver.find_element("id", "sign-in").click()
                for lang, suffix in (("en", ""), ("zh", "-zh")):
                    full_page(driver, f"{base}/ui/videos?lang={lang}", OUT / f"videos{suffix}.png")
                    full_page(driver, f"{base}/ui/videos/{video}?lang={lang}", OUT / f"video{suffix}.png")
                    full_page(driver, f"{base}/ui/search?lang={lang}&q={quote(args.query)}", OUT / f"search{suffix}.png")
                    full_page(driver, f"{base}/ui/entities/{args.entity}?lang={lang}&via=tagged",
                              OUT / f"entity{suffix}.png")
                driver.get(f"{base}/ui/videos?lang=en")
                full_page(driver, f"{base}/ui/queue", OUT / "queue.png")
                full_page(driver, f"{base}/ui/agreement", OUT / "agreement.png")
                full_page(driver, f"{base}/ui/batches", OUT / "batches.png")
        finally:
            close_graph(app)
            if not args.keep:
                delete_review_data(graph, PREFIX)


if __name__ == "__main__":
    main()
