"""Where a clause ends: the scope of a negation cue and the pieces the semantic matcher embeds."""
from __future__ import annotations

import unicodedata

__all__ = ["CLAUSE_BREAKS", "is_clause_break", "clauses"]

#: Characters that end a clause (negation scope, semantic spans). Checked after NFKC, so full-width forms count too.
CLAUSE_BREAKS = frozenset(",.;:!?\n\r。，；：！？、…")


def is_clause_break(ch: str) -> bool:
    """True when ``ch`` (one character of the original text) ends a clause."""
    if ch.isascii():  # NFKC leaves ASCII as it is
        return ch in CLAUSE_BREAKS
    return unicodedata.normalize("NFKC", ch) in CLAUSE_BREAKS


def clauses(text: str) -> list[tuple[int, int]]:
    """(start, end) of the stretches between clause-breaking punctuation."""
    spans: list[tuple[int, int]] = []
    start = 0
    for i, ch in enumerate(text):
        if is_clause_break(ch):
            if i > start:
                spans.append((start, i))
            start = i + 1
    if start < len(text):
        spans.append((start, len(text)))
    return spans
