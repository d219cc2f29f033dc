"""Open-vocabulary disease tags as pure functions (no Neo4j, no model): information content over a toy annotation
graph, the phenotype source's gates, the named and similarity sources, and how tags from several sources combine."""
from __future__ import annotations

import math

import numpy as np
import pytest

from encoders.disease_tags import (DiseaseTag, SourceTag, TagThresholds, combine_tags, denied_diseases, disease_rows,
                                   named_tags, similarity_tags, sentence_spans)
from encoders.linking import Mention
from encoders.phenotype_ic import PhenotypeIndex, PhenotypeThresholds
from kg_builder.store.tags import DiseaseText, PhenotypeGraph

# A toy hierarchy: EYE ⊃ LENS ⊃ CATARACT ⊃ NUCLEAR, EYE ⊃ MOTION ⊃ NYSTAGMUS, EYE ⊃ BLUR.
PARENTS = (("LENS", "EYE"), ("CATARACT", "LENS"), ("NUCLEAR", "CATARACT"), ("MOTION", "EYE"),
           ("NYSTAGMUS", "MOTION"), ("BLUR", "EYE"))
# Eight annotated diseases: BLUR is common (7 of 8), NUCLEAR rare (2 of 8). SYN has everything; D_LEX is annotated
# with a lexicon phenotype that MAPS_TO BLUR.
ANNOTATIONS = (
    ("D_CAT", "CATARACT"), ("D_CAT", "BLUR"),
    ("D_NUC", "NUCLEAR"), ("D_NUC", "NYSTAGMUS"),
    ("D_NYS", "NYSTAGMUS"), ("D_NYS", "BLUR"),
    ("SYN", "NUCLEAR"), ("SYN", "NYSTAGMUS"), ("SYN", "BLUR"), ("SYN", "LENS"), ("SYN", "MOTION"),
    ("D_B1", "BLUR"), ("D_B2", "BLUR"), ("D_B3", "BLUR"),
    ("D_LEX", "OVP:blurry"),
)
EQUIVALENTS = (("OVP:blurry", "BLUR"), ("OVP:cataract_disease", "CATARACT"))


@pytest.fixture(scope="module")
def index() -> PhenotypeIndex:
    return PhenotypeIndex(PhenotypeGraph(ANNOTATIONS, PARENTS, EQUIVALENTS))


def test_information_content_follows_the_true_path_rule(index: PhenotypeIndex) -> None:
    n = 8  # annotated diseases
    # CATARACT is held by D_CAT, D_NUC and SYN (the last two through NUCLEAR, a descendant).
    assert index.term_ic("CATARACT") == pytest.approx(-math.log(3 / n))
    assert index.term_ic("NUCLEAR") == pytest.approx(-math.log(2 / n))
    assert index.term_ic("BLUR") == pytest.approx(-math.log(7 / n))  # D_LEX's lexicon term counts as BLUR
    assert index.term_ic("EYE") == pytest.approx(0.0)  # every annotated disease has the root
    assert index.term_ic("UNKNOWN") == 0.0
    assert index.canonical("OVP:blurry") == ["BLUR"] and index.canonical("NYSTAGMUS") == ["NYSTAGMUS"]


def test_query_terms_drop_ancestors_and_terms_without_diseases(index: PhenotypeIndex) -> None:
    # CATARACT is an ancestor of NUCLEAR: its information is in NUCLEAR already. A disease mention that MAPS_TO a
    # phenotype stands for that phenotype.
    assert index.query_terms(["CATARACT", "NUCLEAR", "OVP:blurry", "UNKNOWN"]) == ["BLUR", "NUCLEAR"]
    assert index.query_terms(["OVP:cataract_disease"]) == ["CATARACT"]


def test_specific_phenotypes_count_more_and_one_vague_symptom_tags_nothing(index: PhenotypeIndex) -> None:
    loose = PhenotypeThresholds(min_matched=1, min_ic=0.0, min_score=0.0, max_tags=10)
    # One vague symptom (held by seven of the eight diseases): without gates it points everywhere; with them, nowhere.
    vague = index.match(["BLUR"], loose)
    assert {m.disease_id for m in vague} == {"D_CAT", "D_NYS", "SYN", "D_B1", "D_B2", "D_B3", "D_LEX"}
    assert index.match(["BLUR"], PhenotypeThresholds(min_matched=1, min_ic=1.0, min_score=0.0)) == []
    assert index.match(["BLUR"], PhenotypeThresholds()) == []
    # Two specific phenotypes: the disease characterised by exactly them first, the syndrome that has them and much
    # more second (lower normalised score), the disease with only one of them (and a partial match) out.
    found = index.match(["NUCLEAR", "NYSTAGMUS"], PhenotypeThresholds(min_matched=2, min_ic=2.0, min_score=0.0))
    assert [m.disease_id for m in found] == ["D_NUC", "SYN"]
    best = found[0]
    ic_q = index.term_ic("NUCLEAR") + index.term_ic("NYSTAGMUS")
    assert best.summed_ic == pytest.approx(ic_q, abs=1e-3) and best.matched == 2
    assert best.score == pytest.approx(1.0, abs=1e-3)  # the text describes exactly what characterises D_NUC
    assert found[1].score < best.score
    assert [(e.phenotype_id, e.via) for e in best.evidence] == [("NUCLEAR", "NUCLEAR"), ("NYSTAGMUS", "NYSTAGMUS")]


def test_partial_support_goes_through_the_most_informative_common_ancestor(index: PhenotypeIndex) -> None:
    loose = PhenotypeThresholds(min_matched=1, min_ic=0.0, min_score=0.0, max_tags=10)
    by_id = {m.disease_id: m for m in index.match(["NUCLEAR", "BLUR"], loose)}
    # D_CAT has CATARACT, not NUCLEAR: NUCLEAR supports it through CATARACT (not exact), BLUR exactly.
    evidence = {e.phenotype_id: e for e in by_id["D_CAT"].evidence}
    assert evidence["NUCLEAR"].via == "CATARACT" and not evidence["NUCLEAR"].exact
    assert evidence["NUCLEAR"].via_ic == pytest.approx(index.term_ic("CATARACT"), abs=1e-4)
    assert by_id["D_CAT"].matched == 1
    assert by_id["D_CAT"].summed_ic == pytest.approx(index.term_ic("CATARACT") + index.term_ic("BLUR"), abs=1e-3)


def test_thresholds_reject_impossible_values() -> None:
    with pytest.raises(ValueError, match="min_matched"):
        PhenotypeThresholds(min_matched=0)
    with pytest.raises(ValueError, match="min_score"):
        PhenotypeThresholds(min_score=1.5)
    with pytest.raises(ValueError, match="similarity_max_tags"):
        TagThresholds(similarity_max_tags=0)
    with pytest.raises(ValueError, match="no HAS_PHENOTYPE"):
        PhenotypeIndex(PhenotypeGraph((), PARENTS, ()))


def _mention(entity_id: str, kind: str, start: int, score: float = 1.0, negated: bool = False, method: str = "dictionary") -> Mention:
    return Mention(id=entity_id, name=entity_id, kind=kind, surface=f"s{start}", start=start, end=start + 2,
                   score=score, negated=negated, method=method)


def test_named_tags_are_affirmed_disease_mentions_at_their_best_score() -> None:
    mentions = [_mention("D1", "disease", 0, 0.95), _mention("P1", "phenotype", 3), _mention("D1", "disease", 6, 1.0),
                _mention("D2", "disease", 9, negated=True), _mention("D3", "disease", 12, 0.62, method="semantic")]
    tags = named_tags(mentions, min_score=0.6)
    assert [(t.disease_id, t.score, len(t.named)) for t in tags] == [("D1", 1.0, 2), ("D3", 0.62, 1)]
    assert named_tags(mentions, min_score=0.7)[-1].disease_id == "D1"
    assert named_tags(mentions, {"D3"}, 0.6)[0].named[0].method == "semantic"


def test_sentence_spans_are_the_whole_text_then_its_sentences() -> None:
    assert sentence_spans("  ", 4) == []
    assert sentence_spans(" one sentence only ", 4) == [(1, 18)]
    text = "Glaucoma damages the optic nerve. It is silent!\n青光眼很危险。要定期检查"
    spans = sentence_spans(text, 8)
    assert [text[a:b] for a, b in spans] == [text, "Glaucoma damages the optic nerve.", "It is silent!", "青光眼很危险。",
                                             "要定期检查"]
    assert len(sentence_spans(text, 2)) == 3  # the whole text and the first two sentences


def test_similarity_tags_take_each_disease_s_best_row_and_segment() -> None:
    segments = [(0, 10), (0, 4), (5, 10)]
    seg = np.eye(3, 4, dtype=np.float32)  # three unit segment vectors along axes 0, 1, 2
    rows = np.array([[0.9, 0.1, 0, 0], [0.2, 0.0, 0.75, 0], [0, 0.8, 0, 0], [0, 0, 0, 1.0]], dtype=np.float32)
    tags = similarity_tags(seg, segments, rows, ["A", "B", "A", "C"], ["a", "b", "a-zh", "c"], min_similarity=0.5, max_tags=5)
    assert [(t.disease_id, t.score, t.similarity.field, t.similarity.start, t.similarity.matched_text) for t in tags] == [
        ("A", 0.9, "all", 0, "a"), ("B", 0.75, "", 5, "b")]  # A's best is the whole text, B's a sentence
    assert [t.disease_id for t in similarity_tags(seg, segments, rows, ["A", "B", "A", "C"], ["a", "b", "a", "c"],
                                                  min_similarity=0.5, max_tags=1)] == ["A"]
    assert similarity_tags(np.zeros((0, 4)), [], rows, ["A"] * 4, ["a"] * 4, min_similarity=0.0, max_tags=3) == []


def test_combine_tags_keeps_one_tag_per_disease_with_every_source() -> None:
    named = [SourceTag("D1", "named", 0.95)]
    inferred = [SourceTag("D2", "phenotypes", 0.8), SourceTag("D1", "phenotypes", 0.99)]
    similar = [SourceTag("D3", "similarity", 0.9), SourceTag("D2", "similarity", 0.7), SourceTag("D4", "similarity", 0.95)]
    tags = combine_tags(named, inferred, similar)
    assert [(t.disease_id, t.source, t.sources, t.score, t.rank) for t in tags] == [
        ("D1", "named", ("named", "phenotypes"), 0.99, 1),
        ("D2", "phenotypes", ("phenotypes", "similarity"), 0.8, 2),
        ("D4", "similarity", ("similarity",), 0.95, 3),
        ("D3", "similarity", ("similarity",), 0.9, 4),
    ]
    assert [e.source for e in tags[0].evidence] == ["named", "phenotypes"]
    assert combine_tags() == [] and isinstance(tags[0], DiseaseTag)
    with pytest.raises(ValueError, match="unknown tag source"):
        SourceTag("D1", "guess", 0.5)


def test_disease_rows_embed_the_english_text_and_the_chinese_name() -> None:
    rows = disease_rows([DiseaseText("OVP:glaucoma", "Glaucoma", "青光眼", "Optic nerve damage."),
                         DiseaseText("OMIM:1", "Some syndrome", "", "")])
    assert rows == (["OVP:glaucoma", "OVP:glaucoma", "OMIM:1"], ["Glaucoma. Optic nerve damage.", "青光眼", "Some syndrome"])


def test_a_disease_the_text_denies_is_denied_with_its_equivalents_unless_also_affirmed() -> None:
    def m(entity_id: str, negated: bool, xrefs: tuple[str, ...] = ()) -> Mention:
        return Mention(entity_id, "", "disease", "x", 0, 1, 1.0, negated=negated, xrefs=xrefs)

    # "不是虹膜炎哦": iritis is denied, and so is its equivalent in another source, which similarity might find.
    assert denied_diseases([m("OVP:iritis", True, ("ORPHA:1", "HP:1"))]) == {"OVP:iritis", "ORPHA:1", "HP:1"}
    # Named once denied and once affirmed ("not glaucoma ... it is glaucoma"): not denied.
    assert denied_diseases([m("OVP:glaucoma", True), m("OVP:glaucoma", False)]) == frozenset()
    assert denied_diseases([m("OVP:a", True, ("X:1",)), m("X:1", False)]) == {"OVP:a"}
    assert denied_diseases([]) == frozenset()
