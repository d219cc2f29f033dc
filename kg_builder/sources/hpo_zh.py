"""Source: the official Chinese labels of HPO terms (CHPO, vendored in ``kg_builder/data/hpo_zh.tsv``).

The file is a babelon table cut to the terms the HPO source reads (see ``kg_builder/data/vendor_hpo_zh.py``): ``#``
header lines carry the provenance (``# commit: 62f1d25`` is read as the version), then a tab-separated table with the
columns :data:`HPO_ZH_COLUMNS`. The HPO source gives each term its label as ``name_zh``.
"""
from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from kg_builder.source_config import HPO_ZH_FILE
from ovp.errors import SourceValidationError

log = logging.getLogger(__name__)

HPO_ZH_COLUMNS: tuple[str, ...] = ("subject_id", "source_value", "translation_value", "translation_status")
_HPO_ID = re.compile(r"^HP:\d{7}$")
_HINT = "regenerate it with kg_builder/data/vendor_hpo_zh.py (see its docstring) or restore it from git"


@dataclass(frozen=True)
class ZhLabels:
    """Chinese label per HPO id, the English label each translates, and the translation's version (its commit)."""

    version: str
    labels: dict[str, str] = field(default_factory=dict)
    english: dict[str, str] = field(default_factory=dict)


def parse_zh_labels(text: str, *, path: str) -> ZhLabels:
    """Parse the vendored table (see the module docstring).

    Raises:
        SourceValidationError: no ``# commit:`` header, wrong columns, a malformed id, an empty label, an id listed
            twice, or a status other than OFFICIAL (names path:line).
    """
    version = ""
    body: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            if key.strip() == "commit":
                version = value.strip()
        elif line.strip():
            body.append((number, line))
    if not version:
        raise SourceValidationError(f"{path}: no '# commit:' header line naming the translation's version", hint=_HINT)
    if not body or tuple(body[0][1].split("\t")) != HPO_ZH_COLUMNS:
        raise SourceValidationError(f"{path}: expected the tab-separated columns {', '.join(HPO_ZH_COLUMNS)}", hint=_HINT)
    labels: dict[str, str] = {}
    english: dict[str, str] = {}
    # csv, not split: the babelon file quotes a value as CSV does when it needs it.
    for (number, _), row in zip(body[1:], csv.reader([line for _, line in body[1:]], delimiter="\t")):
        where = f"{path}:{number}"
        if len(row) != len(HPO_ZH_COLUMNS):
            raise SourceValidationError(f"{where}: expected {len(HPO_ZH_COLUMNS)} columns, got {len(row)}", hint=_HINT)
        term_id, source_value, label, status = (value.strip() for value in row)
        if not _HPO_ID.match(term_id):
            raise SourceValidationError(f"{where}: {term_id!r} is not an HPO id (HP:0000000)", hint=_HINT)
        if not label:
            raise SourceValidationError(f"{where}: {term_id} has an empty Chinese label", hint=_HINT)
        if status != "OFFICIAL":
            raise SourceValidationError(f"{where}: {term_id} has status {status!r}; only OFFICIAL labels are vendored", hint=_HINT)
        if term_id in labels:
            raise SourceValidationError(f"{where}: {term_id} is listed twice", hint=_HINT)
        labels[term_id] = label
        english[term_id] = source_value
    return ZhLabels(version=version, labels=labels, english=english)


def read_zh_labels(path: Path | None = HPO_ZH_FILE) -> ZhLabels:
    """Read the vendored table; ``None`` → no labels (version "").

    Raises:
        SourceValidationError: the file is missing or malformed.
    """
    if path is None:
        return ZhLabels(version="")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SourceValidationError(f"{path}: Chinese HPO label file not found", hint=_HINT) from exc
    return parse_zh_labels(text, path=str(path))


def zh_version(path: Path = HPO_ZH_FILE) -> str:
    """The ``# commit:`` of the vendored file from its header only ('' when the file is absent)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.startswith("#"):
                    break
                key, _, value = line[1:].partition(":")
                if key.strip() == "commit":
                    return value.strip()
    except FileNotFoundError:
        return ""
    return ""
