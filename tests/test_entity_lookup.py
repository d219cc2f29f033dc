"""The entity lookup served from memory: the dictionary's exact names, when the head of the full-text ranking settles
an answer, and (against the real Neo4j) entities created after the dictionary was loaded and the build stamp that
drops what a process holds."""
from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest

from kg_builder.graph import Graph
from kg_builder.store.build_stamp import read_build_stamp, write_build_stamp
from kg_builder.store.entities import EntityDictionary, EntityEntry, EntityLookup, head_settles, lookup


def _entry(entity_id: str, name: str, name_zh: str | None = None, synonyms: tuple[str, ...] = ()) -> EntityEntry:
    return EntityEntry(entity_id, name, name_zh, synonyms, "test", "disease", ())


# --- pure ---------------------------------------------------------------------------------------------------------

def test_dictionary_finds_names_case_folded_and_whitespace_collapsed() -> None:
    dictionary = EntityDictionary([
        _entry("A", "Conjunctivitis", "结膜炎", ("Pink eye",)),
        _entry("B", "Pink  eye", None, ("red eye",)),
        _entry("C", "Pinkeye"),
    ])
    assert set(dictionary.exact("  PINK eye ")) == {"A", "B"}
    assert dictionary.exact("结膜炎") == ("A",)
    assert dictionary.exact("pink") == () and dictionary.exact("") == ()
    assert len(dictionary) == 3


def test_entry_from_row_takes_the_kind_label_and_sorts_the_xrefs() -> None:
    entry = EntityEntry.from_row({"id": "OVP:x", "name": "X", "name_zh": None, "synonyms": None, "source": "OVP-lexicon",
                                  "labels": ["Entity", "Phenotype"], "xrefs": ["ICD10:H1", "HP:2", None]})
    assert entry.kind == "phenotype" and entry.xrefs == ("HP:2", "ICD10:H1") and entry.synonyms == ()
    assert EntityEntry.from_row({"id": "T", "name": "T", "labels": ["Entity"]}).kind == ""


def _head(*scores: float) -> list[dict[str, Any]]:
    return [{"id": f"E{i}", "score": score} for i, score in enumerate(scores)]


def test_the_head_settles_when_the_index_has_nothing_more() -> None:
    assert head_settles(_head(3.0, 1.0), asked=5, exact=["E9"], limit=3)


def test_the_head_does_not_settle_without_every_exact_match() -> None:
    # E9 may rank lower in the pool: its full-text score (or 0) decides its place among exact matches.
    assert not head_settles(_head(9, 8, 7, 6, 5), asked=5, exact=["E9"], limit=2)
    assert head_settles(_head(9, 8, 7, 6, 5), asked=5, exact=["E4"], limit=2)


def test_the_head_does_not_settle_when_a_tie_reaches_its_floor() -> None:
    # Three candidates above the floor settle limit 3; with limit 4 the fourth slot ties with candidates that may lie
    # past the head (broken by id, not by the index's order), so the whole pool is needed.
    head = _head(9, 8, 7, 5, 5)
    assert head_settles(head, asked=5, exact=[], limit=3)
    assert not head_settles(head, asked=5, exact=[], limit=4)
    # An exact match does not count as one of the partial hits that fill the answer.
    assert not head_settles(head, asked=5, exact=["E0"], limit=3)


# --- against Neo4j --------------------------------------------------------------------------------------------------

@pytest.fixture()
def new_entity(graph: Graph, built_kg: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """An entity created outside a build (as a curator might by hand), removed afterwards: (id, name)."""
    tag = uuid.uuid4().hex[:10]
    entity_id, name = f"TEST:lookup-{tag}", f"Zqxlookup{tag} haze"
    graph.write("CREATE (n:Entity:Phenotype {id: $id, name: $name, name_zh: '测试混浊', synonyms: [], "
                "synonyms_text: '', source: 'test'})", {"id": entity_id, "name": name})
    yield entity_id, name
    graph.write("MATCH (n:Entity {id: $id}) DETACH DELETE n", {"id": entity_id})


def test_lookup_reads_an_entity_the_dictionary_does_not_hold(graph: Graph, entity_dictionary: EntityDictionary,
                                                              new_entity: tuple[str, str]) -> None:
    entity_id, name = new_entity
    assert entity_id not in entity_dictionary.entries
    [hit] = lookup(graph, entity_dictionary, name.split()[0], limit=3)
    assert (hit.id, hit.name, hit.name_zh, hit.kind) == (entity_id, name, "测试混浊", "phenotype")


def test_a_process_keeps_its_answers_until_the_build_stamp_changes(graph: Graph, new_entity: tuple[str, str]) -> None:
    entity_id, name = new_entity
    word = name.split()[0]
    service = EntityLookup(check_interval_s=3600)
    assert [hit.name for hit in service.lookup(graph, word)] == [name]
    graph.write("MATCH (n:Entity {id: $id}) SET n.name = $name", {"id": entity_id, "name": f"{word} renamed"})
    # Remembered: the answer, and the dictionary, belong to the build the process loaded.
    assert [hit.name for hit in service.lookup(graph, word)] == [name]
    held = service.dictionary(graph)
    service.check_interval_s = 0  # check the stamp on every call from now on
    assert [hit.name for hit in service.lookup(graph, word)] == [name]  # same stamp: nothing dropped
    assert service.dictionary(graph) is held
    stamp = write_build_stamp(graph)
    assert read_build_stamp(graph) == stamp
    assert [hit.name for hit in service.lookup(graph, word)] == [f"{word} renamed"]
    assert service.dictionary(graph) is not held and service.dictionary(graph).stamp == stamp


def test_the_answer_cache_keeps_the_latest_answers(graph: Graph, built_kg: dict[str, Any]) -> None:
    service = EntityLookup(check_interval_s=0, cache_size=2)
    for text in ("glaucoma", "青光眼", "myopia"):
        service.lookup(graph, text)
    assert len(service._answers) == 2  # the oldest answer went first
    assert [key[0] for key in service._answers] == ["青光眼", "myopia"]
