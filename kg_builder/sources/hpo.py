"""Source: the eye subtree of the Human Phenotype Ontology (``hp.obo``) as Phenotype entities and IS_A edges.

Every non-obsolete term at or below HP:0000478 "Abnormality of the eye" and HP:0032039 "Abnormality of the ocular
adnexa" (see source_config.HPO_ROOTS for why both), plus any extra terms asked for (the HPO terms the lexicon maps
to), becomes an entity with its definition, its synonyms (scope and layperson flag kept) and its xrefs; every is_a
between two such terms becomes an IS_A edge.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Iterable, Iterator

from kg_builder.records import EntityRecord, RelationRecord, Synonym
from kg_builder.source_config import HP_OBO, HPO_ROOTS, SOURCES
from kg_builder.sources.obo import OboDocument, descendants, read_obo

log = logging.getLogger(__name__)

SPEC = SOURCES["hpo"]


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> OboDocument:
    return read_obo(Path(path))


def load_hpo(path: Path = HP_OBO) -> OboDocument:
    """Parse ``hp.obo`` once per file version (the disease source needs the same parse for its eye-term set)."""
    path = Path(path)
    return _load_cached(str(path), path.stat().st_mtime_ns)


def hpo_release(doc: OboDocument) -> str:
    """The release date from ``data-version: hp/releases/2025-01-16`` → '2025-01-16' (the raw value otherwise)."""
    version = doc.data_version
    return version.rsplit("/", 1)[-1] if "releases/" in version else version


def eye_term_ids(doc: OboDocument, roots: Iterable[str] = HPO_ROOTS, extra_ids: Iterable[str] = ()) -> set[str]:
    """Ids of the non-obsolete terms at or below any of ``roots``, plus those of ``extra_ids`` that are non-obsolete
    terms of ``doc`` (unknown or obsolete extras are left out: the lexicon's validation reports them)."""
    keep: set[str] = set()
    for root in roots:
        keep |= descendants(doc, root)
    keep |= {tid for tid in extra_ids if tid in doc.terms and not doc.terms[tid].obsolete}
    return keep


def read_hpo_eye(
    path: Path = HP_OBO, *, roots: Iterable[str] = HPO_ROOTS, extra_ids: Iterable[str] = ()
) -> Iterator[EntityRecord | RelationRecord]:
    """Yield one Phenotype EntityRecord per selected term (see :func:`eye_term_ids`), then IS_A RelationRecords
    between selected terms.

    Records carry ``source='HPO'``, ``source_version`` = the release date, and ``origin`` = "hp.obo:line".
    """
    doc = load_hpo(path)
    version = hpo_release(doc)
    keep = eye_term_ids(doc, roots, extra_ids)
    terms = [doc.terms[term_id] for term_id in doc.terms if term_id in keep]  # file order: stable output
    for term in terms:
        yield EntityRecord(
            id=term.id,
            kind="phenotype",
            name=term.name,
            source=SPEC.source,
            source_version=version,
            definition=term.definition,
            synonyms=tuple(Synonym(s.text, scope=s.scope, layperson=s.layperson, lang="en") for s in term.synonyms),
            xrefs=tuple(term.xrefs),
            origin=f"{doc.path}:{term.line}",
        )
    for term in terms:
        for parent in term.is_a:
            # Only edges inside the selection: a root's own parent (HP:0000118) is not a node of this graph.
            if parent in keep:
                yield RelationRecord(term.id, "IS_A", parent, SPEC.source, origin=f"{doc.path}:{term.line}")
    log.info("HPO %s: %d terms below %s (+ extras)", version, len(terms), ", ".join(roots))
