"""Entity linking for captions: which knowledge-graph entities a caption talks about, where, and whether it denies them.

Pipeline, per caption (modelled on scispaCy's ``linking.py`` / ``candidate_generation.py``):

1. :func:`encoders.normalize.normalize` — NFKC, case-folding, separators; offsets map back to the original text.
2. :class:`DictionaryMatcher` — every name and synonym (English and Chinese) of the :class:`KnowledgeBase`, found by
   walking a character trie; longest match wins.
3. :class:`SemanticMatcher` (optional, injected) — for clauses the dictionary left uncovered, cosine similarity
   between the span's sentence vector and each entity's "name. definition" vector. Chinese clauses are embedded
   through their word-by-word English reading (:mod:`encoders.zh_gloss`), the encoder being English-only.
4. :class:`NegationDetector` — a NegEx-style look-back for cues (不是, 没有, not, no, rule out …) in the same clause.

The result is a list of :class:`Mention` records, offsets into the original text. Everything else calls
:func:`link_mentions`, which runs the ``ovp_entity_linker`` spaCy component over a blank multilingual pipeline.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc

from encoders.normalize import NormalizedText, is_cjk, is_latin_word_char, normalize, normalize_surface, units

if TYPE_CHECKING:
    from encoders.text import TextEncoder, TextFeatures
    from encoders.zh_gloss import GlossedWord
    from ovp.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "ENTITY_KINDS",
    "KBEntry",
    "KnowledgeBase",
    "Mention",
    "DictionaryMatcher",
    "SemanticMatcher",
    "NegationDetector",
    "EntityLinker",
    "build_pipeline",
    "link_mentions",
    "load_linker",
    "DICTIONARY_SYNONYM_SCOPES",
    "AMBIGUOUS_SURFACES",
    "OCULAR_CONTEXT_WORDS",
]

#: Entity kinds, in the order used when a node carries more than one kind label (graph label → kind).
ENTITY_KINDS: dict[str, str] = {
    "Disease": "disease",
    "Phenotype": "phenotype",
    "Anatomy": "anatomy",
    "Treatment": "treatment",
    "Exam": "exam",
}

#: When several entities share one surface, ids with an earlier prefix win (the project's curated lexicon first:
#: it holds the colloquial names people use; then HPO, whose terms carry definitions; then classifications).
DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = ("OVP", "HP", "ICD10", "ORPHA", "OMIM", "MONDO", "DOID")

#: Synonym scopes (OBO: EXACT, BROAD, NARROW, RELATED) the dictionary indexes. Only EXACT synonyms name the concept
#: itself; HPO's others name a neighbour, and as exact-match surfaces they turn everyday captions into false links:
#: "eye drop" is a RELATED synonym of Ptosis, "double eyelid" a NARROW one of Accessory eyelid, "blind spot" a BROAD
#: one of Scotoma. Non-exact synonyms stay on the KB entry (and in the graph) for other uses.
DICTIONARY_SYNONYM_SCOPES: frozenset[str] = frozenset({"EXACT"})

#: Surfaces (normalised) that name an eye concept but, in everyday captions, more often mean something else:
#: a school pupil, a person called Iris, phone specs, "tearing up" at a wedding, "avoid it like the
#: plague", 感动到流泪 (moved to tears), a photo's 光晕 (halo), a monitor's 重影 (ghosting), AMD the chip maker, PVD
#: (peripheral vascular disease), camera flashes and hot flashes, a pool floater, 热敷 on a sore
#: back or with a face mask. The dictionary links them only when the caption shows ocular context elsewhere: another
#: unambiguous dictionary mention, or one of :data:`OCULAR_CONTEXT_WORDS`. This is the one list of such words; add
#: to it, never special-case a caption.
AMBIGUOUS_SURFACES: frozenset[str] = frozenset({
    "specs", "pupil", "pupils", "iris", "tearing", "plague",
    "amd", "pvd", "flashes", "floater",
    "流泪", "光晕", "重影", "热敷",
})

#: Words whose presence outside an ambiguous match shows the caption is about eyes (matched as normalised units:
#: Latin words, or single CJK characters).
OCULAR_CONTEXT_WORDS: frozenset[str] = frozenset({
    "eye", "eyes", "eyesight", "vision", "sight", "optometrist", "ophthalmologist", "oculist", "optician",
    "眼", "睛", "视", "視", "瞳",
})

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

#: A treatment or exam named after a condition ("cataract surgery", "IPL for dry eye", "color blind test", 白内障手术)
#: is about that condition too: a dictionary match of one of these kinds also yields the condition surfaces nested
#: inside it. A disease nested in a disease ("high myopia" ⊃ "myopia") is a subtype, not a second topic, so only
#: these outer → inner kinds count.
NESTED_OUTER_KINDS: frozenset[str] = frozenset({"treatment", "exam"})
NESTED_INNER_KINDS: frozenset[str] = frozenset({"disease", "phenotype"})

#: Characters that end a clause (negation scope, semantic spans). Checked after NFKC, so full-width forms count too.
CLAUSE_BREAKS = frozenset(",.;:!?\n\r。，；：！？、…")


# --------------------------------------------------------------------------------------------------------------
# Knowledge base
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KBEntry:
    """One linkable entity.

    Attributes:
        id: CURIE (``OVP:…``, ``HP:…``, ``ICD10:…``).
        kind: one of ``disease``, ``phenotype``, ``anatomy``, ``treatment``, ``exam``.
        name: English preferred name.
        name_zh: Chinese preferred name ("" when none).
        synonyms: other surfaces, English or Chinese.
        definition: free text; the semantic matcher embeds ``"name. definition"``.
        xrefs: ids of the same concept in other sources (MAPS_TO neighbours in the graph).
        synonym_scopes: per synonym, its OBO scope (EXACT, BROAD, NARROW, RELATED); empty means all EXACT.
    """

    id: str
    kind: str
    name: str
    name_zh: str = ""
    synonyms: list[str] = field(default_factory=list)
    definition: str = ""
    xrefs: list[str] = field(default_factory=list)
    synonym_scopes: tuple[str, ...] = ()

    def scope_of(self, index: int) -> str:
        """The scope of ``synonyms[index]`` (EXACT when the source recorded none)."""
        return self.synonym_scopes[index] if index < len(self.synonym_scopes) else "EXACT"

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("KBEntry needs an id")
        if self.kind not in ENTITY_KINDS.values():
            raise ValueError(f"KBEntry {self.id}: kind {self.kind!r} is not one of {sorted(ENTITY_KINDS.values())}")


#: One Cypher read of every entity with its kind label and MAPS_TO neighbours (either direction).
#: Labels are compared against a parameter list, never formatted into the query.
KB_QUERY = """
MATCH (e:Entity)
// every MAPS_TO neighbour, whichever way the edge was written, is the same concept in another source
OPTIONAL MATCH (e)-[:MAPS_TO]-(x:Entity)
WITH e, collect(DISTINCT x.id) AS xrefs
RETURN e.id AS id,
       [label IN labels(e) WHERE label IN $kind_labels] AS kinds,
       e.name AS name,
       e.name_zh AS name_zh,
       e.synonyms AS synonyms,
       e.synonym_scopes AS synonym_scopes,
       e.definition AS definition,
       xrefs
ORDER BY id
"""


class GraphReader(Protocol):
    def read(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


class KnowledgeBase:
    """The entities the linker can return, by id.

    Args:
        entries: the entries; ids must be unique.

    Raises:
        ValueError: two entries share an id.
    """

    def __init__(self, entries: Iterable[KBEntry]) -> None:
        self.entries: list[KBEntry] = list(entries)
        self._by_id: dict[str, KBEntry] = {}
        for entry in self.entries:
            if entry.id in self._by_id:
                raise ValueError(f"duplicate KB id {entry.id}")
            self._by_id[entry.id] = entry

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[KBEntry]:
        return iter(self.entries)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._by_id

    def get(self, entity_id: str) -> KBEntry:
        """The entry with that id; KeyError when absent."""
        return self._by_id[entity_id]

    @classmethod
    def from_graph(cls, graph: GraphReader) -> "KnowledgeBase":
        """Read every ``:Entity`` node with its kind label and MAPS_TO neighbours (one query).

        Nodes without a known kind label are skipped with a warning; a node with several takes the first in
        :data:`ENTITY_KINDS` order.

        Args:
            graph: anything with ``read(query, params) -> list[dict]`` (``kg_builder.graph.Graph``).

        Raises:
            GraphUnavailable: from the graph, when Neo4j cannot be reached.
        """
        rows = graph.read(KB_QUERY, {"kind_labels": list(ENTITY_KINDS)})
        entries: list[KBEntry] = []
        skipped: list[str] = []
        for row in rows:
            labels = set(row.get("kinds") or [])
            kind = next((k for label, k in ENTITY_KINDS.items() if label in labels), None)
            if kind is None or not row.get("id"):
                skipped.append(str(row.get("id")))
                continue
            raw_synonyms = list(row.get("synonyms") or [])
            raw_scopes = list(row.get("synonym_scopes") or [])
            # keep scopes aligned with the synonyms that survive the filter (a missing scope counts as EXACT)
            kept = [
                (syn, str(raw_scopes[i]).upper() if i < len(raw_scopes) and raw_scopes[i] else "EXACT")
                for i, syn in enumerate(raw_synonyms)
                if isinstance(syn, str) and syn
            ]
            entries.append(
                KBEntry(
                    id=row["id"],
                    kind=kind,
                    name=row.get("name") or "",
                    name_zh=row.get("name_zh") or "",
                    synonyms=[syn for syn, _ in kept],
                    definition=row.get("definition") or "",
                    xrefs=sorted(x for x in (row.get("xrefs") or []) if x),
                    synonym_scopes=tuple(scope for _, scope in kept),
                )
            )
        if skipped:
            log.warning("skipped %d entities without a kind label (e.g. %s)", len(skipped), ", ".join(skipped[:3]))
        log.info("knowledge base: %d entities read from the graph", len(entries))
        return cls(entries)


# --------------------------------------------------------------------------------------------------------------
# Mentions
# --------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------
# Dictionary matching
# --------------------------------------------------------------------------------------------------------------

_END = ""  # trie key for "a surface ends here"; no character is the empty string


@dataclass(frozen=True)
class _Candidate:
    entry: KBEntry
    score: float
    exact_form: str | None  # acronyms: the case-sensitive form the original text must show (after NFKC)


@dataclass(frozen=True)
class _DictMatch:
    norm_start: int
    norm_end: int
    start: int
    end: int
    candidates: tuple[_Candidate, ...]  # ranked; [0] is the linked entity
    key: str = ""  # the normalised surface matched

    @property
    def length(self) -> int:
        return self.norm_end - self.norm_start


def _is_acronym(surface: str) -> bool:
    """'OCT', 'AMD', 'LASIK': short all-capital Latin forms that collide with ordinary words when case-folded."""
    s = unicodedata.normalize("NFKC", surface)
    letters = [c for c in s if c.isalpha()]
    return 2 <= len(letters) <= 6 and all(c.isascii() and c.isupper() for c in letters) and " " not in s.strip()


class DictionaryMatcher:
    """Exact matching of every name and synonym over normalised text.

    Surfaces are normalised with :func:`~encoders.normalize.normalize` and stored in a character trie (nested dicts).
    Matching starts a trie walk at each position where a match may begin: any CJK character, and any Latin word
    start. Chinese therefore matches character by character, with no segmentation; Latin surfaces must sit on word
    boundaries at both ends (a CJK neighbour counts as a boundary: ``OCT检查``). Why a trie rather than jieba: jieba's
    segmentation splits unseen medical compounds inconsistently (it must be given every surface as a user word, and
    still merges a surface with its neighbours, e.g. ``青光眼患者``), and the trie walk is faster: on 1,000 synthetic
    mixed captions (30 chars) against 12,000 surfaces, the trie matched ~5,000 captions/s (English and Chinese),
    jieba segmentation plus n-gram lookup ~2,300 captions/s for the Chinese part alone, after 2.8 s of ``add_word``
    (2 shared CPU cores, under load). The walk stops after one or two characters at most positions.

    Overlaps are resolved greedily: longer match (normalised characters) first, then higher score, then earlier.
    When several entities share a surface (a lexicon concept and the HPO term it maps to), they are ranked:
    ``OVP:`` ids first, then by ``source_priority`` of the id prefix, then score, then id; the first is linked, the
    rest become :attr:`Mention.alternatives`.

    Scores (constructor arguments): ``name_score`` (default 1.0) for an English or Chinese preferred name;
    ``synonym_score`` (default 0.95) for a synonym.

    Args:
        kb: the knowledge base.
        name_score, synonym_score: see above.
        min_latin_chars: Latin surfaces shorter than this (after normalisation) are not indexed (default 3: "OD",
            "PD" match too much prose).
        min_cjk_chars: CJK surfaces shorter than this are not indexed (default 2: single characters such as 眼 are
            parts of too many words).
        acronyms_case_sensitive: all-capital short surfaces (OCT, AMD) only match where the text writes them in
            capitals (full-width counts), so "Oct 5" is not an OCT exam (default True).
        source_priority: id prefixes in order of preference for shared surfaces.
        synonym_scopes: synonym scopes indexed (default :data:`DICTIONARY_SYNONYM_SCOPES`: EXACT only).
        ambiguous_surfaces: surfaces linked only with ocular context in the same text (default
            :data:`AMBIGUOUS_SURFACES`; pass ``()`` to link them everywhere).
        context_words: what counts as ocular context besides another mention (default :data:`OCULAR_CONTEXT_WORDS`).
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        name_score: float = 1.0,
        synonym_score: float = 0.95,
        min_latin_chars: int = 3,
        min_cjk_chars: int = 2,
        acronyms_case_sensitive: bool = True,
        source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
        synonym_scopes: Iterable[str] = DICTIONARY_SYNONYM_SCOPES,
        ambiguous_surfaces: Iterable[str] = AMBIGUOUS_SURFACES,
        context_words: Iterable[str] = OCULAR_CONTEXT_WORDS,
    ) -> None:
        if not 0.0 < synonym_score <= name_score <= 1.0:
            raise ValueError(f"need 0 < synonym_score ({synonym_score}) <= name_score ({name_score}) <= 1")
        self.kb = kb
        self.name_score = name_score
        self.synonym_score = synonym_score
        self.min_latin_chars = min_latin_chars
        self.min_cjk_chars = min_cjk_chars
        self.acronyms_case_sensitive = acronyms_case_sensitive
        self.source_priority = tuple(source_priority)
        self.synonym_scopes = frozenset(scope.upper() for scope in synonym_scopes)
        self.ambiguous_surfaces = frozenset(normalize_surface(x) for x in ambiguous_surfaces)
        self.context_words = frozenset(normalize_surface(x) for x in context_words)
        self._surfaces: dict[str, tuple[_Candidate, ...]] = {}
        self._variant_count = 0
        self._compact: dict[str, str] = {}  # multi-word Latin surface without spaces → surface key (hashtags)
        self._trie: dict[str, Any] = {}
        self._build()

    # -- index -------------------------------------------------------------------------------------------------

    def _rank_key(self, cand: _Candidate) -> tuple[int, int, float, str]:
        prefix = cand.entry.id.split(":", 1)[0]
        ovp_first = 0 if prefix == "OVP" else 1
        try:
            priority = self.source_priority.index(prefix)
        except ValueError:
            priority = len(self.source_priority)
        return (ovp_first, priority, -cand.score, cand.entry.id)

    def _indexable(self, key: str) -> bool:
        if not key:
            return False
        cjk = sum(1 for c in key if is_cjk(c))
        if cjk:
            return len(key) >= self.min_cjk_chars
        return len(key) >= self.min_latin_chars

    def _build(self) -> None:
        best: dict[str, dict[str, _Candidate]] = {}  # surface → entity id → best candidate for it
        for entry in self.kb:
            forms = [(entry.name, self.name_score), (entry.name_zh, self.name_score)]
            forms += [
                (syn, self.synonym_score)
                for i, syn in enumerate(entry.synonyms)
                if entry.scope_of(i) in self.synonym_scopes
            ]
            for form, score in forms:
                if not form:
                    continue
                key = normalize_surface(form)
                if not self._indexable(key):
                    continue
                exact = unicodedata.normalize("NFKC", form).strip() if (
                    self.acronyms_case_sensitive and _is_acronym(form)
                ) else None
                cand = _Candidate(entry, score, exact)
                per_entity = best.setdefault(key, {})
                old = per_entity.get(entry.id)
                # the same entity reached by two forms: keep the higher score; a case-insensitive form beats an acronym
                if old is None or (score, old.exact_form is not None) > (old.score, exact is not None):
                    per_entity[entry.id] = cand
        # English plurals of a phrase's last word ("fundus photo" → "fundus photos", "eye twitch" → "eye twitches"),
        # only where no real surface has that form: captions inflect, the terminologies list one form. Single words
        # are left alone: their plurals are listed where they matter (cataracts), and a word must end where it ends.
        variants: dict[str, dict[str, _Candidate]] = {}
        for key, per_entity in best.items():
            plural = _plural(key)
            if plural is None or plural in best:
                continue
            for entity_id, cand in per_entity.items():
                if cand.exact_form is None:
                    variants.setdefault(plural, {})[entity_id] = cand
        best.update(variants)
        self._variant_count = len(variants)
        for key, per_entity in best.items():
            self._surfaces[key] = tuple(sorted(per_entity.values(), key=self._rank_key))
            if " " in key and not any(is_cjk(c) for c in key):
                # hashtags glue words together (#digitaleyestrain, #wetAMD): index the form without spaces
                self._compact.setdefault(key.replace(" ", ""), key)
            node = self._trie
            for ch in key:
                node = node.setdefault(ch, {})
            node[_END] = key
        log.debug("dictionary matcher: %d surfaces for %d entities", len(self._surfaces), len(self.kb))

    @property
    def surface_count(self) -> int:
        """Distinct normalised surfaces from the KB (generated plural variants not counted)."""
        return len(self._surfaces) - self._variant_count

    # -- matching ----------------------------------------------------------------------------------------------

    def match(self, nt: NormalizedText) -> list[_DictMatch]:
        """All non-overlapping dictionary matches in a normalised text, in text order."""
        text = nt.text
        n = len(text)
        found: list[_DictMatch] = []
        for i in range(n):
            ch = text[i]
            if ch == " ":
                continue
            # a Latin surface cannot start inside a Latin word
            if i > 0 and is_latin_word_char(ch) and is_latin_word_char(text[i - 1]):
                continue
            node = self._trie
            j = i
            while j < n:
                node = node.get(text[j])
                if node is None:
                    break
                j += 1
                key = node.get(_END)
                if key is None:
                    continue
                # a Latin surface cannot end inside a Latin word
                if j < n and is_latin_word_char(text[j - 1]) and is_latin_word_char(text[j]):
                    continue
                start, end = nt.to_original(i, j)
                cands = self._surfaces[key]
                if any(c.exact_form for c in cands):
                    shown = unicodedata.normalize("NFKC", nt.original[start:end])
                    cands = tuple(c for c in cands if c.exact_form is None or c.exact_form == shown)
                    if not cands:
                        continue
                found.append(_DictMatch(i, j, start, end, cands, key))
        if self._compact and ("#" in nt.original or "＃" in nt.original):
            found.extend(self._hashtag_matches(nt))
        kept = _resolve_overlaps(found)
        if self.ambiguous_surfaces and any(m.key in self.ambiguous_surfaces for m in kept):
            kept = self._confirm_ambiguous(text, kept)
        return _add_nested(kept, found)

    def _hashtag_matches(self, nt: NormalizedText) -> list[_DictMatch]:
        """Whole hashtag words that are a multi-word surface written without spaces (``#eyetwitch``)."""
        text, out = nt.text, []
        i, n = 0, len(text)
        while i < n:
            if not is_latin_word_char(text[i]):
                i += 1
                continue
            j = i
            while j < n and is_latin_word_char(text[j]):
                j += 1
            start, end = nt.to_original(i, j)
            key = self._compact.get(text[i:j])
            if key is not None and start > 0 and nt.original[start - 1] in "#＃":
                out.append(_DictMatch(i, j, start, end, self._surfaces[key], key))
            i = j
        return out

    def _confirm_ambiguous(self, text: str, matches: list[_DictMatch]) -> list[_DictMatch]:
        """Drop ambiguous matches unless the text shows ocular context outside them (see :data:`AMBIGUOUS_SURFACES`)."""
        ambiguous = [m for m in matches if m.key in self.ambiguous_surfaces]
        if len(ambiguous) < len(matches):
            return matches  # an unambiguous mention is context enough
        outside = list(text)
        for m in ambiguous:
            outside[m.norm_start : m.norm_end] = " " * m.length
        if self.context_words.intersection(units("".join(outside))):
            return matches
        return []


def _plural(key: str) -> str | None:
    """The English plural of a Latin phrase's last word, or None (one word, CJK, digits, a word ending in s)."""
    if any(is_cjk(c) for c in key) or " " not in key:
        return None
    head, _, last = key.rpartition(" ")
    if len(last) < 3 or not last.isalpha() or not last.isascii() or last.endswith("s"):
        return None
    if last.endswith(("x", "z", "ch", "sh")):
        word = last + "es"
    elif last.endswith("y") and last[-2] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}"


def _add_nested(kept: list[_DictMatch], found: list[_DictMatch]) -> list[_DictMatch]:
    """Add the condition surfaces nested in kept treatment/exam matches (see :data:`NESTED_OUTER_KINDS`)."""
    outers = [m for m in kept if m.candidates[0].entry.kind in NESTED_OUTER_KINDS]
    if not outers:
        return kept
    extra: list[_DictMatch] = []
    for outer in outers:
        inner = [
            m for m in found
            if outer.norm_start <= m.norm_start and m.norm_end <= outer.norm_end and m.length < outer.length
            and m.candidates[0].entry.kind in NESTED_INNER_KINDS
        ]
        extra.extend(_resolve_overlaps(inner))
    return sorted(kept + extra, key=lambda m: (m.norm_start, -m.length))


def _resolve_overlaps(matches: list[_DictMatch]) -> list[_DictMatch]:
    """Keep a non-overlapping subset: longer first, then higher score, then earlier."""
    order = sorted(matches, key=lambda m: (-m.length, -m.candidates[0].score, m.norm_start))
    taken = bytearray(max((m.norm_end for m in matches), default=0))
    kept: list[_DictMatch] = []
    for m in order:
        if any(taken[m.norm_start : m.norm_end]):
            continue
        taken[m.norm_start : m.norm_end] = b"\x01" * m.length
        kept.append(m)
    return sorted(kept, key=lambda m: m.norm_start)


# --------------------------------------------------------------------------------------------------------------
# Negation
# --------------------------------------------------------------------------------------------------------------

#: Negation cues (NegEx-style pre-negation triggers), English and Chinese. Matched as unit sequences after
#: normalisation, so "isn't" is ("isn", "t") and 没有 is ("没", "有").
DEFAULT_NEGATION_CUES: tuple[str, ...] = (
    "不是", "没有", "没", "无", "并非", "非", "未", "排除", "否认", "不会",
    "not", "no", "never", "isn't", "aren't", "wasn't", "don't", "doesn't", "didn't", "without",
    "free of", "rule out", "ruled out", "negative for", "denies", "absence of",
)
#: Phrases that contain a cue but do not negate what follows (无法 "unable", 无痛 "painless", 无创 "non-invasive").
# Phrases that contain a cue but do not negate: "无法" (cannot), painless/non-invasive, "没想到" (unexpectedly), the
# A-not-A question forms "是不是"/"有没有"/"要不要" ("is it …?", "does it have …?") that ask rather than deny, and
# everyday words built on a cue character: 非常 (very), 无论 (no matter), 未来 (future). They matter most inside a
# glossed Chinese span, where a cue anywhere in the span negates it ("眼睛非常疼" is not denied).
DEFAULT_PSEUDO_CUES: tuple[str, ...] = (
    "无法", "无痛", "无创", "没想到", "是不是", "有没有", "要不要", "会不会", "能不能", "非常", "无论", "未来",
    "not only", "not just", "no doubt", "no longer",
)
#: Words that end a negation's scope inside a clause ("no glaucoma but myopia": myopia is not negated).
DEFAULT_SCOPE_TERMINATORS: tuple[str, ...] = ("but", "however", "although", "though", "但", "但是", "可是", "不过", "而是")


def _unit_seq(phrase: str) -> tuple[str, ...]:
    return tuple(units(normalize_surface(phrase)))


def _occurrences(seq: list[str], pattern: tuple[str, ...]) -> Iterator[int]:
    k = len(pattern)
    for i in range(len(seq) - k + 1):
        if tuple(seq[i : i + k]) == pattern:
            yield i


class NegationDetector:
    """Is a mention negated? A cue must appear among the last ``window`` units before it, in the same clause.

    Units are Latin words and single CJK characters (:func:`~encoders.normalize.units`), so a window of 5 is five
    English words or five Chinese characters. A clause ends at punctuation (:data:`CLAUSE_BREAKS`) or at a scope
    terminator ("but", 但是); pseudo-cues (无法, "not only") are ignored.

    Args:
        cues: negation cues (default :data:`DEFAULT_NEGATION_CUES`).
        window: units looked back from the mention (default 5: covers "this is not a case of …" and "没有任何…").
        pseudo_cues: phrases that contain a cue but do not negate (default :data:`DEFAULT_PSEUDO_CUES`).
        terminators: words that close the scope (default :data:`DEFAULT_SCOPE_TERMINATORS`).
    """

    def __init__(
        self,
        cues: Sequence[str] = DEFAULT_NEGATION_CUES,
        *,
        window: int = 5,
        pseudo_cues: Sequence[str] = DEFAULT_PSEUDO_CUES,
        terminators: Sequence[str] = DEFAULT_SCOPE_TERMINATORS,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window = window
        self.cues = [c for c in (_unit_seq(x) for x in cues) if c]
        self.pseudo_cues = [c for c in (_unit_seq(x) for x in pseudo_cues) if c]
        self.terminators = [c for c in (_unit_seq(x) for x in terminators) if c]

    def is_negated(self, text: str, start: int, end: int | None = None) -> bool:
        """True when a cue precedes offset ``start`` of ``text`` within the window and the same clause.

        Args:
            text: the original text.
            start: where the mention begins.
            end: pass it for a mention that is a whole phrase (semantic matches: "never had a dark curtain …"):
                a cue inside ``text[start:end]`` then counts too.
        """
        clause_start = start
        while clause_start > 0 and unicodedata.normalize("NFKC", text[clause_start - 1]) not in CLAUSE_BREAKS:
            clause_start -= 1
        before = units(normalize(text[clause_start:start]).text)
        scope_start = max(
            (i + len(term) for term in self.terminators for i in _occurrences(before, term)), default=0
        )
        if self._has_cue(before[scope_start:][-self.window :]):
            return True
        return end is not None and self._has_cue(units(normalize(text[start:end]).text))

    def _has_cue(self, seq: list[str]) -> bool:
        pseudo_units: set[int] = set()
        for p in self.pseudo_cues:
            for i in _occurrences(seq, p):
                pseudo_units.update(range(i, i + len(p)))
        for cue in self.cues:
            for i in _occurrences(seq, cue):
                if not pseudo_units.intersection(range(i, i + len(cue))):
                    return True
        return False


# --------------------------------------------------------------------------------------------------------------
# Semantic fallback
# --------------------------------------------------------------------------------------------------------------


class SentenceEncoder(Protocol):
    def encode(self, texts: list[str], batch_size: int = 32) -> "TextFeatures": ...


class Glosser(Protocol):
    """Reads Chinese text as English words (:class:`encoders.zh_gloss.ChineseGlosser`)."""

    def segment(self, text: str) -> "Sequence[GlossedWord]": ...


@dataclass(frozen=True)
class _SemanticMatch:
    entry: KBEntry
    start: int
    end: int
    score: float
    glossed: bool = False  # embedded through its English reading (a Chinese span)


_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _reading(glosser: Glosser, text: str) -> str:
    """The English reading of ``text``: its content words' glosses, joined with spaces."""
    return " ".join(w.gloss for w in glosser.segment(text))


def _clauses(text: str) -> list[tuple[int, int]]:
    """(start, end) of the stretches between clause-breaking punctuation."""
    spans: list[tuple[int, int]] = []
    start = 0
    for i, ch in enumerate(text):
        if unicodedata.normalize("NFKC", ch) in CLAUSE_BREAKS:
            if i > start:
                spans.append((start, i))
            start = i + 1
    if start < len(text):
        spans.append((start, len(text)))
    return spans


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
    ) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        if gloss_threshold is not None and not -1.0 <= gloss_threshold <= 1.0:
            raise ValueError(f"gloss_threshold is a cosine similarity in [-1, 1], got {gloss_threshold}")
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
        self.kb: KnowledgeBase | None = None
        self._matrix: np.ndarray | None = None
        if kb is not None:
            self.set_kb(kb)

    def set_kb(self, kb: KnowledgeBase) -> None:
        """Use ``kb``; the entity matrix is (re)built on the next match."""
        if kb is not self.kb:
            self.kb = kb
            self._matrix = None
            self._sentences = None
            self._readings = None

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
                pooled = self.encoder.encode(texts, batch_size=self.batch_size).pooled if texts else np.zeros((0, 1))
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
        return np.asarray(self.encoder.encode(texts, batch_size=self.batch_size).pooled, dtype=np.float32)

    def sentence_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """``(entity index per row, R × D unit rows)`` of every definition sentence (see ``sentence_vectors``)."""
        if self.kb is None:
            raise ValueError("SemanticMatcher has no knowledge base; pass kb= or call set_kb()")
        if self._sentences is None:
            owners: list[int] = []
            texts: list[str] = []
            for k, entry in enumerate(self.kb):
                if self.defined_only and not entry.definition:
                    continue
                for sentence in self.definition_sentences(entry):
                    owners.append(k)
                    texts.append(sentence)
            rows = self._rows(texts)
            self._sentences = (np.asarray(owners, dtype=np.int64), rows)
            log.info("semantic matcher: %d definition sentences ready", len(texts))
        return self._sentences

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
        pooled = np.asarray(self.encoder.encode(list(texts), batch_size=self.batch_size).pooled, dtype=np.float32)
        sims = pooled @ matrix.T
        if self.sentence_vectors:
            owners, rows = self.sentence_matrix()
            if len(owners):
                # an entity scores its best row: "name. definition" or one of its definition's sentences
                np.maximum.at(sims.T, owners, (pooled @ rows.T).T)
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
        return sims

    def _latin_enough(self, text: str) -> bool:
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return False
        latin = sum(1 for c in letters if not is_cjk(c))
        return latin / len(letters) >= self.min_latin_ratio

    def _windows(self, n: int) -> list[tuple[int, int]]:
        """Word windows ``[a, b)`` over a piece of ``n`` words: the whole piece, or overlapping windows when long."""
        if n <= self.max_span_words:
            return [(0, n)]
        last = n - self.window_words
        starts = list(range(0, last + 1, self.stride_words))
        if starts[-1] != last:
            starts.append(last)
        return [(i, i + self.window_words) for i in starts]

    def _pieces(self, text: str, covered: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        for clause in _clauses(text):
            yield from _subtract(clause, covered)

    def _glossed(self, piece: str) -> bool:
        return self.glosser is not None and any(is_cjk(c) for c in piece)

    def candidate_spans(self, text: str, covered: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
        """Spans of ``text`` to embed as written: clause pieces not in ``covered``, windowed when long.

        Pieces holding Chinese are left to :meth:`gloss_spans` when there is a glosser."""
        spans: list[tuple[int, int]] = []
        for s, e in self._pieces(text, covered):
            if self._glossed(text[s:e]):
                continue
            words = [(s + m.start(), s + m.end()) for m in _WORD.finditer(text[s:e])]
            if len(words) < self.min_words:
                continue
            for a, b in self._windows(len(words)):
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
        for row, (ti, s, e, _, glossed) in enumerate(flat):
            score = float(sims[row, best[row]])
            if score >= (self.gloss_threshold if glossed else self.threshold):
                raw[ti].append(_SemanticMatch(entries[int(best[row])], s, e, score, glossed))
        for ti, matches in enumerate(raw):
            kept: list[_SemanticMatch] = []
            seen: set[str] = set()
            for m in sorted(matches, key=lambda m: (-m.score, m.start)):
                if m.entry.id in seen or any(m.start < k.end and k.start < m.end for k in kept):
                    continue
                seen.add(m.entry.id)
                kept.append(m)
            results[ti] = sorted(kept, key=lambda m: m.start)
        return results


# --------------------------------------------------------------------------------------------------------------
# The linker and its spaCy component
# --------------------------------------------------------------------------------------------------------------


class EntityLinker:
    """Dictionary matching, optional semantic fallback and negation over one knowledge base.

    Args:
        kb: the entities.
        semantic: the fallback for phrases the dictionary misses (None = dictionary only). Its KB is set to ``kb``.
        negation: the negation detector (default :class:`NegationDetector` with its defaults).
        max_text_chars: longer texts are cut here with a logged warning (default ``Settings.max_text_chars``,
            i.e. ``OVP_MAX_TEXT_CHARS``, 20,000 unless set: captions are short, and the limit bounds the cost of a
            pathological input).
        dictionary: a prepared :class:`DictionaryMatcher` (default: one over ``kb`` with its defaults).
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        semantic: SemanticMatcher | None = None,
        negation: NegationDetector | None = None,
        max_text_chars: int | None = None,
        dictionary: DictionaryMatcher | None = None,
    ) -> None:
        if max_text_chars is None:
            from ovp.settings import Settings

            max_text_chars = Settings.from_env().max_text_chars
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
        dict_matches = [self.dictionary.match(normalize(t)) for t in prepared]
        out: list[list[Mention]] = []
        for text, matches in zip(prepared, dict_matches):
            mentions = []
            for m in matches:
                top = m.candidates[0]
                mentions.append(self._mention(text, top.entry, m.start, m.end, top.score, "dictionary",
                                              tuple(c.entry.id for c in m.candidates[1:])))
            out.append(mentions)
        if self.semantic is not None:
            covered = [[(m.start, m.end) for m in ms] for ms in out]
            for mentions, text, sem in zip(out, prepared, self.semantic.match_batch(prepared, covered)):
                for s in sem:
                    method = "gloss" if s.glossed else "semantic"
                    mentions.append(self._mention(text, s.entry, s.start, s.end, s.score, method, ()))
                mentions.sort(key=lambda m: (m.start, m.end))
        return out

    def _mention(
        self, text: str, entry: KBEntry, start: int, end: int, score: float, method: str, alternatives: tuple[str, ...]
    ) -> Mention:
        return Mention(
            id=entry.id, name=entry.name or entry.name_zh, kind=entry.kind, surface=text[start:end], start=start,
            end=end, score=float(score), negated=self.negation.is_negated(text, start, None if method == "dictionary" else end), xrefs=tuple(entry.xrefs),
            method=method, alternatives=alternatives,
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
    """Link every text (batched through ``nlp.pipe``): the call the rest of OVP makes.

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
    prepared = [linker.prepare(t) for t in texts]  # validate and cut before spaCy tokenises anything
    return [doc._.ovp_mentions for doc in linker.nlp.pipe(prepared, batch_size=batch_size)]


def load_linker(
    settings: "Settings",
    graph: GraphReader,
    semantic: bool = True,
    *,
    encoder: "TextEncoder | None" = None,
    threshold: float | None = None,
    gloss_threshold: float | None = None,
) -> EntityLinker:
    """The one place that builds the linker over the real graph (API, worker, features and CLI call this).

    Reads the knowledge base from the graph (one query), builds the dictionary and, with ``semantic``, a
    :class:`SemanticMatcher` whose entity vectors come from the persisted cache in ``settings.cache_dir``
    (:mod:`encoders.entity_vectors`; computed once, minutes on CPU, then read in well under a second) and which
    reads Chinese pieces through a :class:`~encoders.zh_gloss.ChineseGlosser`. Build it once per process and reuse
    it: construction costs a few seconds (the glosser's dictionaries alone about 3 s).

    Args:
        settings: device, cache directory and ``max_text_chars``.
        graph: anything with ``read(query, params)`` (``kg_builder.graph.Graph``).
        semantic: add the semantic fallback (loads the text encoder; False = dictionary only).
        encoder: a loaded text encoder to share (default: :data:`encoders.text.LINKING_TEXT_MODEL`, loaded on first use).
        threshold: semantic threshold (default :data:`REAL_KB_SEMANTIC_THRESHOLD`).
        gloss_threshold: threshold for Chinese spans read through their English gloss (default
            :data:`REAL_KB_GLOSS_THRESHOLD`).

    Raises:
        GraphUnavailable: Neo4j cannot be reached.
        ModelNotFound: ``semantic`` and the text model cannot be loaded.
    """
    kb = KnowledgeBase.from_graph(graph)
    matcher: SemanticMatcher | None = None
    if semantic:
        from encoders.entity_vectors import entity_text_vectors
        from encoders.text import TextEncoder, TextEncoderConfig
        from encoders.zh_gloss import ChineseGlosser

        encoder = encoder or TextEncoder(TextEncoderConfig.for_linking(settings))
        shared = encoder

        def vectors(texts: list[str]) -> np.ndarray:
            return entity_text_vectors(texts, settings, encoder=shared)

        matcher = SemanticMatcher(
            encoder, kb, entity_vectors=vectors, defined_only=True, sentence_vectors=True,
            threshold=REAL_KB_SEMANTIC_THRESHOLD if threshold is None else threshold,
            glosser=ChineseGlosser().load(),
            gloss_threshold=REAL_KB_GLOSS_THRESHOLD if gloss_threshold is None else gloss_threshold,
        )
        # Read (or, the first time on a machine, compute) the entity vectors now, while loading, so that the first
        # caption of a worker or request does not pay for them; and the readings of the Chinese surfaces.
        matcher.entity_matrix()
        matcher.reading_matrix()
    return EntityLinker(kb, semantic=matcher, max_text_chars=settings.max_text_chars)
