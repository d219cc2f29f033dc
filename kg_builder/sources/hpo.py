"""Source: the eye subtree of the Human Phenotype Ontology (``hp.obo``) as Phenotype entities and IS_A edges.

Every non-obsolete term at or below HP:0000478 "Abnormality of the eye" and HP:0032039 "Abnormality of the ocular
adnexa" (see source_config.HPO_ROOTS for why both), plus any extra terms asked for (the HPO terms the lexicon maps
to), becomes an entity with its definition, its synonyms (scope and layperson flag kept), its xrefs and its official
Chinese label as ``name_zh`` (CHPO, :mod:`kg_builder.sources.hpo_zh`); every is_a between two such terms becomes an
IS_A edge.

Why the official label is the HPO term's ``name_zh`` even where the lexicon has a name for the same concept: the
lexicon's Chinese names sit on its own concepts (OVP:…, which MAPS_TO the HPO term) and are the colloquial words people
say (老花眼, 针眼), sometimes of a broader concept (OVP:iritis maps to Iritis and Anterior uveitis); the HPO term's name
translates that exact term. Lookup and the linker already put the curated concept first when both match a text.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Iterable, Iterator

from kg_builder.records import EntityRecord, RelationRecord, Synonym
from kg_builder.source_config import HP_OBO, HPO_ROOTS, HPO_ZH_FILE, SOURCES
from kg_builder.sources.hpo_zh import read_zh_labels
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


def hpo_version(release: str, zh_version: str) -> str:
    """The HPO source's version: the release, plus the Chinese labels' commit when there are any
    ('2025-01-16+zh.62f1d25'), so that a new translation makes ``ovp kg stats`` report the graph out of date."""
    return f"{release}+zh.{zh_version}" if zh_version else release


def read_hpo_eye(
    path: Path = HP_OBO,
    *,
    roots: Iterable[str] = HPO_ROOTS,
    extra_ids: Iterable[str] = (),
    zh_path: Path | None = HPO_ZH_FILE,
) -> Iterator[EntityRecord | RelationRecord]:
    """Yield one Phenotype EntityRecord per selected term (see :func:`eye_term_ids`), then IS_A RelationRecords
    between selected terms.

    Records carry ``source='HPO'``, ``source_version`` = :func:`hpo_version`, ``name_zh`` = the official Chinese
    label from ``zh_path`` (None: no Chinese names), and ``origin`` = "hp.obo:line".

    Raises:
        SourceValidationError: the Chinese label file is missing or malformed.
    """
    doc = load_hpo(path)
    zh = read_zh_labels(zh_path)
    version = hpo_version(hpo_release(doc), zh.version)
    keep = eye_term_ids(doc, roots, extra_ids)
    terms = [doc.terms[term_id] for term_id in doc.terms if term_id in keep]  # file order: stable output
    untranslated = [term.id for term in terms if term.id not in zh.labels]
    if zh_path is not None and untranslated:
        log.warning("%d HPO terms have no Chinese label in %s (e.g. %s): rerun kg_builder/data/vendor_hpo_zh.py",
                    len(untranslated), zh_path, ", ".join(untranslated[:3]))
    for term in terms:
        yield EntityRecord(
            id=term.id,
            kind="phenotype",
            name=term.name,
            name_zh=zh.labels.get(term.id, ""),
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
