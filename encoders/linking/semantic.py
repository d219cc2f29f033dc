"""The semantic fallback: phrases the dictionary misses, linked by sentence-vector similarity to entity descriptions.

"a dark curtain came down over my vision" names no entity, but its vector lies close to the description of retinal
detachment. With cross-lingual vectors (:mod:`encoders.sentence_vectors`, what :func:`load_linker` uses) a Chinese
piece is embedded as written and compared with the English descriptions and with every entity's English and Chinese
names (``name_rows``); with an English-only encoder it can instead be read through its word-by-word English gloss
(:mod:`encoders.zh_gloss`, ``glosser``).
"""
from __future__ import annotations

import logging
import re
import time
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from encoders.linking.clauses import clauses
from encoders.linking.knowledge_base import KBEntry, KnowledgeBase
from encoders.normalize import CJK_CLASS, is_cjk

if TYPE_CHECKING:
    from encoders.text import TextFeatures
    from encoders.zh_gloss import GlossedWord

log = logging.getLogger(__name__)

__all__ = ["SemanticMatcher", "SentenceEncoder", "Glosser", "REAL_KB_SEMANTIC_THRESHOLD", "REAL_KB_GLOSS_THRESHOLD",
           "REAL_KB_CROSS_LINGUAL_THRESHOLD", "REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD"]

#: Semantic threshold for the real graph (~8,100 entities, definitions and their sentences embedded), where every span
#: has closer near-misses than on the toy KB behind the 0.40 default. Chosen by ``bench/linking.py`` as the F1-best
#: of 0.35…0.70 on the tuning half of ``tests/data/captions_gold.jsonl`` (0.891 at 0.60, 0.887 at 0.55, 0.843 at
#: 0.40); the other half is only reported. Lower it to trade precision for more descriptive links.
REAL_KB_SEMANTIC_THRESHOLD = 0.60

#: Threshold for Chinese spans read through their English gloss (:mod:`encoders.zh_gloss`) on the real graph. Chosen
#: by ``bench/linking.py`` together with the one above, F1-best on the same tuning half (with 0.60 for English spans:
#: 0.933 at 0.70, 0.931 at 0.75, 0.929 at 0.65, 0.926 at 0.60; 0.932 with no glossed spans at all). Glossed spans
#: add recall (0.884 → 0.906 on that half, with the English fallback 0.893) for some precision (0.976 → 0.962).
REAL_KB_GLOSS_THRESHOLD = 0.70

#: Thresholds of the cross-lingual fallback on the real graph (Latin spans; spans holding Chinese), chosen by
#: ``bench/linking_cross_lingual.py --sweep`` on the DEV half of ``tests/data/captions_gold.jsonl`` by the rule
#: written in its docstring (highest DEV recall at DEV precision >= 0.975), with hashtags skipped and Chinese spans of
#: six characters or more (:func:`encoders.linking.cross_lingual_matcher`), and frozen before the TEST half was
#: scored. DEV: precision 0.985, recall 0.906 (dictionary alone 0.985 / 0.884); at 0.70/0.70 0.958 / 0.906, at
#: 0.60/0.60 0.899 / 0.911: below 0.85 a Latin span's best entity is as often a near-miss as the concept meant.
REAL_KB_CROSS_LINGUAL_THRESHOLD = 0.85
REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD = 0.75



class SentenceEncoder(Protocol):
    """``encoders.text.TextEncoder`` (its ``pooled`` vectors are used) or ``encoders.sentence_vectors.
    SentenceVectorEncoder`` (unit rows)."""

    def encode(self, texts: list[str], batch_size: int = 32) -> TextFeatures | np.ndarray: ...


def pooled_vectors(encoder: SentenceEncoder, texts: list[str], batch_size: int) -> np.ndarray:
    """``len(texts) × D`` float32 sentence vectors from either kind of :class:`SentenceEncoder`."""
    out = encoder.encode(texts, batch_size=batch_size)
    return np.asarray(getattr(out, "pooled", out), dtype=np.float32)


def _max_into(sims: np.ndarray, owners: np.ndarray, row_sims: np.ndarray) -> None:
    """``sims[:, k] = max(sims[:, k], row_sims[:, r])`` for every row ``r`` owned by entity ``k = owners[r]``
    (``owners`` ascending): one ``reduceat`` per group instead of an unbuffered ``maximum.at``."""
    if not len(owners):
        return
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    grouped = np.maximum.reduceat(row_sims, starts, axis=1)
    keys = owners[starts]
    sims[:, keys] = np.maximum(sims[:, keys], grouped)


class Glosser(Protocol):
    """Reads Chinese text as English words (:class:`encoders.zh_gloss.ChineseGlosser`)."""

    def segment(self, text: str) -> Sequence[GlossedWord]: ...


@dataclass(frozen=True)
class _SemanticMatch:
    entry: KBEntry
    start: int
    end: int
    score: float
    glossed: bool = False  # embedded through its English reading (a Chinese span)


_WORD = re.compile(r"\S+")
#: A hashtag: its sign and the word glued to it.
_HASHTAG = re.compile(r"[#＃][^\s#＃]*")
#: A span's tokens when it may hold Chinese: a run of non-space, non-CJK characters, or one CJK character.
_TOKEN = re.compile(f"[^\\s{CJK_CLASS}]+|[{CJK_CLASS}]")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _reading(glosser: Glosser, text: str) -> str:
    """The English reading of ``text``: its content words' glosses, joined with spaces."""
    return " ".join(w.gloss for w in glosser.segment(text))


def _subtract(span: tuple[int, int], covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    pieces = [span]
    for cs, ce in covered:
        nxt: list[tuple[int, int]] = []
        for s, e in pieces:
            if ce <= s or cs >= e:
                nxt.append((s, e))
                continue
            if cs > s:
                nxt.append((s, cs))
            if ce < e:
                nxt.append((ce, e))
        pieces = nxt
    return pieces


def _uncovered(span: tuple[int, int], covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """What :func:`_subtract` gives for non-empty ``covered`` spans sorted by start, in one pass: the stretches of
    ``span`` outside their union, in order."""
    pieces: list[tuple[int, int]] = []
    cursor, stop = span
    for cs, ce in covered:
        if cs > cursor:
            pieces.append((cursor, min(cs, stop)))
        cursor = max(cursor, ce)
        if cursor >= stop:
            return pieces
    pieces.append((cursor, stop))
    return pieces


def _best_disjoint(matches: Sequence[_SemanticMatch]) -> list[_SemanticMatch]:
    """Best first: a match is kept unless its entity is already kept or it overlaps a kept match; by start."""
    kept: list[_SemanticMatch] = []  # disjoint, by start
    starts: list[int] = []
    seen: set[str] = set()
    for m in sorted(matches, key=lambda m: (-m.score, m.start)):
        if m.entry.id in seen:
            continue
        at = bisect_right(starts, m.start)
        # kept spans are disjoint, so only the neighbours on either side of m's start can overlap it
        if (at > 0 and kept[at - 1].end > m.start) or (at < len(kept) and kept[at].start < m.end):
            continue
        seen.add(m.entry.id)
        kept.insert(at, m)
        starts.insert(at, m.start)
    return kept


class SemanticMatcher:
    """Links phrases the dictionary misses ("a dark curtain came down over my vision" → retinal detachment).

    Each entity is embedded once as ``"name. definition"`` with the text encoder's pooled (mean, L2-normalised)
    vector; the matrix is cached in memory. Candidate spans are the clauses of the caption (split on punctuation)
    minus what dictionary mentions cover; a piece longer than ``max_span_words`` is scanned with windows of
    ``window_words`` words every ``stride_words``. A span links to its most similar entity when the cosine similarity
    reaches ``threshold``; per text, overlapping spans keep the best, and each entity is returned once.

    Default threshold 0.40, measured with all-MiniLM-L6-v2 on the ten-entity toy KB of ``tests/test_linker.py``
    (one-sentence definitions), 16 lay descriptions and 13 off-topic or vague captions. Off-topic captions ("I love
    cooking pasta", "subscribe for more videos", "wearing sunglasses in summer looks cool") reach at most 0.29, vague
    eye talk ("sudden flashes and floaters then a shadow") 0.35; the curtain sentence scores 0.40–0.50 to retinal
    detachment depending on its first words ("then a dark curtain …" 0.43, "there was never a dark curtain …" 0.40),
    and 11 of 16 descriptions reach their entity at 0.40 or more (2 more reach a wrong but related one: "slowly
    losing my side vision" → cataract 0.48). 0.40 keeps every clear description and no off-topic caption; raise it
    for a large KB, where every span has a closer near-miss.

    Args:
        encoder: anything with ``encode(texts, batch_size) -> TextFeatures`` (``encoders.text.TextEncoder``).
        kb: the entities to link to; may be set later by the linker.
        threshold: minimum cosine similarity (default 0.40).
        min_words: spans with fewer words are not embedded (default 3: "so sad" says nothing).
        max_span_words: longer pieces are scanned with windows (default 16).
        window_words, stride_words: window size and step (defaults 8 and 4).
        min_latin_ratio: share of Latin letters among letters a span needs (default 0.5), because the default model
            has an English vocabulary and places Chinese text almost at random; set 0 with a Chinese/multilingual
            model. With a ``glosser``, pieces holding Chinese go to the glossed path instead.
        glosser: reads Chinese as English words (default None: Chinese pieces are skipped).
            :class:`encoders.zh_gloss.ChineseGlosser` cuts a piece into words and reads each through CC-CEDICT; the
            reading (看东西还是模糊 → "see look at read thing stuff still had better unexpectedly vague indistinct
            fuzzy") is embedded in place of the piece, windowed over its words like English, and the match keeps
            the original piece's offsets (method ``"gloss"``). Latin words in such a piece are kept as written.
        gloss_threshold: minimum cosine similarity of a glossed span (default: ``threshold``). A word-by-word
            reading is noisier than a sentence, and sits at its own distance from the entity texts.
        gloss_min_words: glossed pieces with fewer content words are not embedded (default 3, as ``min_words``:
            "做了个" or "换个" reads as two words and lands near any short surgery name).
        gloss_surfaces: a glossed span also scores against the readings of each entity's Chinese surfaces (name and
            exact synonyms), an entity taking its best row (default True). 看东西还是模糊 reads almost like the
            reading of 看东西模糊, a synonym of Blurred vision, while its similarity to the English "Blurred vision.
            Loss of sharpness of vision …" is diluted by the reading's noise ("see look at read thing stuff").
        batch_size: texts per encoder call.
        entity_vectors: computes (or reads) the ``E × D`` matrix for a list of entity texts; default: encode them
            with ``encoder`` in memory. :func:`load_linker` passes the persisted cache of
            :mod:`encoders.entity_vectors`, since embedding the real graph's ~8,100 entities takes minutes.
        defined_only: only entities with a definition can be linked (default False). On the real graph ~6,800 of
            8,100 entities (OMIM/ORPHA diseases, ICD-10 codes) are a bare name; a short name vector sits close to
            many lay phrases for no reason ("a dark curtain came down over my vision" → ICD-10 "Night blindness"
            0.52, above retinal detachment's 0.49), while a description is best compared with a description. Bare
            names remain reachable by the dictionary.
        sentence_vectors: also embed each sentence of a multi-sentence definition on its own, and score an entity
            by its best row (default False). A caption describes one symptom; a definition strings several ideas
            together, which dilutes its vector: the curtain sentence scores 0.49 against retinal detachment's whole
            "name. definition" and 0.58 against the definition's sentence about the curtain.
        name_rows: also embed every entity's names as written (English and Chinese preferred names, EXACT
            synonyms: :meth:`entity_names`), and score an entity by its best row (default False). For a cross-lingual
            encoder: 看东西越来越模糊 scores 0.70 against 视物模糊 and 0.47 against "blurred vision"; a Chinese label
            whose Chinese names are unknown still reaches the English name.
        zh_threshold: minimum cosine similarity of a span holding Chinese embedded as written (no glosser; default:
            ``threshold``). Such a span is cut into tokens of one CJK character (two make a word for ``min_words``
            and the windows).
        min_cjk_chars: a span with at least this many CJK characters is embedded even when it has fewer than
            ``min_words`` words (default 4: 眼睛干涩 says something, 看看 does not).
        skip_hashtags: hashtags are not embedded (default False). A hashtag the dictionary does not know is a topic
            label (#眼科医生, #关爱老人, #eyehealth), not a description, and lands near whatever eye concept is
            most generic.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        kb: KnowledgeBase | None = None,
        *,
        entity_vectors: Callable[[list[str]], np.ndarray] | None = None,
        defined_only: bool = False,
        sentence_vectors: bool = False,
        threshold: float = 0.40,
        min_words: int = 3,
        max_span_words: int = 16,
        window_words: int = 8,
        stride_words: int = 4,
        min_latin_ratio: float = 0.5,
        batch_size: int = 32,
        glosser: Glosser | None = None,
        gloss_threshold: float | None = None,
        gloss_min_words: int = 3,
        gloss_surfaces: bool = True,
        name_rows: bool = False,
        zh_threshold: float | None = None,
        min_cjk_chars: int = 4,
        skip_hashtags: bool = False,
    ) -> None:
        for name, value in (("threshold", threshold), ("gloss_threshold", gloss_threshold),
                            ("zh_threshold", zh_threshold)):
            if value is not None and not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} is a cosine similarity in [-1, 1], got {value}")
        if gloss_threshold is not None and glosser is None:
            raise ValueError("gloss_threshold was given without a glosser; pass glosser= or leave gloss_threshold out")
        if window_words > max_span_words:
            raise ValueError(f"window_words ({window_words}) must not exceed max_span_words ({max_span_words})")
        if not 1 <= stride_words <= window_words:
            raise ValueError(f"stride_words ({stride_words}) must be in [1, window_words={window_words}]")
        self.encoder = encoder
        self.threshold = threshold
        self.min_words = min_words
        self.max_span_words = max_span_words
        self.window_words = window_words
        self.stride_words = stride_words
        self.min_latin_ratio = min_latin_ratio
        self.batch_size = batch_size
        self.glosser = glosser
        self.gloss_threshold = threshold if gloss_threshold is None else gloss_threshold
        self.gloss_min_words = gloss_min_words
        self.entity_vectors = entity_vectors
        self.defined_only = defined_only
        self.sentence_vectors = sentence_vectors
        self._sentences: tuple[np.ndarray, np.ndarray] | None = None  # (entity index per row, R × D rows)
        self._readings: tuple[np.ndarray, np.ndarray] | None = None  # the same, for readings of Chinese surfaces
        self.gloss_surfaces = gloss_surfaces
        self.name_rows = name_rows
        self.zh_threshold = threshold if zh_threshold is None else zh_threshold
        self.min_cjk_chars = min_cjk_chars
        self.skip_hashtags = skip_hashtags
        self._names: tuple[np.ndarray, np.ndarray] | None = None  # the same, for the entities' names as written
        self.kb: KnowledgeBase | None = None
        self._matrix: np.ndarray | None = None
        #: Seconds spent in :meth:`similarities` (the text encoder and the products with the entity vectors): the
        #: model's share of linking, for the benches.
        self.similarity_s = 0.0
        if kb is not None:
            self.set_kb(kb)

    def set_kb(self, kb: KnowledgeBase) -> None:
        """Use ``kb``; the entity matrix is (re)built on the next match."""
        if kb is not self.kb:
            self.kb = kb
            self._matrix = None
            self._sentences = None
            self._readings = None
            self._names = None

    @staticmethod
    def entity_text(entry: KBEntry) -> str:
        """What is embedded for an entity: ``"name. definition"`` (the name alone when there is no definition).

        The rule is :func:`encoders.entity_vectors.entity_text`, shared with the GNN so both read one cache."""
        from encoders.entity_vectors import entity_text

        return entity_text(entry.id, entry.name or entry.name_zh, entry.definition)

    def entity_matrix(self) -> np.ndarray:
        """``E × D`` unit rows, one per KB entry in KB order; computed once per KB."""
        if self.kb is None:
            raise ValueError("SemanticMatcher has no knowledge base; pass kb= or call set_kb()")
        if self._matrix is None:
            texts = [self.entity_text(e) for e in self.kb]
            if self.entity_vectors is not None:
                pooled = self.entity_vectors(texts)
            else:
                pooled = pooled_vectors(self.encoder, texts, self.batch_size) if texts else np.zeros((0, 1))
            matrix = np.asarray(pooled, dtype=np.float32)
            if matrix.shape[0] != len(texts):
                raise ValueError(f"entity_vectors returned {matrix.shape[0]} rows for {len(texts)} entity texts")
            self._matrix = matrix
            log.info("semantic matcher: %d entity vectors ready", len(texts))
        return self._matrix

    @staticmethod
    def definition_sentences(entry: KBEntry) -> list[str]:
        """The sentences of a multi-sentence definition with at least four words each ([] for one sentence)."""
        parts = [p.strip() for p in _SENTENCE_END.split(entry.definition or "") if p.strip()]
        return [p for p in parts if len(p.split()) >= 4] if len(parts) > 1 else []

    def _rows(self, texts: list[str]) -> np.ndarray:
        """``len(texts) × D`` unit vectors of extra entity texts, through the persisted cache when there is one."""
        if not texts:
            return np.zeros((0, self.entity_matrix().shape[1]), dtype=np.float32)
        if self.entity_vectors is not None:
            return np.asarray(self.entity_vectors(texts), dtype=np.float32)
        return pooled_vectors(self.encoder, texts, self.batch_size)

    def sentence_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """``(entity index per row, R × D unit rows)`` of every definition sentence (see ``sentence_vectors``)."""
        if self.kb is None:
            raise ValueError("SemanticMatcher has no knowledge base; pass kb= or call set_kb()")
        if self._sentences is None:
            self._sentences = self._owned_rows(self.definition_sentences, "definition sentences")
        return self._sentences

    def _owned_rows(self, texts_of: Callable[[KBEntry], Iterable[str]], what: str) -> tuple[np.ndarray, np.ndarray]:
        """``(entity index per row, R × D unit rows)`` of ``texts_of(entry)`` for every eligible entity (see
        ``defined_only``), in KB order."""
        assert self.kb is not None
        owners: list[int] = []
        texts: list[str] = []
        for k, entry in enumerate(self.kb):
            if self.defined_only and not entry.definition:
                continue
            for text in texts_of(entry):
                owners.append(k)
                texts.append(text)
        rows = self._rows(texts)
        log.info("semantic matcher: %d %s ready", len(texts), what)
        return np.asarray(owners, dtype=np.int64), rows

    def reading_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """``(entity index per row, R × D unit rows)`` of the English readings of every entity's Chinese surfaces
        (preferred name and exact synonyms; see ``gloss_surfaces``); empty without a glosser."""
        if self.kb is None:
            raise ValueError("SemanticMatcher has no knowledge base; pass kb= or call set_kb()")
        if self._readings is None:
            owners: list[int] = []
            texts: list[str] = []
            if self.glosser is not None and self.gloss_surfaces:
                for k, entry in enumerate(self.kb):
                    exact = [x for i, x in enumerate(entry.synonyms) if entry.scope_of(i) == "EXACT"]
                    surfaces = [entry.name_zh, *exact]
                    readings = {_reading(self.glosser, x) for x in surfaces if x and any(is_cjk(c) for c in x)}
                    for reading in sorted(r for r in readings if r):
                        owners.append(k)
                        texts.append(reading)
            rows = self._rows(texts)
            self._readings = (np.asarray(owners, dtype=np.int64), rows)
            log.info("semantic matcher: %d readings of Chinese surfaces ready", len(texts))
        return self._readings

    @staticmethod
    def entity_names(entry: KBEntry) -> list[str]:
        """The names an entity is scored by with ``name_rows``: English and Chinese preferred names and EXACT
        synonyms (the dictionary's surfaces), each once."""
        exact = [x for i, x in enumerate(entry.synonyms) if entry.scope_of(i) == "EXACT"]
        seen: dict[str, str] = {}
        for name in (entry.name, entry.name_zh, *exact):
            name = (name or "").strip()
            if name:
                seen.setdefault(name.lower(), name)
        return list(seen.values())

    def name_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """``(entity index per row, R × D unit rows)`` of every entity's names as written (see ``name_rows``);
        empty without ``name_rows``."""
        if self.kb is None:
            raise ValueError("SemanticMatcher has no knowledge base; pass kb= or call set_kb()")
        if self._names is None:
            self._names = self._owned_rows(self.entity_names if self.name_rows else lambda entry: (), "entity names")
        return self._names

    def similarities(self, texts: Sequence[str], glossed: Sequence[bool] | None = None) -> np.ndarray:
        """``len(texts) × E`` cosine similarities to every entity; ineligible entities (see ``defined_only``) get -inf.

        Args:
            texts: what to embed.
            glossed: per text, whether it is the English reading of Chinese (default: none is); such a text also
                scores against the readings of the entities' Chinese surfaces (:meth:`reading_matrix`).
        """
        if self.kb is None:
            raise ValueError("SemanticMatcher has no knowledge base; pass kb= or call set_kb()")
        matrix = self.entity_matrix()
        started = time.perf_counter()
        pooled = pooled_vectors(self.encoder, list(texts), self.batch_size)
        sims = pooled @ matrix.T
        if self.sentence_vectors:
            owners, rows = self.sentence_matrix()
            if len(owners):
                # an entity scores its best row: "name. definition" or one of its definition's sentences
                np.maximum.at(sims.T, owners, (pooled @ rows.T).T)
        if self.name_rows:
            owners, rows = self.name_matrix()
            # an entity also scores its best name: a short span names a concept the way its names do, in either
            # language, where its definition speaks in a register no caption uses
            _max_into(sims, owners, pooled @ rows.T)
        picked = np.flatnonzero(np.asarray(glossed, dtype=bool)) if glossed is not None else np.zeros(0, dtype=np.int64)
        if len(picked):
            owners, rows = self.reading_matrix()
            if len(owners):
                # a reading of a description compared with the readings of the Chinese names people use for a concept:
                # both carry the same word-by-word noise, which then cancels out
                sub = sims[picked]
                np.maximum.at(sub.T, owners, (pooled[picked] @ rows.T).T)
                sims[picked] = sub
        if self.defined_only:
            eligible = np.fromiter((bool(e.definition) for e in self.kb), dtype=bool, count=len(self.kb))
            sims[:, ~eligible] = -np.inf
        self.similarity_s += time.perf_counter() - started
        return sims

    def _latin_enough(self, text: str) -> bool:
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return False
        latin = sum(1 for c in letters if not is_cjk(c))
        return latin / len(letters) >= self.min_latin_ratio

    def _windows(self, n: int, scale: int = 1) -> list[tuple[int, int]]:
        """Token windows ``[a, b)`` over a piece of ``n`` tokens: the whole piece, or overlapping windows when long.
        ``scale`` tokens make a word (2 for Chinese characters)."""
        if n <= self.max_span_words * scale:
            return [(0, n)]
        window, stride = self.window_words * scale, self.stride_words * scale
        last = n - window
        starts = list(range(0, last + 1, stride))
        if starts[-1] != last:
            starts.append(last)
        return [(i, i + window) for i in starts]

    def _pieces(self, text: str, covered: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        """The clauses of ``text`` minus ``covered``. Each clause is cut by the covered spans that reach into it
        only, found in one sweep (a long text has thousands of clauses and mentions)."""
        by_start = sorted(range(len(covered)), key=lambda k: covered[k][0])
        nxt = 0
        active: list[int] = []  # covered spans that start before this clause ends and end after it starts
        for clause_start, clause_end in clauses(text):
            while nxt < len(by_start) and covered[by_start[nxt]][0] < clause_end:
                active.append(by_start[nxt])
                nxt += 1
            active = [k for k in active if covered[k][1] > clause_start]
            spans = [covered[k] for k in active]  # by start
            if all(cs < ce for cs, ce in spans):
                yield from _uncovered((clause_start, clause_end), spans)
            else:  # an empty or reversed span cuts pieces in ways only the general rule reproduces
                yield from _subtract((clause_start, clause_end), [covered[k] for k in sorted(active)])

    def _glossed(self, piece: str) -> bool:
        return self.glosser is not None and any(is_cjk(c) for c in piece)

    def candidate_spans(self, text: str, covered: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
        """Spans of ``text`` to embed as written: clause pieces not in ``covered``, windowed when long.

        Pieces holding Chinese are left to :meth:`gloss_spans` when there is a glosser."""
        spans: list[tuple[int, int]] = []
        for s, e in self._pieces(text, covered):
            if self._glossed(text[s:e]):
                continue
            cjk = sum(1 for c in text[s:e] if is_cjk(c))
            if cjk:
                # Chinese has no spaces: a character is a token, and two count as a word (most words have two)
                words = [(s + m.start(), s + m.end()) for m in _TOKEN.finditer(text[s:e])]
                if cjk < self.min_cjk_chars and len(words) - cjk + cjk // 2 < self.min_words:
                    continue
                scale = 2 if 2 * cjk >= len(words) else 1
            else:
                words = [(s + m.start(), s + m.end()) for m in _WORD.finditer(text[s:e])]
                if len(words) < self.min_words:
                    continue
                scale = 1
            for a, b in self._windows(len(words), scale):
                span = (words[a][0], words[b - 1][1])
                if self._latin_enough(text[span[0] : span[1]]):
                    spans.append(span)
        return spans

    def gloss_spans(self, text: str, covered: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int, str]]:
        """``(start, end, English reading)`` of the clause pieces holding Chinese, not in ``covered``, windowed over
        their content words when long ([] without a glosser)."""
        if self.glosser is None:
            return []
        spans: list[tuple[int, int, str]] = []
        for s, e in self._pieces(text, covered):
            if not self._glossed(text[s:e]):
                continue
            words = self.glosser.segment(text[s:e])
            if len(words) < self.gloss_min_words:
                continue
            for a, b in self._windows(len(words)):
                spans.append((s + words[a].start, s + words[b - 1].end, " ".join(w.gloss for w in words[a:b])))
        return spans

    def match_batch(
        self, texts: Sequence[str], covered: Sequence[Sequence[tuple[int, int]]] | None = None
    ) -> list[list[_SemanticMatch]]:
        """Semantic matches for each text, embedding all candidate spans of the batch together.

        Args:
            texts: original texts.
            covered: per text, spans already linked by the dictionary (not embedded again).
        """
        covered = covered if covered is not None else [()] * len(texts)
        if self.kb is None or len(self.kb) == 0:
            return [[] for _ in texts]
        if self.skip_hashtags:
            covered = [sorted([*done, *((m.start(), m.end()) for m in _HASHTAG.finditer(text))])
                       for text, done in zip(texts, covered)]
        # (text index, start, end, what is embedded, glossed)
        flat: list[tuple[int, int, int, str, bool]] = []
        for ti, (text, done) in enumerate(zip(texts, covered)):
            flat.extend((ti, s, e, text[s:e], False) for s, e in self.candidate_spans(text, done))
            flat.extend((ti, s, e, reading, True) for s, e, reading in self.gloss_spans(text, done))
        results: list[list[_SemanticMatch]] = [[] for _ in texts]
        if not flat:
            return results
        sims = self.similarities([query for _, _, _, query, _ in flat], [glossed for *_, glossed in flat])
        best = sims.argmax(axis=1)
        entries = self.kb.entries
        raw: list[list[_SemanticMatch]] = [[] for _ in texts]
        for row, (ti, s, e, query, glossed) in enumerate(flat):
            score = float(sims[row, best[row]])
            if glossed:
                threshold = self.gloss_threshold
            else:
                threshold = self.zh_threshold if any(is_cjk(c) for c in query) else self.threshold
            if score >= threshold:
                raw[ti].append(_SemanticMatch(entries[int(best[row])], s, e, score, glossed))
        for ti, matches in enumerate(raw):
            results[ti] = _best_disjoint(matches)
        return results

