"""Search by meaning: the ranking query's structure, and search, "more like this" and the API against the
real Neo4j (knowledge graph built) with the real sentence encoder.

Test videos are written through the worker's write-back (``write_profiles``) under ids starting with ``searchtest_``
and deleted afterwards.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from api.app import create_app
from api.db import close_graph
from encoders.disease_tags import NamedEvidence, SourceTag, combine_tags
from encoders.linking import EntityLinker, load_linker
from encoders.sentence_vectors import SentenceVectorEncoder
from encoders.video_search import SearchConfig, SharedConcept, VideoSearch, hit_reason
from kg_builder.graph import Graph
from kg_builder.store.rows import MentionRecord, VideoMeta
from kg_builder.store.search import Concept, search_query
from ovp.settings import Settings
from worker.records import ProfileRecord
from worker.writeback import write_profiles

PREFIX = "searchtest_"

def test_the_entity_branch_joins_the_candidates_only_when_the_query_has_concepts() -> None:
    without, with_entities = search_query(False), search_query(True)
    assert "MENTIONS]-(v:Video)" not in without and "$entity_candidates" not in without
    assert with_entities.count("UNION") == 2 and "$entity_candidates" in with_entities
    # The two differ only by the candidates' branches: the scoring and the ranking are the same text.
    assert with_entities.split("WITH DISTINCT v\nWHERE", 1)[1] == without.split("WITH DISTINCT v\nWHERE", 1)[1]


def test_hit_reason_and_limits() -> None:
    shared = (SharedConcept(Concept("OVP:glaucoma", "Glaucoma", "青光眼", ("OVP:glaucoma",)), ("mention", "tag")),
              SharedConcept(Concept("HP:0007663", "", "", ("HP:0007663",)), ("tag",)))
    assert hit_reason(0.4567, shared) == "text similarity 0.46; mentions and tagged Glaucoma; tagged HP:0007663"
    assert hit_reason(-0.1, ()) == "text similarity -0.10"
    with pytest.raises(ValueError):
        SearchConfig(entity_weight=-1)


# --- against Neo4j -------------------------------------------------------------------------------------------------

VIDEOS = {
    # id suffix: (title, caption, linked mentions (entity, surface), tagged diseases)
    "glaucoma_en": ("Glaucoma explained", "Glaucoma slowly damages the optic nerve; get your eye pressure checked.",
                    [("OVP:glaucoma", "Glaucoma")], ["OVP:glaucoma"]),
    "cataract_zh": ("白内障科普", "白内障手术以后视力模糊怎么办？医生告诉你术后护理", [("OVP:cataract", "白内障")], ["OVP:cataract"]),
    "dry_en": ("Screen time", "Dry, gritty eyes after hours at the computer: blink more and use artificial tears.", [], []),
}


@pytest.fixture(scope="module")
def encoder() -> SentenceVectorEncoder:
    return SentenceVectorEncoder().load()


@pytest.fixture(scope="module")
def linker(graph: Graph, built_kg: dict[str, Any]) -> EntityLinker:
    return load_linker(Settings.from_env(), graph, semantic=False)


def _mention(entity_id: str, surface: str, title: str, caption: str) -> MentionRecord:
    """The first occurrence of ``surface``, as offsets into its field (title first)."""
    field, text = ("title", title) if surface in title else ("caption", caption)
    start = text.index(surface)
    return MentionRecord(entity_id, surface, start, start + len(surface), 1.0, field=field)


def _delete(graph: Graph) -> None:
    graph.write("MATCH (v:Video) WHERE v.id STARTS WITH $p OPTIONAL MATCH (v)-[:HAS_PROFILE]->(x:Profile) DETACH DELETE x, v",
                {"p": PREFIX})


@pytest.fixture(scope="module")
def videos(graph: Graph, built_kg: dict[str, Any], encoder: SentenceVectorEncoder) -> Iterator[dict[str, str]]:
    """Three profiled test videos with text vectors, mentions and tags, written the way the worker writes them."""
    _delete(graph)
    records = []
    for suffix, (title, caption, mentions, tagged) in VIDEOS.items():
        text = f"{title}\n{caption}"
        found = [_mention(e, s, title, caption) for e, s in mentions]
        tags = combine_tags([SourceTag(d, "named", 1.0, named=(NamedEvidence(d, 0, 1, 1.0, "dictionary"),)) for d in tagged])
        records.append(ProfileRecord(
            video=VideoMeta(id=PREFIX + suffix, platform="youtube", title=title, caption=caption, synthetic=True),
            model_version="search-test", popularity=1.0, popularity_pct=50.0, quality=3, quality_probs=(0.2,) * 5,
            mentions=tuple(found), tags=tuple(tags), text_vector=tuple(float(x) for x in encoder.encode([text])[0])))
    write_profiles(graph, records)
    yield {suffix: PREFIX + suffix for suffix in VIDEOS}
    _delete(graph)


def _ours(hits: list[Any]) -> list[str]:
    return [h.video_id for h in hits if h.video_id.startswith(PREFIX)]


def test_a_chinese_query_finds_the_english_video_and_says_why(graph: Graph, videos: dict[str, str], linker: EntityLinker,
                                                              encoder: SentenceVectorEncoder) -> None:
    result = VideoSearch(graph, linker, encoder).search("青光眼 眼压高怎么办", k=50)
    assert [c.id for c in result.concepts][:1] == ["OVP:glaucoma"]
    assert _ours(list(result.hits))[0] == videos["glaucoma_en"]
    hit = next(h for h in result.hits if h.video_id == videos["glaucoma_en"])
    assert [(s.concept.id, s.via) for s in hit.shared] == [("OVP:glaucoma", ("mention", "tag"))]
    assert hit.score == pytest.approx(hit.similarity + SearchConfig().entity_weight * 1 / len(result.concepts), abs=1e-4)
    assert "mentions and tagged Glaucoma" in hit.reason and hit.synthetic


def test_an_english_query_finds_the_chinese_video(graph: Graph, videos: dict[str, str], linker: EntityLinker,
                                                  encoder: SentenceVectorEncoder) -> None:
    # "cataract" and 白内障 link to one concept, and their vectors are close.
    result = VideoSearch(graph, linker, encoder).search("recovery after cataract operation, blurry vision", k=50)
    assert _ours(list(result.hits))[0] == videos["cataract_zh"]
    # A query that names no concept the videos share is ranked by the vectors alone.
    dry = VideoSearch(graph, linker, encoder).search("my screen makes my eyes feel like sand", k=50)
    assert _ours(list(dry.hits))[0] == videos["dry_en"]


def test_bad_queries_are_refused(graph: Graph, linker: EntityLinker, encoder: SentenceVectorEncoder) -> None:
    searcher = VideoSearch(graph, linker, encoder)
    for text, k in (("   ", 10), ("x" * 501, 10), ("glaucoma", 0), ("glaucoma", 101)):
        with pytest.raises(ValueError):
            searcher.search(text, k)


def test_similar_by_meaning_starts_from_the_video(graph: Graph, videos: dict[str, str], linker: EntityLinker,
                                                  encoder: SentenceVectorEncoder) -> None:
    searcher = VideoSearch(graph, linker, encoder)
    result = searcher.similar(videos["glaucoma_en"], k=50)
    assert result is not None and videos["glaucoma_en"] not in [h.video_id for h in result.hits]
    assert [c.id for c in result.concepts] == ["OVP:glaucoma"]
    assert searcher.similar(PREFIX + "missing", k=5) is None


# --- the API -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(videos: dict[str, str]) -> Iterator[Any]:
    app = create_app(Settings.from_env(), {"TESTING": True})
    yield app.test_client()
    close_graph(app)


def test_search_endpoint(client: Any, videos: dict[str, str]) -> None:
    response = client.get("/search?q=" + quote("青光眼") + "&k=100")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["query"] == "青光眼" and body["concepts"][0]["id"] == "OVP:glaucoma"
    assert "ICD10:H40" in body["concepts"][0]["equivalents"]
    hit = next(h for h in body["hits"] if h["video_id"] == videos["glaucoma_en"])
    assert set(hit) >= {"score", "similarity", "shared", "reason", "title"} and hit["shared"][0]["via"] == ["mention", "tag"]
    for query, status in (("", 400), ("?q=", 400), ("?q=%20%20", 400), ("?q=" + "x" * 501, 400), ("?q=eye&k=0", 400),
                          ("?q=eye&k=101", 400), ("?q=eye&k=ten", 400), ("?q=%00", 400)):
        assert client.get("/search" + query).status_code == status, query


def test_similar_endpoint(client: Any, videos: dict[str, str]) -> None:
    response = client.get(f"/videos/{videos['glaucoma_en']}/similar?k=5")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["by"] == "meaning" and videos["glaucoma_en"] not in [h["video_id"] for h in body["hits"]]
    # by=profile is the similar_videos named query: these videos have no fused embedding, so no rows, but a 200.
    assert client.get(f"/videos/{videos['glaucoma_en']}/similar?by=profile").get_json()["hits"] == []
    assert client.get(f"/videos/{PREFIX}missing/similar").status_code == 404
    assert client.get(f"/videos/{PREFIX}missing/similar?by=profile").status_code == 404
    assert client.get(f"/videos/{videos['glaucoma_en']}/similar?by=colour").status_code == 400


def test_video_detail_lists_tags_apart_from_predictions(client: Any, videos: dict[str, str]) -> None:
    body = client.get(f"/videos/{videos['cataract_zh']}").get_json()
    assert body["has_text_vector"] is True and body["profile"]["predictions"] == []
    assert [(t["disease_id"], t["source"], t["sources"], t["rank"]) for t in body["tags"]] == [
        ("OVP:cataract", "named", ["named"], 1)]
    assert body["tags"][0]["evidence"]["named"]["mentions"][0]["method"] == "dictionary"
    assert body["tags"][0]["name_zh"] == "白内障"
    tagged = client.get("/diseases/OVP:cataract/videos?via=tagged&limit=200").get_json()
    assert videos["cataract_zh"] in [v["video_id"] for v in tagged["videos"]] and tagged["via"] == "tagged"
    predicted = client.get("/diseases/OVP:cataract/videos?limit=200").get_json()
    assert videos["cataract_zh"] not in [v["video_id"] for v in predicted["videos"]]


def test_a_denied_disease_is_not_tagged_however_close_its_sentence_is(graph: Graph, built_kg: dict[str, Any],
                                                                       linker: EntityLinker,
                                                                       encoder: SentenceVectorEncoder) -> None:
    from encoders.disease_tags import DiseaseTagger, denied_diseases, sentence_spans, similarity_tags
    from encoders.linking import link_mentions

    tagger = DiseaseTagger(graph, Settings.from_env(), encoder=encoder)
    text = "这不是青光眼哦。眼压正常，视神经也没有问题。"
    (mentions,) = link_mentions([text], linker)
    denied = denied_diseases(mentions)
    assert denied, f"the linker should find the denied disease: {mentions}"
    # Before the rule, the similarity source found the denied disease in the sentence that denies it.
    spans = sentence_spans(text, tagger.thresholds.max_segments)
    raw = similarity_tags(encoder.encode([text[a:b] for a, b in spans]), spans, tagger.disease_matrix,
                          tagger.row_disease, tagger.row_text, min_similarity=tagger.thresholds.similarity_min,
                          max_tags=20)
    assert denied & {t.disease_id for t in raw}
    (tags,) = tagger.tag([text], [mentions])
    assert not denied & {t.disease_id for t in tags.tags}
