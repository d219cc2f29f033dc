"""Caption normalisation and entity linking against a toy knowledge base built here (as scispaCy's tests do)."""
from __future__ import annotations

import logging
import random
import re
import sys
from typing import Callable

import numpy as np
import pytest

from encoders.linking import (
    DictionaryMatcher,
    EntityLinker,
    KBEntry,
    KnowledgeBase,
    Mention,
    NegationDetector,
    SemanticMatcher,
    build_pipeline,
    link_mentions,
)
from encoders.normalize import CJK_CLASS, is_cjk, normalize, splits_units_at, units
from encoders.text import LINKING_TEXT_MODEL, TextEncoder, TextEncoderConfig, TextFeatures
from kg_builder.store.knowledge import KNOWLEDGE_BASE_QUERY

# --------------------------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＯＣＴ检查！", "oct检查"),
        ("#青光眼 早期症状👀", "青光眼 早期症状"),
        ("my PINK eye!!", "my pink eye"),
        ("ＰＩＮＫ\u3000ＥＹＥ", "pink eye"),
        ("  ..#dry--eye  ", "dry eye"),
        ("Cafe\u0301", "café"),
        ("👍🏻", ""),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


def test_normalize_offsets_point_into_the_original() -> None:
    raw = "#青光眼 ＯＣＴ👀 pink-eye"
    nt = normalize(raw)
    assert nt.text == "青光眼 oct pink eye"
    assert len(nt.starts) == len(nt.ends) == len(nt.text)
    for surface, original in (("青光眼", "青光眼"), ("oct", "ＯＣＴ"), ("pink eye", "pink-eye")):
        i = nt.text.index(surface)
        s, e = nt.to_original(i, i + len(surface))
        assert raw[s:e] == original
    with pytest.raises(ValueError):
        nt.to_original(3, 3)


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        normalize(None)  # type: ignore[arg-type]


def test_units_split_words_and_cjk_characters() -> None:
    assert units("没有 pink eye青光眼") == ["没", "有", "pink", "eye", "青", "光", "眼"]


def test_the_cjk_character_class_is_is_cjk() -> None:
    """Units and Latin words are found with a regular expression; its class must accept exactly what is_cjk does."""
    cjk = re.compile(f"[{CJK_CLASS}]")
    differ = [cp for cp in range(sys.maxunicode + 1)
              if not 0xD800 <= cp <= 0xDFFF and bool(cjk.fullmatch(chr(cp))) != is_cjk(chr(cp))]
    assert differ == []


#: Pieces of hostile and ordinary captions: marks and joiners that continue a cluster (also after punctuation),
#: compatibility forms that NFKC expands, full-width punctuation, emoji with variation selectors.
AWKWARD = ["not ", "no ", "不是", "没有", "but ", "但是", "无法", "glaucoma ", "青光眼", "眼", "a", "xyz", " ", ",", "。",
           "…", "，", "\n", "\u0301", "\u200d", "\ufe0f", "👀", "#", "Ｎｏｔ ", "\u3000", "ﬁ", "㎝", "①", "isn't ",
           "゛", "\u00a0", ",\u0301", "。\u0308a", "x" * 30, "青" * 12]


def test_normalisation_can_be_cut_where_splits_units_at_says() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(AWKWARD) for _ in range(rng.randint(1, 12)))
        for i in range(1, len(text)):
            if splits_units_at(text, i):
                a, b = rng.randint(0, i - 1), rng.randint(i + 1, len(text))
                whole = units(normalize(text[a:b]).text)
                assert whole == units(normalize(text[a:i]).text) + units(normalize(text[i:b]).text), (text, a, i, b)


# --------------------------------------------------------------------------------------------------------------
# the toy knowledge base
# --------------------------------------------------------------------------------------------------------------

RD_DEFINITION = (
    "Separation of the neurosensory retina from the retinal pigment epithelium; patients describe a dark curtain "
    "or shadow coming over their vision."
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase(
        [
            KBEntry("OVP:0001", "disease", "Glaucoma", "青光眼", ["青光眼病"],
                    "Optic neuropathy with raised intraocular pressure and loss of peripheral vision.", ["HP:0000501"]),
            KBEntry("HP:0000501", "disease", "Glaucoma", "", [], "", ["OVP:0001"]),
            KBEntry("OVP:0002", "disease", "Presbyopia", "老花眼", ["老花"], "Age-related loss of near focusing ability."),
            KBEntry("OVP:0003", "disease", "Conjunctivitis", "结膜炎", ["pink eye", "红眼病"],
                    "Inflammation of the conjunctiva causing red, itchy, watery eyes."),
            KBEntry("OVP:0004", "disease", "Myopia", "近视", ["nearsightedness", "近视眼"],
                    "Nearsightedness: distant objects appear blurry."),
            KBEntry("OVP:0005", "disease", "High myopia", "高度近视", [], "Myopia of more than six dioptres."),
            KBEntry("OVP:0006", "disease", "Retinal detachment", "视网膜脱离", ["视网膜脱落"], RD_DEFINITION),
            KBEntry("OVP:0007", "exam", "Optical coherence tomography", "光学相干断层扫描", ["OCT"],
                    "Imaging exam of the retina."),
            KBEntry("OVP:0008", "phenotype", "Eye pain", "眼痛", [], "Pain in or around the eye."),
            KBEntry("OVP:0009", "disease", "Cataract", "白内障", [], "Clouding of the lens causing blurred vision."),
        ]
    )


@pytest.fixture(scope="module")
def linker(kb: KnowledgeBase) -> EntityLinker:
    return EntityLinker(kb, max_text_chars=200)


def only(mentions: list[Mention]) -> Mention:
    assert len(mentions) == 1, mentions
    return mentions[0]


# --------------------------------------------------------------------------------------------------------------
# dictionary matching
# --------------------------------------------------------------------------------------------------------------


def test_hashtag_and_emoji_caption_links_glaucoma(linker: EntityLinker) -> None:
    text = "#青光眼 早期症状👀"
    m = only(linker.link(text))
    assert (m.id, m.kind, m.surface, m.start, m.end) == ("OVP:0001", "disease", "青光眼", 1, 4)
    assert text[m.start : m.end] == m.surface
    assert m.score == 1.0 and not m.negated and m.method == "dictionary"


def test_full_width_acronym_links_oct(linker: EntityLinker) -> None:
    m = only(linker.link("ＯＣＴ检查"))
    assert (m.id, m.kind, m.surface, m.start, m.end, m.score) == ("OVP:0007", "exam", "ＯＣＴ", 0, 3, 0.95)


def test_acronyms_need_capitals(linker: EntityLinker) -> None:
    assert [m.surface for m in linker.link("see you Oct 5, then oct and OCT")] == ["OCT"]


def test_english_synonym_on_word_boundaries(linker: EntityLinker) -> None:
    m = only(linker.link("my pink eye!!"))
    assert (m.id, m.surface, m.start, m.end, m.score) == ("OVP:0003", "pink eye", 3, 11, 0.95)
    assert linker.link("glaucomas and pinkeye") == []
    assert [m.id for m in linker.link("PINK EYE 红眼病")] == ["OVP:0003", "OVP:0003"]


def test_longest_match_wins(linker: EntityLinker) -> None:
    mentions = linker.link("high myopia, not just myopia; 高度近视")
    assert [(m.id, m.surface) for m in mentions] == [
        ("OVP:0005", "high myopia"), ("OVP:0004", "myopia"), ("OVP:0005", "高度近视"),
    ]


def test_equal_length_overlap_goes_to_higher_score(linker: EntityLinker) -> None:
    # "pink eye" (synonym, 0.95) and "eye pain" (name, 1.0) overlap on "eye" and are equally long
    m = only(linker.link("pink eye pain"))
    assert (m.id, m.surface) == ("OVP:0008", "eye pain")


def test_shared_surface_prefers_ovp_and_keeps_alternatives(linker: EntityLinker) -> None:
    m = only(linker.link("Glaucoma awareness week"))
    assert m.id == "OVP:0001" and m.alternatives == ("HP:0000501",) and m.xrefs == ("HP:0000501",)


def test_source_priority_without_ovp() -> None:
    kb = KnowledgeBase([
        KBEntry("ICD10:H40", "disease", "Glaucoma"),
        KBEntry("HP:0000501", "disease", "Glaucoma"),
    ])
    m = only(EntityLinker(kb, max_text_chars=100).link("glaucoma"))
    assert m.id == "HP:0000501" and m.alternatives == ("ICD10:H40",)


def test_short_surfaces_are_not_indexed() -> None:
    kb = KnowledgeBase([KBEntry("OVP:1", "anatomy", "Eye", "眼", ["OD"])])
    matcher = DictionaryMatcher(kb)
    assert matcher.surface_count == 1  # only "eye"; 眼 and OD are too short
    with pytest.raises(ValueError):
        DictionaryMatcher(kb, name_score=0.9, synonym_score=0.95)


# --------------------------------------------------------------------------------------------------------------
# negation
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        ("不是青光眼", True),
        ("this is not glaucoma", True),
        ("没有任何青光眼", True),
        ("doesn't have glaucoma", True),
        ("we need to rule out glaucoma", True),
        ("is it glaucoma", False),
        ("不是近视，是青光眼", False),  # the cue is in another clause
        ("no pain but glaucoma", False),  # "but" ends the scope
        ("无法看清，青光眼", False),
        ("not now, I mean it, really, finally glaucoma", False),
    ],
)
def test_negation(linker: EntityLinker, text: str, negated: bool) -> None:
    glaucoma = [m for m in linker.link(text) if m.id == "OVP:0001"]
    assert len(glaucoma) == 1 and glaucoma[0].negated is negated


def test_negated_mention_is_kept_not_dropped(linker: EntityLinker) -> None:
    m = only(linker.link("this is not pink eye"))
    assert (m.id, m.surface, m.negated) == ("OVP:0003", "pink eye", True)
    assert m.to_json()["negated"] is True


def test_negation_window() -> None:
    detector = NegationDetector(window=2)
    text = "no sign of any glaucoma"
    assert not detector.is_negated(text, text.index("glaucoma"))
    assert NegationDetector(window=5).is_negated(text, text.index("glaucoma"))


# --------------------------------------------------------------------------------------------------------------
# bad input, the spaCy component, the JSON contract
# --------------------------------------------------------------------------------------------------------------


def test_empty_text_and_type_errors(linker: EntityLinker) -> None:
    assert linker.link("") == []
    assert link_mentions(["", "   ", "👀"], linker) == [[], [], []]
    assert link_mentions([], linker) == []
    with pytest.raises(TypeError):
        link_mentions([None], linker)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        link_mentions(["ok", 3], linker)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        link_mentions("青光眼", linker)  # type: ignore[arg-type]


def test_over_long_text_is_cut_with_a_warning(linker: EntityLinker, caplog: pytest.LogCaptureFixture) -> None:
    text = "青光眼" + "x" * 300 + " myopia"
    with caplog.at_level(logging.WARNING, logger="encoders.linking"):
        [mentions] = link_mentions([text], linker)
    assert [m.id for m in mentions] == ["OVP:0001"]  # myopia lies past the 200-char cut
    assert any("cut to 200" in r.getMessage() for r in caplog.records)


def test_link_mentions_gives_what_the_spacy_component_gives(linker: EntityLinker) -> None:
    texts = ["#青光眼", "my pink eye", "nothing here", "不是青光眼"] * 5
    result = link_mentions(texts, linker, batch_size=3)
    assert [[m.id for m in ms] for ms in result[:3]] == [["OVP:0001"], ["OVP:0003"], []]
    assert result[4:8] == result[:4]
    assert result == [doc._.ovp_mentions for doc in linker.nlp.pipe(texts, batch_size=3)]
    with pytest.raises(ValueError, match="batch_size"):
        link_mentions(texts, linker, batch_size=0)
    doc = linker.nlp("不是青光眼")
    assert [m.negated for m in doc._.ovp_mentions] == [True]
    assert "ovp_entity_linker" in linker.nlp.pipe_names


def test_component_without_linker_says_how_to_build_it() -> None:
    import spacy

    nlp = spacy.blank("xx")
    nlp.add_pipe("ovp_entity_linker")
    with pytest.raises(ValueError, match="build_pipeline"):
        nlp("青光眼")


def test_mention_json_contract(linker: EntityLinker) -> None:
    m = only(linker.link("Glaucoma"))
    assert m.to_json() == {
        "id": "OVP:0001", "name": "Glaucoma", "kind": "disease", "surface": "Glaucoma", "start": 0, "end": 8,
        "score": 1.0, "negated": False, "xrefs": ["HP:0000501"],
    }


# --------------------------------------------------------------------------------------------------------------
# the knowledge base and the graph query
# --------------------------------------------------------------------------------------------------------------


class FakeGraph:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.calls: list[tuple[str, dict]] = []

    def read(self, query: str, params: dict | None = None) -> list[dict]:
        self.calls.append((query, params or {}))
        return self.rows


def test_knowledge_base_from_graph_uses_one_parameterised_read() -> None:
    graph = FakeGraph([
        {"id": "OVP:0001", "kinds": ["Disease"], "name": "Glaucoma", "name_zh": "青光眼", "synonyms": ["青光眼病"],
         "definition": "d", "xrefs": ["ICD10:H40", "HP:0000501"]},
        {"id": "HP:0000501", "kinds": ["Phenotype"], "name": "Glaucoma", "name_zh": None, "synonyms": None,
         "definition": None, "xrefs": ["OVP:0001"]},
        {"id": "X:1", "kinds": [], "name": "unlabelled", "name_zh": None, "synonyms": [], "definition": None, "xrefs": []},
    ])
    kb = KnowledgeBase.from_graph(graph)
    assert len(graph.calls) == 1
    query, params = graph.calls[0]
    assert query == KNOWLEDGE_BASE_QUERY and "$kind_labels" in query
    assert params == {"kind_labels": ["Disease", "Phenotype", "Anatomy", "Treatment", "Exam"]}
    assert [e.id for e in kb] == ["OVP:0001", "HP:0000501"]
    assert kb.get("OVP:0001").xrefs == ["HP:0000501", "ICD10:H40"]
    assert kb.get("HP:0000501").kind == "phenotype" and kb.get("HP:0000501").synonyms == []


def test_knowledge_base_rejects_bad_entries() -> None:
    with pytest.raises(ValueError):
        KBEntry("OVP:1", "symptom", "x")
    with pytest.raises(ValueError):
        KnowledgeBase([KBEntry("OVP:1", "disease", "a"), KBEntry("OVP:1", "disease", "b")])


# --------------------------------------------------------------------------------------------------------------
# semantic fallback
# --------------------------------------------------------------------------------------------------------------


class CountingEncoder:
    """Wraps the real encoder and counts what it is asked to embed."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.seen: list[str] = []

    def encode(self, texts: list[str], batch_size: int = 32) -> TextFeatures:
        self.seen.extend(texts)
        return self.inner.encode(texts, batch_size=batch_size)


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    return TextEncoder(TextEncoderConfig(model=LINKING_TEXT_MODEL, device="cpu")).load()


@pytest.fixture()
def semantic_linker(kb: KnowledgeBase, text_encoder: TextEncoder) -> EntityLinker:
    return EntityLinker(kb, semantic=SemanticMatcher(CountingEncoder(text_encoder)), max_text_chars=500)


def test_curtain_sentence_reaches_retinal_detachment(semantic_linker: EntityLinker) -> None:
    text = "Suddenly a dark curtain came down over my vision!"
    m = only(semantic_linker.link(text))
    assert (m.id, m.method) == ("OVP:0006", "semantic")
    assert m.score >= semantic_linker.semantic.threshold and text[m.start : m.end] == m.surface
    assert m.surface == "Suddenly a dark curtain came down over my vision"


def test_unrelated_sentence_links_nothing(semantic_linker: EntityLinker) -> None:
    assert semantic_linker.link("I love cooking pasta") == []
    assert semantic_linker.link("subscribe for more videos every week") == []


def test_semantic_skips_what_the_dictionary_covered(semantic_linker: EntityLinker) -> None:
    text = "a dark curtain came down over my vision, with pink eye"
    mentions = semantic_linker.link(text)
    assert [(m.id, m.method) for m in mentions] == [("OVP:0006", "semantic"), ("OVP:0003", "dictionary")]
    encoder = semantic_linker.semantic.encoder  # type: ignore[union-attr]
    assert "a dark curtain came down over my vision" in encoder.seen
    assert not any("pink" in t for t in encoder.seen)
    assert semantic_linker.link("a dark curtain came down over my vision and pink eye")[1].method == "dictionary"
    assert not any("pink" in t for t in encoder.seen)  # same clause: the dictionary span is cut out of it


def test_semantic_mentions_can_be_negated(semantic_linker: EntityLinker) -> None:
    m = only(semantic_linker.link("Honestly, I never had a dark curtain come down over my vision"))
    assert m.id == "OVP:0006" and m.negated


class NoEncoder:
    def encode(self, texts: list[str], batch_size: int = 32) -> TextFeatures:
        raise AssertionError("not expected to embed anything")


def test_candidate_spans_split_clauses_window_long_ones_and_skip_chinese(kb: KnowledgeBase) -> None:
    matcher = SemanticMatcher(NoEncoder(), kb, max_span_words=8, window_words=4, stride_words=2)
    text = "so sad. one two three four five six seven eight nine ten, 我的眼睛突然看不清楚了啊"
    spans = [text[s:e] for s, e in matcher.candidate_spans(text)]
    assert spans == [
        "one two three four", "three four five six", "five six seven eight", "seven eight nine ten",
    ]
    assert matcher.candidate_spans("one two three four five", covered=[(4, 13)]) == []
    with pytest.raises(ValueError):
        SemanticMatcher(NoEncoder(), window_words=10, max_span_words=8)


def test_entity_matrix_is_cached(kb: KnowledgeBase, text_encoder: TextEncoder) -> None:
    counting = CountingEncoder(text_encoder)
    matcher = SemanticMatcher(counting, kb)
    first = matcher.entity_matrix()
    second = matcher.entity_matrix()
    assert first is second and first.shape == (len(kb), 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert len(counting.seen) == len(kb)
    assert build_pipeline(EntityLinker(kb, semantic=matcher, max_text_chars=100)).pipe_names == ["ovp_entity_linker"]


def test_a_not_a_questions_do_not_negate() -> None:
    # "是不是要戴…?" asks a question; it contains 不是 but denies nothing.
    from encoders.linking import NegationDetector

    detector = NegationDetector()
    text = "孩子近视了，是不是要戴OK镜？"
    start = text.index("OK镜")
    assert detector.is_negated(text, start, start + 3) is False
    assert detector.is_negated("不是青光眼", 2, 5) is True


# --------------------------------------------------------------------------------------------------------------
# Chinese descriptions through their English reading (encoders.zh_gloss)
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glosser():
    from encoders.zh_gloss import ChineseGlosser

    return ChineseGlosser().load()


def test_glosser_reads_content_words_with_offsets_into_the_text(glosser) -> None:
    text = "那为什么看东西还是模糊吗？ itchy"
    words = glosser.segment(text)
    assert all(text[w.start : w.end] == w.word for w in words)
    assert [w.word for w in words][-3:] == ["还是", "模糊", "itchy"]  # 吗 (modal), ？ and spaces are left out
    assert "fuzzy" in glosser.word_gloss("模糊") and glosser.word_gloss("itchy") == "itchy"
    assert glosser.word_gloss("还").startswith("still")  # the common reading (hái), not huán "to pay back"
    assert glosser.segment("") == [] and glosser.gloss("👀!!") == ""
    with pytest.raises(ValueError):
        type(glosser)(senses=0)


@pytest.fixture(scope="module")
def gloss_linker(kb: KnowledgeBase, text_encoder: TextEncoder, glosser) -> EntityLinker:
    return EntityLinker(kb, semantic=SemanticMatcher(text_encoder, glosser=glosser), max_text_chars=500)


def test_chinese_description_reaches_its_entity_through_the_gloss(gloss_linker: EntityLinker) -> None:
    text = "哎，我的眼睛一直很疼很难受！"
    m = only(gloss_linker.link(text))
    assert (m.id, m.method, m.negated) == ("OVP:0008", "gloss", False)  # Eye pain; no dictionary surface here
    assert m.surface == "我的眼睛一直很疼很难受" and text[m.start : m.end] == m.surface  # offsets: the Chinese text
    assert m.score >= gloss_linker.semantic.gloss_threshold  # type: ignore[union-attr]


def test_glossed_mentions_keep_negation(gloss_linker: EntityLinker) -> None:
    assert only(gloss_linker.link("我没有觉得眼睛一直很疼")).negated
    assert not NegationDetector().is_negated("眼睛非常疼", 0, 5)  # 非常 "very" holds a cue character, denies nothing


@pytest.mark.parametrize("caption", ["今天天气很好我们去公园玩", "我喜欢吃火锅和烤肉", "好的", ""])
def test_off_topic_chinese_gets_no_glossed_link(gloss_linker: EntityLinker, caption: str) -> None:
    assert gloss_linker.link(caption) == []


def test_gloss_spans_skip_what_the_dictionary_covered_and_short_pieces(kb: KnowledgeBase, glosser) -> None:
    matcher = SemanticMatcher(NoEncoder(), kb, glosser=glosser)
    text = "青光眼，眼睛一直很疼很难受，好累"
    spans = matcher.gloss_spans(text, covered=[(0, 3)])
    assert [text[s:e] for s, e, _ in spans] == ["眼睛一直很疼很难受"]  # 好累 is two words, below gloss_min_words
    assert "eye" in spans[0][2] and "sore" in spans[0][2]
    assert matcher.candidate_spans(text) == []  # Chinese pieces are embedded through the gloss only
    with pytest.raises(ValueError):
        SemanticMatcher(NoEncoder(), gloss_threshold=0.5)  # a gloss threshold needs a glosser


def test_huge_chinese_input_is_cut_and_linked(gloss_linker: EntityLinker) -> None:
    text = "我的眼睛一直很疼很难受。" * 5_000
    mentions = gloss_linker.link(text)
    assert [m.id for m in mentions] == ["OVP:0008"]  # one entity per text, from the kept prefix
    assert mentions[0].end <= gloss_linker.max_text_chars


# --------------------------------------------------------------------------------------------------------------
# linear work: the cost of linking grows with the text, not with its square (counted, not timed)
# --------------------------------------------------------------------------------------------------------------


class HashEncoder:
    """A stand-in sentence encoder: a fixed pseudo-random unit vector per text (numpy only, so it adds no traced
    Python lines per span)."""

    def encode(self, texts: list[str], batch_size: int = 32) -> TextFeatures:
        rows = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts]) if texts \
            else np.zeros((0, 8))
        pooled = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
        return TextFeatures([], [], [], pooled)


def traced_lines(work: Callable[[], object]) -> int:
    """How many Python lines ``work()`` executes: a count of work done that does not depend on the machine's speed."""
    count = 0

    def tracer(frame: object, event: str, arg: object) -> Callable[..., object]:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("semantic", [False, True], ids=["dictionary", "semantic"])
@pytest.mark.parametrize(
    "unit",
    [
        "青光眼 not glaucoma 白内障手术 no cataract surgery but 近视 and pink eye ",  # one clause however long
        "青光眼，not glaucoma. 白内障手术; no cataract surgery! but 近视 and pink eye。",
    ],
    ids=["no-punctuation", "punctuation"],
)
def test_linking_work_grows_linearly_with_the_text(kb: KnowledgeBase, unit: str, semantic: bool) -> None:
    """Eight times the text costs about eight times the lines executed, whatever the punctuation. Looking back over
    the whole clause for every mention's negation made a text without sentence breaks quadratic (64 times)."""
    entries = [*kb, KBEntry("OVP:0010", "treatment", "Cataract surgery", "白内障手术")]  # nests a disease
    matcher = SemanticMatcher(HashEncoder(), threshold=-1.0) if semantic else None  # every span links

    def work(repeats: int) -> int:
        linker = EntityLinker(KnowledgeBase(entries), semantic=matcher, max_text_chars=10**6)
        linker.link(unit)  # builds what is built once, outside the count
        return traced_lines(lambda: linker.link(unit * repeats))

    small, large = work(10), work(80)
    assert large < 12 * small, f"{large} lines for 8x the text of {small} lines: worse than linear"


def test_negations_read_from_the_whole_text_agree_with_the_clause_alone() -> None:
    """negations() reads the units before each mention from the text's own normalisation (no normalising again);
    is_negated() normalises the mention's clause. They must agree everywhere, also where marks straddle a cut."""
    detector = NegationDetector()
    rng = random.Random(11)
    for _ in range(1500):
        text = "".join(rng.choice(AWKWARD) for _ in range(rng.randint(0, 80)))
        spans = [(s, None if rng.random() < 0.5 or s == len(text) else rng.randint(s + 1, len(text)))
                 for s in (rng.randint(0, len(text)) for _ in range(6))]
        assert detector.negations(normalize(text), spans) == [detector.is_negated(text, s, e) for s, e in spans], text


def test_negation_looks_back_a_window_in_an_unpunctuated_text() -> None:
    detector = NegationDetector()
    text = "青光眼 " * 400 + "not glaucoma " + "青光眼 " * 400
    start = text.index("glaucoma")
    assert detector.is_negated(text, start)  # the cue right before it, 1,600 characters into one clause
    assert not detector.is_negated(text, len(text) - 4)  # hundreds of units later
    assert detector.negations(normalize(text), [(start, None), (len(text) - 4, None)]) == [True, False]


# --------------------------------------------------------------------------------------------------------------
# the cross-lingual fallback (multilingual USE): Chinese embedded as written, entities scored by their names too
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentence_vectors():
    from encoders.sentence_vectors import SentenceVectorEncoder

    return SentenceVectorEncoder().load()


@pytest.fixture(scope="module")
def cross_linker(kb: KnowledgeBase, sentence_vectors) -> EntityLinker:
    matcher = SemanticMatcher(sentence_vectors, defined_only=True, sentence_vectors=True, name_rows=True,
                              min_latin_ratio=0.0, skip_hashtags=True, threshold=0.5, zh_threshold=0.5)
    return EntityLinker(kb, semantic=matcher, max_text_chars=500)


def test_chinese_description_reaches_its_entity_as_written(cross_linker: EntityLinker) -> None:
    text = "哎，我的眼睛一直很疼很难受！"
    m = only(cross_linker.link(text))
    assert (m.id, m.method, m.negated) == ("OVP:0008", "semantic", False)  # Eye pain; no dictionary surface here
    assert m.surface == "我的眼睛一直很疼很难受" and text[m.start : m.end] == m.surface
    assert only(cross_linker.link("我没有觉得眼睛一直很疼")).negated


@pytest.mark.parametrize("caption", ["今天天气很好我们去公园玩", "我喜欢吃火锅和烤肉", "好的", "", "#眼睛一直很疼很难受"])
def test_off_topic_chinese_and_hashtags_get_no_cross_lingual_link(cross_linker: EntityLinker, caption: str) -> None:
    assert cross_linker.link(caption) == []


def test_name_rows_hold_english_and_chinese_names_of_defined_entities(kb: KnowledgeBase, sentence_vectors) -> None:
    matcher = SemanticMatcher(sentence_vectors, kb, defined_only=True, name_rows=True)
    owners, rows = matcher.name_matrix()
    texts = [n for e in kb if e.definition for n in SemanticMatcher.entity_names(e)]
    assert len(owners) == len(rows) == len(texts) and "HP:0000501" not in {kb.entries[k].id for k in owners}
    assert SemanticMatcher.entity_names(kb.get("OVP:0003")) == ["Conjunctivitis", "结膜炎", "pink eye", "红眼病"]
    # a Chinese phrase reaches the English-named concept through its Chinese name row, and is nearest it
    sims = matcher.similarities(["眼睛疼"])[0]
    assert kb.entries[int(sims.argmax())].id == "OVP:0008"
    without = SemanticMatcher(sentence_vectors, kb, defined_only=True)
    assert sims.max() > without.similarities(["眼睛疼"])[0].max()


def test_chinese_spans_count_characters_and_window_by_two(kb: KnowledgeBase) -> None:
    matcher = SemanticMatcher(NoEncoder(), kb, min_latin_ratio=0.0, max_span_words=4, window_words=2, stride_words=1,
                              min_cjk_chars=4)
    text = "好累，眼睛疼，一二三四五六七八九十"
    spans = [text[s:e] for s, e in matcher.candidate_spans(text)]
    # 好累 and 眼睛疼 are under four characters; ten characters are five words, above max_span_words: windows of four
    assert spans == ["一二三四", "三四五六", "五六七八", "七八九十"]


def test_max_into_agrees_with_maximum_at() -> None:
    rng = np.random.default_rng(0)
    sims = rng.normal(size=(3, 6)).astype(np.float32)
    owners = np.array([0, 0, 2, 5, 5, 5])
    rows = rng.normal(size=(3, 6)).astype(np.float32)
    expected = sims.copy()
    np.maximum.at(expected.T, owners, rows.T)
    from encoders.linking.semantic import _max_into

    _max_into(sims, owners, rows)
    np.testing.assert_array_equal(sims, expected)


# --------------------------------------------------------------------------------------------------------------
# eye words used outside medicine
# --------------------------------------------------------------------------------------------------------------


def test_non_medical_phrases_block_the_eye_surface_inside_them() -> None:
    kb = KnowledgeBase([
        KBEntry("OVP:glasses", "treatment", "Eyeglasses", "眼镜", ["glasses"], ""),
        KBEntry("HP:0025337", "phenotype", "Red eye", "红眼", ["red eye"], ""),
    ])
    linker = EntityLinker(kb, max_text_chars=200)
    assert linker.link("two glasses of wine") == [] and linker.link("the red-eye flight to Tokyo") == []
    assert linker.link("横眉竖眼") == [] and linker.link("喝到红眼了") == []  # 红眼 needs ocular context
    assert [m.id for m in linker.link("new glasses, and my red eye is gone")] == ["OVP:glasses", "HP:0025337"]
    assert [m.id for m in linker.link("熬夜后眼睛红眼了")] == ["HP:0025337"]  # 眼 outside the match: ocular context
    plain = EntityLinker(kb, dictionary=DictionaryMatcher(kb, non_medical_phrases=()), max_text_chars=200)
    assert [m.id for m in plain.link("two glasses of wine")] == ["OVP:glasses"]
    assert DictionaryMatcher(kb).surface_count == DictionaryMatcher(kb, non_medical_phrases=()).surface_count
