"""The real-video path of docs/real-videos.md, end to end, as a user runs it: a yt-dlp folder (the info-file fixtures
with real-codec media: H.264, VP9 and AV1 WebM, HEVC, a sideways phone video, VFR, vertical 1080×1920, and one with
audio only) → ``ovp import ytdlp --weak-diseases`` → ``ovp train`` → ``ovp profile --submit`` to a real Celery worker
on the real Redis and Neo4j → ``ovp query``. Every command runs as a separate process, as from a shell. The model is
tiny (this pins the path, not its quality)."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fusion.manifest import read_manifest
from kg_builder.graph import Graph
from ovp.settings import PROJECT_ROOT
from worker_support import WorkerProcess, worker_env
from ytdlp_folder import build_download_folder, fixture_infos

pytestmark = [pytest.mark.neo4j, pytest.mark.redis, pytest.mark.slow]

#: Media per video, in folder order: every platform format once or more, and the audio-only file for one video.
MEDIA_ORDER = ("h264", "vp9", "av1", "hevc", "rotated", "vfr", "vertical")


def ovp(env: dict[str, str], *args: str, timeout_s: float = 900) -> str:
    """Run ``ovp ARGS`` as a process; returns stdout, fails the test with stderr on a non-zero exit."""
    done = subprocess.run([sys.executable, "-m", "cli", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout_s)
    assert done.returncode == 0, f"ovp {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture()
def download(tmp_path: Path, real_media: dict[str, Path], graph: Graph, built_kg):
    """15 videos (3 × the 5 fixtures) with ids unique to this run; the graph's copies are removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    total = 3 * len(fixture_infos())

    def media(n: int, info: dict) -> Path:
        return real_media["audio_only"] if n == total - 1 else real_media[MEDIA_ORDER[n % len(MEDIA_ORDER)]]

    folder = tmp_path / "downloads"
    build_download_folder(folder, copies=3, media=media, id_suffix=f"x{tag}")
    yield folder, tag
    graph.write("MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile) WHERE v.id ENDS WITH $tag DETACH DELETE p", {"tag": tag})
    graph.write("MATCH (b:Batch)-[:CONTAINS]->(v:Video) WHERE v.id ENDS WITH $tag DETACH DELETE b", {"tag": tag})
    graph.write("MATCH (v:Video) WHERE v.id ENDS WITH $tag DETACH DELETE v", {"tag": tag})


def test_a_ytdlp_folder_goes_from_import_to_a_query(download, tmp_path: Path) -> None:
    folder, tag = download
    env = worker_env(tmp_path / "model", tmp_path / "home")
    manifest = tmp_path / "manifest.jsonl"

    said = ovp(env, "import", "ytdlp", str(folder), "--out", str(manifest), "--weak-diseases")
    assert "15 videos imported from 15 info files, 0 skipped" in said
    entries = read_manifest(manifest)
    assert {e.platform for e in entries} == {"youtube", "bilibili", "douyin", "tiktok", "vimeo"}
    assert all(e.engagement_read_at is not None and e.quality is None for e in entries)
    weak = {e.id: e.diseases for e in entries if e.diseases_weak}
    # The negated "not macular degeneration" of the YouTube transcript proposes nothing; the glaucoma it names does.
    assert weak[f"youtube:gl4uc0ma001x{tag}"] == ("OVP:glaucoma",)

    said = ovp(env, "train", str(manifest), "--out", str(tmp_path / "model"), "--epochs", "2")
    assert "1 videos failed" in said  # the audio-only one: no keyframes to learn from
    # No video has a quality label: that head is reported, not trained on nothing; the weak labels are named.
    assert "not trained: the quality head (no training video has a quality label)" in said
    card = (tmp_path / "model" / "model_card.md").read_text(encoding="utf-8")
    assert "tasks: disease, popularity" in card and "**WEAK disease labels**" in card

    worker = WorkerProcess(env, tmp_path / "worker.log", f"e2e{tag}")
    try:
        worker.wait_ready()
        out = ovp(env, "profile", str(manifest), "--submit", "--wait", "600", "--json")
    finally:
        worker.stop()
    report = json.loads(out[out.index("{"):])
    batch = report["batch"]
    assert (batch["status"], batch["total"], batch["done"], batch["failed"]) == ("finished", 15, 14, 1)
    [failure] = batch["failures"]
    assert failure["video_id"] == f"bilibili:BV1Ey4y1q7Lh2x{tag}" and "no video stream" in failure["reason"]
    assert len(report["profiles"]) == 14
    assert all(p["quality"] is None and p["popularity_pct"] is not None for p in report["profiles"])

    rows = json.loads(ovp(env, "query", "entity_videos", "-p", "entity_id=OVP:cataract", "-p", "limit=200", "--json"))
    ours = [r for r in rows if r["video_id"].endswith(tag)]
    # Vimeo's cataract is said in its title, caption and transcript; Bilibili's "也不是白内障" is negated, so absent.
    assert sorted(r["platform"] for r in ours) == ["vimeo"] * 3
    assert all({"title", "transcript"} <= set(r["fields"]) for r in ours)
