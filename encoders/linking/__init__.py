"""Entity linking for captions: which knowledge-graph entities a caption talks about, where, and whether it denies them.

Pipeline, per caption (modelled on scispaCy's ``linking.py`` / ``candidate_generation.py``):

1. :func:`encoders.normalize.normalize` — NFKC, case-folding, separators; offsets map back to the original text.
2. :class:`DictionaryMatcher` (:mod:`.dictionary`) — every name and synonym (English and Chinese) of the
   :class:`KnowledgeBase` (:mod:`.knowledge_base`), found by walking a character trie; longest match wins.
3. :class:`SemanticMatcher` (:mod:`.semantic`, optional, injected) — for clauses the dictionary left uncovered, cosine
   similarity between the span's sentence vector and each entity's "name. definition", definition sentences and
   English and Chinese names, in cross-lingual vectors (:mod:`encoders.sentence_vectors`): a Chinese clause is
   embedded as written. (The English-only alternative reads Chinese through word-by-word glosses, :mod:`encoders.zh_gloss`.)
4. :class:`NegationDetector` (:mod:`.negation`) — a NegEx-style look-back for cues (不是, 没有, not, no, rule out …) in
   the same clause (:mod:`.clauses`).

The result is a list of :class:`Mention` records, offsets into the original text. Everything else calls
:func:`link_mentions` (:mod:`.component`), which runs the ``ovp_entity_linker`` spaCy component over a blank
multilingual pipeline; :func:`load_linker` builds the linker over the real graph.
"""
from __future__ import annotations

from encoders.linking.component import (
    DEFAULT_MAX_TEXT_CHARS,
    EntityLinker,
    EntityLinkerComponent,
    Mention,
    build_pipeline,
    link_mentions,
    LINKING_VECTORS,
    cross_lingual_matcher,
    load_linker,
)
from encoders.linking.dictionary import (
    AMBIGUOUS_SURFACES,
    DEFAULT_SOURCE_PRIORITY,
    DICTIONARY_SYNONYM_SCOPES,
    OCULAR_CONTEXT_WORDS,
    DictionaryMatcher,
)
from encoders.linking.knowledge_base import KBEntry, KnowledgeBase
from encoders.linking.negation import NegationDetector
from encoders.linking.semantic import (
    REAL_KB_CROSS_LINGUAL_THRESHOLD,
    REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD,
    REAL_KB_GLOSS_THRESHOLD,
    REAL_KB_SEMANTIC_THRESHOLD,
    SemanticMatcher,
)

__all__ = [
    "KBEntry",
    "KnowledgeBase",
    "Mention",
    "DictionaryMatcher",
    "SemanticMatcher",
    "NegationDetector",
    "EntityLinker",
    "EntityLinkerComponent",
    "build_pipeline",
    "link_mentions",
    "load_linker",
    "DEFAULT_MAX_TEXT_CHARS",
    "DEFAULT_SOURCE_PRIORITY",
    "DICTIONARY_SYNONYM_SCOPES",
    "AMBIGUOUS_SURFACES",
    "OCULAR_CONTEXT_WORDS",
    "REAL_KB_SEMANTIC_THRESHOLD",
    "REAL_KB_GLOSS_THRESHOLD",
    "REAL_KB_CROSS_LINGUAL_THRESHOLD",
    "REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD",
    "LINKING_VECTORS",
    "cross_lingual_matcher",
]
