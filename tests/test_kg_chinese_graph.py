"""Chinese names in the real graph (needs `ovp neo4j start`; the graph is built when missing or out of date): the
official HPO labels as name_zh, found by the cjk full-text lookup; the CMeKG aliases as Chinese synonyms, found by
lookup and linked by the dictionary linker; and `ovp kg stats` counting them."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from encoders.linking import DictionaryMatcher, EntityLinker, KnowledgeBase
from kg_builder.store.entities import EntityDictionary, lookup
from kg_builder.graph import Graph
from kg_builder.source_config import HPO_ZH_FILE
from kg_builder.sources.cmekg import read_cmekg_synonyms
from kg_builder.sources.hpo_zh import read_zh_labels

pytestmark = pytest.mark.neo4j

OVP = [sys.executable, "-m", "cli"]


@pytest.fixture(scope="module")
def zh_labels() -> dict[str, str]:
    return read_zh_labels(HPO_ZH_FILE).labels


@pytest.fixture(scope="module")
def dictionary(graph: Graph, built_kg: dict[str, Any]) -> EntityLinker:
    kb = KnowledgeBase.from_graph(graph)
    return EntityLinker(kb, dictionary=DictionaryMatcher(kb))


def test_every_hpo_node_carries_its_official_chinese_name(graph: Graph, built_kg: dict[str, Any], zh_labels: dict[str, str]) -> None:
    rows = graph.read("MATCH (n:Entity {source: 'HPO'}) RETURN n.id AS id, n.name_zh AS zh")
    assert len(rows) == built_kg["sources"]["HPO"]["nodes"] > 1000
    assert {row["id"]: row["zh"] for row in rows} == {row["id"]: zh_labels[row["id"]] for row in rows}
    assert built_kg["sources"]["HPO"]["version"].endswith("+zh.62f1d25")


def test_lookup_of_an_official_label_returns_its_term_first(graph: Graph, entity_dictionary: EntityDictionary, zh_labels: dict[str, str]) -> None:
    """Every 20th label (about 70) that no other term or lexicon concept uses: the term comes first."""
    shared = Counter(zh_labels.values())
    curated = {row["zh"] for row in graph.read(
        "MATCH (n:Entity {source: 'OVP-lexicon'}) UNWIND [n.name_zh] + coalesce(n.synonyms, []) AS zh RETURN DISTINCT zh")}
    sample = [(tid, label) for tid, label in sorted(zh_labels.items()) if shared[label] == 1 and label not in curated][::20]
    assert len(sample) > 50
    misses = [(tid, label, [h.id for h in lookup(graph, entity_dictionary, label, limit=3)]) for tid, label in sample]
    assert [m for m in misses if m[2][:1] != [m[0]]] == []


def test_a_label_the_lexicon_shares_puts_the_curated_concept_first_and_the_term_next(graph: Graph, entity_dictionary: EntityDictionary) -> None:
    hits = lookup(graph, entity_dictionary, "青光眼", limit=3)  # HP:0000501's official label, and the lexicon's name of OVP:glaucoma
    assert [h.id for h in hits[:2]] == ["OVP:glaucoma", "HP:0000501"]
    assert "HP:0000501" in hits[0].xrefs and hits[1].name_zh == "青光眼"


@pytest.mark.parametrize(("alias", "expected"), [
    ("兔眼", "ICD10:H02.2"),  # lagophthalmos, by its ICD-10 code
    ("交感性眼炎", "ORPHA:79098"),  # sympathetic ophthalmia, by its English name
    ("睑内翻", "HP:0000621"),  # entropion (official label 眼睑内翻)
    ("慢性单纯性青光眼", "OVP:open_angle_glaucoma"),  # an alias of a lexicon concept
])
def test_lookup_finds_cmekg_aliases(graph: Graph, entity_dictionary: EntityDictionary, alias: str, expected: str) -> None:
    assert lookup(graph, entity_dictionary, alias, limit=1)[0].id == expected


def test_cmekg_synonyms_are_recorded_with_their_source(graph: Graph, built_kg: dict[str, Any]) -> None:
    [row] = graph.read("MATCH (n:Entity {id: 'ICD10:H02.2'}) RETURN n.synonyms AS s, n.synonym_sources AS src, "
                       "n.synonym_langs AS langs, n.synonym_versions AS v")
    i = row["s"].index("兔眼")
    version, records = read_cmekg_synonyms()
    assert (row["src"][i], row["langs"][i], row["v"][i]) == ("CMeKG", "zh", version)
    cmekg = built_kg["synonym_sources"]["CMeKG"]
    assert cmekg["version"] == built_kg["current_versions"]["CMeKG"] == version
    # fewer than the file's rows where an entity already had the name (the builder skips those)
    assert 50 < cmekg["synonyms"] <= len(records) and cmekg["entities"] == len(graph.read(
        "MATCH (n:Entity) WHERE 'CMeKG' IN coalesce(n.synonym_sources, []) RETURN n.id"))


def test_new_chinese_names_link(dictionary: EntityLinker) -> None:
    assert [m.id for m in dictionary.link("宝宝眼距过宽要紧吗")] == ["HP:0000316"]  # an official label
    assert [m.id for m in dictionary.link("睡觉眼睛闭不上，医生说是兔眼")] == ["ICD10:H02.2"]  # a CMeKG alias
    assert [m.id for m in dictionary.link("交感性眼炎")] == ["ORPHA:79098"]


def test_stats_json_counts_chinese_names_per_kind(built_kg: dict[str, Any]) -> None:
    out = subprocess.run([*OVP, "kg", "stats", "--json"], capture_output=True, text=True, check=True, timeout=120)
    report = json.loads(out.stdout)
    names = report["chinese_names"]
    assert names["phenotype"]["name_zh"] == names["phenotype"]["entities"] == report["labels"]["Phenotype"]
    assert names["all"]["entities"] == report["labels"]["Entity"]
    assert names["all"]["name_zh"] == sum(v["name_zh"] for k, v in names.items() if k != "all")
    # diseases: the lexicon's have Chinese names; CMeKG adds Chinese synonyms to ICD-10 and rare diseases
    assert 0 < names["disease"]["name_zh"] < names["disease"]["name_zh_or_synonym"] < names["disease"]["entities"]
    assert report["up_to_date"]
