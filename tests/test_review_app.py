"""The review app through Flask's test client against the real Neo4j and Redis: accounts, the JSON twin, ratings as
nodes (never overwritten, the latest per reviewer counts), the queue order, the export, CSRF, the sign-in rate limit
(counted in the real Redis), who may see what, and the media file with range requests.

Videos, reviewers and ratings start with ``reviewtest_`` and are deleted afterwards.
"""
from __future__ import annotations

import dataclasses
import json
import re
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask.testing import FlaskClient

from api.accounts import add_rater, check_password, check_token, remove_rater
from api.app import create_app
from api.db import close_graph
from fusion.consensus import export_manifest
from fusion.manifest import read_manifest
from kg_builder.graph import Graph
from kg_builder.store.batches import record_batch, record_failure
from kg_builder.store.ratings import latest_ratings, video_ratings
from kg_builder.store.reviews import review_queue
from kg_builder.store.rows import VideoMeta
from review_support import add_reviewer, app_settings, delete_review_data, media_video, profiled_video
from test_api import broker_url_for_tests, purge_test_queue

PREFIX = "reviewtest_"
API_TOKEN = "review-test-api-token"
UNCERTAIN = (0.2, 0.2, 0.2, 0.2, 0.2)
CERTAIN = (0.0, 0.0, 0.02, 0.96, 0.02)


@pytest.fixture(scope="module")
def data(graph: Graph, built_kg: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    delete_review_data(graph, PREFIX)
    root = tmp_path_factory.mktemp("media")
    outside = tmp_path_factory.mktemp("outside")
    ids = {name: f"{PREFIX}{name}" for name in ("certain", "uncertain", "middle", "escaped")}
    profiled_video(graph, ids["certain"], media_video(root, "certain"), quality_probs=CERTAIN, disease_prob=0.99)
    profiled_video(graph, ids["uncertain"], media_video(root, "uncertain"), quality_probs=UNCERTAIN, disease_prob=0.55)
    profiled_video(graph, ids["middle"], media_video(root, "middle"), quality_probs=(0.1, 0.1, 0.5, 0.2, 0.1),
                   disease_prob=0.8)
    profiled_video(graph, ids["escaped"], media_video(outside, "escaped"), quality_probs=CERTAIN)
    alice = add_reviewer(graph, f"{PREFIX}alice")
    bob = add_reviewer(graph, f"{PREFIX}bob")
    yield {"root": root, "ids": ids, "alice": alice, "bob": bob}
    delete_review_data(graph, PREFIX)


@pytest.fixture(scope="module")
def app(data: dict[str, Any]) -> Iterator[Any]:
    settings = app_settings(data["root"], reviewers_per_video=2)
    # batches go to Redis database 15, where no worker listens; emptied afterwards
    settings = dataclasses.replace(settings, broker_url=broker_url_for_tests(settings), api_token=API_TOKEN)
    app = create_app(settings, {"TESTING": True, "RATELIMIT_KEY_PREFIX": f"ovptest-{uuid.uuid4().hex}"})
    yield app
    close_graph(app)
    purge_test_queue(settings.broker_url)


def csrf_token(client: FlaskClient, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, name: str, password: str) -> Any:
    token = csrf_token(client, "/ui/sign-in")
    return client.post("/ui/sign-in", data={"name": name, "password": password, "csrf_token": token, "next": "/ui/queue"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_accounts_hash_and_revoke(graph: Graph, data: dict[str, Any]) -> None:
    alice = data["alice"]
    stored = graph.read("MATCH (r:Rater {name: $n}) RETURN properties(r) AS p", {"n": alice.name})[0]["p"]
    assert alice.password not in str(stored) and alice.token.split("_")[-1] not in str(stored)
    assert stored["password_hash"].startswith("$argon2id$")
    assert check_password(graph, alice.name, alice.password).name == alice.name
    assert check_password(graph, alice.name, alice.password + "x") is None
    assert check_password(graph, "nobody-at-all", alice.password) is None
    assert check_token(graph, alice.token).name == alice.name
    assert check_token(graph, alice.token[:-1] + ("A" if alice.token[-1] != "A" else "B")) is None
    assert check_token(graph, "garbage") is None
    carol = add_reviewer(graph, f"{PREFIX}carol")
    remove_rater(graph, carol.name)
    assert check_password(graph, carol.name, carol.password) is None and check_token(graph, carol.token) is None


def test_the_one_time_password_is_replaced_first(app: Any, graph: Graph) -> None:
    erin = add_rater(graph, f"{PREFIX}erin")
    client = app.test_client()
    signed = sign_in(client, erin.name, erin.password)
    assert signed.status_code == 302 and "/ui/password" in signed.headers["Location"]
    assert "/ui/password" in client.get("/ui/queue").headers["Location"]  # nothing else before the own password
    token = csrf_token(client, "/ui/password")
    short = client.post("/ui/password", data={"current": erin.password, "new": "short", "repeat": "short", "csrf_token": token})
    assert short.status_code == 400 and "10-1024 characters" in short.get_data(as_text=True)
    wrong = client.post("/ui/password", data={"current": "nope", "new": "a long new secret", "repeat": "a long new secret",
                                              "csrf_token": token})
    assert wrong.status_code == 400 and "not right" in wrong.get_data(as_text=True)
    done = client.post("/ui/password", data={"current": erin.password, "new": "a long new secret",
                                             "repeat": "a long new secret", "csrf_token": token, "next": "/ui/queue"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/ui/queue")
    assert client.get("/ui/queue").status_code == 200
    assert check_password(graph, erin.name, erin.password) is None  # one-time: it no longer works
    assert check_password(graph, erin.name, "a long new secret").name == erin.name
    assert check_token(graph, erin.token).name == erin.name  # the API token is unaffected


def test_json_twin(app: Any, graph: Graph, data: dict[str, Any]) -> None:
    client = app.test_client()
    video = data["ids"]["middle"]
    url = f"/videos/{video}/ratings"
    body = {"gqs": 4, "discern": [True, True, False, True, False],
            "jama": {"authorship": True, "attribution": False, "disclosure": False, "currency": True},
            "diseases": ["OVP:glaucoma"], "note": "clear, no sources"}
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=bearer("ovp-dev-token")).status_code == 401  # the batch token is not a reviewer's
    assert client.get(url).status_code == 401
    first = client.post(url, json=body, headers=bearer(data["alice"].token))
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["model_version"] == "m-test" and first.get_json()["jama"]["currency"] is True
    second = client.post(url, json={"gqs": 2}, headers=bearer(data["alice"].token))
    assert second.status_code == 201
    bad = client.post(url, json={"gqs": 9}, headers=bearer(data["alice"].token))
    assert bad.status_code == 400 and "gqs" in bad.get_json()["message"]
    unknown = client.post(url, json={"gqs": 3, "diseases": ["OVP:no_such_disease"]}, headers=bearer(data["alice"].token))
    assert unknown.status_code == 400 and "OVP:no_such_disease" in unknown.get_json()["message"]
    missing = client.post(f"/videos/{PREFIX}nope/ratings", json={"gqs": 3}, headers=bearer(data["alice"].token))
    assert missing.status_code == 404
    listed = client.get(url, headers=bearer(data["bob"].token)).get_json()
    # nothing overwritten: two nodes; the newest of alice's counts
    assert listed["count"] == 2 and listed["current"] == [second.get_json()["id"]]
    assert [r["gqs"] for r in listed["ratings"]] == [2, 4]
    assert len(video_ratings(graph, video)) == 2
    latest = {v.video_id: v for v in latest_ratings(graph)}[video]
    assert [(r.rater, r.gqs) for r in latest.ratings] == [(data["alice"].name, 2)]


def test_queue_least_certain_first_and_two_reviewers(graph: Graph, data: dict[str, Any]) -> None:
    ids = data["ids"]
    mine = [row["id"] for row in review_queue(graph, data["bob"].name, per_video=2, limit=1000) if row["id"].startswith(PREFIX)]
    assert mine.index(ids["uncertain"]) < mine.index(ids["middle"]) < mine.index(ids["certain"])
    # alice rated "middle" (previous test): not in her queue; still in bob's (two reviewers per video), not with one
    alices = [row["id"] for row in review_queue(graph, data["alice"].name, per_video=2, limit=1000)]
    assert ids["middle"] not in alices
    assert ids["middle"] not in [row["id"] for row in review_queue(graph, data["bob"].name, per_video=1, limit=1000)]
    rows = {row["id"]: row for row in review_queue(graph, data["bob"].name, per_video=2, limit=1000)}
    assert rows[ids["uncertain"]]["quality_certainty"] == pytest.approx(0.0, abs=1e-9)
    assert rows[ids["middle"]]["raters"] == 1


def test_pages_for_anonymous_and_reviewers(app: Any, data: dict[str, Any]) -> None:
    client = app.test_client()
    video = data["ids"]["certain"]
    page = client.get(f"/ui/videos/{video}?lang=en").get_data(as_text=True)
    assert "SYNTHETIC" in page and 'class="mention' in page and "negated" in page
    assert "/ui/media/" not in page and "/ui/thumbnails/" not in page  # anonymous: no file, no ratings
    assert client.get(f"/ui/media/{video}").status_code == 302  # to sign-in
    assert client.get("/ui/agreement").status_code == 302
    assert client.get("/ui/batches").status_code == 302
    zh = client.get(f"/ui/videos/{video}?lang=zh").get_data(as_text=True)
    assert "画像" in zh and "青光眼" in zh
    assert '<html lang="zh-CN">' in client.get("/ui/videos").get_data(as_text=True)  # the language is remembered
    assert sign_in(client, data["alice"].name, data["alice"].password).status_code == 302
    page = client.get(f"/ui/videos/{video}?lang=en").get_data(as_text=True)
    assert f"/ui/media/{video}" in page and f"/ui/thumbnails/{video}/400.jpg" in page
    listing = client.get(f"/ui/videos?q={PREFIX}&sort=quality").get_data(as_text=True)
    assert all(v in listing for v in data["ids"].values())
    filtered = client.get(f"/ui/videos?q={PREFIX}&quality=3").get_data(as_text=True)
    assert data["ids"]["middle"] in filtered and data["ids"]["certain"] not in filtered
    assert client.get("/ui/videos?sort=nonsense").status_code == 400
    assert client.get(f"/ui/entities/OVP:glaucoma").status_code == 200
    assert client.get("/ui/entities/OVP:nothing_like_this").status_code == 404
    assert client.get("/ui/batches").status_code == 200


def test_media_range_requests_and_roots(app: Any, data: dict[str, Any]) -> None:
    client = app.test_client()
    sign_in(client, data["bob"].name, data["bob"].password)
    video = data["ids"]["certain"]
    whole = client.get(f"/ui/media/{video}")
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(f"/ui/media/{video}", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.data == whole.data[10:100]
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(whole.data)}"
    assert client.get(f"/ui/media/{data['ids']['escaped']}").status_code == 403
    thumb = client.get(f"/ui/thumbnails/{video}/400.jpg")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg" and thumb.data[:2] == b"\xff\xd8"


def test_rating_form_needs_csrf_and_stores(app: Any, graph: Graph, data: dict[str, Any]) -> None:
    client = app.test_client()
    sign_in(client, data["bob"].name, data["bob"].password)
    video = data["ids"]["certain"]
    form = {"gqs": "5", "judge_diseases": "1", "diseases": ["OVP:glaucoma"], "note": "good"}
    refused = client.post(f"/ui/videos/{video}/rate", data=form)
    assert refused.status_code == 400 and "reload the page" in refused.get_data(as_text=True)
    assert video_ratings(graph, video) == []
    token = csrf_token(client, f"/ui/videos/{video}")
    saved = client.post(f"/ui/videos/{video}/rate", data={**form, "csrf_token": token, "discern_1": "yes"})
    assert saved.status_code == 302
    (stored,) = video_ratings(graph, video)
    # DISCERN counts only when every item is answered
    assert (stored.gqs, stored.diseases, stored.discern, stored.note) == (5, ("OVP:glaucoma",), None, "good")
    invalid = client.post(f"/ui/videos/{video}/rate", data={"gqs": "7", "csrf_token": token})
    assert invalid.status_code == 400 and "gqs" in invalid.get_data(as_text=True)
    anonymous = app.test_client()
    assert anonymous.post(f"/ui/videos/{video}/rate", data=form).status_code == 400  # no CSRF token either


def test_revoking_ends_the_session(app: Any, graph: Graph, data: dict[str, Any]) -> None:
    dave = add_reviewer(graph, f"{PREFIX}dave")
    client = app.test_client()
    assert sign_in(client, dave.name, dave.password).status_code == 302
    assert client.get("/ui/queue").status_code == 200
    remove_rater(graph, dave.name)
    assert client.get("/ui/queue").status_code == 302  # back to sign-in


def test_submitting_a_manifest_from_the_page(app: Any, graph: Graph, data: dict[str, Any]) -> None:
    client = app.test_client()
    sign_in(client, data["bob"].name, data["bob"].password)
    token = csrf_token(client, "/ui/batches")
    line = {"id": f"{PREFIX}submitted", "path": str(data["root"] / "certain.mp4"), "platform": "douyin", "title": "t",
            "caption": "青光眼", "hashtags": [], "published_at": "2024-01-01T00:00:00Z", "duration_s": 2,
            "author_followers": 1}
    good = json.dumps(line, ensure_ascii=False)
    refused = client.post("/ui/batches", data={"manifest": good, "token": "wrong", "csrf_token": token})
    assert refused.status_code == 401 and "API token is not right" in refused.get_data(as_text=True)
    bad = client.post("/ui/batches", data={"manifest": good + "\n{\"id\": \"x\"}\nnot json", "token": API_TOKEN,
                                           "csrf_token": token})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "upload:2: path: missing" in page and "upload:3:" in page  # every problem, by line
    assert graph.read("MATCH (v:Video {id: $id}) RETURN v", {"id": line["id"]}) == []  # nothing recorded
    accepted = client.post("/ui/batches", data={"manifest": good, "token": API_TOKEN, "csrf_token": token})
    assert accepted.status_code == 302
    batch_id = accepted.headers["Location"].rsplit("/", 1)[-1]
    page = client.get(f"/ui/batches/{batch_id}").get_data(as_text=True)
    assert "refreshes every few seconds" in page and 'http-equiv="refresh"' in page and "1 pending" in page
    unprofiled = client.get(f"/ui/videos/{line['id']}?lang=en")
    assert unprofiled.status_code == 200 and "Not profiled yet." in unprofiled.get_data(as_text=True)
    graph.write("MATCH (b:Batch {id: $id}) DETACH DELETE b", {"id": batch_id})


def test_export_after_ratings(graph: Graph, data: dict[str, Any], tmp_path: Path) -> None:
    mine = [v for v in latest_ratings(graph) if v.video_id.startswith(PREFIX)]
    summary = export_manifest(mine, tmp_path / "rated.jsonl")
    entries = {e.id: e for e in read_manifest(tmp_path / "rated.jsonl")}
    assert summary.written == len(entries) >= 2
    assert entries[data["ids"]["certain"]].quality == 5 and entries[data["ids"]["certain"]].synthetic


def test_store_queries_anchored_on_an_id_seek_it(graph: Graph, data: dict[str, Any]) -> None:
    """The review queries that start from one video, entity or reviewer find it through a uniqueness index."""
    from kg_builder.store import raters, ratings, reviews
    from test_named_queries import plan_operators

    video, rater = data["ids"]["middle"], data["alice"].name
    cases = {
        "VIDEO_PAGE": (reviews.VIDEO_PAGE, {"id": video}),
        "VIDEO_PATH": (reviews.VIDEO_PATH, {"id": video}),
        "ENTITY_VIDEOS": (reviews.ENTITY_VIDEOS, {"id": "OVP:glaucoma", "limit": 10}),
        "ENTITY_NAMES": (reviews.ENTITY_NAMES, {"ids": ["OVP:glaucoma"]}),
        "VIDEO_RATINGS": (ratings.VIDEO_RATINGS, {"video_id": video}),
        "RATER_BY_NAME": (raters.RATER_BY_NAME, {"name": rater}),
        "RATER_BY_TOKEN_ID": (raters.RATER_BY_TOKEN_ID, {"token_id": "0123456789abcdef"}),
        "CREATE_RATING": (ratings.CREATE_RATING, {"id": "x", "rater": rater, "video_id": video, "gqs": 3, "note": "",
                                                  "created_at": "t", "discern": None, "jama": None, "diseases": None}),
    }
    for name, (cypher, params) in cases.items():
        operators = plan_operators(graph, cypher, params)
        assert not [op for op in operators if op.endswith("Scan")], (name, operators)
        assert any("IndexSeek" in op for op in operators), (name, operators)


def test_raters_cli(graph: Graph, data: dict[str, Any]) -> None:
    from click.testing import CliRunner

    from cli import main

    runner = CliRunner()
    name = f"{PREFIX}frank"
    added = runner.invoke(main, ["raters", "add", name])
    assert added.exit_code == 0, added.output
    password = re.search(r"password:\s+(\S+)", added.output).group(1)
    token = re.search(r"API token:\s+(ovpr_\S+)", added.output).group(1)
    assert check_password(graph, name, password).name == name and check_token(graph, token).name == name
    again = runner.invoke(main, ["raters", "add", name])
    assert again.exit_code == 1 and "already exists" in again.output and "ovp raters revoke" in again.output
    assert name in runner.invoke(main, ["raters", "list"]).output
    assert runner.invoke(main, ["raters", "revoke", name]).exit_code == 0
    assert check_token(graph, token) is None
    unknown = runner.invoke(main, ["raters", "revoke", f"{PREFIX}nobody"])
    assert unknown.exit_code == 1 and "no reviewer" in unknown.output
    bad = runner.invoke(main, ["raters", "add", "no spaces allowed"])
    assert bad.exit_code == 1 and "not valid" in bad.output


def test_a_batch_page_shows_failure_paths_only_to_reviewers(app: Any, graph: Graph, data: dict[str, Any]) -> None:
    batch_id = f"{PREFIX}{uuid.uuid4().hex}"
    video = VideoMeta(id=f"{PREFIX}failed", path="/srv/private/clip.mp4")
    record_batch(graph, batch_id, [video])
    try:
        record_failure(graph, batch_id, video, f"{video.path}: no such file — check the path")
        client = app.test_client()
        anonymous = client.get(f"/ui/batches/{batch_id}?lang=en").get_data(as_text=True)
        assert "&lt;file&gt;: no such file" in anonymous and "/srv" not in anonymous
        sign_in(client, data["alice"].name, data["alice"].password)
        assert "/srv/private/clip.mp4: no such file" in client.get(f"/ui/batches/{batch_id}").get_data(as_text=True)
    finally:
        graph.write("MATCH (b:Batch {id: $id}) DETACH DELETE b", {"id": batch_id})


def test_the_pages_that_search_are_rate_limited_for_anonymous_visitors(graph: Graph, data: dict[str, Any]) -> None:
    """The entity search, the video list (a scan of every video's text), search by meaning and similar videos cost what
    their JSON twins do, so anyone gets OVP_API_RATE_LIMIT of each; a signed-in reviewer is not counted."""
    from api.extensions import limiter

    settings = dataclasses.replace(app_settings(data["root"]), api_rate_limit="3 per minute")
    app = create_app(settings, {"TESTING": True})
    anonymous, reviewer = app.test_client(), app.test_client()
    sign_in(reviewer, data["alice"].name, data["alice"].password)
    with app.app_context():
        limiter.reset()
    try:
        for path in ("/ui/entities?q=glaucoma", f"/ui/videos?q={PREFIX}", "/ui/search?q=青光眼",
                     f"/ui/videos/{data['ids']['certain']}/similar"):
            assert [anonymous.get(path).status_code for _ in range(3)] == [200] * 3, path
            assert anonymous.get(path).status_code == 429, path
            assert [reviewer.get(path).status_code for _ in range(4)] == [200] * 4, path
        assert anonymous.get("/ui/entities/OVP:glaucoma").status_code == 200  # one entity's page: not limited
    finally:
        with app.app_context():
            limiter.reset()
        close_graph(app)


def test_sign_in_is_rate_limited(app: Any, data: dict[str, Any]) -> None:
    # last in the module: it spends the address's sign-ins for the minute, and gives them back at the end (the
    # limiter is one per process, so the next module's app would otherwise start refused)
    from api.extensions import limiter

    client = app.test_client()
    try:
        statuses = [sign_in(client, data["alice"].name, "wrong password").status_code for _ in range(12)]
        assert statuses[0] == 401 and 429 in statuses  # 10 per minute per address
        limited = sign_in(client, data["alice"].name, data["alice"].password)
        assert limited.status_code == 429
    finally:
        with app.app_context():
            limiter.reset()
