"""Knowledge enrichment: pure annotation and budget rules on hand-made knowledge, then one round trip against the real
Neo4j with the real graph (a Chinese caption gets its English name and definition)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from encoders.enrichment import (
    GNN_DIM,
    EnrichmentConfig,
    EntityKnowledge,
    KnowledgeEnricher,
    annotate,
    enrich_text,
    fetch_knowledge,
    shorten,
)
from encoders.linking import EntityLinker, KnowledgeBase, Mention, link_mentions
from kg_builder.store.knowledge import ENTITY_KNOWLEDGE_QUERY


def mention(entity_id: str, start: int, end: int, negated: bool = False) -> Mention:
    return Mention(id=entity_id, name=entity_id, kind="disease", surface="x", start=start, end=end, score=1.0, negated=negated)


GLAUCOMA = EntityKnowledge(
    id="OVP:glaucoma", name="Glaucoma", kind="disease",
    definition="A group of eye diseases that damage the optic nerve, usually with raised eye pressure.",
    parents=("Abnormal eye physiology", "glaucoma"), maps_to=("Glaucoma", "Glaucoma suspect"),
    gnn_embedding=tuple(float(i) for i in range(GNN_DIM)),
)
RED_EYE = EntityKnowledge(
    id="OVP:red_eye", name="Red eye", kind="phenotype", definition="Redness of the white of the eye.",
    diseases=("Conjunctivitis", "Uveitis", "Keratitis", "Scleritis"),
)


def test_shorten_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    assert shorten("short text", 40) == "short text"
    cut = shorten("one two three four five six", 15)
    assert cut == "one two three…" and len(cut) <= 15
    assert len(shorten("青光眼是一组损害视神经的眼病", 6)) == 6


def test_annotation_lists_definition_parents_and_equivalents_without_repeating_the_name() -> None:
    text = annotate(GLAUCOMA)
    assert text.startswith("Glaucoma: A group of eye diseases")
    assert "is a: Abnormal eye physiology" in text and "is a: Abnormal eye physiology, glaucoma" not in text
    assert "also: Glaucoma suspect" in text and "also: Glaucoma," not in text
    assert annotate(GLAUCOMA, negated=True) == "not: Glaucoma"
    # a phenotype names the diseases that show it, capped
    assert "seen in: Conjunctivitis, Uveitis, Keratitis" in annotate(RED_EYE) and "Scleritis" not in annotate(RED_EYE)


def test_enrich_text_orders_by_first_mention_keeps_the_budget_and_excludes_denied_entities() -> None:
    knowledge = {k.id: k for k in (GLAUCOMA, RED_EYE)}
    caption = "red eye, not glaucoma"
    config = EnrichmentConfig(budget_chars=60)
    out = enrich_text(caption, [mention("OVP:glaucoma", 12, 20, negated=True), mention("OVP:red_eye", 0, 7)], knowledge, config)
    assert out.linked_ids == ["OVP:red_eye", "OVP:glaucoma"]
    assert out.negated_ids == ["OVP:glaucoma"]
    assert out.annotations[1] == "not: Glaucoma"
    assert out.text == caption + " [SEP] " + " | ".join(out.annotations)
    assert len(" | ".join(out.annotations)) <= 60
    # the only affirmed entity has no embedding yet: E = 0 with the right width
    assert out.entity_ids == [] and out.gnn_embeddings.shape == (0, GNN_DIM)

    affirmed = enrich_text("glaucoma", [mention("OVP:glaucoma", 0, 8)], knowledge)
    assert affirmed.entity_ids == ["OVP:glaucoma"]
    assert affirmed.gnn_embeddings.shape == (1, GNN_DIM) and affirmed.gnn_embeddings[0, 3] == 3.0
    assert enrich_text("nothing here", [], knowledge).text == "nothing here"
    # deterministic: the same input gives the same string
    assert enrich_text(caption, [mention("OVP:red_eye", 0, 7)], knowledge).text == \
        enrich_text(caption, [mention("OVP:red_eye", 0, 7)], knowledge).text


def test_related_labels_come_from_affirmed_linked_phenotypes_in_order_without_repeats() -> None:
    blurry = EntityKnowledge(id="OVP:blurred_vision", name="Blurred vision", kind="phenotype",
                             labels=("OVP:cataract", "OVP:myopia"))
    red = dataclasses.replace(RED_EYE, labels=("OVP:conjunctivitis", "OVP:myopia"))
    knowledge = {k.id: k for k in (GLAUCOMA, blurry, red)}
    out = enrich_text("red, blurry, not glaucoma", [mention("OVP:red_eye", 0, 3), mention("OVP:blurred_vision", 5, 11),
                                                    mention("OVP:glaucoma", 17, 25, negated=True)], knowledge)
    assert out.related_labels == ["OVP:conjunctivitis", "OVP:myopia", "OVP:cataract"]
    denied = enrich_text("not red", [mention("OVP:red_eye", 4, 7, negated=True)], knowledge)
    assert denied.related_labels == []  # "not red eyes" points to no disease


class RecordingGraph:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls.append((query, params or {}))
        return []


def test_one_parameterised_round_trip_per_batch() -> None:
    graph = RecordingGraph()
    KnowledgeEnricher(graph).run(["a", "b"], [[mention("OVP:b", 0, 1)], [mention("OVP:a", 0, 1), mention("OVP:b", 0, 1)]])
    assert len(graph.calls) == 1
    query, params = graph.calls[0]
    assert query == ENTITY_KNOWLEDGE_QUERY and params["ids"] == ["OVP:a", "OVP:b"]
    assert "OVP:" not in query  # values travel as parameters only
    KnowledgeEnricher(graph).run(["no links"], [[]])
    assert len(graph.calls) == 1  # nothing linked: no round trip
    with pytest.raises(ValueError):
        KnowledgeEnricher(graph).run(["a"], [])


def test_chinese_caption_gets_english_knowledge_from_the_real_graph(graph, built_kg) -> None:
    linker = EntityLinker(KnowledgeBase.from_graph(graph))
    captions = ["#青光眼 眼压高怎么办", "不是青光眼，是红眼病"]
    enriched = KnowledgeEnricher(graph).run(captions, link_mentions(captions, linker))
    first = enriched[0]
    assert first.text.startswith(captions[0] + " [SEP] ")
    assert "OVP:glaucoma" in first.linked_ids
    assert any(a.startswith("Glaucoma: ") for a in first.annotations)
    assert len(" | ".join(first.annotations)) <= EnrichmentConfig().budget_chars
    assert first.gnn_embeddings.shape[1] == GNN_DIM and len(first.entity_ids) == first.gnn_embeddings.shape[0]
    assert "not: Glaucoma" in enriched[1].annotations and "OVP:glaucoma" not in enriched[1].entity_ids

    knowledge = fetch_knowledge(graph, ["OVP:glaucoma", "HP:0000501", "NOT:there"])
    assert set(knowledge) == {"OVP:glaucoma", "HP:0000501"}
    assert knowledge["HP:0000501"].kind == "phenotype" and knowledge["HP:0000501"].parents
    assert knowledge["HP:0000501"].diseases  # diseases annotated with the phenotype
    assert knowledge["OVP:glaucoma"].maps_to and not knowledge["OVP:glaucoma"].diseases
    # The lexicon's curated HAS_PHENOTYPE edges: the profile labels a described symptom points to.
    symptoms = fetch_knowledge(graph, ["OVP:halos_around_lights", "OVP:glaucoma"])
    assert symptoms["OVP:halos_around_lights"].labels == ("OVP:astigmatism", "OVP:cataract", "OVP:glaucoma")
    assert symptoms["OVP:glaucoma"].labels == ()  # a disease points to no label through HAS_PHENOTYPE
    described = KnowledgeEnricher(graph).run(["晚上看灯有光圈"], link_mentions(["晚上看灯有光圈"], linker))[0]
    assert "OVP:halos_around_lights" in described.linked_ids and "OVP:cataract" in described.related_labels
    embedding = knowledge["OVP:glaucoma"].gnn_embedding
    assert embedding is None or (len(embedding) == GNN_DIM and np.isfinite(embedding).all())
