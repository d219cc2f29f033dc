"""Source: Chinese names and aliases of eye conditions from CMeKG, as synonyms of the graph entities they map to.

Reads ``kg_builder/data/cmekg_mapping.tsv`` (made and reviewed with ``kg_builder/data/map_cmekg.py`` from the vendored
extract ``cmekg_eye.jsonl``): ``#`` header lines, then a tab-separated table with the columns :data:`COLUMNS`. Every
row with a ``graph_id`` gives that entity each name of its ``synonyms_zh`` column ('|'-separated) as an EXACT
Chinese synonym; rows without one are CMeKG entities the graph has no concept for, kept in the file for the record.
The source version is the first 12 hex digits of the SHA-256 of the file's bytes: any edit is a new version.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import re
from pathlib import Path
from typing import Iterator

from kg_builder.records import Synonym, SynonymRecord
from kg_builder.source_config import CMEKG_MAPPING_FILE, SYNONYM_SOURCES
from ovp.errors import SourceValidationError

log = logging.getLogger(__name__)

SPEC = SYNONYM_SOURCES["cmekg"]
COLUMNS: tuple[str, ...] = ("cmekg_name", "icd10", "english", "graph_id", "graph_name", "rule", "synonyms_zh", "dropped", "note")
#: A graph id: a CURIE such as HP:0000501, ICD10:H40.1, ORPHA:104, OVP:stye.
_CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9]*:[A-Za-z0-9_.\-]+$")
_HINT = "regenerate it with kg_builder/data/map_cmekg.py or restore it from git"
#: Longest synonym accepted: a Chinese name is short; anything longer is a damaged row.
MAX_SYNONYM_CHARS = 40


def cmekg_version(data: bytes) -> str:
    """First 12 hex digits of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:12]


def parse_cmekg_mapping(text: str, *, path: str, version: str) -> Iterator[SynonymRecord]:
    """Yield one SynonymRecord per Chinese name of every mapped row (see the module docstring).

    Raises:
        SourceValidationError: wrong columns, a malformed graph id, a mapped row without names, a name with no
            Chinese character or longer than :data:`MAX_SYNONYM_CHARS` (names path:line).
    """
    body = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.startswith("#")]
    if not body or tuple(body[0][1].split("\t")) != COLUMNS:
        raise SourceValidationError(f"{path}: expected the tab-separated columns {', '.join(COLUMNS)}", hint=_HINT)
    for (number, _), row in zip(body[1:], csv.reader([line for _, line in body[1:]], delimiter="\t")):
        where = f"{path}:{number}"
        if len(row) != len(COLUMNS):
            raise SourceValidationError(f"{where}: expected {len(COLUMNS)} columns, got {len(row)}", hint=_HINT)
        fields = dict(zip(COLUMNS, (value.strip() for value in row)))
        graph_id, names = fields["graph_id"], [n.strip() for n in fields["synonyms_zh"].split("|") if n.strip()]
        if not graph_id:
            if names:
                raise SourceValidationError(f"{where}: {fields['cmekg_name']} has synonyms but no graph_id", hint=_HINT)
            continue
        if not _CURIE.match(graph_id):
            raise SourceValidationError(f"{where}: graph_id {graph_id!r} is not a CURIE such as HP:0000501", hint=_HINT)
        for name in names:
            if len(name) > MAX_SYNONYM_CHARS or not any("\u3400" <= ch <= "\u9fff" for ch in name):
                raise SourceValidationError(f"{where}: {name[:60]!r} is not a Chinese name of at most {MAX_SYNONYM_CHARS} characters",
                                            hint=_HINT)
            synonym = Synonym(name, scope="EXACT", layperson=False, lang="zh", source=SPEC.source, source_version=version)
            yield SynonymRecord(graph_id, synonym, origin=where)


def read_cmekg_synonyms(path: Path = CMEKG_MAPPING_FILE) -> tuple[str, list[SynonymRecord]]:
    """``(version, records)`` of the mapping file.

    Raises:
        SourceValidationError: the file is missing or malformed.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceValidationError(f"{path}: CMeKG mapping file not found", hint=_HINT) from exc
    version = cmekg_version(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceValidationError(f"{path}: not UTF-8 (byte {exc.start})", hint=_HINT) from exc
    records = list(parse_cmekg_mapping(text, path=str(path), version=version))
    log.info("CMeKG %s: %d Chinese synonyms for %d entities", version, len(records), len({r.entity_id for r in records}))
    return version, records
