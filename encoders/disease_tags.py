"""Open-vocabulary disease tags: any disease of the graph a video's text is about, from three sources, each with its
score and evidence, beside (and apart from) the trained head's predictions over the ~20 profile labels.

Sources, for one text (title, caption, hashtags and transcript as the linker saw them) and its linked mentions:

``named``
    a disease the text names: an affirmed (not negated) linked mention of kind disease. Score: the linker's (1.0 a
    name, 0.95 a synonym, the cosine of the semantic fallback). Evidence: the mentions.
``phenotypes``
    a disease the described phenotypes point to through ``HAS_PHENOTYPE``, scored by information content
    (:mod:`encoders.phenotype_ic`). Evidence: each phenotype with its IC and the term the disease has it through.
``similarity``
    a disease whose name and definition (or Chinese name) lie close to the text in the cross-lingual sentence space
    (:mod:`encoders.sentence_vectors`, multilingual USE): the best cosine over the whole text and each of its
    sentences, so one sentence of a long transcript about a condition is enough. Evidence: the cosine and the span
    of the text that gave it.

A disease tagged by several sources becomes one tag that keeps every source's evidence (:func:`combine_tags`). The
thresholds (:class:`TagThresholds`) were chosen on the development half of the MedQuAD eye set and frozen before its
test half was scored (``bench/open_tags_eval.py``).

The disease vectors (every disease's "name. definition" and Chinese name) are computed once per machine and cached,
content-keyed, in ``OVP_CACHE_DIR`` (:class:`encoders.entity_vectors.EntityVectorCache`).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from encoders.entity_vectors import EncoderIdentity, EntityVectorCache, entity_text
from encoders.linking import Mention
from encoders.phenotype_ic import PhenotypeEvidence, PhenotypeIndex, PhenotypeThresholds
from encoders.sentence_vectors import DIM, SentenceVectorEncoder
from kg_builder.store.tags import DiseaseText, disease_texts, phenotype_graph

if TYPE_CHECKING:
    from kg_builder.graph import Graph
    from ovp.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["SOURCES", "WHOLE_TEXT", "TagThresholds", "NamedEvidence", "SimilarityEvidence", "SourceTag", "DiseaseTag", "TextTags",
           "named_tags", "similarity_tags", "combine_tags", "sentence_spans", "denied_diseases", "DiseaseTagger"]

#: The sources, in the order a combined tag names its main one (the most direct evidence first).
SOURCES: tuple[str, ...] = ("named", "phenotypes", "similarity")

#: The ``field`` of a similarity won by the whole text rather than one of its sentences.
WHOLE_TEXT = "all"

#: Sentence ends (Latin and CJK) and line breaks: where a text is cut into the segments the similarity source reads.
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；])|\n+")


@dataclass(frozen=True)
class TagThresholds:
    """When each source's candidate becomes a tag. The defaults were chosen on the development half of the MedQuAD
    eye set (``bench/open_tags_eval.py --split dev --sweep``; each source's F1-best point of its grid) and frozen
    before its test half was scored.

    Attributes:
        named_min_score: lowest linker score of a named disease's best mention (0.85: dictionary names and synonyms,
            and semantic links at least that close; dev precision 0.476, recall 0.489).
        phenotypes: the phenotype source's gates (:class:`encoders.phenotype_ic.PhenotypeThresholds`).
        similarity_min: lowest cosine of a disease to the text (or one of its sentences) (0.5 with one tag per text:
            dev precision 0.388, recall 0.375).
        similarity_max_tags: at most this many similarity tags per text, best first.
        max_segments: sentences of a long text read by the similarity source (its first ones), besides the whole.
    """

    named_min_score: float = 0.85
    phenotypes: PhenotypeThresholds = field(default_factory=PhenotypeThresholds)
    similarity_min: float = 0.5
    similarity_max_tags: int = 1
    max_segments: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.named_min_score <= 1 or not -1 <= self.similarity_min <= 1:
            raise ValueError(f"named_min_score must be in [0, 1] and similarity_min in [-1, 1], got "
                             f"{self.named_min_score}, {self.similarity_min}")
        if self.similarity_max_tags < 1 or self.max_segments < 0:
            raise ValueError(f"similarity_max_tags must be >= 1 and max_segments >= 0, got "
                             f"{self.similarity_max_tags}, {self.max_segments}")


@dataclass(frozen=True)
class NamedEvidence:
    """One mention that names the disease: where (``field`` "" while the offsets index the whole linked text; the
    worker stores them as offsets into their own field, as the mentions), how it was linked and how sure the linker
    was."""

    surface: str
    start: int
    end: int
    score: float
    method: str
    field: str = ""


@dataclass(frozen=True)
class SimilarityEvidence:
    """The cosine of the disease's text to the part of the video's text closest to it: ``start``/``end`` that span
    (a sentence; ``field`` :data:`WHOLE_TEXT` when the whole text was closest, "" while a sentence's offsets index the
    whole linked text), and what the disease vector was made of (``matched_text``: "name. definition" or the Chinese
    name)."""

    similarity: float
    start: int
    end: int
    matched_text: str
    field: str = ""


@dataclass(frozen=True)
class SourceTag:
    """One source's tag: a disease, that source's score in [0, 1] and its evidence."""

    disease_id: str
    source: str
    score: float
    named: tuple[NamedEvidence, ...] = ()
    phenotypes: tuple[PhenotypeEvidence, ...] = ()
    summed_ic: float | None = None
    matched: int | None = None
    similarity: SimilarityEvidence | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown tag source {self.source!r}; expected one of {SOURCES}")


@dataclass(frozen=True)
class DiseaseTag:
    """A disease the text is about, with every source that says so.

    Attributes:
        disease_id: the Disease entity.
        score: the best of its sources' scores.
        source: the main source (the first of :data:`SOURCES` among ``sources``).
        sources: every source that tagged it, in :data:`SOURCES` order.
        rank: 1 for the first tag of the text.
        evidence: each source's tag, in ``sources`` order.
    """

    disease_id: str
    score: float
    source: str
    sources: tuple[str, ...]
    rank: int
    evidence: tuple[SourceTag, ...]


@dataclass(frozen=True)
class TextTags:
    """What the tagger found in one text: its tags, best first, and the text's sentence vector (512-d, unit; zero for
    a blank text), which search stores on the video."""

    tags: tuple[DiseaseTag, ...]
    vector: np.ndarray


# --- the sources, as pure functions -------------------------------------------------------------------------------


def named_tags(mentions: Sequence[Mention], disease_ids: frozenset[str] | set[str] | None = None,
               min_score: float = 0.6) -> list[SourceTag]:
    """A tag per disease the text names affirmatively, at its best mention's score, in order of first mention.

    Args:
        mentions: the text's linked mentions (negated ones never count).
        disease_ids: restrict to these ids (None: every mention of kind disease).
        min_score: the best mention must score at least this.
    """
    by_disease: dict[str, list[Mention]] = {}
    for m in mentions:
        if m.kind == "disease" and not m.negated and (disease_ids is None or m.id in disease_ids):
            by_disease.setdefault(m.id, []).append(m)
    out = []
    for disease_id, found in by_disease.items():
        best = max(m.score for m in found)
        if best >= min_score:
            out.append(SourceTag(disease_id, "named", round(float(best), 4), named=tuple(
                NamedEvidence(m.surface, m.start, m.end, round(float(m.score), 4), m.method) for m in found)))
    return out


def sentence_spans(text: str, max_segments: int) -> list[tuple[int, int]]:
    """Spans of ``text`` the similarity source compares with the diseases: the whole text first, then its first
    ``max_segments`` sentences (when it has more than one), each stripped of surrounding space."""
    stripped = text.strip()
    if not stripped:
        return []
    start = len(text) - len(text.lstrip())
    spans = [(start, start + len(stripped))]
    pieces: list[tuple[int, int]] = []
    cursor = 0
    for cut in _SENTENCE_END.finditer(text):
        pieces.append((cursor, cut.start()))
        cursor = cut.end()
    pieces.append((cursor, len(text)))
    sentences = []
    for a, b in pieces:
        piece = text[a:b]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            sentences.append((a + lead, a + lead + len(piece.strip())))
    if len(sentences) > 1:
        spans.extend(sentences[:max_segments])
    return spans


def similarity_tags(segment_vectors: np.ndarray, segments: Sequence[tuple[int, int]], disease_matrix: np.ndarray,
                    row_disease: Sequence[str], row_text: Sequence[str], *, min_similarity: float,
                    max_tags: int) -> list[SourceTag]:
    """The diseases closest to any segment of the text, at least ``min_similarity``, at most ``max_tags``, best first.

    Args:
        segment_vectors: ``S × D`` unit vectors of the text's segments (whole text first, :func:`sentence_spans`).
        segments: the ``S`` spans they encode.
        disease_matrix: ``R × D`` unit vectors, one per disease text (a disease may have several rows).
        row_disease: the disease id of each row.
        row_text: the text of each row (for the evidence).
    """
    if len(segment_vectors) == 0 or len(disease_matrix) == 0:
        return []
    sims = segment_vectors @ disease_matrix.T  # S × R
    best_segment = sims.argmax(axis=0)
    best = sims[best_segment, np.arange(sims.shape[1])]
    out: list[SourceTag] = []
    seen: set[str] = set()
    for row in np.argsort(-best, kind="stable"):
        if best[row] < min_similarity or len(out) >= max_tags:
            break
        disease_id = row_disease[row]
        if disease_id in seen:  # its best row came first
            continue
        seen.add(disease_id)
        a, b = segments[best_segment[row]]
        out.append(SourceTag(disease_id, "similarity", round(float(min(best[row], 1.0)), 4),
                             similarity=SimilarityEvidence(round(float(best[row]), 4), int(a), int(b), row_text[row],
                                                           WHOLE_TEXT if best_segment[row] == 0 else "")))
    return out


def combine_tags(*sources: Sequence[SourceTag]) -> list[DiseaseTag]:
    """One tag per disease over every source's tags: its sources in :data:`SOURCES` order, its score the best of
    theirs, ranked by main source (named, then phenotypes, then similarity), then score, then id."""
    by_disease: dict[str, dict[str, SourceTag]] = {}
    for tags in sources:
        for tag in tags:
            kept = by_disease.setdefault(tag.disease_id, {})
            if tag.source not in kept or tag.score > kept[tag.source].score:
                kept[tag.source] = tag
    merged = []
    for disease_id, by_source in by_disease.items():
        names = tuple(s for s in SOURCES if s in by_source)
        merged.append((disease_id, max(t.score for t in by_source.values()), names,
                       tuple(by_source[s] for s in names)))
    merged.sort(key=lambda m: (SOURCES.index(m[2][0]), -m[1], m[0]))
    return [DiseaseTag(d, score, names[0], names, rank, evidence)
            for rank, (d, score, names, evidence) in enumerate(merged, start=1)]


def denied_diseases(mentions: Sequence[Mention]) -> frozenset[str]:
    """The entities (with their MAPS_TO equivalents) the text names only under a negation ("不是虹膜炎", "not
    glaucoma"): no source may tag them, however close the sentence that denies them is in meaning."""
    def ids(m: Mention) -> set[str]:
        return {m.id, *m.xrefs}

    negated = set().union(*(ids(m) for m in mentions if m.negated))
    affirmed = set().union(*(ids(m) for m in mentions if not m.negated))
    return frozenset(negated - affirmed)


# --- the tagger ----------------------------------------------------------------------------------------------------


@dataclass
class TaggerTimings:
    """Seconds spent per source (the profiling benches read them)."""

    load_s: float = 0.0
    encode_s: float = 0.0
    phenotypes_s: float = 0.0
    similarity_s: float = 0.0
    texts: int = 0


class DiseaseTagger:
    """The three sources over the graph's diseases, loaded once per process.

    Args:
        graph: the knowledge graph (diseases, phenotype annotations; read once here).
        settings: ``cache_dir`` for the disease vectors; ``max_text_chars`` bounds the text read (as the linker's).
        thresholds: when a candidate becomes a tag (defaults: the frozen ones).
        encoder: the sentence encoder to share (default: a new one, one BLAS thread).

    Raises:
        GraphUnavailable: Neo4j cannot be reached.
        ModelNotFound: the sentence encoder's package is missing.
        ValueError: the graph has no diseases or no phenotype annotations (build it with ``ovp kg build``).
    """

    def __init__(self, graph: "Graph", settings: "Settings", thresholds: TagThresholds | None = None, *,
                 encoder: SentenceVectorEncoder | None = None) -> None:
        started = time.perf_counter()
        self.thresholds = thresholds or TagThresholds()
        self.max_text_chars = settings.max_text_chars
        self.encoder = (encoder or SentenceVectorEncoder()).load()
        diseases = disease_texts(graph)
        if not diseases:
            raise ValueError("the graph has no Disease — build it with `ovp kg build`")
        self.disease_ids = frozenset(d.id for d in diseases)
        self.phenotypes = PhenotypeIndex(phenotype_graph(graph))
        self.row_disease, self.row_text = disease_rows(diseases)
        cache = EntityVectorCache(settings.cache_dir, EncoderIdentity(model=self.encoder.identity, max_length=0))
        self.disease_matrix = cache.get(self.row_text, self.encoder.encode)
        self.timings = TaggerTimings(load_s=time.perf_counter() - started)
        log.info("disease tagger ready: %d diseases, %d disease texts, %.1fs", len(diseases), len(self.row_text),
                 self.timings.load_s)

    def tag(self, texts: Sequence[str], mentions: Sequence[Sequence[Mention]]) -> list[TextTags]:
        """The tags and sentence vector of each text (mentions: the text's linked mentions, offsets into it). A text
        longer than ``max_text_chars`` is read up to there, as the linker reads it.

        Raises:
            ValueError: ``texts`` and ``mentions`` differ in length.
        """
        if len(texts) != len(mentions):
            raise ValueError(f"{len(texts)} texts but {len(mentions)} mention lists")
        texts = [text[: self.max_text_chars] for text in texts]
        t = self.thresholds
        started = time.perf_counter()
        spans = [sentence_spans(text, t.max_segments) for text in texts]
        flat = [text[a:b] for text, ss in zip(texts, spans) for a, b in ss]
        vectors = self.encoder.encode(flat) if flat else np.zeros((0, DIM), dtype=np.float32)
        self.timings.encode_s += time.perf_counter() - started
        out = []
        offset = 0
        for text, ss, ms in zip(texts, spans, mentions):
            own = vectors[offset: offset + len(ss)]
            offset += len(ss)
            started = time.perf_counter()
            affirmed = [m.id for m in ms if not m.negated]
            inferred = [SourceTag(p.disease_id, "phenotypes", p.score, phenotypes=p.evidence, summed_ic=p.summed_ic,
                                  matched=p.matched)
                        for p in self.phenotypes.match(affirmed, t.phenotypes)]
            self.timings.phenotypes_s += time.perf_counter() - started
            started = time.perf_counter()
            similar = similarity_tags(own, ss, self.disease_matrix, self.row_disease, self.row_text,
                                      min_similarity=t.similarity_min, max_tags=t.similarity_max_tags)
            self.timings.similarity_s += time.perf_counter() - started
            named = named_tags(ms, self.disease_ids, t.named_min_score)
            denied = denied_diseases(ms)
            inferred = [tag for tag in inferred if tag.disease_id not in denied]
            similar = [tag for tag in similar if tag.disease_id not in denied]
            vector = own[0] if len(own) else np.zeros(DIM, dtype=np.float32)
            out.append(TextTags(tuple(combine_tags(named, inferred, similar)), vector))
        self.timings.texts += len(texts)
        return out


def disease_rows(diseases: Sequence[DiseaseText]) -> tuple[list[str], list[str]]:
    """The texts the similarity source embeds, with the disease of each: ``"name. definition"`` for every disease
    (:func:`encoders.entity_vectors.entity_text`), and its Chinese name as a row of its own where it has one."""
    row_disease: list[str] = []
    row_text: list[str] = []
    for d in diseases:
        row_disease.append(d.id)
        row_text.append(entity_text(d.id, d.name, d.definition))
        if d.name_zh.strip():
            row_disease.append(d.id)
            row_text.append(d.name_zh.strip())
    return row_disease, row_text
