"""The Flask API through its test client, against the real Neo4j (knowledge graph built) and Redis.

Videos and profiles are written with ``worker.writeback.write_profile`` under ids starting with ``apitest_`` and
deleted afterwards. Batches are enqueued on a separate Redis database (15), where no worker listens; the queue is
emptied afterwards.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis

from api.app import create_app
from api.blueprints.entities import load_entity_lookup
from api.db import close_graph
from api.errors import INTERNAL_MESSAGE
from kg_builder.graph import Graph
from ovp.settings import Settings
from kg_builder.store.rows import DiseasePrediction, MentionRecord, VideoMeta
from worker.records import DiseaseEvidence, Explanation, ProfileRecord
from worker.writeback import write_profile

PREFIX = "apitest_"
TOKEN = "test-token-1234"
INJECTIONS = [
    "' OR 1=1 //",
    '") RETURN 1 //',
    "*:*",
    "title:x AND",
    "\\",
    "MATCH (n) DETACH DELETE n",
    "}) MATCH (n) RETURN n //",
    "OVP:glaucoma'})-[r]-() DELETE r //",
    "$id",
    "(",
    "~",
    "\"",
]


def broker_url_for_tests(settings: Settings) -> str:
    """The configured Redis broker, database 15: real Redis, but no worker consumes from it."""
    parts = urlsplit(settings.broker_url)
    return urlunsplit(parts._replace(path="/15"))


def purge_test_queue(url: str) -> None:
    """Delete the batch queue keys that the tests' submissions created on the test database."""
    client = redis.Redis.from_url(url)
    try:
        keys = [k for pattern in ("batches*", "_kombu.*batches*") for k in client.scan_iter(pattern)]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def delete_test_data(graph: Graph, batch_ids: list[str] = ()) -> None:
    """Remove the tests' videos, their profiles and the tests' batches."""
    graph.write(
        "MATCH (v:Video) WHERE v.id STARTS WITH $prefix "
        "OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile) DETACH DELETE p, v",
        {"prefix": PREFIX},
    )
    if batch_ids:
        graph.write("MATCH (b:Batch) WHERE b.id IN $ids DETACH DELETE b", {"ids": list(batch_ids)})


def profile_record(video_id: str, model_version: str, *, quality: int, popularity: float, embedding: list[float],
                   caption: str, mentions: tuple[MentionRecord, ...], predictions: tuple[DiseasePrediction, ...]) -> ProfileRecord:
    """A hand-made profile, as the worker would write it."""
    return ProfileRecord(
        video=VideoMeta(id=video_id, platform="douyin", url=f"https://example.org/{video_id}", path=f"/videos/{video_id}.mp4",
                        title=f"test video {video_id}", caption=caption, hashtags=("青光眼",), duration_s=12.5,
                        published_at="2024-03-01T12:00:00+00:00", author_followers=1000, synthetic=True),
        model_version=model_version,
        popularity=popularity,
        popularity_pct=popularity * 10,
        quality=quality,
        quality_probs=(0.1, 0.1, 0.2, 0.3, 0.3),
        predictions=predictions,
        mentions=mentions,
        explanation=Explanation(keyframes=((1.5, 0.6), (4.0, 0.4)), entities=(("OVP:glaucoma", 0.9),),
                                diseases=(DiseaseEvidence("OVP:glaucoma", named=True, prior_logit=2.5, head_logit=-0.3,
                                                          frames_logit=0.7, keyframe=(4.0, 0.8)),
                                          DiseaseEvidence("OVP:cataract", via=("OVP:halos_around_lights",),
                                                          prior_logit=-0.4, head_logit=0.8, by_rule=True))),
        embedding=tuple(embedding),
        visual_weights="imagenet",
    )


def unit(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return dataclasses.replace(Settings.from_env(), api_token=TOKEN, media_roots="/videos")


@pytest.fixture(scope="module")
def profiled(graph: Graph, built_kg: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Three profiled test videos about glaucoma (v1 has two model versions); deleted afterwards."""
    delete_test_data(graph)
    base = [1.0] * 256
    near = [1.0] * 255 + [0.5]
    far = [(-1.0) ** i for i in range(256)]
    glaucoma = MentionRecord(entity_id="OVP:glaucoma", surface="青光眼", start=0, end=3, score=1.0)
    cataract = MentionRecord(entity_id="OVP:cataract", surface="白内障", start=4, end=7, score=1.0)
    not_myopia = MentionRecord(entity_id="OVP:myopia", surface="近视", start=10, end=12, score=1.0, negated=True)
    predicts = (DiseasePrediction("OVP:glaucoma", 0.9, 1), DiseasePrediction("OVP:cataract", 0.6, 2))
    ids = {"v1": f"{PREFIX}v1", "v2": f"{PREFIX}v2", "v3": f"{PREFIX}v3"}
    caption = "青光眼 白内障 不是近视"
    write_profile(graph, profile_record(ids["v1"], "m1", quality=2, popularity=3.0, embedding=unit(base), caption=caption,
                                        mentions=(glaucoma, cataract, not_myopia), predictions=predicts))
    write_profile(graph, profile_record(ids["v1"], "m2", quality=4, popularity=5.0, embedding=unit(base), caption=caption,
                                        mentions=(glaucoma, cataract, not_myopia), predictions=predicts))
    write_profile(graph, profile_record(ids["v2"], "m2", quality=1, popularity=8.0, embedding=unit(near), caption=caption,
                                        mentions=(glaucoma, cataract), predictions=predicts[:1]))
    write_profile(graph, profile_record(ids["v3"], "m2", quality=5, popularity=1.0, embedding=unit(far), caption="青光眼",
                                        mentions=(glaucoma,), predictions=predicts[:1]))
    yield ids
    delete_test_data(graph)


@pytest.fixture(scope="module")
def app(settings: Settings, profiled: dict[str, str]) -> Iterator[Any]:
    # Rate limits have tests of their own (test_api_limits.py); here they would only slow the suite down.
    app = create_app(dataclasses.replace(settings, broker_url=broker_url_for_tests(settings)),
                     {"TESTING": True, "RATELIMIT_ENABLED": False})
    yield app
    close_graph(app)


@pytest.fixture(scope="module")
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture(scope="module")
def submitted(graph: Graph, settings: Settings) -> Iterator[list[str]]:
    """Batch ids created by the tests: their Batch nodes and the queued messages are removed afterwards."""
    ids: list[str] = []
    yield ids
    delete_test_data(graph, ids)
    purge_test_queue(broker_url_for_tests(settings))


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) >= {"code", "message"}
    if code is not None:
        assert body["code"] == code
    return body


def assert_no_cypher_leak(response: Any) -> None:
    """Data or a 4xx, never a 500 and never a Cypher error text."""
    assert response.status_code < 500, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    for leak in ("Neo.ClientError", "SyntaxError", "CypherSyntaxError", "Traceback", "lucene", "ParseException"):
        assert leak not in text


# --- health and documents -----------------------------------------------------------------------------------------

def test_health_reports_versions(client: Any) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["neo4j"]["ok"] and body["neo4j"]["version"].startswith("5.")
    assert body["broker"]["ok"] and body["broker"]["version"]


def test_neo4j_down_gives_503_json(settings: Settings) -> None:
    down = create_app(dataclasses.replace(settings, neo4j_uri="bolt://127.0.0.1:1"))
    client = down.test_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["neo4j"]["ok"] is False and health.get_json()["broker"]["ok"] is True
    body = assert_error(client.get("/entities?q=glaucoma"), 503, "graph_unavailable")
    assert "ovp neo4j start" in body["message"]
    close_graph(down)


def test_openapi_lists_every_endpoint(client: Any) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/health", "/entities", "/entities/{entity_id}", "/link", "/videos/{video_id}", "/videos/{video_id}/ratings",
        "/videos/{video_id}/similar", "/search", "/diseases/{disease_id}/videos",
        "/batches", "/batches/{batch_id}", "/queries", "/queries/{name}",
    }


def test_unknown_route_and_method_are_json(client: Any) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    response = client.delete("/entities")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_unexpected_error_leaks_nothing(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at /srv/ovp with password hunter2")

    body = assert_error(app.test_client().get("/boom"), 500, "internal_error")
    assert body["message"] == INTERNAL_MESSAGE
    assert "secret" not in json.dumps(body) and "hunter2" not in json.dumps(body)


# --- entities -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [("青光眼", "OVP:glaucoma"), ("pink eye", "OVP:conjunctivitis"), ("老花眼", "OVP:presbyopia")])
def test_entity_search_in_chinese_and_english(client: Any, text: str, expected: str) -> None:
    response = client.get(f"/entities?q={quote(text)}&limit=5")
    assert response.status_code == 200
    body = response.get_json()
    assert body["results"][0]["id"] == expected
    assert body["count"] == len(body["results"]) <= 5


def test_a_server_loads_its_entity_dictionary_at_start(settings: Settings, graph: Graph, built_kg: dict[str, Any],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings)
    load_entity_lookup(app)
    entities = graph.read("MATCH (n:Entity) RETURN count(n) AS n")[0]["n"]
    assert len(app.extensions["ovp_entity_lookup"].dictionary(graph)) == entities > 1000
    down = create_app(dataclasses.replace(settings, neo4j_uri="bolt://127.0.0.1:1"))
    load_entity_lookup(down)  # Neo4j not up yet: a warning, and the first lookup will try again
    assert "entity dictionary not loaded at start" in caplog.text
    close_graph(app)
    close_graph(down)


@pytest.mark.parametrize("url", ["/entities", "/entities?q=", "/entities?q=" + "x" * 201, "/entities?q=eye&limit=0",
                                 "/entities?q=eye&limit=51", "/entities?q=eye&limit=ten", "/entities?q=a%00b"])
def test_entity_search_rejects_bad_parameters(client: Any, url: str) -> None:
    assert_error(client.get(url), 400, "invalid_request")


@pytest.mark.parametrize("text", INJECTIONS)
def test_entity_search_injection_strings_are_just_text(client: Any, text: str) -> None:
    response = client.get(f"/entities?q={quote(text)}")
    assert_no_cypher_leak(response)
    assert response.status_code == 200


def test_entity_detail(client: Any, graph: Graph, profiled: dict[str, str]) -> None:
    # Videos other than the tests' (``make demo``'s, on a machine that ran it) also mention glaucoma.
    others = graph.read("MATCH (v:Video)-[:MENTIONS]->(:Entity {id: 'OVP:glaucoma'}) WHERE NOT v.id STARTS WITH $prefix "
                        "RETURN count(DISTINCT v) AS n", {"prefix": PREFIX})[0]["n"]
    body = client.get("/entities/OVP:glaucoma").get_json()
    assert body["name"] == "Glaucoma" and body["name_zh"] == "青光眼" and body["kind"] == "Disease"
    assert body["definition"] and body["synonyms"]
    assert {"HP:0000501", "ICD10:H40"} <= {m["id"] for m in body["maps_to"]}
    assert body["video_count"] == others + 3
    assert "gnn_embedding" not in body
    phenotype = client.get("/entities/HP:0000545").get_json()  # Myopia: has children and annotated diseases
    assert phenotype["kind"] == "Phenotype" and phenotype["children"] and phenotype["parents"]
    assert phenotype["disease_count"] >= len(phenotype["diseases"]) > 0


def test_entity_detail_unknown_and_malformed(client: Any) -> None:
    assert_error(client.get("/entities/OVP:no_such_thing"), 404, "not_found")
    assert_error(client.get(f"/entities/{quote('x' * 200)}"), 400, "invalid_request")
    for text in INJECTIONS:
        assert_no_cypher_leak(client.get(f"/entities/{quote(text, safe='')}"))


# --- linking ------------------------------------------------------------------------------------------------------

def test_link_one_text(client: Any) -> None:
    response = client.post("/link", json={"text": "我妈妈有白内障，不是青光眼"})
    assert response.status_code == 200
    assert response.get_json()["text"] == "我妈妈有白内障，不是青光眼"
    mentions = response.get_json()["mentions"]
    assert [(m["id"], m["surface"], m["negated"]) for m in mentions] == [("OVP:cataract", "白内障", False), ("OVP:glaucoma", "青光眼", True)]
    assert set(mentions[0]) == {"id", "name", "kind", "surface", "start", "end", "score", "negated", "xrefs"}


def test_link_many_texts(client: Any) -> None:
    response = client.post("/link", json={"texts": ["pink eye again", "", "nothing here"]})
    results = response.get_json()["results"]
    assert [r["text"] for r in results] == ["pink eye again", "", "nothing here"]
    assert results[0]["mentions"][0]["id"] == "OVP:conjunctivitis"
    assert results[1]["mentions"] == [] and results[2]["mentions"] == []


def test_link_as_the_first_request_of_a_process_answers(settings: Settings, built_kg: dict[str, Any]) -> None:
    """A fresh app (a new gunicorn worker) whose first request is POST /link builds the graph handle inside the
    linker's build; with one lock for every per-process resource that waited for itself for ever."""
    import threading

    fresh = create_app(dataclasses.replace(settings, broker_url=broker_url_for_tests(settings)))
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(fresh.test_client().post("/link", json={"text": "青光眼"})),
                              daemon=True)
    worker.start()
    worker.join(timeout=120)
    try:
        assert not worker.is_alive(), "the first POST /link of a fresh app did not answer within 120 s"
        assert answers[0].status_code == 200 and answers[0].get_json()["mentions"][0]["id"] == "OVP:glaucoma"
    finally:
        close_graph(fresh)


@pytest.mark.parametrize("body", [{}, {"text": "a", "texts": ["b"]}, {"text": 3}, {"texts": "abc"}, {"texts": []},
                                  {"texts": ["x"] * 101}, {"texts": [None]}, [1, 2], {"text": "x" * 20_001}])
def test_link_rejects_bad_bodies(client: Any, body: Any) -> None:
    assert_error(client.post("/link", json=body), 400, "invalid_request")


def test_link_rejects_non_json(client: Any) -> None:
    assert_error(client.post("/link", data="text=hello", content_type="application/x-www-form-urlencoded"), 400)
    assert_error(client.post("/link", data="{not json", content_type="application/json"), 400)


def test_oversized_body_is_413_json(settings: Settings) -> None:
    small = create_app(dataclasses.replace(settings, api_max_body_bytes=1024))
    client = small.test_client()
    body = assert_error(client.post("/link", json={"text": "x" * 2000}), 413, "payload_too_large")
    assert "OVP_API_MAX_BODY_BYTES" in body["message"]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert_error(client.post("/batches", json=[{"id": "x" * 2000}], headers=headers), 413, "payload_too_large")


# --- videos and diseases ------------------------------------------------------------------------------------------

def test_video_detail(client: Any, profiled: dict[str, str]) -> None:
    body = client.get(f"/videos/{profiled['v1']}").get_json()
    assert body["id"] == profiled["v1"] and body["platform"] == "douyin" and body["has_embedding"] is True
    assert "embedding" not in body
    assert [(m["entity_id"], m["negated"]) for m in body["mentions"]] == [("OVP:glaucoma", False), ("OVP:cataract", False), ("OVP:myopia", True)]
    profile = body["profile"]
    assert profile["model_version"] == "m2" and profile["latest"] is True and profile["quality"] == 4
    assert profile["explanation"] == {"keyframes": [{"t": 1.5, "weight": 0.6}, {"t": 4.0, "weight": 0.4}],
                                      "entities": [{"id": "OVP:glaucoma", "weight": 0.9}],
                                      "diseases": [{"id": "OVP:glaucoma", "named": True, "via": [], "prior_logit": 2.5,
                                                    "head_logit": -0.3, "frames_logit": 0.7,
                                                    "keyframe": {"t": 4.0, "weight": 0.8}, "by_rule": False},
                                                   {"id": "OVP:cataract", "named": False, "via": ["OVP:halos_around_lights"],
                                                    "prior_logit": -0.4, "head_logit": 0.8, "frames_logit": None,
                                                    "keyframe": None, "by_rule": True}]}
    assert [p["disease_id"] for p in profile["predictions"]] == ["OVP:glaucoma", "OVP:cataract"]
    assert sorted(h["model_version"] for h in body["history"]) == ["m1", "m2"]
    assert sum(h["latest"] for h in body["history"]) == 1


def test_video_unknown(client: Any) -> None:
    assert_error(client.get(f"/videos/{PREFIX}missing"), 404, "not_found")


def test_disease_videos_sorted(client: Any, profiled: dict[str, str]) -> None:
    by_popularity = client.get("/diseases/OVP:glaucoma/videos").get_json()
    ours = [v["video_id"] for v in by_popularity["videos"] if v["video_id"].startswith(PREFIX)]
    assert ours == [profiled["v2"], profiled["v1"], profiled["v3"]]  # popularity 8, 5, 1 (v1's latest profile)
    by_quality = client.get("/diseases/OVP:glaucoma/videos?sort=quality&min_quality=4&limit=200").get_json()
    ours = [v["video_id"] for v in by_quality["videos"] if v["video_id"].startswith(PREFIX)]
    assert ours == [profiled["v3"], profiled["v1"]]  # quality 5, 4; v2 (quality 1) filtered out
    cataract = client.get("/diseases/OVP:cataract/videos?limit=200").get_json()
    assert profiled["v1"] in [v["video_id"] for v in cataract["videos"]]


@pytest.mark.parametrize("query", ["sort=views", "min_quality=0", "min_quality=6", "limit=0", "limit=201", "sort=" + quote("' OR 1=1 //")])
def test_disease_videos_rejects_bad_parameters(client: Any, query: str) -> None:
    assert_error(client.get(f"/diseases/OVP:glaucoma/videos?{query}"), 400, "invalid_request")


def test_disease_videos_unknown_disease(client: Any) -> None:
    assert_error(client.get("/diseases/OVP:not_a_disease/videos"), 404, "not_found")
    assert_error(client.get("/diseases/HP:0000545/videos"), 404)  # a phenotype, not a disease


# --- batches ------------------------------------------------------------------------------------------------------

def manifest_line(video_id: str) -> dict[str, Any]:
    return {"id": video_id, "path": f"/videos/{video_id}.mp4", "platform": "bilibili", "title": "t",
            "caption": "青光眼科普", "hashtags": ["青光眼"], "published_at": "2024-03-01T20:15:00+08:00",
            "duration_s": 6.0, "author_followers": 12}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}])
def test_submit_batch_needs_the_token(client: Any, headers: dict[str, str]) -> None:
    response = client.post("/batches", json=[manifest_line(f"{PREFIX}b0")], headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_submit_batch_rejects_a_bad_manifest_with_every_problem(client: Any) -> None:
    bad = manifest_line(f"{PREFIX}b1") | {"platform": "my space", "qualty": 3}
    response = client.post("/batches", json={"videos": [manifest_line(f"{PREFIX}b0"), bad, "nope"]},
                           headers={"Authorization": f"Bearer {TOKEN}"})
    body = assert_error(response, 422, "manifest_invalid")
    assert any(p.startswith("request body:2: platform") for p in body["problems"])
    assert any(p.startswith("request body:2: qualty") for p in body["problems"])
    assert any(p.startswith("request body:3:") for p in body["problems"])


@pytest.mark.parametrize("body", [{"video": []}, "text", 3, {"videos": "x"}])
def test_submit_batch_rejects_a_body_that_is_no_manifest(client: Any, body: Any) -> None:
    assert_error(client.post("/batches", json=body, headers={"Authorization": f"Bearer {TOKEN}"}), 400)


def test_submit_batch_enqueues_and_reports_status(client: Any, settings: Settings, submitted: list[str]) -> None:
    purge_test_queue(broker_url_for_tests(settings))
    lines = [manifest_line(f"{PREFIX}b1"), manifest_line(f"{PREFIX}b2")]
    response = client.post("/batches", json=lines, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    submitted.append(body["batch_id"])
    assert len(body["batch_id"]) == 32 and body["status_url"] == f"/batches/{body['batch_id']}" and body["total"] == 2
    # The message waits on the test broker's 'batches' queue, named by task, carrying the manifest objects as sent.
    queue = redis.Redis.from_url(broker_url_for_tests(settings))
    messages = [json.loads(m) for m in queue.lrange("batches", 0, -1)]
    queue.close()
    assert len(messages) == 1 and messages[0]["headers"]["task"] == "ovp.profile_batch"
    status = client.get(body["status_url"]).get_json()
    assert status["id"] == body["batch_id"] and status["total"] == 2 and status["status"] == "running"
    assert sorted(status["pending"]) == [f"{PREFIX}b1", f"{PREFIX}b2"] and status["failures"] == []


def test_batch_unknown(client: Any) -> None:
    assert_error(client.get("/batches/0123456789abcdef0123456789abcdef"), 404, "not_found")
    for text in INJECTIONS:
        assert_no_cypher_leak(client.get(f"/batches/{quote(text, safe='')}"))


def test_broker_down_is_503_after_the_batch_is_recorded(settings: Settings, profiled: dict[str, str], graph: Graph, submitted: list[str]) -> None:
    down = create_app(dataclasses.replace(settings, broker_url="redis://127.0.0.1:1/0"))
    response = down.test_client().post("/batches", json=[manifest_line(f"{PREFIX}b3")], headers={"Authorization": f"Bearer {TOKEN}"})
    body = assert_error(response, 503, "broker_unavailable")
    batch_id = body["message"].split()[1]
    submitted.append(batch_id)
    assert graph.read("MATCH (b:Batch {id: $id}) RETURN b.total AS total", {"id": batch_id}) == [{"total": 1}]
    close_graph(down)


# --- named queries ------------------------------------------------------------------------------------------------

def test_list_queries(client: Any) -> None:
    queries = client.get("/queries").get_json()["queries"]
    names = {q["name"] for q in queries}
    assert len(names) >= 8
    assert {"similar_videos", "disease_videos_by_popularity", "phenotype_diseases", "entity_neighbourhood"} <= names
    similar = next(q for q in queries if q["name"] == "similar_videos")
    assert [p["name"] for p in similar["params"]] == ["video_id", "k"]


def run(client: Any, name: str, **params: Any) -> list[dict[str, Any]]:
    response = client.post(f"/queries/{name}", json=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["rows"]


def test_named_queries_answer_on_the_test_videos(client: Any, profiled: dict[str, str]) -> None:
    v1, v2, v3 = profiled["v1"], profiled["v2"], profiled["v3"]
    popular = [r["video_id"] for r in run(client, "disease_videos_by_popularity", disease_id="OVP:glaucoma", limit=200) if r["video_id"].startswith(PREFIX)]
    assert popular == [v2, v1, v3]
    low = [r["video_id"] for r in run(client, "disease_low_quality_videos", disease_id="OVP:glaucoma", limit=200) if r["video_id"].startswith(PREFIX)]
    assert low == [v2]
    similar = run(client, "similar_videos", video_id=v1, k=2)
    assert similar[0]["video_id"] == v2 and similar[0]["score"] > 0.99
    history = run(client, "video_profile_history", video_id=v1)
    assert [h["model_version"] for h in history if h["latest"]] == ["m2"] and len(history) == 2
    co = {r["id"]: r["videos"] for r in run(client, "disease_co_mentions", disease_id="OVP:glaucoma", limit=100)}
    assert co.get("OVP:cataract", 0) >= 2 and "OVP:myopia" not in co or co["OVP:myopia"] < co["OVP:cataract"]
    by_quality = {r["id"]: r for r in run(client, "entities_by_quality", limit=200)}
    assert by_quality["OVP:glaucoma"]["high"] >= 2 and by_quality["OVP:glaucoma"]["low"] >= 1
    mentions = [r["video_id"] for r in run(client, "entity_videos", entity_id="OVP:myopia", limit=200)]
    assert v1 not in mentions  # its only mention of myopia is negated
    neighbours = run(client, "entity_neighbourhood", entity_id="OVP:glaucoma")
    assert {"HP:0000501", "ICD10:H40"} <= {r["id"] for r in neighbours}
    diseases = run(client, "phenotype_diseases", phenotype_id="HP:0000545", limit=5)
    assert len(diseases) == 5 and all(r["matched"] >= 1 for r in diseases)


def test_named_query_errors(client: Any) -> None:
    assert_error(client.post("/queries/no_such_query", json={}), 404, "unknown_query")
    assert_error(client.post("/queries/similar_videos", json={}), 400, "invalid_param")  # video_id required
    assert_error(client.post("/queries/similar_videos", json={"video_id": "x", "k": 0}), 400, "invalid_param")
    assert_error(client.post("/queries/similar_videos", json={"video_id": "x", "k": "many"}), 400, "invalid_param")
    assert_error(client.post("/queries/similar_videos", json={"video_id": "x", "limit": 3}), 400, "invalid_param")
    assert_error(client.post("/queries/similar_videos", json=["video_id"]), 400, "invalid_request")
    assert run(client, "similar_videos", video_id=f"{PREFIX}missing") == []


@pytest.mark.parametrize("text", INJECTIONS)
def test_named_query_injection_strings(client: Any, text: str) -> None:
    for name, params in [("entity_neighbourhood", {"entity_id": text}), ("similar_videos", {"video_id": text, "k": text}),
                         ("entities_by_quality", {"limit": text}), ("phenotype_diseases", {"phenotype_id": text})]:
        response = client.post(f"/queries/{name}", json=params)
        assert_no_cypher_leak(response)
    assert_no_cypher_leak(client.post(f"/queries/{quote(text, safe='')}", json={}))
