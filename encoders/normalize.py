"""Caption normalisation that remembers where every character came from.

Captions are colloquial and mixed: full-width Latin (``ＯＣＴ``), hashtags (``#青光眼``), emoji, shouting
(``PINK EYE!!``). Matching runs over a normalised copy of the text; mentions must still point into the original,
so :func:`normalize` returns the normalised string together with, for each of its characters, the span of original
characters it came from.

What normalisation does, in order, per cluster (a base character with the combining marks that follow it):

1. Unicode NFKC: full-width → half-width (``ＯＣＴ`` → ``OCT``, ``！`` → ``!``), compatibility forms unfolded.
2. Case-folding (``str.casefold``: ``PINK`` → ``pink``, ``ß`` → ``ss``).
3. A cluster whose base is not a letter, digit or mark (punctuation, symbols, emoji, ``#``, whitespace, controls)
   becomes a separator; runs of separators collapse to one space, and leading/trailing separators are dropped.
4. Chinese (and other CJK) characters are kept as they are, one character each: no segmentation happens here.

The function is pure and cheap; the dictionary matcher normalises both the KB surfaces and the captions with it, so
they always agree.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["NormalizedText", "normalize", "normalize_surface", "is_cjk", "is_latin_word_char", "units"]


@dataclass(frozen=True)
class NormalizedText:
    """A normalised string and, for each of its characters, the original characters it came from.

    Attributes:
        original: the text as given.
        text: the normalised text.
        starts: ``starts[i]`` is the offset in ``original`` of the cluster that produced ``text[i]``.
        ends: ``ends[i]`` is the offset just after that cluster.
    """

    original: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span ``[start, end)`` of :attr:`text` to the original text.

        Returns:
            ``(orig_start, orig_end)`` such that ``original[orig_start:orig_end]`` is what the span was made from.

        Raises:
            ValueError: the span is empty or outside the normalised text.
        """
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) is not a non-empty span of a {len(self.text)}-char text")
        return self.starts[start], self.ends[end - 1]


def is_cjk(ch: str) -> bool:
    """True for CJK ideographs, kana and hangul: scripts written without spaces, matched character by character."""
    cp = ord(ch)
    return (
        0x3400 <= cp <= 0x4DBF  # CJK extension A
        or 0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= cp <= 0x3134F  # extensions B–G
        or 0x3040 <= cp <= 0x30FF  # hiragana, katakana
        or 0xAC00 <= cp <= 0xD7AF  # hangul syllables
    )


def is_latin_word_char(ch: str) -> bool:
    """True for a letter, digit or mark of a space-delimited script (so not CJK): the chars English words are made of."""
    if not ch or is_cjk(ch):
        return False
    return unicodedata.category(ch)[0] in "LNM"


def _is_word_base(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM"


def _clusters(text: str) -> list[tuple[int, int]]:
    """Split into (start, end) clusters: a base character plus the combining marks and joiners that follow it.

    Keeping a base and its marks together lets NFKC compose ``e`` + U+0301 into ``é`` and keeps an emoji's variation
    selector (U+FE0F, a mark) with the emoji, so both become one separator.
    """
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and (unicodedata.category(text[j]) in ("Mn", "Me", "Mc") or text[j] in "\u200d\ufe0f"):
            j += 1
        spans.append((i, j))
        i = j
    return spans


def normalize(text: str) -> NormalizedText:
    """Normalise ``text`` for matching and keep the offset map back to it.

    Args:
        text: any string (may be empty).

    Returns:
        A :class:`NormalizedText`; ``normalize("#青光眼 ＯＣＴ！").text == "青光眼 oct"``.

    Raises:
        TypeError: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() needs a str, got {type(text).__name__}")
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pending_space: tuple[int, int] | None = None  # a separator seen since the last word char, not yet written
    for start, end in _clusters(text):
        base = text[start]
        folded = unicodedata.normalize("NFKC", text[start:end]).casefold()
        # NFKC can turn a symbol into letters (㎝ → cm, ① → 1): judge by what comes out, not by the input.
        word_chars = [c for c in folded if _is_word_base(c)] if _is_word_base(folded[:1] or base) else []
        if not word_chars:
            if out and pending_space is None:
                pending_space = (start, end)
            continue
        if pending_space is not None:
            out.append(" ")
            starts.append(pending_space[0])
            ends.append(pending_space[1])
            pending_space = None
        for c in word_chars:
            out.append(c)
            starts.append(start)
            ends.append(end)
    return NormalizedText(original=text, text="".join(out), starts=tuple(starts), ends=tuple(ends))


def normalize_surface(surface: str) -> str:
    """The normalised form of a dictionary surface (a name, synonym or cue): what :func:`normalize` makes of it."""
    return normalize(surface).text


def units(normalized: str) -> list[str]:
    """Split normalised text into matching units: each space-delimited word, and each CJK character on its own.

    ``units("没有 pink eye青光眼") == ["没", "有", "pink", "eye", "青", "光", "眼"]``.
    """
    out: list[str] = []
    word: list[str] = []
    for ch in normalized:
        if ch == " " or is_cjk(ch):
            if word:
                out.append("".join(word))
                word = []
            if ch != " ":
                out.append(ch)
        else:
            word.append(ch)
    if word:
        out.append("".join(word))
    return out
