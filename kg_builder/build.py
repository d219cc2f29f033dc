"""Build the knowledge graph from its sources: read everything, validate everything, then write; plus reset and
stats. The lookup over what was built is :func:`kg_builder.store.entities.lookup`.

Nothing reaches Neo4j until every record of every selected source has been read and validated: a bad lexicon line
leaves the graph exactly as it was.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm

from kg_builder.graph import DEFAULT_BATCH_SIZE, Graph
from kg_builder.records import EntityRecord, RelationRecord, SynonymRecord
from kg_builder.schema import ENTITY_KINDS, ENTITY_RELATIONS, KIND_OF_LABEL, apply_schema
from kg_builder.source_config import (
    CMEKG_MAPPING_FILE,
    HP_OBO,
    HPO_ZH_FILE,
    LEXICON_FILE,
    PHENOTYPE_HPOA,
    SOURCE_ORDER,
    SOURCES,
    SYNONYM_SOURCES,
)
from kg_builder.sources.cmekg import cmekg_version, read_cmekg_synonyms
from kg_builder.sources.hpo import hpo_version, read_hpo_eye
from kg_builder.sources.hpo_zh import zh_version
from kg_builder.sources.hpo_diseases import hpoa_version, read_hpo_diseases
from kg_builder.sources.icd10 import icd_version, read_icd10_eye
from kg_builder.sources.lexicon import lexicon_version, mapped_ids, read_lexicon
from kg_builder.store.build_stamp import write_build_stamp
from kg_builder.writer import reset_sources, write_entities, write_relations
from ovp.errors import SourceValidationError

log = logging.getLogger(__name__)

Record = EntityRecord | RelationRecord
#: Problems listed in a validation error before "… and N more".
MAX_PROBLEMS_SHOWN = 5


# --- reading ------------------------------------------------------------------------------------------------------

def source_readers(lexicon_path: Path = LEXICON_FILE) -> dict[str, Callable[[], Iterator[Record]]]:
    """Source key → a function yielding that source's records (the lexicon path can be swapped, e.g. in tests).

    The HPO sources also keep the HPO terms the lexicon maps to (see source_config), whichever sources are built.
    """
    return {
        "hpo": lambda: read_hpo_eye(HP_OBO, extra_ids=mapped_ids(lexicon_path)),
        "hpo-diseases": lambda: read_hpo_diseases(PHENOTYPE_HPOA, HP_OBO, extra_ids=mapped_ids(lexicon_path)),
        "icd10": read_icd10_eye,
        "lexicon": lambda: read_lexicon(lexicon_path),
    }


#: Synonym-source key → a function returning (version, SynonymRecords).
synonym_readers: dict[str, Callable[[], tuple[str, list[SynonymRecord]]]] = {
    "cmekg": lambda: read_cmekg_synonyms(CMEKG_MAPPING_FILE),
}


@dataclass
class CollectedSources:
    """Every record of the selected sources, read before anything is validated or written."""

    keys: tuple[str, ...]
    entities: list[EntityRecord] = field(default_factory=list)
    relations: list[RelationRecord] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # source → source_version
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # source key → {"entities": n, "relations": n}
    #: synonyms of the synonym sources whose entity was not read in this build (checked in validate())
    unapplied: list[SynonymRecord] = field(default_factory=list)


def add_synonyms(record: EntityRecord, extra: Iterable[SynonymRecord]) -> EntityRecord:
    """``record`` with the synonyms of ``extra`` appended, except those equal (case-folded, same language) to its
    name, Chinese name or a synonym it has."""
    seen = {(s.lang, s.text.casefold()) for s in record.synonyms}
    seen |= {("en", record.name.casefold()), ("zh", record.name_zh.casefold())}
    added = []
    for item in extra:
        key = (item.synonym.lang, item.synonym.text.casefold())
        if key not in seen:
            seen.add(key)
            added.append(item.synonym)
    return replace(record, synonyms=record.synonyms + tuple(added)) if added else record


def collect(
    keys: Iterable[str],
    *,
    lexicon_path: Path = LEXICON_FILE,
    progress: bool | None = None,
    synonym_sources: bool = True,
) -> CollectedSources:
    """Read every record of the sources ``keys`` (in build order), with the synonyms of the synonym sources applied
    (``synonym_sources=False``: without them, as the script that maps CMeKG onto the graph needs).

    Raises:
        SourceValidationError: a source file is missing or malformed (names file and line).
    """
    readers = source_readers(lexicon_path)
    collected = CollectedSources(keys=tuple(k for k in SOURCE_ORDER if k in set(keys)))
    # The synonym sources are read in every build and applied to the entities of whichever sources are built.
    pending: dict[str, list[SynonymRecord]] = {}
    for key, spec in SYNONYM_SOURCES.items() if synonym_sources else ():
        version, synonyms = synonym_readers[key]()
        collected.versions[spec.source] = version
        collected.counts[key] = {"synonyms": len(synonyms)}
        for synonym in synonyms:
            pending.setdefault(synonym.entity_id, []).append(synonym)
    for key in tqdm(collected.keys, desc="reading sources", unit="source", disable=_no_bar(progress)):
        entities = relations = 0
        for record in readers[key]():
            if isinstance(record, EntityRecord):
                if record.id in pending:
                    record = add_synonyms(record, pending.pop(record.id))
                collected.entities.append(record)
                collected.versions.setdefault(record.source, record.source_version)
                entities += 1
            else:
                collected.relations.append(record)
                relations += 1
        collected.counts[key] = {"entities": entities, "relations": relations}
    collected.unapplied = [synonym for synonyms in pending.values() for synonym in synonyms]
    return collected


# --- validation ---------------------------------------------------------------------------------------------------

def find_problems(collected: CollectedSources, known_ids: set[str] | None = None) -> list[str]:
    """Every problem with the collected records, each "origin: what is wrong" (empty list = valid).

    Checks: an id that is empty or appears twice, an empty name, a kind off the allow-list, profile_label on a
    non-disease, a relationship type off the allow-list, and a relationship end that is neither a collected record
    nor in ``known_ids`` (the ids already in the graph, consulted when building a subset of the sources), and a
    synonym-source synonym for an id that is neither read nor known.
    """
    problems: list[str] = []
    first_seen: dict[str, str] = {}
    for record in collected.entities:
        where = record.origin or record.source
        if not record.id.strip():
            problems.append(f"{where}: empty id")
        elif record.id in first_seen:
            problems.append(f"{where}: duplicate id {record.id} (first at {first_seen[record.id]})")
        else:
            first_seen[record.id] = where
        if not record.name.strip():
            problems.append(f"{where}: {record.id or 'entry'} has an empty name")
        if record.kind not in ENTITY_KINDS:
            problems.append(f"{where}: {record.id} has unknown kind {record.kind!r} (expected one of {', '.join(ENTITY_KINDS)})")
        elif record.profile_label and record.kind != "disease":
            problems.append(f"{where}: {record.id} has profile_label but is a {record.kind}; only diseases can be profile labels")
    known = known_ids or set()
    # A synonym whose entity no source of this build yielded is unknown when every source was read, or when the
    # graph was consulted (``known_ids``) and lacks it; a node of a source not rebuilt now keeps the synonym it has.
    check_synonyms = known_ids is not None or set(collected.keys) == set(SOURCE_ORDER)
    for synonym in collected.unapplied if check_synonyms else ():
        if synonym.entity_id not in known:
            problems.append(f"{synonym.origin or synonym.synonym.source}: synonym {synonym.synonym.text!r} for unknown id {synonym.entity_id}")
    for relation in collected.relations:
        where = relation.origin or relation.source
        if relation.type not in ENTITY_RELATIONS:
            problems.append(f"{where}: unknown relationship type {relation.type!r}")
        for end in (relation.start, relation.end):
            if end not in first_seen and end not in known:
                problems.append(f"{where}: {relation.type} {relation.start} → {relation.end}: unknown id {end}")
    return problems


def validate(collected: CollectedSources, graph: Graph | None = None) -> None:
    """Raise if any record is invalid; when building a subset of the sources, ids already in ``graph`` count as known.

    Raises:
        SourceValidationError: listing the first problems with file:line; the graph has not been touched.
    """
    known: set[str] | None = None
    if graph is not None and set(collected.keys) != set(SOURCE_ORDER):
        collected_ids = {record.id for record in collected.entities}
        missing = {end for rel in collected.relations for end in (rel.start, rel.end) if end not in collected_ids}
        missing |= {synonym.entity_id for synonym in collected.unapplied}
        known = existing_ids(graph, missing)
    problems = find_problems(collected, known)
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f" … and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise SourceValidationError(
            f"{len(problems)} invalid record(s), nothing written: {shown}{more}",
            hint="fix the source and build again",
        )


def existing_ids(graph: Graph, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that are Entity nodes in the graph."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    rows = graph.read("UNWIND $ids AS id MATCH (n:Entity {id: id}) RETURN n.id AS id", {"ids": wanted})
    return {row["id"] for row in rows}


# --- building -----------------------------------------------------------------------------------------------------

@dataclass
class BuildReport:
    """What a build did: per-source record counts, rows written, nodes deleted by --reset, and timings."""

    sources: dict[str, dict[str, int]]
    versions: dict[str, str]
    entities: int
    relationships: int
    deleted: int
    read_s: float
    write_s: float
    seconds: float
    #: the build stamp written at the end (kg_builder.store.build_stamp): in-memory copies of the entities compare it
    stamp: str = ""

    def summary(self) -> str:
        """One line: counts and seconds."""
        reset = f", {self.deleted:,} old entities deleted" if self.deleted else ""
        return (
            f"knowledge graph built from {', '.join(self.sources)}: {self.entities:,} entities, "
            f"{self.relationships:,} relationships{reset} in {self.seconds:.1f} s "
            f"(read {self.read_s:.1f} s, write {self.write_s:.1f} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build(
    graph: Graph,
    keys: Iterable[str] = SOURCE_ORDER,
    *,
    reset: bool = False,
    lexicon_path: Path = LEXICON_FILE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> BuildReport:
    """Read and validate every selected source, then (optionally reset and) upsert its entities and relationships.

    Idempotent: every write is a MERGE on the entity id or the (start, type, end) triple, so building twice gives
    the same graph. ``reset`` first makes the graph forget what the selected sources wrote before: their Entity
    nodes that the sources no longer have are detach-deleted (only :Entity nodes of these sources; never Video,
    Profile or Batch nodes) and their relationships are deleted and rewritten (see writer.reset_sources).

    Raises:
        SourceValidationError: a source is missing or invalid; nothing was written.
        GraphUnavailable: Neo4j cannot be reached.
    """
    started = time.perf_counter()
    collected = collect(keys, lexicon_path=lexicon_path, progress=progress)
    read_s = time.perf_counter() - started
    validate(collected, graph)
    write_started = time.perf_counter()
    apply_schema(graph)
    deleted = 0
    if reset:
        owned = [SOURCES[key].source for key in collected.keys]
        with _bar(progress, "deleting stale entities", "node") as bar:
            deleted = reset_sources(graph, owned, (r.id for r in collected.entities), batch_size=batch_size, on_batch=bar.update)
    with _bar(progress, "writing entities", "node", total=len(collected.entities)) as bar:
        entities = write_entities(graph, collected.entities, batch_size=batch_size, on_batch=bar.update)
    with _bar(progress, "writing relationships", "rel", total=len(collected.relations)) as bar:
        relationships = write_relations(graph, collected.relations, batch_size=batch_size, on_batch=bar.update)
    # Last, after every write: a process that sees the new stamp and reloads its entities sees the finished build.
    stamp = write_build_stamp(graph)
    finished = time.perf_counter()
    report = BuildReport(
        sources=collected.counts,
        versions=collected.versions,
        entities=entities,
        relationships=relationships,
        deleted=deleted,
        read_s=round(read_s, 3),
        write_s=round(finished - write_started, 3),
        seconds=round(finished - started, 3),
        stamp=stamp,
    )
    log.info(report.summary())
    return report


def _no_bar(progress: bool | None) -> bool:
    """tqdm's ``disable``: bars only when asked, or (by default) when stderr is a terminal."""
    return not progress if progress is not None else not sys.stderr.isatty()


def _bar(progress: bool | None, desc: str, unit: str, total: int | None = None) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=_no_bar(progress), leave=False)


# --- stats --------------------------------------------------------------------------------------------------------

def current_versions(lexicon_path: Path = LEXICON_FILE) -> dict[str, str]:
    """The source_version each source would be built at now, from file headers only (cheap; no full parse).

    A source whose file is absent (the lexicon, before it is written) is left out.
    """
    versions = {SOURCES["hpo"].source: hpo_version(_obo_release(HP_OBO), zh_version(HPO_ZH_FILE)),
                SOURCES["icd10"].source: icd_version()}
    if CMEKG_MAPPING_FILE.is_file():
        versions[SYNONYM_SOURCES["cmekg"].source] = cmekg_version(CMEKG_MAPPING_FILE.read_bytes())
    versions[SOURCES["hpo-diseases"].source] = hpoa_version(_hpoa_header(PHENOTYPE_HPOA))
    if Path(lexicon_path).is_file():
        versions[SOURCES["lexicon"].source] = lexicon_version(Path(lexicon_path).read_bytes())
    return versions


def _obo_release(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("data-version:"):
                return line.split(":", 1)[1].strip().rsplit("/", 1)[-1]
            if line.startswith("["):
                break
    return ""


def _hpoa_header(path: Path) -> dict[str, str]:
    header: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            header.setdefault(key.strip(), value.strip())
    return header


def stats(graph: Graph, *, lexicon_path: Path = LEXICON_FILE) -> dict[str, Any]:
    """Counts per label and relationship type, versions per source, profile-label diseases, and whether the graph is
    built at the current version of every available source (``up_to_date``)."""
    labels = {row["label"]: row["n"] for row in graph.read(
        # Each entity counts once under Entity and once under its kind label.
        "MATCH (n:Entity) UNWIND labels(n) AS label RETURN label, count(*) AS n ORDER BY label"
    )}
    relationships = {row["type"]: row["n"] for row in graph.read(
        "MATCH (:Entity)-[r]->(:Entity) RETURN type(r) AS type, count(*) AS n ORDER BY type"
    )}
    sources: dict[str, dict[str, Any]] = {}
    for row in graph.read(
        "MATCH (n:Entity) RETURN n.source AS source, n.source_version AS version, count(*) AS n ORDER BY source, version"
    ):
        entry = sources.setdefault(row["source"], {"version": None, "versions": {}, "nodes": 0})
        entry["versions"][row["version"]] = row["n"]
        entry["nodes"] += row["n"]
        # One version per source is a clean build; several mean a build was interrupted or mixed.
        entry["version"] = row["version"] if len(entry["versions"]) == 1 else None
    synonym_sources: dict[str, dict[str, Any]] = {}
    for row in graph.read(SYNONYM_SOURCES_QUERY):
        entry = synonym_sources.setdefault(row["source"], {"version": None, "versions": {}, "synonyms": 0, "entities": 0})
        entry["versions"][row["version"]] = row["synonyms"]
        entry["synonyms"] += row["synonyms"]
        entry["entities"] += row["entities"]
        entry["version"] = row["version"] if len(entry["versions"]) == 1 else None
    profile_labels = graph.read("MATCH (n:Disease) WHERE n.profile_label = true RETURN count(n) AS n")[0]["n"]
    current = current_versions(lexicon_path)
    built = {source: info.get("version") for source, info in {**sources, **synonym_sources}.items()}
    up_to_date = all(built.get(source) == version for source, version in current.items())
    return {
        "labels": labels,
        "relationships": relationships,
        "sources": sources,
        "synonym_sources": synonym_sources,
        "chinese_names": chinese_name_counts(graph),
        "profile_label_diseases": profile_labels,
        "current_versions": current,
        "up_to_date": up_to_date,
    }


#: Synonyms that a synonym source (CMeKG) gave entities of another source, per source and version.
SYNONYM_SOURCES_QUERY = """
MATCH (n:Entity) WHERE n.synonym_sources IS NOT NULL
UNWIND range(0, size(n.synonym_sources) - 1) AS i
WITH n, n.synonym_sources[i] AS source, n.synonym_versions[i] AS version
WHERE source <> n.source
RETURN source, version, count(*) AS synonyms, count(DISTINCT n) AS entities
ORDER BY source, version
"""

#: Per kind label: entities, those with a Chinese name (name_zh), those with a Chinese name or a Chinese synonym.
CHINESE_NAMES_QUERY = """
MATCH (n:Entity)
WITH [label IN labels(n) WHERE label IN $kind_labels][0] AS label,
     n.name_zh IS NOT NULL AS named,
     any(lang IN coalesce(n.synonym_langs, []) WHERE lang = 'zh') AS has_synonym
RETURN label, count(*) AS entities, sum(CASE WHEN named THEN 1 ELSE 0 END) AS name_zh,
       sum(CASE WHEN named OR has_synonym THEN 1 ELSE 0 END) AS name_zh_or_synonym
ORDER BY label
"""


def chinese_name_counts(graph: Graph) -> dict[str, dict[str, int]]:
    """``{"all" | kind: {"entities", "name_zh", "name_zh_or_synonym"}}``: how many entities have a Chinese name, and
    how many have a Chinese name or at least one Chinese synonym (what the linker and lookup can find in Chinese)."""
    kinds = KIND_OF_LABEL
    counts: dict[str, dict[str, int]] = {"all": {"entities": 0, "name_zh": 0, "name_zh_or_synonym": 0}}
    for row in graph.read(CHINESE_NAMES_QUERY, {"kind_labels": list(kinds)}):
        entry = {key: int(row[key]) for key in ("entities", "name_zh", "name_zh_or_synonym")}
        counts[kinds.get(row["label"], "none")] = entry
        for key, value in entry.items():
            counts["all"][key] += value
    return counts
