"""The MedQuAD eye evaluation set: its loader, its split and its gold ids, checked against the graph's sources (no
Neo4j). Nothing here scores anything."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from bench.medquad_eye import DATA_DIR, load_items, load_mapping
from kg_builder.build import collect
from kg_builder.source_config import SOURCE_ORDER


@pytest.fixture(scope="module")
def items():
    return load_items()


def test_items_are_questions_and_answers_of_every_document(items) -> None:
    docs = [json.loads(line) for line in (DATA_DIR / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(items) == 2 * sum(len(doc["qa_pairs"]) for doc in docs)
    assert {i.kind for i in items} == {"question", "answer"} and len({i.item_id for i in items}) == len(items)
    assert len(load_items("dev")) + len(load_items("test")) == len(items)


def test_split_keeps_each_condition_and_each_graph_id_in_one_half_and_is_balanced(items) -> None:
    halves: dict[str, set[str]] = defaultdict(set)
    for item in items:
        halves[item.focus].add(item.split)
        for graph_id in item.gold:
            halves["id:" + graph_id].add(item.split)
    assert all(len(v) == 1 for v in halves.values())
    dev, test = len(load_items("dev")), len(load_items("test"))
    assert abs(dev - test) <= 0.1 * (dev + test)


def test_gold_ids_are_disease_entities_of_the_graph_and_match_the_mapping(items) -> None:
    diseases = {r.id for r in collect(SOURCE_ORDER, progress=False).entities if r.kind == "disease"}
    mapping = {row.focus: row for row in load_mapping()}
    assert {i.focus for i in items} == set(mapping)
    for item in items:
        assert set(item.gold) <= diseases, item.item_id
        assert item.gold == mapping[item.focus].graph_ids
    unmapped = [row for row in mapping.values() if not row.graph_ids]
    assert unmapped and all(row.notes for row in unmapped)  # kept, marked, with the reason


def test_loader_refuses_a_bad_split_and_a_damaged_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        load_items("train")
    bad = tmp_path / "items.jsonl"
    bad.write_text('{"item_id": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="items.jsonl:1: not a valid item"):
        load_items(path=bad)
