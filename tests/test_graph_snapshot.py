"""The graph snapshot the GPU bench profiles from (bench/graph_snapshot.py) answers as the live graph does.

Against the real Neo4j: the knowledge base, the label map and the enrichment of a handful of entities read through the
snapshot (after a save and load) must equal what the live graph gives; anything it did not capture is refused.
"""
from __future__ import annotations

import sys

import pytest

from encoders.enrichment import EnrichmentConfig, fetch_knowledge
from encoders.linking import KnowledgeBase
from fusion.features import profile_label_map
from kg_builder.store.knowledge import ENTITY_KNOWLEDGE_QUERY
from ovp.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))
from bench.graph_snapshot import GraphSnapshot, SnapshotMiss  # noqa: E402

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def snapshot(graph, built_kg, tmp_path_factory) -> GraphSnapshot:
    path = tmp_path_factory.mktemp("snapshot") / "graph_snapshot.json.gz"
    GraphSnapshot.capture(graph).save(path)
    return GraphSnapshot.load(path)


def test_snapshot_reads_as_the_live_graph(graph, snapshot) -> None:
    live_kb, snap_kb = KnowledgeBase.from_graph(graph), KnowledgeBase.from_graph(snapshot)
    assert len(snap_kb.entries) == len(live_kb.entries) > 8000
    assert snap_kb.entries == live_kb.entries
    assert profile_label_map(snapshot) == profile_label_map(graph)
    # A lexicon disease, a lexicon phenotype (its diseases include profile labels), an HPO phenotype (annotated
    # diseases, no labels), ICD-10 and an id the graph lacks; duplicates and order as a chunk's mentions give them.
    ids = ["OVP:glaucoma", "OVP:halos_around_lights", "HP:0000505", "ICD10:H40", "OVP:no_such_entity", "OVP:glaucoma"]
    live = fetch_knowledge(graph, ids)
    assert set(live) == {"OVP:glaucoma", "OVP:halos_around_lights", "HP:0000505", "ICD10:H40"}
    assert live["OVP:halos_around_lights"].labels and live["HP:0000505"].diseases
    assert fetch_knowledge(snapshot, ids) == live


def test_snapshot_refuses_what_it_did_not_capture(snapshot) -> None:
    with pytest.raises(SnapshotMiss, match="cannot answer"):
        snapshot.read("MATCH (v:Video) RETURN v.id AS id")
    with pytest.raises(SnapshotMiss, match="max_parents"):
        fetch_knowledge(snapshot, ["OVP:glaucoma"], EnrichmentConfig(max_parents=EnrichmentConfig().max_parents + 1))
    with pytest.raises(SnapshotMiss, match="read-only"):
        snapshot.write(ENTITY_KNOWLEDGE_QUERY, {})


def test_snapshot_of_another_format_is_refused(tmp_path) -> None:
    import gzip
    import json

    path = tmp_path / "old.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump({"format": 0}, handle)
    with pytest.raises(ValueError, match="pack"):
        GraphSnapshot.load(path)
