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

import re
import unicodedata
from dataclasses import dataclass
from itertools import chain
from typing import Iterable

__all__ = [
    "NormalizedText", "normalize", "normalize_surface", "is_cjk", "is_latin_word_char", "units", "splits_units_at",
    "starts_cluster", "clusters_are_characters", "CJK_CLASS", "UNIT",
]


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


#: The characters :func:`is_cjk` accepts, as the body of a regular-expression character class.
CJK_CLASS = "\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003134F\u3040-\u30FF\uAC00-\uD7AF"
#: One unit of normalised text (see :func:`units`): a run of characters that are neither spaces nor CJK, or one CJK
#: character.
UNIT = re.compile(f"[^ {CJK_CLASS}]+|[{CJK_CLASS}]")


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


def _continues_cluster(ch: str) -> bool:
    """A combining mark or joiner: it belongs to the cluster of the character before it."""
    return unicodedata.category(ch) in ("Mn", "Me", "Mc") or ch in "\u200d\ufe0f"


def _cluster_output(cluster: str) -> str:
    """What one cluster becomes: its word characters after NFKC and case-folding, or "" for a separator.

    NFKC can turn a symbol into letters (㎝ → cm, ① → 1): judge by what comes out, not by the input.
    """
    folded = unicodedata.normalize("NFKC", cluster).casefold()
    if not _is_word_base(folded[:1] or cluster[0]):
        return ""
    return "".join(c for c in folded if _is_word_base(c))


#: Per character seen: (it continues the cluster before it, what it becomes as a cluster of its own). Captions reuse
#: a few thousand characters, and a lookup costs a fraction of the Unicode calls it replaces. Bounded, so hostile
#: input with every code point cannot grow it without limit.
_CHAR_INFO: dict[str, tuple[bool, str]] = {}
_CHAR_INFO_LIMIT = 1 << 16
#: The same, for :meth:`str.translate` of texts without marks: code point → what the character becomes on its own
#: (a space for a separator); and the characters that continue a cluster.
_SINGLE: dict[int, str] = {}
_CONTINUING: set[str] = set()


def _char_info(ch: str) -> tuple[bool, str]:
    info = _CHAR_INFO.get(ch)
    if info is None:
        info = (_continues_cluster(ch), _cluster_output(ch))
        if len(_CHAR_INFO) < _CHAR_INFO_LIMIT:
            # _CHAR_INFO last: another thread that finds a character there may rely on the other two (API threads)
            _SINGLE[ord(ch)] = info[1] or " "
            if info[0]:
                _CONTINUING.add(ch)
            _CHAR_INFO[ch] = info
    return info


_WORD_RUN = re.compile("[^ ]+")


def _from_runs(text: str, mapped: str) -> NormalizedText:
    """:func:`normalize` of ``text`` when ``mapped[i]`` is what ``text[i]`` becomes, a space for a separator, and
    every character is a cluster of its own."""
    parts: list[Iterable[int]] = []
    for run in _WORD_RUN.finditer(mapped):
        i, j = run.span()
        parts.append(range(i, j))
        parts.append((j,))  # the first separator after a run stands for all of them
    if parts:
        parts.pop()  # separators after the last run are dropped
    starts = tuple(chain.from_iterable(parts))
    normalized = " ".join(filter(None, mapped.split(" ")))
    return NormalizedText(original=text, text=normalized, starts=starts, ends=tuple(map((1).__add__, starts)))


def normalize(text: str) -> NormalizedText:
    """Normalise ``text`` for matching and keep the offset map back to it.

    Clusters are a base character plus the combining marks and joiners that follow it: keeping them together lets
    NFKC compose ``e`` + U+0301 into ``é`` and keeps an emoji's variation selector (U+FE0F, a mark) with the emoji,
    so both become one separator.

    Args:
        text: any string (may be empty).

    Returns:
        A :class:`NormalizedText`; ``normalize("#青光眼 ＯＣＴ！").text == "青光眼 oct"``.

    Raises:
        TypeError: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() needs a str, got {type(text).__name__}")
    chars = set(text)
    for ch in chars.difference(_CHAR_INFO):
        _char_info(ch)
    if _CHAR_INFO.keys() >= chars and _CONTINUING.isdisjoint(chars):
        # Every character is a cluster of its own (no marks or joiners: most captions). When each also becomes at
        # most one character, the normalised text is the runs of word characters, one space between runs.
        mapped = text.translate(_SINGLE)
        if len(mapped) == len(text):
            return _from_runs(text, mapped)
    infos = [_char_info(ch) for ch in text]
    continues = [info[0] for info in infos]
    bounds = [i for i in range(len(text) + 1) if i == 0 or i == len(text) or not continues[i]]
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pending_space = -1  # the separator cluster seen since the last word char, not yet written
    pending_end = -1
    for k in range(len(bounds) - 1):
        i, j = bounds[k], bounds[k + 1]
        word = infos[i][1] if j == i + 1 else _cluster_output(text[i:j])
        if not word:
            if pending_space < 0 and out:
                pending_space, pending_end = i, j
            continue
        if pending_space >= 0:
            out.append(" ")
            starts.append(pending_space)
            ends.append(pending_end)
            pending_space = -1
        if len(word) == 1:
            out.append(word)
            starts.append(i)
            ends.append(j)
        else:
            out.extend(word)
            starts.extend([i] * len(word))
            ends.extend([j] * len(word))
    return NormalizedText(original=text, text="".join(out), starts=tuple(starts), ends=tuple(ends))


def clusters_are_characters(text: str) -> bool:
    """True when no character of ``text`` continues a cluster (no combining marks or joiners): every offset then
    begins a cluster."""
    chars = set(text)
    if _CHAR_INFO.keys() >= chars:  # (set.issubset would copy the whole dict into a set first)
        return _CONTINUING.isdisjoint(chars)
    return not any(_char_info(ch)[0] for ch in chars)


def starts_cluster(text: str, i: int) -> bool:
    """True when offset ``i`` of ``text`` is where a cluster begins (or the text's end): ``text[i]`` is not a
    combining mark or joiner that belongs to the character before it."""
    return i <= 0 or i >= len(text) or not _char_info(text[i])[0]


def splits_units_at(text: str, i: int) -> bool:
    """True when normalisation and :func:`units` may be cut at offset ``i`` of ``text``: for any ``a < i < b``,
    ``units(normalize(text[a:b]).text)`` is ``units(normalize(text[a:i]).text) + units(normalize(text[i:b]).text)``.

    That holds when ``text[i - 1]`` and ``text[i]`` each start a cluster (neither is a combining mark or joiner) and
    ``text[i - 1]`` ends a unit by itself: it is a separator (space, punctuation, emoji) or becomes a CJK character.
    It lets a caller read the last few units before an offset without normalising everything before them.
    """
    if not 0 < i < len(text):
        return False
    continues_before, before = _char_info(text[i - 1])
    if continues_before or _char_info(text[i])[0]:
        return False
    return not before or is_cjk(before[-1])


def normalize_surface(surface: str) -> str:
    """The normalised form of a dictionary surface (a name, synonym or cue): what :func:`normalize` makes of it."""
    return normalize(surface).text


def units(normalized: str) -> list[str]:
    """Split normalised text into matching units: each space-delimited word, and each CJK character on its own.

    ``units("没有 pink eye青光眼") == ["没", "有", "pink", "eye", "青", "光", "眼"]``.
    """
    return UNIT.findall(normalized)
