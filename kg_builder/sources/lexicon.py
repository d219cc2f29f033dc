"""Source: the project's bilingual lexicon (``kg_builder/data/lexicon.jsonl``) of concepts people talk about.

One JSON object per line; blank lines and ``//`` comment lines are skipped::

    {"id": "OVP:glaucoma", "kind": "disease", "name": "Glaucoma", "name_zh": "青光眼",
     "synonyms_en": ["..."], "synonyms_zh": ["..."], "maps_to": ["HP:0000501", "ICD10:H40"],
     "profile_label": true, "definition": "..."}

Synonyms get scope EXACT and a language (en/zh). The lexicon exists to hold the names people actually say, so its
synonyms are flagged layperson — unless the entry carries an optional ``"layperson": [...]`` list, in which case
exactly the synonyms listed there are. Each ``maps_to`` id becomes a MAPS_TO edge from the concept, and each
``has_phenotype`` id (diseases only: the symptoms people with the disease describe, curated) a HAS_PHENOTYPE edge from
the disease to a lexicon phenotype. HPO annotates its rare diseases this way; without these edges the common diseases
the profiles predict had no symptom in the graph at all.
The source version is the first 12 hex digits of the SHA-256 of the file's bytes: any edit is a new version.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator

from kg_builder.records import EntityRecord, RelationRecord, Synonym
from kg_builder.source_config import LEXICON_FILE, SOURCES
from ovp.errors import SourceValidationError

log = logging.getLogger(__name__)

SPEC = SOURCES["lexicon"]
_LIST_FIELDS = ("synonyms_en", "synonyms_zh", "maps_to", "layperson", "has_phenotype")
_HINT = "fix the line (one JSON object per line, `//` for comments) and build again"


def lexicon_version(data: bytes) -> str:
    """First 12 hex digits of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:12]


def _text(entry: dict[str, Any], key: str, origin: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SourceValidationError(f"{origin}: {key!r} must be a string, got {type(value).__name__}", hint=_HINT)
    return value.strip()


def _strings(entry: dict[str, Any], key: str, origin: str) -> list[str]:
    value = entry.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SourceValidationError(f"{origin}: {key!r} must be a list of strings", hint=_HINT)
    return [v.strip() for v in value if v.strip()]


def entry_records(entry: dict[str, Any], *, origin: str, version: str) -> Iterator[EntityRecord | RelationRecord]:
    """The EntityRecord of one lexicon entry and its MAPS_TO and HAS_PHENOTYPE RelationRecords (checks field types).

    Raises:
        SourceValidationError: a field has the wrong JSON type (names ``origin``).
    """
    for key in _LIST_FIELDS:
        _strings(entry, key, origin)
    profile_label = entry.get("profile_label", False)
    if not isinstance(profile_label, bool):
        raise SourceValidationError(f"{origin}: 'profile_label' must be true or false", hint=_HINT)
    kind = _text(entry, "kind", origin).lower()
    phenotypes = _strings(entry, "has_phenotype", origin)
    if phenotypes and kind != "disease":
        raise SourceValidationError(f"{origin}: 'has_phenotype' is only for diseases, and this entry is a {kind or 'concept without a kind'}",
                                    hint=_HINT)
    layperson_listed = "layperson" in entry
    layperson = set(_strings(entry, "layperson", origin))
    synonyms: list[Synonym] = []
    seen: set[tuple[str, str]] = set()
    for lang in ("en", "zh"):
        for text in _strings(entry, f"synonyms_{lang}", origin):
            if (lang, text.casefold()) in seen:
                continue  # a synonym listed twice would only duplicate the full-text match
            seen.add((lang, text.casefold()))
            flagged = text in layperson if layperson_listed else True
            synonyms.append(Synonym(text, scope="EXACT", layperson=flagged, lang=lang))
    entity_id = _text(entry, "id", origin)
    yield EntityRecord(
        id=entity_id,
        kind=kind,
        name=_text(entry, "name", origin),
        source=SPEC.source,
        source_version=version,
        name_zh=_text(entry, "name_zh", origin),
        definition=_text(entry, "definition", origin),
        synonyms=tuple(synonyms),
        profile_label=profile_label,
        origin=origin,
    )
    for target in dict.fromkeys(_strings(entry, "maps_to", origin)):
        yield RelationRecord(entity_id, "MAPS_TO", target, SPEC.source, origin=origin)
    for phenotype in dict.fromkeys(phenotypes):
        yield RelationRecord(entity_id, "HAS_PHENOTYPE", phenotype, SPEC.source, origin=origin)


def parse_lexicon(text: str, *, path: str, version: str) -> Iterator[EntityRecord | RelationRecord]:
    """Yield the records of every entry of lexicon text.

    Raises:
        SourceValidationError: a line is not a JSON object or a field has the wrong type (names path:line).
    """
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        origin = f"{path}:{number}"
        try:
            entry = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise SourceValidationError(f"{origin}: not valid JSON ({exc.msg} at column {exc.colno})", hint=_HINT) from exc
        if not isinstance(entry, dict):
            raise SourceValidationError(f"{origin}: expected a JSON object, got {type(entry).__name__}", hint=_HINT)
        yield from entry_records(entry, origin=origin, version=version)


def read_lexicon(path: Path = LEXICON_FILE) -> Iterator[EntityRecord | RelationRecord]:
    """Read the lexicon file (see the module docstring for its format and how fields map).

    Raises:
        SourceValidationError: the file is missing, or a line is malformed (names path:line).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceValidationError(f"{path}: lexicon file not found", hint="create it or build without the lexicon source") from exc
    version = lexicon_version(data)
    count = 0
    for record in parse_lexicon(data.decode("utf-8-sig"), path=str(path), version=version):
        count += isinstance(record, EntityRecord)
        yield record
    log.info("lexicon %s: %d concepts from %s", version, count, path)


def mapped_ids(path: Path = LEXICON_FILE, prefix: str = "HP:") -> set[str]:
    """The ``maps_to`` ids starting with ``prefix`` of every well-formed lexicon line; empty if the file is absent.

    Tolerant on purpose: the HPO source uses it to keep the terms the lexicon maps to, and a malformed lexicon is
    reported by the lexicon source itself, with its line.
    """
    path = Path(path)
    if not path.is_file():
        return set()
    ids: set[str] = set()
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        try:
            entry = json.loads(stripped)
        except json.JSONDecodeError:
            continue
        targets = entry.get("maps_to") if isinstance(entry, dict) else None
        if isinstance(targets, list):
            ids |= {t for t in targets if isinstance(t, str) and t.startswith(prefix)}
    return ids
