"""Profile write-back against the real Neo4j: one transaction, idempotent, `latest` moves with model versions."""
from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from encoders.disease_tags import NamedEvidence, SimilarityEvidence, SourceTag, combine_tags
from encoders.phenotype_ic import PhenotypeEvidence
from kg_builder.graph import Graph
from kg_builder.store.tags import video_tags
from kg_builder.store.videos import video_detail
from kg_builder.schema import apply_schema
from ovp.settings import Settings
from kg_builder.store.batches import batch_status, record_batch, record_failure
from kg_builder.store.rows import DiseasePrediction, MentionRecord, VideoMeta
from worker.records import Explanation, ProfileRecord
from worker.writeback import write_profile, write_profiles

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def graph() -> Graph:
    with Graph.connect(Settings.from_env()) as g:
        apply_schema(g)
        yield g


@pytest.fixture()
def world(graph: Graph):
    """Two test diseases and a test phenotype, removed afterwards with every test video, profile and batch."""
    tag = uuid.uuid4().hex[:8]
    ids = {"d1": f"TEST:{tag}:d1", "d2": f"TEST:{tag}:d2", "p": f"TEST:{tag}:p"}
    graph.write(
        "UNWIND $rows AS r CREATE (e:Entity {id: r.id, name: r.id, source: 'test'}) "
        "FOREACH (_ IN CASE WHEN r.kind = 'd' THEN [1] ELSE [] END | SET e:Disease) "
        "FOREACH (_ IN CASE WHEN r.kind = 'p' THEN [1] ELSE [] END | SET e:Phenotype)",
        {"rows": [{"id": ids["d1"], "kind": "d"}, {"id": ids["d2"], "kind": "d"}, {"id": ids["p"], "kind": "p"}]},
    )
    yield tag, ids
    graph.write("MATCH (n) WHERE n.id STARTS WITH $prefix DETACH DELETE n", {"prefix": f"TEST:{tag}"})
    graph.write("MATCH (p:Profile) WHERE p.video_id STARTS WITH $prefix DETACH DELETE p", {"prefix": f"test-{tag}"})
    graph.write("MATCH (n) WHERE (n:Video OR n:Batch) AND n.id STARTS WITH $prefix DETACH DELETE n", {"prefix": f"test-{tag}"})


def _record(tag: str, ids: dict[str, str], model_version: str, quality: int = 4) -> ProfileRecord:
    return ProfileRecord(
        video=VideoMeta(id=f"test-{tag}-v1", platform="douyin", title="青光眼", caption="#青光眼 眼压高", hashtags=("青光眼",)),
        model_version=model_version,
        popularity=7.5,
        popularity_pct=81.0,
        quality=quality,
        quality_probs=(0.0, 0.1, 0.1, 0.6, 0.2),
        predictions=(DiseasePrediction(ids["d1"], 0.9, 1), DiseasePrediction(ids["d2"], 0.6, 2)),
        mentions=(MentionRecord(ids["p"], "眼压高", 5, 8, 0.95), MentionRecord(ids["d1"], "青光眼", 1, 4, 1.0, field="transcript")),
        explanation=Explanation(keyframes=((1.0, 0.5), (3.0, 0.3)), entities=((ids["d1"], 0.7),)),
        embedding=tuple(float(i % 7) for i in range(256)),
        visual_backbone="efficientnet_lite0",
        visual_weights="efficientnet-lite0-57934424",
        text_model="bge-small-zh-v1.5",
    )


def _counts(graph: Graph, video_id: str) -> dict[str, int]:
    return graph.read(
        """
        MATCH (v:Video {id: $id})
        RETURN COUNT { (v)-[:MENTIONS]->() } AS mentions,
               COUNT { (v)-[:HAS_PROFILE]->() } AS profiles,
               COUNT { (v)-[:HAS_PROFILE]->(:Profile {latest: true}) } AS latest,
               COUNT { (v)-[:HAS_PROFILE]->()-[:PREDICTS]->() } AS predicts
        """,
        {"id": video_id},
    )[0]


def test_writing_a_profile_twice_with_one_model_version_replaces_it(graph: Graph, world) -> None:
    tag, ids = world
    write_profile(graph, _record(tag, ids, "m1"))
    write_profile(graph, _record(tag, ids, "m1", quality=2))
    assert _counts(graph, f"test-{tag}-v1") == {"mentions": 2, "profiles": 1, "latest": 1, "predicts": 2}
    row = graph.read("MATCH (:Video {id: $id})-[:HAS_PROFILE]->(p) RETURN p.quality AS q, p.explanation AS e", {"id": f"test-{tag}-v1"})[0]
    assert row["q"] == 2 and '"keyframes"' in row["e"]
    fields = graph.read("MATCH (:Video {id: $id})-[m:MENTIONS]->() RETURN m.surface AS s, m.field AS f ORDER BY s",
                        {"id": f"test-{tag}-v1"})
    assert [(r["s"], r["f"]) for r in fields] == [("眼压高", "caption"), ("青光眼", "transcript")]


def test_a_new_model_version_adds_a_profile_and_moves_latest(graph: Graph, world) -> None:
    tag, ids = world
    write_profile(graph, _record(tag, ids, "m1"))
    write_profile(graph, _record(tag, ids, "m2"))
    assert _counts(graph, f"test-{tag}-v1") == {"mentions": 2, "profiles": 2, "latest": 1, "predicts": 4}
    latest = graph.read("MATCH (:Video {id: $id})-[:HAS_PROFILE]->(p {latest: true}) RETURN p.model_version AS m", {"id": f"test-{tag}-v1"})
    assert latest == [{"m": "m2"}]


def test_batch_outcomes_are_counted_from_the_videos(graph: Graph, world) -> None:
    tag, ids = world
    batch_id = f"test-{tag}-batch"
    good, bad = _record(tag, ids, "m1"), VideoMeta(id=f"test-{tag}-bad", caption="x")
    record_batch(graph, batch_id, [good.video, bad])
    assert batch_status(graph, batch_id)["status"] == "running"
    write_profile(graph, good, batch_id=batch_id)
    record_failure(graph, batch_id, bad, "VideoDecodeError: not a video")
    status = batch_status(graph, batch_id)
    assert (status["total"], status["done"], status["failed"], status["status"]) == (2, 1, 1, "finished")
    assert status["failures"] == [{"video_id": bad.id, "reason": "VideoDecodeError: not a video"}]
    assert batch_status(graph, f"test-{tag}-missing") is None


def test_a_chunk_s_profiles_land_together_or_not_at_all(graph: Graph, world) -> None:
    """write_profiles stores a chunk in one transaction: every video's profile and outcome, counts recounted once; a
    chunk one of whose videos cannot be stored leaves nothing of the others behind (a retry writes them all)."""
    tag, ids = world
    batch_id = f"test-{tag}-chunk"
    base = _record(tag, ids, "m1")
    records = [dataclasses.replace(base, video=dataclasses.replace(base.video, id=f"test-{tag}-c{i}")) for i in range(5)]
    record_batch(graph, batch_id, [r.video for r in records])
    # Neo4j refuses a list holding null as a property value: the fourth video's write fails inside the transaction.
    broken = dataclasses.replace(records[3], video=dataclasses.replace(records[3].video, hashtags=("ok", None)))
    with pytest.raises(Exception):
        write_profiles(graph, [*records[:3], broken, records[4]], batch_id=batch_id)
    assert [_counts(graph, r.video.id)["profiles"] for r in records] == [0] * 5
    assert batch_status(graph, batch_id)["done"] == 0 and len(batch_status(graph, batch_id)["pending"]) == 5
    write_profiles(graph, records, batch_id=batch_id)
    assert [_counts(graph, r.video.id) for r in records] == [{"mentions": 2, "profiles": 1, "latest": 1, "predicts": 2}] * 5
    status = batch_status(graph, batch_id)
    assert (status["total"], status["done"], status["failed"], status["status"]) == (5, 5, 0, "finished")
    write_profiles(graph, [], batch_id=batch_id)  # nothing to write: no transaction, nothing changes
    assert batch_status(graph, batch_id)["done"] == 5


def test_write_back_statements_find_videos_entities_and_profiles_by_index(graph: Graph) -> None:
    from test_named_queries import plan_operators

    from kg_builder.store import profiles

    rows = [{"video": {"id": "x"}, "embedding": [], "profile": {"id": "x@m"}, "mentions": [], "predictions": []}]
    for statement in profiles.WRITE_STATEMENTS:
        operators = plan_operators(graph, statement, {"rows": rows})
        assert not [op for op in operators if op.endswith("Scan")], (statement, operators)


def test_batch_and_read_statements_find_their_nodes_by_index(graph: Graph) -> None:
    """The store's batch statements (run per chunk, some per video) and its reads by id seek their anchor through a
    uniqueness constraint's index, never by scanning a label."""
    from test_named_queries import plan_operators

    from kg_builder.store import batches, diseases, entities, profiles, videos

    ids = {"batch_id": "b", "video_ids": ["v"], "now": "t", "total": 1, "videos": [{"id": "v"}], "status": "done",
           "reason": "", "pending": ["queued"], "problems": [], "id": "x", "max": 3, "sort": "quality",
           "min_quality": 1, "limit": 5, "ids": ["v"], "video": {"id": "v"}, "epoch": 0.0, "media_roots": [],
           "lease_until": 0.0}
    statements = {
        "RECORD_BATCH": batches.RECORD_BATCH, "BATCH_STATUS": batches.BATCH_STATUS,
        "SET_OUTCOMES": batches.SET_OUTCOMES, "RECOUNT_BATCH": batches.RECOUNT_BATCH,
        "ENSURE_VIDEO": batches.ENSURE_VIDEO, "CHUNK_STATE": batches.CHUNK_STATE,
        "BEGIN_ATTEMPT": batches.BEGIN_ATTEMPT, "REJECT_BATCH": batches.REJECT_BATCH,
        "PENDING_WORK": batches.PENDING_WORK, "MARK_REQUEUED": batches.MARK_REQUEUED,
        "RUNNING_BATCHES": batches.RUNNING_BATCHES,
        "VIDEO_DETAIL": videos.VIDEO_DETAIL, "ENTITY_DETAIL": entities.ENTITY_DETAIL,
        "DISEASE_VIDEOS": diseases.DISEASE_VIDEOS, "LATEST_PROFILE_SUMMARIES": profiles.LATEST_PROFILE_SUMMARIES,
    }
    for name, statement in statements.items():
        params = {key: value for key, value in ids.items() if f"${key}" in statement}
        operators = plan_operators(graph, statement, params)
        assert not [op for op in operators if op.endswith("Scan")], (name, operators)


def test_disease_evidence_splits_the_log_odds_and_names_the_caption_s_evidence() -> None:
    import math

    from encoders.enrichment import EnrichedText
    from fusion.records import Prediction
    from worker.pipeline import disease_evidence

    enriched = EnrichedText(caption="c", text="c", annotations=[], entity_ids=["OVP:glaucoma"], gnn_embeddings=None,
                            related_via={"OVP:cataract": ["OVP:halos_around_lights"]})
    prediction = Prediction("v", {"OVP:glaucoma": 0.9, "OVP:cataract": 0.6}, None, None, None, None, [], [], [], {}, [],
                            disease_prior_logits={"OVP:glaucoma": 3.0, "OVP:cataract": -1.0})
    named = disease_evidence("OVP:glaucoma", 0.9, prediction, enriched)
    assert (named.named, named.via, named.prior_logit) == (True, (), 3.0)
    assert named.head_logit == pytest.approx(math.log(9) - 3.0, abs=1e-4)
    related = disease_evidence("OVP:cataract", 0.6, prediction, enriched)
    assert (related.named, related.via) == (False, ("OVP:halos_around_lights",))
    assert related.prior_logit + related.head_logit == pytest.approx(math.log(1.5), abs=1e-4)
    # The keyframes' own path takes its share out of the head's, and names the keyframe it leaned on.
    framed = dataclasses.replace(prediction, disease_frame_logits={"OVP:glaucoma": 0.5, "OVP:cataract": -0.2},
                                 disease_keyframes={"OVP:glaucoma": (4.5, 0.7)})
    with_frames = disease_evidence("OVP:glaucoma", 0.9, framed, enriched)
    assert (with_frames.prior_logit, with_frames.frames_logit, with_frames.keyframe) == (3.0, 0.5, (4.5, 0.7))
    assert with_frames.head_logit == pytest.approx(math.log(9) - 3.5, abs=1e-4)
    assert named.frames_logit is None and named.keyframe is None  # a model without the path
    plain = dataclasses.replace(prediction, disease_prior_logits={})  # a model without the prior: no split
    assert disease_evidence("OVP:glaucoma", 0.9, plain, enriched).prior_logit is None


def _tagged(tag: str, ids: dict[str, str], model_version: str) -> ProfileRecord:
    """The record of _record with two open-vocabulary tags (one named, one from phenotypes) and a text vector."""
    named = SourceTag(ids["d2"], "named", 1.0, named=(NamedEvidence("青光眼", 1, 4, 1.0, "dictionary"),))
    inferred = SourceTag(ids["d1"], "phenotypes", 0.5, phenotypes=(PhenotypeEvidence(ids["p"], 3.2, ids["p"], 3.2),),
                         summed_ic=3.2, matched=1)
    similar = SourceTag(ids["d2"], "similarity", 0.7,
                        similarity=SimilarityEvidence(0.7, 0, 3, "Glaucoma. A group of eye diseases"))
    return dataclasses.replace(_record(tag, ids, model_version), tags=tuple(combine_tags([named], [inferred], [similar])),
                               text_vector=tuple(1.0 if i == 0 else 0.0 for i in range(512)))


def test_tags_are_written_with_the_profile_apart_from_predictions(graph: Graph, world) -> None:
    """TAGGED edges (score, source, sources, rank, evidence as JSON) land in the profile's transaction beside PREDICTS,
    are replaced on a rewrite, and only the latest profile's count for GET /videos/{id}; the video keeps its text
    vector for the vector index."""
    tag, ids = world
    video_id = f"test-{tag}-v1"
    write_profile(graph, _tagged(tag, ids, "m1"))
    write_profile(graph, _tagged(tag, ids, "m1"))
    rows = graph.read(
        "MATCH (:Video {id: $id})-[:HAS_PROFILE]->(p)-[t:TAGGED]->(d) RETURN d.id AS d, properties(t) AS t ORDER BY t.rank", {"id": video_id})
    assert [(r["d"], r["t"]["source"], r["t"]["sources"], r["t"]["rank"]) for r in rows] == [
        (ids["d2"], "named", ["named", "similarity"], 1), (ids["d1"], "phenotypes", ["phenotypes"], 2)]
    evidence = json.loads(rows[0]["t"]["evidence"])
    assert evidence["named"]["mentions"] == [
        {"surface": "青光眼", "field": "", "start": 1, "end": 4, "score": 1.0, "method": "dictionary"}]
    assert evidence["similarity"]["similarity"] == 0.7 and evidence["similarity"]["matched_text"].startswith("Glaucoma")
    assert json.loads(rows[1]["t"]["evidence"])["phenotypes"]["phenotypes"] == [
        {"id": ids["p"], "ic": 3.2, "via": ids["p"], "via_ic": 3.2}]
    assert _counts(graph, video_id)["predicts"] == 2
    vector = graph.read("MATCH (v:Video {id: $id}) RETURN v.text_vector AS x", {"id": video_id})[0]["x"]
    assert len(vector) == 512 and vector[0] == 1.0
    # A new model version without tags: its profile is latest and has none; the detail shows the latest's (none).
    write_profile(graph, _record(tag, ids, "m2"))
    assert video_detail(graph, video_id)["tags"] == []
    assert graph.read("MATCH (:Video {id: $id})-[:HAS_PROFILE]->(p {model_version: 'm1'})-[t:TAGGED]->() RETURN count(t) AS n",
                      {"id": video_id}) == [{"n": 2}]
    # An empty vector keeps the stored one.
    assert graph.read("MATCH (v:Video {id: $id}) RETURN size(v.text_vector) AS n", {"id": video_id}) == [{"n": 512}]
    write_profile(graph, _tagged(tag, ids, "m3"))
    assert [t["disease_id"] for t in video_tags(graph, video_id)] == [ids["d2"], ids["d1"]]
