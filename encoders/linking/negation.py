"""Negation: is a linked mention denied in its clause ("不是青光眼", "not pink eye", "rule out glaucoma")?

A NegEx-style look-back (Chapman et al. 2001, "A simple algorithm for identifying negated findings and diseases in
discharge summaries") over normalised units, with English and Chinese cues, pseudo-cues and scope terminators.
"""
from __future__ import annotations

from typing import Iterator, Sequence

from encoders.linking.clauses import is_clause_break
from encoders.normalize import normalize, normalize_surface, units

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


def _occurrences(seq: list[str], pattern: tuple[str, ...]) -> Iterator[int]:
    k = len(pattern)
    for i in range(len(seq) - k + 1):
        if tuple(seq[i : i + k]) == pattern:
            yield i


class NegationDetector:
    """Is a mention negated? A cue must appear among the last ``window`` units before it, in the same clause.

    Units are Latin words and single CJK characters (:func:`~encoders.normalize.units`), so a window of 5 is five
    English words or five Chinese characters. A clause ends at punctuation (:data:`~encoders.linking.clauses.CLAUSE_BREAKS`) or at a scope
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
        while clause_start > 0 and not is_clause_break(text[clause_start - 1]):
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

