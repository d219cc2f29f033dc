"""The linker and its spaCy component: dictionary matches, the semantic fallback and negation, as :class:`Mention`
records on ``doc._.ovp_mentions``.

:func:`load_linker` builds the linker over the real graph; :func:`link_mentions` is the call the rest of OVP makes.
The component is for spaCy pipelines (``linker.nlp``, :func:`build_pipeline`); :func:`link_mentions` links the same
batches without making Docs, since nothing it returns reads their tokens.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc

from encoders.linking.dictionary import DictionaryMatcher
from encoders.linking.knowledge_base import KBEntry, KnowledgeBase
from encoders.linking.negation import NegationDetector
from encoders.linking.semantic import (
    REAL_KB_CROSS_LINGUAL_THRESHOLD,
    REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD,
    REAL_KB_GLOSS_THRESHOLD,
    REAL_KB_SEMANTIC_THRESHOLD,
    SemanticMatcher,
)
from encoders.normalize import normalize
from kg_builder.store.knowledge import GraphReader
from ovp.settings import Settings

if TYPE_CHECKING:
    from encoders.sentence_vectors import SentenceVectorEncoder
    from encoders.text import TextEncoder

log = logging.getLogger(__name__)

__all__ = ["Mention", "EntityLinker", "EntityLinkerComponent", "build_pipeline", "link_mentions", "load_linker",
           "cross_lingual_matcher", "DEFAULT_MAX_TEXT_CHARS", "LINKING_VECTORS"]

#: The semantic fallback's vectors (:func:`load_linker`): ``"cross-lingual"`` (the default: multilingual USE,
#: :mod:`encoders.sentence_vectors`, Chinese embedded as written and compared with English and Chinese names too) or
#: ``"gloss"`` (the English-only linking model, Chinese read through word-by-word English glosses; kept to measure
#: against).
LINKING_VECTORS: tuple[str, ...] = ("cross-lingual", "gloss")

#: Longer texts are cut, with a warning: the default of ``OVP_MAX_TEXT_CHARS`` (:func:`load_linker` passes the
#: configured value).
DEFAULT_MAX_TEXT_CHARS: int = Settings.max_text_chars


@dataclass(frozen=True)
class Mention:
    """One linked entity in one text.

    Attributes:
        id, name, kind: the entity.
        surface: ``text[start:end]`` of the original text.
        start, end: character offsets into the original text (half-open).
        score: dictionary: 1.0 name, 0.95 synonym; semantic: the cosine similarity.
        negated: a negation cue precedes it in its clause ("不是青光眼", "not pink eye").
        xrefs: the entity's equivalents in other sources.
        method: ``"dictionary"``, ``"semantic"``, or ``"gloss"`` (semantic, through the English reading of Chinese).
        alternatives: other entity ids with the same surface (ranked), not in the JSON contract.
    """

    id: str
    name: str
    kind: str
    surface: str
    start: int
    end: int
    score: float
    negated: bool = False
    xrefs: tuple[str, ...] = ()
    method: str = "dictionary"
    alternatives: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The stable CLI/API contract: ``{"id","name","kind","surface","start","end","score","negated","xrefs"}``."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "surface": self.surface,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 4),
            "negated": self.negated,
            "xrefs": list(self.xrefs),
        }



class EntityLinker:
    """Dictionary matching, optional semantic fallback and negation over one knowledge base.

    Args:
        kb: the entities.
        semantic: the fallback for phrases the dictionary misses (None = dictionary only). Its KB is set to ``kb``.
        negation: the negation detector (default :class:`NegationDetector` with its defaults).
        max_text_chars: longer texts are cut here with a logged warning (default :data:`DEFAULT_MAX_TEXT_CHARS`;
            :func:`load_linker` passes the configured ``OVP_MAX_TEXT_CHARS``): captions are short, and the limit
            bounds the cost of a pathological input.
        dictionary: a prepared :class:`DictionaryMatcher` (default: one over ``kb`` with its defaults).
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        semantic: SemanticMatcher | None = None,
        negation: NegationDetector | None = None,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        dictionary: DictionaryMatcher | None = None,
    ) -> None:
        if max_text_chars < 1:
            raise ValueError(f"max_text_chars must be positive, got {max_text_chars}")
        if dictionary is not None and dictionary.kb is not kb:
            raise ValueError("dictionary was built over a different knowledge base than kb")
        self.kb = kb
        self.dictionary = dictionary or DictionaryMatcher(kb)
        self.semantic = semantic
        if semantic is not None:
            semantic.set_kb(kb)
        self.negation = negation or NegationDetector()
        self.max_text_chars = max_text_chars
        self._nlp: Language | None = None

    def prepare(self, text: object) -> str:
        """Check and cut one input text.

        Raises:
            TypeError: ``text`` is not a ``str`` (None included).
        """
        if not isinstance(text, str):
            raise TypeError(f"caption must be a str, got {type(text).__name__}")
        if len(text) > self.max_text_chars:
            log.warning(
                "text of %d chars cut to %d (OVP_MAX_TEXT_CHARS); mentions after the cut are not linked",
                len(text), self.max_text_chars,
            )
            return text[: self.max_text_chars]
        return text

    def link(self, text: str) -> list[Mention]:
        """Mentions in one text, ordered by start offset. See :meth:`link_batch`."""
        return self.link_batch([text])[0]

    def link_batch(self, texts: Sequence[str]) -> list[list[Mention]]:
        """Mentions per text (offsets into each text as given; over-long texts are cut first).

        Raises:
            TypeError: an item is not a ``str``.
        """
        prepared = [self.prepare(t) for t in texts]
        normalized = [normalize(t) for t in prepared]
        out: list[list[Mention]] = []
        for nt in normalized:
            matches = self.dictionary.match(nt)
            # a dictionary match is a name: only the words before it can deny it
            negated = self.negation.negations(nt, [(m.start, None) for m in matches])
            out.append([
                self._mention(nt.original, m.candidates[0].entry, m.start, m.end, m.candidates[0].score, "dictionary",
                              tuple(c.entry.id for c in m.candidates[1:]), denied)
                for m, denied in zip(matches, negated)
            ])
        if self.semantic is not None:
            covered = [[(m.start, m.end) for m in ms] for ms in out]
            for mentions, nt, sem in zip(out, normalized, self.semantic.match_batch(prepared, covered)):
                # a semantic match is a whole phrase, whose own words may hold the cue ("never had a dark curtain …")
                negated = self.negation.negations(nt, [(s.start, s.end) for s in sem])
                for s, denied in zip(sem, negated):
                    method = "gloss" if s.glossed else "semantic"
                    mentions.append(self._mention(nt.original, s.entry, s.start, s.end, s.score, method, (), denied))
                mentions.sort(key=lambda m: (m.start, m.end))
        return out

    @staticmethod
    def _mention(
        text: str, entry: KBEntry, start: int, end: int, score: float, method: str, alternatives: tuple[str, ...],
        negated: bool,
    ) -> Mention:
        return Mention(
            id=entry.id, name=entry.name or entry.name_zh, kind=entry.kind, surface=text[start:end], start=start,
            end=end, score=float(score), negated=negated, xrefs=tuple(entry.xrefs), method=method,
            alternatives=alternatives,
        )

    @property
    def nlp(self) -> Language:
        """A blank multilingual spaCy pipeline with the ``ovp_entity_linker`` component bound to this linker."""
        if self._nlp is None:
            self._nlp = build_pipeline(self)
        return self._nlp


if not Doc.has_extension("ovp_mentions"):
    Doc.set_extension("ovp_mentions", default=None)


class EntityLinkerComponent:
    """The spaCy component: sets ``doc._.ovp_mentions`` (a list of :class:`Mention`).

    The linker (KB, matchers) is a Python object, not config, so it is attached after ``add_pipe``; use
    :func:`build_pipeline`, which does both.
    """

    def __init__(self, nlp: Language, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size
        self.linker: EntityLinker | None = None

    def _require_linker(self) -> EntityLinker:
        if self.linker is None:
            raise ValueError(f"spaCy component {self.name!r} has no linker; build the pipeline with build_pipeline()")
        return self.linker

    def __call__(self, doc: Doc) -> Doc:
        doc._.ovp_mentions = self._require_linker().link(doc.text)
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        # batching matters for the semantic matcher: all candidate spans of a batch go through one encoder call
        linker = self._require_linker()
        size = batch_size or self.batch_size
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= size:
                yield from self._link(linker, batch)
                batch = []
        if batch:
            yield from self._link(linker, batch)

    @staticmethod
    def _link(linker: EntityLinker, docs: list[Doc]) -> Iterator[Doc]:
        for doc, mentions in zip(docs, linker.link_batch([d.text for d in docs])):
            doc._.ovp_mentions = mentions
            yield doc


@Language.factory("ovp_entity_linker", default_config={"batch_size": 64})
def make_entity_linker(nlp: Language, name: str, batch_size: int) -> EntityLinkerComponent:
    """spaCy factory for :class:`EntityLinkerComponent` (attach a linker before use; see :func:`build_pipeline`)."""
    return EntityLinkerComponent(nlp, name, batch_size)


def build_pipeline(linker: EntityLinker, *, batch_size: int = 64) -> Language:
    """``spacy.blank("xx")`` with the ``ovp_entity_linker`` component bound to ``linker``."""
    import spacy

    nlp = spacy.blank("xx")
    component = nlp.add_pipe("ovp_entity_linker", config={"batch_size": batch_size})
    component.linker = linker
    return nlp


def link_mentions(texts: list[str], linker: EntityLinker, *, batch_size: int = 64) -> list[list[Mention]]:
    """Link every text, ``batch_size`` texts per :meth:`EntityLinker.link_batch` call (the batches the spaCy
    component links): the call the rest of OVP makes.

    Tokenising a text for a Doc cost a fifth of linking a caption (``bench/linking_speed.py``), and no caller of this
    function reads the tokens: pipelines that want Docs use ``linker.nlp``.

    Args:
        texts: captions; an empty string gives no mentions.
        linker: the :class:`EntityLinker` to use (its pipeline is built once and reused).
        batch_size: texts per batch.

    Returns:
        Per text, its mentions ordered by start offset; offsets index the text as given (cut texts: the kept prefix).

    Raises:
        TypeError: ``texts`` is a bare string, or an item is not a ``str`` (None included).
    """
    if isinstance(texts, str):
        raise TypeError("link_mentions() takes a list of strings, not a single string")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    prepared = [linker.prepare(t) for t in texts]  # every item checked before any is linked
    out: list[list[Mention]] = []
    for start in range(0, len(prepared), batch_size):
        out.extend(linker.link_batch(prepared[start:start + batch_size]))
    return out


def load_linker(
    settings: Settings,
    graph: GraphReader,
    semantic: bool = True,
    *,
    encoder: TextEncoder | SentenceVectorEncoder | None = None,
    threshold: float | None = None,
    gloss_threshold: float | None = None,
    vectors: str = "cross-lingual",
    zh_threshold: float | None = None,
) -> EntityLinker:
    """The one place that builds the linker over the real graph (API, worker, features and CLI call this).

    Reads the knowledge base from the graph (one query), builds the dictionary and, with ``semantic``, a
    :class:`SemanticMatcher` whose entity vectors come from the persisted, content-keyed cache in
    ``settings.cache_dir`` (:mod:`encoders.entity_vectors`; computed once per machine, then read in well under a
    second). Build it once per process and reuse it.

    Args:
        settings: text model, device, cache directory and ``max_text_chars``.
        graph: anything with ``read(query, params)`` (``kg_builder.graph.Graph``).
        semantic: add the semantic fallback (loads its encoder; False = dictionary only).
        encoder: a loaded encoder to share, used when it is of the kind ``vectors`` needs (a
            ``SentenceVectorEncoder`` for ``"cross-lingual"``, a ``TextEncoder`` for ``"gloss"``; default: a new one).
        threshold: semantic threshold for Latin spans (default :data:`REAL_KB_CROSS_LINGUAL_THRESHOLD`, or
            :data:`REAL_KB_SEMANTIC_THRESHOLD` with ``"gloss"``).
        gloss_threshold: ``"gloss"`` only: threshold for Chinese spans read through their English gloss (default
            :data:`REAL_KB_GLOSS_THRESHOLD`).
        vectors: one of :data:`LINKING_VECTORS`.
        zh_threshold: ``"cross-lingual"`` only: threshold for spans holding Chinese (default
            :data:`REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD`).

    Raises:
        GraphUnavailable: Neo4j cannot be reached.
        ModelNotFound: ``semantic`` and the text model cannot be loaded.
    """
    if vectors not in LINKING_VECTORS:
        raise ValueError(f"vectors must be one of {LINKING_VECTORS}, got {vectors!r}")
    kb = KnowledgeBase.from_graph(graph)
    matcher: SemanticMatcher | None = None
    if semantic and vectors == "cross-lingual":
        matcher = cross_lingual_matcher(settings, kb, encoder=encoder, threshold=threshold, zh_threshold=zh_threshold)
    elif semantic:
        from encoders.entity_vectors import entity_text_vectors
        from encoders.text import TextEncoder, TextEncoderConfig
        from encoders.zh_gloss import ChineseGlosser

        text_encoder = encoder if isinstance(encoder, TextEncoder) else TextEncoder(TextEncoderConfig.for_linking(settings))

        def vectors_of(texts: list[str]) -> np.ndarray:
            return entity_text_vectors(texts, settings, encoder=text_encoder)
        matcher = SemanticMatcher(
            text_encoder, kb, entity_vectors=vectors_of, defined_only=True, sentence_vectors=True,
            threshold=REAL_KB_SEMANTIC_THRESHOLD if threshold is None else threshold,
            glosser=ChineseGlosser().load(),
            gloss_threshold=REAL_KB_GLOSS_THRESHOLD if gloss_threshold is None else gloss_threshold,
        )
        # Read (or, the first time on a machine, compute) the entity vectors now, while loading, so that the first
        # caption of a worker or request does not pay for them; and the readings of the Chinese surfaces.
        matcher.entity_matrix()
        matcher.reading_matrix()
    return EntityLinker(kb, semantic=matcher, max_text_chars=settings.max_text_chars)


def cross_lingual_matcher(
    settings: Settings,
    kb: KnowledgeBase,
    *,
    encoder: TextEncoder | SentenceVectorEncoder | None = None,
    threshold: float | None = None,
    zh_threshold: float | None = None,
) -> SemanticMatcher:
    """The semantic fallback with cross-lingual vectors (multilingual USE): spans in either language are embedded
    as written and scored against each entity's "name. definition", its definition's sentences and its English and
    Chinese names; only defined entities can be linked; hashtags are skipped and a Chinese span needs six characters
    (shorter leftovers of a clause the dictionary cut, 有点水肿 or 看东西有, land on generic concepts; chosen on DEV). Its vectors are read now (or computed once per machine and
    cached, content-keyed, in ``settings.cache_dir``), so the first caption does not pay for them.

    Raises:
        ModelNotFound: the sentence vector package is not installed.
    """
    from encoders.entity_vectors import EncoderIdentity, EntityVectorCache
    from encoders.sentence_vectors import SentenceVectorEncoder

    use = encoder if isinstance(encoder, SentenceVectorEncoder) else SentenceVectorEncoder()
    cache = EntityVectorCache(settings.cache_dir, EncoderIdentity(model=use.identity, max_length=0))

    def vectors_of(texts: list[str]) -> np.ndarray:
        return cache.get(texts, use.encode)

    matcher = SemanticMatcher(
        use, kb, entity_vectors=vectors_of, defined_only=True, sentence_vectors=True, name_rows=True,
        min_latin_ratio=0.0, skip_hashtags=True, min_cjk_chars=6,
        threshold=REAL_KB_CROSS_LINGUAL_THRESHOLD if threshold is None else threshold,
        zh_threshold=REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD if zh_threshold is None else zh_threshold,
    )
    matcher.entity_matrix()
    matcher.sentence_matrix()
    matcher.name_matrix()
    return matcher
