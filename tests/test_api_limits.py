"""Who may do what, and how much, through the API: the token's rules, limits on what anyone may ask for, hostile
bodies answered with 4xx (never 500), and what a reader without the token sees of a batch. Against the real Neo4j
and Redis (rate-limit counters live in Redis), through the test client."""
from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from api.app import create_app
from api.db import close_graph
from kg_builder.graph import Graph
from kg_builder.store.batches import record_batch, record_failure
from kg_builder.store.rows import VideoMeta
from ovp.errors import ConfigError, QueryTimeout
from ovp.settings import DEV_API_TOKEN, DEV_NEO4J_PASSWORD, DEV_SECRET_KEY, Settings
from test_api import TOKEN, assert_error, broker_url_for_tests, manifest_line, purge_test_queue

pytestmark = [pytest.mark.neo4j, pytest.mark.redis]


@pytest.fixture(scope="module")
def settings(graph: Graph, built_kg: dict[str, Any]) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(base, api_token=TOKEN, broker_url=broker_url_for_tests(base), media_roots="/videos")


def make_client(settings: Settings, **config: Any) -> Any:
    """A test client of an app of its own, whose rate-limit counters no other test shares."""
    app = create_app(settings, {"TESTING": True, "RATELIMIT_KEY_PREFIX": f"ovp-test-{uuid.uuid4().hex}", **config})
    return app.test_client()


@pytest.fixture()
def client(settings: Settings) -> Iterator[Any]:
    client = make_client(settings, RATELIMIT_ENABLED=False)
    yield client
    close_graph(client.application)


# --- the token ----------------------------------------------------------------------------------------------------

def test_an_empty_token_setting_turns_submission_off() -> None:
    """`OVP_API_TOKEN=` (set, empty) is a value: submission is off, whatever the request sends. Before, an empty
    variable meant "use the default", and the public development token was accepted."""
    assert Settings.from_env({"OVP_API_TOKEN": ""}).api_token == ""
    assert Settings.from_env({}).api_token == DEV_API_TOKEN
    assert Settings.from_env({"OVP_NEO4J_PASSWORD": ""}).neo4j_password == DEV_NEO4J_PASSWORD  # the others: default


@pytest.mark.parametrize("header", ["", "Bearer ", f"Bearer {DEV_API_TOKEN}"])
def test_submission_is_refused_when_the_token_is_empty(settings: Settings, header: str) -> None:
    client = make_client(dataclasses.replace(settings, api_token=""), RATELIMIT_ENABLED=False)
    response = client.post("/batches", json=[manifest_line("apitest_t0")], headers={"Authorization": header})
    assert "OVP_API_TOKEN is empty" in assert_error(response, 403, "forbidden")["message"]
    close_graph(client.application)


def test_the_development_token_is_refused_outside_development(settings: Settings) -> None:
    production = dataclasses.replace(settings, api_token=DEV_API_TOKEN, dev=False, neo4j_password="a-real-password")
    with pytest.raises(ConfigError, match="development Neo4j password"):
        create_app(dataclasses.replace(production, neo4j_password=DEV_NEO4J_PASSWORD))
    with pytest.raises(ConfigError, match="development secret key"):
        create_app(dataclasses.replace(production, secret_key=DEV_SECRET_KEY))
    client = make_client(production, RATELIMIT_ENABLED=False)
    response = client.post("/batches", json=[manifest_line("apitest_t0")],
                           headers={"Authorization": f"Bearer {DEV_API_TOKEN}"})
    assert "development token" in assert_error(response, 403, "forbidden")["message"]


@pytest.mark.parametrize("server_token", ["", DEV_API_TOKEN])
def test_the_batches_page_refuses_every_token_when_submission_is_off(settings: Settings, server_token: str) -> None:
    """The page's form asks the same rules as the header: an empty OVP_API_TOKEN, or the development token outside
    development, accepts no token at all (before, an empty token was refused but the development one was not)."""
    off = dataclasses.replace(settings, api_token=server_token, dev=False, neo4j_password="a-real-password")
    client = make_client(off, RATELIMIT_ENABLED=False, WTF_CSRF_ENABLED=False)
    manifest = json.dumps(manifest_line("apitest_page0"))
    for token in ("", DEV_API_TOKEN):
        assert client.post("/ui/batches", data={"manifest": manifest, "token": token}).status_code == 401
    close_graph(client.application)


def test_the_development_token_works_in_development_and_the_api_says_so(settings: Settings, caplog) -> None:
    """On a development machine (OVP_DEV=1) the defaults work, and the API says loudly that they are in use."""
    submitted = dataclasses.replace(settings, api_token=DEV_API_TOKEN, dev=True)
    with caplog.at_level("WARNING"):
        client = make_client(submitted, RATELIMIT_ENABLED=False)
    assert any("OVP_API_TOKEN (the development token)" in r.getMessage() for r in caplog.records)
    response = client.post("/batches", json={"videos": "not a list"}, headers={"Authorization": f"Bearer {DEV_API_TOKEN}"})
    assert_error(response, 400, "invalid_request")  # past the token check
    close_graph(client.application)


# --- hostile bodies and manifests --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/link", "/batches", "/queries/entities_by_quality"])
@pytest.mark.parametrize("depth", [40, 200_000])
def test_deeply_nested_json_is_a_400(client: Any, path: str, depth: int) -> None:
    """[[[[…]]]] to any JSON endpoint: 400 naming the nesting (before: RecursionError, a 500)."""
    body = "[" * depth + "]" * depth
    response = client.post(path, data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert "nested more than" in assert_error(response, 400, "invalid_request")["message"]


def test_huge_integers_in_a_submitted_manifest_are_listed_problems(client: Any) -> None:
    """A 401-digit duration and a follower count of 2^63 are manifest problems (422), not an OverflowError (500) or a
    value the driver refuses later."""
    lines = [manifest_line("apitest_i1") | {"duration_s": int("9" * 401)},
             manifest_line("apitest_i2") | {"author_followers": 2**63},
             manifest_line("apitest_i3") | {"views": 10**30, "likes": 0, "comments": 0, "shares": 0}]
    body = assert_error(client.post("/batches", json=lines, headers={"Authorization": f"Bearer {TOKEN}"}),
                        422, "manifest_invalid")
    assert [p.split(": ")[1] for p in body["problems"]] == ["duration_s", "author_followers", "views"]


def test_a_submitted_path_outside_the_media_roots_is_refused(client: Any) -> None:
    lines = [manifest_line("apitest_p1") | {"path": "/etc/passwd"},
             manifest_line("apitest_p2") | {"path": "/videos/../etc/shadow"},
             manifest_line("apitest_p3") | {"path": "videos/relative.mp4"}]
    body = assert_error(client.post("/batches", json=lines, headers={"Authorization": f"Bearer {TOKEN}"}),
                        422, "manifest_invalid")
    assert len(body["problems"]) == 3 and all(": path: " in p for p in body["problems"])
    assert "outside the folders" in body["problems"][0] and "outside the folders" in body["problems"][1]
    assert "relative" in body["problems"][2]


# --- limits on what anyone may ask for ----------------------------------------------------------------------------

def test_link_refuses_more_text_than_one_request_may_carry(settings: Settings) -> None:
    """Also the first request of a fresh app: building the linker reads the graph, which used to wait for ever on
    the lock the linker's own construction held."""
    client = make_client(dataclasses.replace(settings, api_link_max_chars=1_000), RATELIMIT_ENABLED=False)
    ok = client.post("/link", json={"texts": ["青光眼 " * 100]})
    assert ok.status_code == 200
    response = client.post("/link", json={"texts": ["青光眼 not glaucoma " * 40] * 2})
    assert "more than the 1,000" in assert_error(response, 413, "payload_too_large")["message"]
    close_graph(client.application)


def test_expensive_endpoints_are_rate_limited_per_address_unless_the_token_is_sent(settings: Settings) -> None:
    from api.extensions import limiter

    client = make_client(dataclasses.replace(settings, api_rate_limit="3 per minute"))
    limiter.reset()  # counters of an earlier run of this test within the minute
    for path, answer, send in [
            ("/link", 200, lambda h: client.post("/link", json={"text": "青光眼"}, headers=h)),
            ("/queries", 200, lambda h: client.post("/queries/entities_by_quality", json={"limit": 1}, headers=h)),
            ("/entities", 200, lambda h: client.get("/entities?q=glaucoma", headers=h)),
            ("/search", 200, lambda h: client.get("/search?q=青光眼&k=3", headers=h)),  # runs the sentence encoder
            ("/similar", 404, lambda h: client.get("/videos/apitest_nothing/similar", headers=h))]:
        assert [send({}).status_code for _ in range(3)] == [answer] * 3, path
        limited = send({})
        assert_error(limited, 429, "too_many_requests")
        assert limited.headers.get("Retry-After")
        assert send({"Authorization": f"Bearer {TOKEN}"}).status_code == answer, path  # the token holder: not counted
    assert client.get("/health").status_code in (200, 503)  # cheap endpoints are not limited
    close_graph(client.application)


def test_a_named_query_that_runs_too_long_is_stopped(graph: Graph, settings: Settings, tmp_path: Path) -> None:
    """Neo4j ends a named query's transaction after OVP_QUERY_TIMEOUT_S: 503 query_timeout, not a request that holds
    a worker and the database for as long as the query likes."""
    slow = "UNWIND range(1, 200000000) AS x WITH x WHERE x % 7 = 3 RETURN count(x) AS n"
    with pytest.raises(QueryTimeout):
        graph.read(slow, timeout_s=0.5)
    (tmp_path / "slow.cypher").write_text("// name: slow\n// description: counts for a long time\n\n" + slow + "\n")
    client = make_client(dataclasses.replace(settings, query_timeout_s=0.5),
                         RATELIMIT_ENABLED=False, OVP_QUERY_DIR=str(tmp_path))
    assert_error(client.post("/queries/slow", json={}), 503, "query_timeout")
    close_graph(client.application)


# --- what a reader without the token sees ------------------------------------------------------------------------

def test_failure_reasons_carry_no_paths_for_a_reader_without_the_token(client: Any, graph: Graph) -> None:
    batch_id = f"apitest-{uuid.uuid4().hex}"
    video = VideoMeta(id=f"apitest_r{uuid.uuid4().hex[:6]}", path="/srv/private/clip one.mp4")
    record_batch(graph, batch_id, [video])
    try:
        record_failure(graph, batch_id, video, f"{video.path}: no such file — check the path; see /srv/private/other")
        anonymous = client.get(f"/batches/{batch_id}").get_json()["failures"][0]["reason"]
        assert "/srv" not in anonymous and anonymous == "<file>: no such file — check the path; see <file>"
        holder = client.get(f"/batches/{batch_id}", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
        assert holder["failures"][0]["reason"].startswith("/srv/private/clip one.mp4: no such file")
    finally:
        graph.write("MATCH (b:Batch {id: $b}) DETACH DELETE b", {"b": batch_id})
        graph.write("MATCH (v:Video {id: $v}) DETACH DELETE v", {"v": video.id})


def test_a_video_s_path_is_shown_only_with_the_token(client: Any, graph: Graph) -> None:
    batch_id = f"apitest-{uuid.uuid4().hex}"
    video = VideoMeta(id=f"apitest_v{uuid.uuid4().hex[:6]}", path="/srv/private/clip.mp4")
    record_batch(graph, batch_id, [video])
    try:
        anonymous = client.get(f"/videos/{video.id}")
        assert anonymous.status_code == 200 and "path" not in anonymous.get_json()
        assert "/srv" not in anonymous.get_data(as_text=True)
        holder = client.get(f"/videos/{video.id}", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
        assert holder["path"] == "/srv/private/clip.mp4"
    finally:
        graph.write("MATCH (b:Batch {id: $b}) DETACH DELETE b", {"b": batch_id})
        graph.write("MATCH (v:Video {id: $v}) DETACH DELETE v", {"v": video.id})


def test_a_batch_id_already_used_is_refused_and_keeps_its_total(graph: Graph) -> None:
    """Submitting under an id that exists rewrote the first batch's total; now it is refused and nothing changes."""
    from ovp.errors import BatchExists

    batch_id = f"apitest-{uuid.uuid4().hex}"
    videos = [VideoMeta(id=f"apitest_e{i}-{batch_id[-6:]}") for i in range(3)]
    record_batch(graph, batch_id, videos)
    try:
        with pytest.raises(BatchExists, match="already exists"):
            record_batch(graph, batch_id, videos[:1])
        assert graph.read("MATCH (b:Batch {id: $b}) RETURN b.total AS t", {"b": batch_id}) == [{"t": 3}]
    finally:
        graph.write("MATCH (b:Batch {id: $b}) DETACH DELETE b", {"b": batch_id})
        graph.write("MATCH (v:Video) WHERE v.id IN $ids DETACH DELETE v", {"ids": [v.id for v in videos]})
