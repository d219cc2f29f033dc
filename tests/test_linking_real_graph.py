"""The caption linker on the real knowledge graph (needs `ovp neo4j start`; the graph is built when missing).

The semantic fallback reads the persisted entity vectors (``encoders.entity_vectors``), so after the first run these
tests take seconds, not the ten minutes that embedding ~8,100 entities takes on CPU.
"""
from __future__ import annotations

import sys

import pytest

from encoders.linking import EntityLinker, link_mentions, load_linker
from ovp.settings import PROJECT_ROOT, Settings

sys.path.insert(0, str(PROJECT_ROOT))
from bench.linking import ConceptClasses, read_gold, score_gold, split_of  # noqa: E402

pytestmark = pytest.mark.neo4j

GOLD = PROJECT_ROOT / "tests" / "data" / "captions_gold.jsonl"


@pytest.fixture(scope="module")
def linker(graph, built_kg) -> EntityLinker:
    """The linker as OVP builds it: the cross-lingual semantic fallback."""
    return load_linker(Settings.from_env(), graph, semantic=True)


@pytest.fixture(scope="module")
def gloss_linker(graph, built_kg, text_encoder) -> EntityLinker:
    """The English-only fallback that reads Chinese through word-by-word glosses (kept to measure against)."""
    return load_linker(Settings.from_env(), graph, semantic=True, encoder=text_encoder, vectors="gloss")


@pytest.fixture(scope="module")
def dictionary(linker) -> EntityLinker:
    return EntityLinker(linker.kb, dictionary=linker.dictionary, max_text_chars=linker.max_text_chars)


@pytest.fixture(scope="module")
def classes(linker) -> ConceptClasses:
    return ConceptClasses(linker.kb)


def ids(mentions) -> list[str]:
    return [m.id for m in mentions]


def test_kb_reads_every_entity_with_a_kind_and_maps_to_xrefs_both_ways(linker) -> None:
    kb = linker.kb
    assert len(kb) > 8000
    assert {e.kind for e in kb} == {"disease", "phenotype", "anatomy", "treatment", "exam"}
    assert "HP:0000501" in kb.get("OVP:glaucoma").xrefs  # written OVP → HP
    assert "OVP:glaucoma" in kb.get("HP:0000501").xrefs  # read back from the other end


def test_dictionary_holds_every_name_name_zh_and_exact_synonym(linker, dictionary) -> None:
    glaucoma = linker.kb.get("OVP:glaucoma")
    for surface in [glaucoma.name, glaucoma.name_zh, *glaucoma.synonyms]:
        assert "OVP:glaucoma" in ids(dictionary.link(surface)), surface


def test_hashtag_emoji_caption_links_glaucoma(dictionary) -> None:
    mentions = dictionary.link("#青光眼 早期症状👀")
    assert ids(mentions) == ["OVP:glaucoma"]
    assert mentions[0].surface == "青光眼" and not mentions[0].negated


@pytest.mark.parametrize("text, expected", [("pink eye", "OVP:conjunctivitis"), ("老花眼", "OVP:presbyopia")])
def test_colloquial_names_link_to_lexicon_concepts(dictionary, text: str, expected: str) -> None:
    assert ids(dictionary.link(text)) == [expected]


def test_denied_glaucoma_is_negated(dictionary) -> None:
    (mention,) = dictionary.link("不是青光眼")
    assert mention.id == "OVP:glaucoma" and mention.negated


@pytest.mark.parametrize("caption", [
    "the teacher asked every pupil to read aloud",
    "avoid it like the plague",
    "感动到流泪 这部电影太好看了",
    "the blind spot when you change lanes",  # a BROAD HPO synonym
])
def test_everyday_captions_link_nothing(dictionary, caption: str) -> None:
    assert dictionary.link(caption) == []


def test_non_exact_hpo_synonyms_are_not_dictionary_surfaces(dictionary) -> None:
    # "double eyelid" is a NARROW synonym of Accessory eyelid (HP:0430008); only the word "eyelid" links
    assert ids(dictionary.link("double eyelid tape tutorial")) == ["OVP:eyelid"]


def test_curtain_sentence_reaches_retinal_detachment(gloss_linker, classes) -> None:
    # all-MiniLM-L6-v2 gets this one; the cross-lingual vectors place it nearer Sudden vision loss (0.74)
    linker = gloss_linker
    text = "a dark curtain came down over my vision"
    semantic = linker.semantic
    sims = semantic.similarities([text])[0]
    best = linker.kb.entries[int(sims.argmax())]
    assert classes.of(best.id) == classes.of("OVP:retinal_detachment"), best
    # linked once the threshold admits its score (the default is chosen on half of the gold set by bench/linking.py)
    old = semantic.threshold
    semantic.threshold = min(old, float(sims.max()))
    try:
        linked = [classes.of(i) for i in ids(linker.link(text))]
    finally:
        semantic.threshold = old
    assert classes.of("OVP:retinal_detachment") in linked


def test_chinese_description_links_through_its_english_reading(gloss_linker, classes) -> None:
    text = "体检都正常，那为什么看东西还是模糊？"  # 看东西模糊 is a surface of Blurred vision; 还是 ("still") breaks it
    (m,) = [m for m in gloss_linker.link(text) if m.method == "gloss"]
    assert classes.of(m.id) == classes.of("OVP:blurred_vision"), m
    assert m.surface == "那为什么看东西还是模糊" and text[m.start : m.end] == m.surface and not m.negated


def test_chinese_description_links_as_written_with_cross_lingual_vectors(linker, classes) -> None:
    text = "体检都正常，那为什么看东西还是模糊？"
    (m,) = [m for m in linker.link(text) if m.method == "semantic"]
    assert classes.of(m.id) == classes.of("OVP:blurred_vision"), m
    assert m.surface == "那为什么看东西还是模糊" and not m.negated
    assert m.score >= linker.semantic.zh_threshold


#: Eye words used outside medicine: drinks, travel, make-up, idioms, films. No mention at all.
NOT_MEDICAL = [
    "a few glasses of wine with friends tonight",
    "Two glasses of champagne and I'm done 🥂",
    "took the red-eye flight to Tokyo, so tired",
    "cat eye eyeliner tutorial for hooded eyes",
    "孩子老揉眼",
    "她凝视着远方的大海",
    "他气得横眉竖眼",
    "细眉长眉画法教程",
    "喝到红眼了",
    "这是他论证中的盲点",
    "独眼龙电影",
]


@pytest.mark.parametrize("text", NOT_MEDICAL)
def test_eye_words_used_outside_medicine_are_no_mentions(linker, text) -> None:
    assert [(m.surface, m.id) for m in linker.link(text)] == []


@pytest.mark.parametrize("text, expected", [
    ("第一次戴 glasses 去上课", "OVP:eyeglasses"),
    ("I need new glasses for my myopia", "OVP:eyeglasses"),
    ("角膜溃疡差点失明", "OVP:vision_loss"),
    ("我奶奶失明好几年了", "OVP:vision_loss"),  # blindness needs no other eye word
    ("视野里有个盲点", "HP:0000575"),
    ("突然红眼了，眼睛又痒又疼", "HP:0025337"),
])
def test_the_same_words_in_an_eye_caption_still_link(dictionary, classes, text, expected) -> None:
    assert classes.of(expected) in {classes.of(i) for i in ids(dictionary.link(text))}


def test_off_topic_caption_gets_no_semantic_link(linker) -> None:
    assert linker.link("I love cooking pasta with my family on sunday") == []
    assert linker.link("今天天气很好，我们一家人去公园野餐") == []


def test_dictionary_precision_on_the_gold_captions(dictionary, classes) -> None:
    captions = read_gold(GOLD)
    assert len(captions) >= 150
    scores = score_gold(captions, link_mentions([c.text for c in captions], dictionary), classes)
    assert scores["precision"] >= 0.85, scores


def test_dictionary_recall_on_the_gold_captions(dictionary, classes) -> None:
    # A regression floor on the whole labelled set (measured 0.863). Lexicon surfaces were added from errors on the DEV
    # half only (bench/linking.py: split_of); the held-out TEST half measures 0.844 with the dictionary alone — below
    # the 0.85 target — and 0.857 with the semantic fallback (English spans, and Chinese ones read through their
    # English gloss; thresholds chosen on DEV). bench/linking.py reports both halves.
    captions = read_gold(GOLD)
    scores = score_gold(captions, link_mentions([c.text for c in captions], dictionary), classes)
    assert scores["recall"] >= 0.85, scores


def test_linker_meets_the_targets_on_the_held_out_test_half(linker, classes) -> None:
    # The targets (recall and precision ≥ 0.85) on the TEST half, which no lexicon entry, threshold or span
    # rule was chosen on (bench/linking.py: split_of). Measured with the cross-lingual fallback, thresholds frozen on
    # DEV (bench/linking_cross_lingual.py): P 0.995, R 0.857 (the glossed English-only one: P 0.990, R 0.857).
    captions = [c for c in read_gold(GOLD) if split_of(c.id) == "test"]
    assert len(captions) >= 100
    scores = score_gold(captions, link_mentions([c.text for c in captions], linker), classes)
    assert scores["recall"] >= 0.85 and scores["precision"] >= 0.85, scores
