"""Negation: is a linked mention denied in its clause ("不是青光眼", "not pink eye", "rule out glaucoma")?

A NegEx-style look-back (Chapman et al. 2001, "A simple algorithm for identifying negated findings and diseases in
discharge summaries") over normalised units, with English and Chinese cues, pseudo-cues and scope terminators.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Iterable, Iterator, Sequence

from encoders.linking.clauses import is_clause_break
from encoders.normalize import (
    UNIT,
    NormalizedText,
    clusters_are_characters,
    is_cjk,
    normalize,
    normalize_surface,
    splits_units_at,
    starts_cluster,
    units,
)

__all__ = ["NegationDetector", "DEFAULT_NEGATION_CUES", "DEFAULT_PSEUDO_CUES", "DEFAULT_SCOPE_TERMINATORS"]

#: Negation cues (NegEx-style pre-negation triggers), English and Chinese. Matched as unit sequences after
#: normalisation, so "isn't" is ("isn", "t") and 没有 is ("没", "有").
DEFAULT_NEGATION_CUES: tuple[str, ...] = (
    "不是", "没有", "没", "无", "并非", "非", "未", "排除", "否认", "不会",
    "not", "no", "never", "isn't", "aren't", "wasn't", "don't", "doesn't", "didn't", "without",
    "free of", "rule out", "ruled out", "negative for", "denies", "absence of",
)
#: Phrases that contain a cue but do not negate: "无法" (cannot), 无痛/无创 (painless/non-invasive), "没想到"
#: (unexpectedly), the A-not-A question forms "是不是"/"有没有"/"要不要" ("is it …?", "does it have …?") that ask rather
#: than deny, and everyday words built on a cue character: 非常 (very), 无论 (no matter), 未来 (future). They matter
#: most inside a glossed Chinese span, where a cue anywhere in the span negates it ("眼睛非常疼" is not denied).
DEFAULT_PSEUDO_CUES: tuple[str, ...] = (
    "无法", "无痛", "无创", "没想到", "是不是", "有没有", "要不要", "会不会", "能不能", "非常", "无论", "未来",
    "not only", "not just", "no doubt", "no longer",
)
#: Words that end a negation's scope inside a clause ("no glaucoma but myopia": myopia is not negated).
DEFAULT_SCOPE_TERMINATORS: tuple[str, ...] = ("but", "however", "although", "though", "但", "但是", "可是", "不过", "而是")


def _unit_seq(phrase: str) -> tuple[str, ...]:
    return tuple(units(normalize_surface(phrase)))


def _index(patterns: Iterable[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    """Patterns by their first unit, so a scan looks only at those that can start at a position."""
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for pattern in patterns:
        by_first.setdefault(pattern[0], []).append(pattern)
    return by_first


def _occurrences(seq: Sequence[str], by_first: dict[str, list[tuple[str, ...]]]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every occurrence in ``seq`` of every indexed pattern."""
    for i, unit in enumerate(seq):
        for pattern in by_first.get(unit, ()):
            end = i + len(pattern)
            if tuple(seq[i:end]) == pattern:
                yield i, end


class NegationDetector:
    """Is a mention negated? A cue must appear among the last ``window`` units before it, in the same clause.

    Units are Latin words and single CJK characters (:func:`~encoders.normalize.units`), so a window of 5 is five
    English words or five Chinese characters. A clause ends at punctuation
    (:data:`~encoders.linking.clauses.CLAUSE_BREAKS`) or at a scope terminator ("but", 但是); pseudo-cues (无法,
    "not only") are ignored.

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
        self._cues, self._pseudo = _index(self.cues), _index(self.pseudo_cues)
        self._terminators = _index(self.terminators)
        self._cue_heads = frozenset(self._cues)
        # The units before a mention that can matter: the window, and a terminator ending inside it (which may begin
        # up to its length minus one units earlier).
        self.lookback = window + max((len(t) for t in self.terminators), default=1) - 1

    def is_negated(self, text: str, start: int, end: int | None = None) -> bool:
        """True when a cue precedes offset ``start`` of ``text`` within the window and the same clause.

        Args:
            text: the original text.
            start: where the mention begins.
            end: pass it for a mention that is a whole phrase (semantic matches: "never had a dark curtain …"):
                a cue inside ``text[start:end]`` then counts too.
        """
        return self._decide(self.units_before(text, start), text, start, end)

    def negations(self, normalized: NormalizedText, spans: Iterable[tuple[int, int | None]]) -> list[bool]:
        """:meth:`is_negated` for several mentions of one text, given the text's normalisation (the one the
        dictionary matched): the units before each mention are read from it instead of normalising again.

        Args:
            normalized: ``normalize(text)``.
            spans: per mention, ``(start, end)`` as :meth:`is_negated` takes them (``end`` None for a name).
        """
        spans = list(spans)
        if not spans:
            return []
        text, norm = normalized.original, normalized.text
        # Most captions hold no cue at all. Then a name that begins on a unit boundary of a text without marks (so
        # that the units before it are the text's own) is not denied, and nothing needs reading.
        no_cue = self._cue_heads.isdisjoint(UNIT.findall(norm)) and clusters_are_characters(text)
        word_spans: list[tuple[int, int]] = []
        word_starts: list[int] = []
        out = []
        for start, end in spans:
            if no_cue and end is None and self._on_unit_boundary(normalized, start):
                out.append(False)
                continue
            if not word_starts and norm:
                word_spans = [m.span() for m in UNIT.finditer(norm)]
                word_starts = [a for a, _ in word_spans]
            before = self._units_before_in(normalized, word_spans, word_starts, start)
            out.append(self._decide(self.units_before(text, start) if before is None else before, text, start, end))
        return out

    @staticmethod
    def _on_unit_boundary(normalized: NormalizedText, start: int) -> bool:
        """Whether the normalised characters made from text before ``start`` end on a unit boundary."""
        norm = normalized.text
        stop = bisect_left(normalized.starts, start)
        if stop == 0 or stop == len(norm):
            return True
        before, after = norm[stop - 1], norm[stop]
        return before == " " or after == " " or is_cjk(before) or is_cjk(after)

    def _decide(self, before: list[str], text: str, start: int, end: int | None) -> bool:
        scope_start = max((stop for _, stop in _occurrences(before, self._terminators)), default=0)
        if self._has_cue(before[scope_start:][-self.window :]):
            return True
        return end is not None and self._has_cue(units(normalize(text[start:end]).text))

    def _units_before_in(
        self, normalized: NormalizedText, word_spans: list[tuple[int, int]], word_starts: list[int], start: int
    ) -> list[str] | None:
        """What :meth:`units_before` gives, read from the whole text's normalisation and its units (``word_spans``,
        their starts ``word_starts``); None where that could differ from normalising the clause alone (``start``
        or the clause's start inside a cluster of marks).

        The units of the clause before ``start`` are those of the normalised characters whose clusters lie between
        the clause's start and ``start``: both begin clusters, and a clause break is a separator, so the text's own
        normalisation has a unit boundary there too.
        """
        text, norm, starts = normalized.original, normalized.text, normalized.starts
        if not starts_cluster(text, start):
            return None
        stop = bisect_left(starts, start)  # normalised characters made from text before ``start``
        last = bisect_left(word_starts, stop)  # units that begin before ``stop``
        first = max(last - self.lookback, 0)
        before = [norm[a:b] for a, b in word_spans[first:last]]
        if before and word_spans[last - 1][1] > stop:  # a word running on past ``start`` counts up to it only
            before[-1] = norm[word_spans[last - 1][0] : stop]
        # a clause break among them, or in the gap before them, cuts the clause there
        gap = word_spans[first][0] - 1 if first < last else stop - 1
        lo = starts[gap] if first > 0 and gap >= 0 else 0
        brk = next((b for b in range(start - 1, lo - 1, -1) if is_clause_break(text[b])), None)
        if brk is None:
            return before
        if not starts_cluster(text, brk + 1):
            return None
        return units(norm[bisect_left(starts, brk + 1) : stop])

    def units_before(self, text: str, start: int) -> list[str]:
        """The last :attr:`lookback` units of the clause that ``start`` is in, before ``start``.

        They are the tail of ``units(normalize(text[clause_start:start]).text)``, found by normalising only a
        stretch before ``start`` that begins on a unit boundary (:func:`~encoders.normalize.splits_units_at`) and
        holds enough units, its reach doubled until it does. A text without punctuation is one clause; reading all
        of it before every mention made linking such a text quadratic in its length.
        """
        need = self.lookback
        lo = start  # text[lo:start] holds no clause break
        reach = 4 * need
        while True:
            target = max(start - reach, 0)
            while lo > target and not is_clause_break(text[lo - 1]):
                lo -= 1
            if lo == 0 or is_clause_break(text[lo - 1]):  # the whole clause is in reach
                return units(normalize(text[lo:start]).text)[-need:]
            cut = next((a for a in range(lo + 1, start) if splits_units_at(text, a)), None)
            if cut is not None:
                tail = units(normalize(text[cut:start]).text)
                if len(tail) >= need:
                    return tail[-need:]
            reach *= 2

    def _has_cue(self, seq: list[str]) -> bool:
        pseudo_units: set[int] = set()
        for i, end in _occurrences(seq, self._pseudo):
            pseudo_units.update(range(i, end))
        return any(pseudo_units.isdisjoint(range(i, end)) for i, end in _occurrences(seq, self._cues))

