"""Dictionary matching: every name and synonym of the knowledge base found in a caption by a character-trie walk.

The candidate generator of the linker (:class:`DictionaryMatcher`); the policy that decides which matches count
(ambiguous surfaces, nested conditions, overlap resolution) lives here too, with the lists it reads.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

from encoders.linking.knowledge_base import KBEntry, KnowledgeBase
from encoders.normalize import CJK_CLASS, NormalizedText, is_cjk, normalize_surface, units

log = logging.getLogger(__name__)

__all__ = [
    "DictionaryMatcher",
    "DEFAULT_SOURCE_PRIORITY",
    "DICTIONARY_SYNONYM_SCOPES",
    "AMBIGUOUS_SURFACES",
    "OCULAR_CONTEXT_WORDS",
    "NON_MEDICAL_PHRASES",
    "NESTED_OUTER_KINDS",
    "NESTED_INNER_KINDS",
]

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
    "amd", "pvd", "flashes", "floater", "cat eye",
    "流泪", "光晕", "重影", "热敷",
    # official Chinese HPO names that are everyday words: 凝视 (to gaze at the sea), 红眼 (envy; eyes red from
    # drinking or staying up), 盲点 (a blind spot in an argument), 横眉/细眉/长眉 (make-up: eyebrow shapes), 独眼 (a
    # one-eyed pirate). Not 失明: in an eye-health caption it means blindness ("突然失明怎么办") far more often than a
    # film's blind hero, and missing a sudden loss of vision costs more than tagging a film.
    "凝视", "红眼", "盲点", "横眉", "细眉", "长眉", "独眼",
})

#: Everyday phrases (normalised) that hold an eye surface without meaning it: drinks ("glasses of wine"), travel
#: ("red-eye flight"), make-up ("cat eye eyeliner"), idioms (横眉竖眼 "to glare", 独眼龙 "one-eyed dragon", 红眼航班).
#: The dictionary matches them like surfaces, so that, being longer, they win over the eye surface inside them, and
#: then drops them: the words are no mention at all. Phrases, never whole captions; add to this list rather than
#: special-casing a caption.
NON_MEDICAL_PHRASES: frozenset[str] = frozenset({
    "glasses of", "wine glasses", "beer glasses", "champagne glasses", "shot glasses", "cocktail glasses",
    "red eye flight", "red eye flights", "red eye removal", "red eye reduction",
    "cat eye makeup", "cat eye eyeliner", "cat eye liner", "cat eye sunglasses", "cat eye glasses", "cat eye frames",
    "横眉竖眼", "横眉冷对", "横眉怒目", "独眼龙", "红眼航班", "熬夜熬到红眼", "盲点区域", "思维盲点", "知识盲点",
    "认知盲点", "监管盲点", "管理盲点",
})

#: Words whose presence outside an ambiguous match shows the caption is about eyes (matched as normalised units:
#: Latin words, or single CJK characters).
OCULAR_CONTEXT_WORDS: frozenset[str] = frozenset({
    "eye", "eyes", "eyesight", "vision", "sight", "optometrist", "ophthalmologist", "oculist", "optician",
    "眼", "睛", "视", "視", "瞳",
})

#: A treatment or exam named after a condition ("cataract surgery", "IPL for dry eye", "color blind test", 白内障手术)
#: is about that condition too: a dictionary match of one of these kinds also yields the condition surfaces nested
#: inside it. A disease nested in a disease ("high myopia" ⊃ "myopia") is a subtype, not a second topic, so only
#: these outer → inner kinds count.
NESTED_OUTER_KINDS: frozenset[str] = frozenset({"treatment", "exam"})
NESTED_INNER_KINDS: frozenset[str] = frozenset({"disease", "phenotype"})


_END = ""  # trie key for "a surface ends here"; no character is the empty string


@dataclass(frozen=True)
class _Candidate:
    entry: KBEntry
    score: float
    exact_form: str | None  # acronyms: the case-sensitive form the original text must show (after NFKC)


class _DictMatch(NamedTuple):
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
        non_medical_phrases: phrases that block the surfaces inside them (default :data:`NON_MEDICAL_PHRASES`; pass
            ``()`` to block nothing).
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
        non_medical_phrases: Iterable[str] = NON_MEDICAL_PHRASES,
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
        self.non_medical_phrases = frozenset(normalize_surface(x) for x in non_medical_phrases)
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
        for phrase in self.non_medical_phrases:
            # a phrase with no candidate: it wins overlaps as any longer match does, then is dropped (see match)
            if phrase and phrase not in best:
                best[phrase] = {}
                self._variant_count += 1
        for key, per_entity in best.items():
            self._surfaces[key] = tuple(sorted(per_entity.values(), key=self._rank_key))
            if " " in key and not any(is_cjk(c) for c in key):
                # hashtags glue words together (#digitaleyestrain, #wetAMD): index the form without spaces
                self._compact.setdefault(key.replace(" ", ""), key)
            node = self._trie
            for ch in key:
                node = node.setdefault(ch, {})
            node[_END] = key
        self._longest = max(map(len, self._surfaces), default=0)
        self._case_sensitive = frozenset(
            key for key, cands in self._surfaces.items() if any(c.exact_form for c in cands)
        )
        # Where a walk can begin: a character some surface begins with, at the start of a Latin word (not preceded by
        # a Latin word character) or anywhere if it is CJK.
        latin = "".join(re.escape(ch) for ch in self._trie if ch != _END and not is_cjk(ch))
        cjk = "".join(re.escape(ch) for ch in self._trie if ch != _END and is_cjk(ch))
        alternatives = ([f"(?<![^ {CJK_CLASS}])[{latin}]"] if latin else []) + ([f"[{cjk}]"] if cjk else [])
        self._starts = re.compile("|".join(alternatives) or "(?!)")
        log.debug("dictionary matcher: %d surfaces for %d entities", len(self._surfaces), len(self.kb))

    @property
    def surface_count(self) -> int:
        """Distinct normalised surfaces from the KB (generated plural variants and non-medical phrases not counted)."""
        return len(self._surfaces) - self._variant_count

    # -- matching ----------------------------------------------------------------------------------------------

    def match(self, nt: NormalizedText) -> list[_DictMatch]:
        """All non-overlapping dictionary matches in a normalised text, in text order."""
        text = nt.text
        inner = _inside_latin_words(text)
        trie, surfaces, case_sensitive = self._trie, self._surfaces, self._case_sensitive
        original, starts, ends = nt.original, nt.starts, nt.ends
        found: list[_DictMatch] = []
        longest = self._longest
        for first in self._starts.finditer(text):
            i = first.start()
            node = trie
            for j, ch in enumerate(text[i : i + longest], start=i + 1):  # j: where a surface ending at ch ends
                node = node.get(ch)
                if node is None:
                    break
                key = node.get(_END)
                # a Latin surface cannot end inside a Latin word (inner[n] is 0: the text's end is a boundary)
                if key is None or inner[j]:
                    continue
                start, end = starts[i], ends[j - 1]
                cands = surfaces[key]
                if key in case_sensitive:
                    shown = unicodedata.normalize("NFKC", original[start:end])
                    cands = tuple(c for c in cands if c.exact_form is None or c.exact_form == shown)
                    if not cands:
                        continue
                found.append(_DictMatch(i, j, start, end, cands, key))
        if self._compact and ("#" in nt.original or "＃" in nt.original):
            found.extend(self._hashtag_matches(nt))
        kept = _resolve_overlaps(found)
        if self.non_medical_phrases:
            kept = [m for m in kept if m.candidates]
            found = [m for m in found if m.candidates]
        if self.ambiguous_surfaces and any(m.key in self.ambiguous_surfaces for m in kept):
            kept = self._confirm_ambiguous(text, kept)
        return _add_nested(kept, found)

    def _hashtag_matches(self, nt: NormalizedText) -> list[_DictMatch]:
        """Whole hashtag words that are a multi-word surface written without spaces (``#eyetwitch``)."""
        out = []
        for word in _LATIN_WORD.finditer(nt.text):
            start, end = nt.to_original(*word.span())
            key = self._compact.get(word.group())
            if key is not None and start > 0 and nt.original[start - 1] in "#＃":
                out.append(_DictMatch(word.start(), word.end(), start, end, self._surfaces[key], key))
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


#: A run of Latin word characters in normalised text, where every character is a letter, digit or mark: anything but
#: a space or a CJK character.
_LATIN_WORD = re.compile(f"[^ {CJK_CLASS}]+")


def _inside_latin_words(text: str) -> bytearray:
    """Per offset of normalised ``text`` (and one past its end), 1 where the characters on both sides belong to the
    same Latin word: no Latin surface may start or end there."""
    inner = bytearray(len(text) + 1)
    for word in _LATIN_WORD.finditer(text):
        s, e = word.span()
        inner[s + 1 : e] = b"\x01" * (e - s - 1)
    return inner


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
    # found, by start: each outer looks only at the matches that start inside it (kept matches do not overlap, so
    # every match is looked at once at most), taken back in found's order
    by_start = sorted(range(len(found)), key=lambda k: found[k].norm_start)
    starts = [found[k].norm_start for k in by_start]
    extra: list[_DictMatch] = []
    for outer in outers:
        inside = sorted(by_start[bisect_left(starts, outer.norm_start) : bisect_left(starts, outer.norm_end)])
        inner = [
            m for m in (found[k] for k in inside)
            if m.norm_end <= outer.norm_end and m.length < outer.length
            and m.candidates[0].entry.kind in NESTED_INNER_KINDS
        ]
        extra.extend(_resolve_overlaps(inner))
    return sorted(kept + extra, key=lambda m: (m.norm_start, -m.length))


def _resolve_overlaps(matches: list[_DictMatch]) -> list[_DictMatch]:
    """Keep a non-overlapping subset: longer first, then higher score, then earlier."""
    if len(matches) < 2:
        return list(matches)
    by_start = sorted(matches, key=lambda m: m.norm_start)
    if all(a.norm_end <= b.norm_start for a, b in zip(by_start, by_start[1:])):
        return by_start  # nothing overlaps: everything is kept
    order = sorted(matches, key=lambda m: (-m.length, -(m.candidates[0].score if m.candidates else 2.0), m.norm_start))
    first = min(m.norm_start for m in matches)  # the flags cover the matches' stretch only, not the text before it
    taken = bytearray(max(m.norm_end for m in matches) - first)
    kept: list[_DictMatch] = []
    for m in order:
        if any(taken[m.norm_start - first : m.norm_end - first]):
            continue
        taken[m.norm_start - first : m.norm_end - first] = b"\x01" * m.length
        kept.append(m)
    return sorted(kept, key=lambda m: m.norm_start)

