"""Source: HPO disease annotations (``phenotype.hpoa``) — OMIM and ORPHA diseases that show an eye phenotype.

A disease is kept when at least one of its aspect-P rows (not NOT-qualified) names a term of the HPO eye selection
(the terms the HPO source keeps); it
becomes a Disease entity named by the ``disease_name`` column, with one HAS_PHENOTYPE edge per eye phenotype.
The edge's ``frequency`` is the column as written (``HP:0040281``, ``3/7`` or ``40%``); where it is an HPO frequency
term, ``frequency_label`` carries that term's name ("Very frequent").
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator

from kg_builder.records import EntityRecord, RelationRecord
from kg_builder.source_config import HP_OBO, HPO_FREQUENCY_ROOT, HPO_ROOTS, PHENOTYPE_HPOA, SOURCES
from kg_builder.sources.hpo import eye_term_ids, load_hpo
from kg_builder.sources.obo import descendants

log = logging.getLogger(__name__)

SPEC = SOURCES["hpo-diseases"]
#: Disease databases kept (the prefix of ``database_id``); see source_config for why DECIPHER is not.
DATABASES = ("OMIM", "ORPHA")
_REQUIRED_COLUMNS = ("database_id", "disease_name", "qualifier", "hpo_id", "frequency", "aspect")


def hpoa_version(header: dict[str, str]) -> str:
    """The annotation release: the ``#date:`` header, else ``#version:``, else ''."""
    return header.get("date") or header.get("version") or ""


def parse_hpoa(
    lines: Iterator[str] | list[str],
    phenotype_ids: set[str],
    *,
    path: str = "<hpoa>",
    frequency_labels: dict[str, str] | None = None,
) -> Iterator[EntityRecord | RelationRecord]:
    """Yield Disease records then HAS_PHENOTYPE records for diseases with a phenotype in ``phenotype_ids``.

    Args:
        lines: the hpoa file's lines: ``#key: value`` header lines, one column-name line, then tab-separated rows.
        phenotype_ids: HPO ids a disease must show at least one of (the eye subtree).
        path: for ``origin`` ("path:line") and error messages.
        frequency_labels: HPO frequency term id → name, for the optional ``frequency_label`` edge property.

    Raises:
        ValueError: the column-name line lacks a required column (message names path:line).
    """
    labels = frequency_labels or {}
    header: dict[str, str] = {}
    columns: dict[str, int] | None = None
    diseases: dict[str, tuple[str, int]] = {}  # id → (name, first line)
    edges: dict[tuple[str, str], tuple[str, int]] = {}  # (disease, phenotype) → (frequency, line)
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n").rstrip("\r")
        if not line:
            continue
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header.setdefault(key.strip(), value.strip())
            continue
        fields = line.split("\t")
        if columns is None:
            columns = {name.strip(): i for i, name in enumerate(fields)}
            missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ValueError(f"{path}:{number}: hpoa column line lacks {', '.join(missing)}")
            continue
        if len(fields) < len(columns):
            fields += [""] * (len(columns) - len(fields))
        disease_id = fields[columns["database_id"]].strip()
        hpo_id = fields[columns["hpo_id"]].strip()
        if (
            fields[columns["aspect"]].strip() != "P"
            or fields[columns["qualifier"]].strip().upper() == "NOT"
            or hpo_id not in phenotype_ids
            or disease_id.split(":", 1)[0] not in DATABASES
        ):
            continue
        diseases.setdefault(disease_id, (fields[columns["disease_name"]].strip(), number))
        frequency = fields[columns["frequency"]].strip()
        previous = edges.get((disease_id, hpo_id))
        # Several rows (one per reference) may annotate the same pair: keep the first that states a frequency.
        if previous is None or (not previous[0] and frequency):
            edges[(disease_id, hpo_id)] = (frequency, previous[1] if previous else number)
    version = hpoa_version(header)
    for disease_id, (name, number) in diseases.items():
        yield EntityRecord(
            id=disease_id,
            kind="disease",
            name=name,
            source=SPEC.source,
            source_version=version,
            origin=f"{path}:{number}",
        )
    for (disease_id, hpo_id), (frequency, number) in edges.items():
        properties: dict[str, object] = {"frequency": frequency or None}
        if frequency in labels:
            properties["frequency_label"] = labels[frequency]
        yield RelationRecord(disease_id, "HAS_PHENOTYPE", hpo_id, SPEC.source, properties=properties, origin=f"{path}:{number}")
    log.info("HPO annotations %s: %d diseases, %d eye phenotype annotations", version, len(diseases), len(edges))


def read_hpo_diseases(
    hpoa_path: Path = PHENOTYPE_HPOA,
    obo_path: Path = HP_OBO,
    *,
    roots: Iterable[str] = HPO_ROOTS,
    extra_ids: Iterable[str] = (),
) -> Iterator[EntityRecord | RelationRecord]:
    """Read ``phenotype.hpoa`` against the same HPO term selection as the HPO source (see :func:`parse_hpoa`)."""
    doc = load_hpo(obo_path)
    frequency_labels = {tid: doc.terms[tid].name for tid in descendants(doc, HPO_FREQUENCY_ROOT)}
    with open(hpoa_path, encoding="utf-8") as handle:
        yield from parse_hpoa(handle, eye_term_ids(doc, roots, extra_ids), path=str(hpoa_path), frequency_labels=frequency_labels)
