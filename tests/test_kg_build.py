"""The knowledge-graph build against the real Neo4j: counts, paths, mappings, lookup, idempotence, validation, reset."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from kg_builder.build import build, stats
from kg_builder.graph import Graph
from kg_builder.source_config import LEXICON_FILE
from kg_builder.store.build_stamp import read_build_stamp
from kg_builder.store.entities import EntityDictionary, lookup
from ovp.errors import SourceValidationError

pytestmark = pytest.mark.neo4j

OVP = [sys.executable, "-m", "cli"]


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    """What must not change between builds: nodes per label, relationships per type, nodes per source."""
    return {
        "labels": report["labels"],
        "relationships": report["relationships"],
        "sources": {source: info["nodes"] for source, info in report["sources"].items()},
    }


def _lexicon_concept(graph: Graph, text: str) -> str:
    """Id of the lexicon concept whose name, Chinese name or a synonym is ``text`` (case-insensitive)."""
    rows = graph.read(
        "MATCH (n:Entity {source: 'OVP-lexicon'}) "
        "WHERE toLower(n.name) = $t OR n.name_zh = $t OR any(s IN n.synonyms WHERE toLower(s) = $t) "
        "RETURN n.id AS id ORDER BY id",
        {"t": text.lower()},
    )
    assert len(rows) == 1, f"expected exactly one lexicon concept named {text!r}, got {rows}"
    return rows[0]["id"]


def test_counts_per_source_are_in_expected_ranges(built_kg: dict[str, Any]) -> None:
    sources = built_kg["sources"]
    assert 1_000 <= sources["HPO"]["nodes"] <= 1_400
    assert 3_000 <= sources["HPO-annotations"]["nodes"] <= 10_000
    assert 250 <= sources["ICD-10"]["nodes"] <= 400
    assert 1_000 <= built_kg["labels"]["Phenotype"] <= 1_500
    assert 1_000 <= built_kg["relationships"]["IS_A"] <= 3_000
    assert 10_000 <= built_kg["relationships"]["HAS_PHENOTYPE"] <= 60_000
    assert built_kg["up_to_date"]
    if LEXICON_FILE.is_file():
        assert 50 <= sources["OVP-lexicon"]["nodes"] <= 1_000
        assert built_kg["relationships"]["MAPS_TO"] >= 50
        assert built_kg["profile_label_diseases"] >= 5


def test_hpo_nodes_keep_scoped_layperson_synonyms(graph: Graph, built_kg: dict[str, Any]) -> None:
    [row] = graph.read(
        "MATCH (n:Entity:Phenotype {id: 'HP:0000509'}) RETURN n.synonyms AS s, n.synonym_scopes AS scopes, "
        "n.synonym_layperson AS lay, n.synonyms_text AS text, n.source_version AS v, n.xrefs AS xrefs"
    )
    pink = row["s"].index("Pink eye")
    assert (row["scopes"][pink], row["lay"][pink]) == ("EXACT", True)
    assert "Pink eye" in row["text"] and row["v"] == built_kg["sources"]["HPO"]["version"]
    assert "UMLS:C0009763" in row["xrefs"]


def test_glaucoma_reaches_the_eye_root_through_is_a(graph: Graph, built_kg: dict[str, Any]) -> None:
    rows = graph.read(
        "MATCH p = (:Phenotype {id: 'HP:0000501'})-[:IS_A*1..10]->(:Phenotype {id: 'HP:0000478'}) "
        "RETURN length(p) AS hops ORDER BY hops LIMIT 1"
    )
    assert rows and rows[0]["hops"] >= 1


def test_icd_subcategory_reaches_chapter_vii(graph: Graph, built_kg: dict[str, Any]) -> None:
    rows = graph.read(
        "MATCH p = (:Disease {id: 'ICD10:H40.1'})-[:IS_A*]->(:Disease {id: 'ICD10:VII'}) RETURN length(p) AS hops"
    )
    assert rows == [{"hops": 3}]


def test_diseases_have_phenotypes_with_frequencies(graph: Graph, built_kg: dict[str, Any]) -> None:
    rows = graph.read(
        "MATCH (d:Disease)-[r:HAS_PHENOTYPE]->(p:Phenotype) WHERE r.frequency = 'HP:0040281' "
        "RETURN d.id AS d, r.frequency_label AS label, r.source AS source LIMIT 1"
    )
    assert rows and rows[0]["label"] == "Very frequent" and rows[0]["source"] == "HPO-annotations"
    assert rows[0]["d"].split(":")[0] in ("OMIM", "ORPHA")


@pytest.mark.skipif(not LEXICON_FILE.is_file(), reason="kg_builder/data/lexicon.jsonl is not written yet")
def test_glaucoma_concept_maps_to_hpo_and_icd(graph: Graph, built_kg: dict[str, Any]) -> None:
    concept = _lexicon_concept(graph, "青光眼")
    rows = graph.read(
        "MATCH (:Entity {id: $id})-[r:MAPS_TO]->(m:Entity) RETURN m.id AS id, r.source AS source", {"id": concept}
    )
    assert {"HP:0000501", "ICD10:H40"} <= {row["id"] for row in rows}
    assert {row["source"] for row in rows} == {"OVP-lexicon"}
    [node] = graph.read("MATCH (n:Disease {id: $id}) RETURN n.profile_label AS p", {"id": concept})
    assert node["p"] is True


@pytest.mark.skipif(not LEXICON_FILE.is_file(), reason="kg_builder/data/lexicon.jsonl is not written yet")
@pytest.mark.parametrize("text", ["青光眼", "pink eye", "老花眼"])
def test_lookup_puts_the_lexicon_concept_first(graph: Graph, entity_dictionary: EntityDictionary, text: str) -> None:
    expected = _lexicon_concept(graph, text)
    hits = lookup(graph, entity_dictionary, text, limit=5)
    assert hits[0].id == expected
    assert hits[0].xrefs, "the lexicon concept should carry its MAPS_TO ids"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_lookup_text_cannot_inject_lucene_or_cypher(graph: Graph, entity_dictionary: EntityDictionary) -> None:
    for text in ['glaucoma" OR *:*', "a) RETURN 1 //", "AND", "*", "\\", "青光眼~2^9"]:
        hits = lookup(graph, entity_dictionary, text, limit=3)
        assert len(hits) <= 3
    assert lookup(graph, entity_dictionary, "?!", limit=3) == []


def test_cli_lookup_and_stats_print_json(built_kg: dict[str, Any]) -> None:
    out = subprocess.run([*OVP, "kg", "lookup", "glaucoma", "--limit", "3", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert 1 <= len(hits) <= 3 and set(hits[0]) == {"id", "name", "name_zh", "kind", "score", "xrefs"}
    out = subprocess.run([*OVP, "kg", "stats", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert _counts(json.loads(out.stdout)) == _counts(built_kg)


@pytest.mark.slow
def test_second_build_leaves_every_count_unchanged(graph: Graph, built_kg: dict[str, Any]) -> None:
    before = _counts(stats(graph))
    stamp = read_build_stamp(graph)
    keys = tuple(built_kg["sources"].keys())
    report = build(graph, [{"HPO": "hpo", "HPO-annotations": "hpo-diseases", "ICD-10": "icd10", "OVP-lexicon": "lexicon"}[k] for k in keys], progress=False)
    assert _counts(stats(graph)) == before
    # A new stamp, written last: processes holding entities in memory reload them.
    assert report.stamp != stamp and read_build_stamp(graph) == report.stamp


BAD_LEXICONS = {
    "duplicate id": (
        ['{"id": "OVP:t_one", "kind": "disease", "name": "T one", "maps_to": ["HP:0000501"]}',
         '{"id": "OVP:t_one", "kind": "disease", "name": "T again", "maps_to": []}'],
        "duplicate id OVP:t_one",
    ),
    "unknown MAPS_TO": (
        ['{"id": "OVP:t_two", "kind": "disease", "name": "T two", "maps_to": ["HP:0000501"]}',
         '{"id": "OVP:t_three", "kind": "phenotype", "name": "T three", "maps_to": ["ICD10:H99.9"]}'],
        "unknown id ICD10:H99.9",
    ),
    "empty name": (
        ['{"id": "OVP:t_four", "kind": "disease", "name": "T four", "maps_to": []}',
         '{"id": "OVP:t_five", "kind": "exam", "name": "", "name_zh": "检查", "maps_to": []}'],
        "OVP:t_five has an empty name",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LEXICONS))
def test_bad_lexicon_fails_validation_and_leaves_the_graph_untouched(
    graph: Graph, built_kg: dict[str, Any], tmp_path: Path, case: str
) -> None:
    lines, message = BAD_LEXICONS[case]
    path = tmp_path / "lexicon.jsonl"
    path.write_text("// bad lexicon\n" + "\n".join(lines) + "\n", encoding="utf-8")
    before = _counts(stats(graph))
    stamp = read_build_stamp(graph)
    with pytest.raises(SourceValidationError) as error:
        build(graph, ["lexicon"], lexicon_path=path, progress=False)
    assert f"{path}:3: " in str(error.value) and message in str(error.value)
    assert _counts(stats(graph)) == before
    assert read_build_stamp(graph) == stamp  # nothing was built, so what processes hold stays valid
    assert not graph.read("MATCH (n:Entity) WHERE n.id STARTS WITH 'OVP:t_' RETURN n.id")


def test_cli_build_reports_a_bad_lexicon_in_one_line(graph: Graph, built_kg: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "lexicon.jsonl"
    path.write_text('{"id": "OVP:t_six", "kind": "symptom", "name": "T six"}\n', encoding="utf-8")
    out = subprocess.run([*OVP, "kg", "build", "--sources", "lexicon", "--lexicon", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    error_lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and f"{path}:1: OVP:t_six has unknown kind 'symptom'" in error_lines[0]


@pytest.mark.slow
def test_reset_keeps_videos_and_their_mentions_and_drops_stale_entities(graph: Graph, built_kg: dict[str, Any]) -> None:
    run = uuid.uuid4().hex[:12]
    video_id, stale_id = f"test-video-{run}", f"ICD10:TEST-STALE-{run}"
    before = _counts(stats(graph))
    lexicon_edges = graph.read("MATCH (:Entity {source: 'OVP-lexicon'})-[r:MAPS_TO]->(:Entity {source: 'ICD-10'}) RETURN count(r) AS n")
    graph.write(
        "CREATE (v:Video {id: $video}) WITH v MATCH (e:Entity {id: 'ICD10:H40'}) CREATE (v)-[:MENTIONS {surface: 'glaucoma'}]->(e)",
        {"video": video_id},
    )
    graph.write("CREATE (:Entity:Disease {id: $id, name: 'stale', source: 'ICD-10', source_version: 'old'})", {"id": stale_id})
    try:
        report = build(graph, ["icd10"], reset=True, progress=False)
        assert report.deleted == 1
        assert not graph.read("MATCH (n:Entity {id: $id}) RETURN n", {"id": stale_id})
        assert graph.read(
            "MATCH (v:Video {id: $video})-[:MENTIONS]->(:Entity {id: 'ICD10:H40'}) RETURN v.id AS id", {"video": video_id}
        ) == [{"id": video_id}]
        # The lexicon's MAPS_TO into ICD-10 are its own edges: a reset of ICD-10 keeps them.
        assert graph.read(
            "MATCH (:Entity {source: 'OVP-lexicon'})-[r:MAPS_TO]->(:Entity {source: 'ICD-10'}) RETURN count(r) AS n"
        ) == lexicon_edges
        assert _counts(stats(graph)) == before
    finally:
        graph.write("MATCH (v:Video {id: $video}) DETACH DELETE v", {"video": video_id})
        graph.write("MATCH (n:Entity {id: $id}) DETACH DELETE n", {"id": stale_id})
