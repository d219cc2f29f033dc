"""Entities: the bilingual lookup over names and synonyms, and one entity with its neighbourhood.

A lookup asks Neo4j one thing, the full-text (BM25) candidates of the ``entity_names`` index; everything else it needs
(each entity's names, kind and MAPS_TO ids, and which entities bear exactly the typed name) changes only when the
graph is rebuilt, so it is read once into an :class:`EntityDictionary` and served from memory. :class:`EntityLookup`
holds one per process, with a cache of recent answers, and drops both when the build stamp
(:mod:`kg_builder.store.build_stamp`) changes.

The lookup's queries are built by small pure functions (testable by exact string); the text a user types reaches
them only Lucene-escaped and as a parameter.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from kg_builder.graph import Graph
from kg_builder.schema import KIND_OF_LABEL
from kg_builder.source_config import SOURCES
from kg_builder.store.build_stamp import read_build_stamp

log = logging.getLogger(__name__)

#: Characters the Lucene query parser treats as syntax; each is escaped with a backslash.
LUCENE_SPECIAL = frozenset('+-&|!(){}[]^"~*?:\\/')
#: Ranking = tiers, then the full-text (BM25) score. Tier 2: the text equals a name, Chinese name or synonym
#: (case-folded) of a curated lexicon concept; tier 1: it equals one of another source's entity; tier 0: partial
#: (word or CJK-bigram) matches. Bigram matching scores partial names ("急性青光眼") close to the exact one, and a user
#: who types a whole name means that concept; among equal names ("pink eye" is also an HPO synonym of Conjunctivitis)
#: the curated concept carries the Chinese name, the profile label and the MAPS_TO links, so it goes first.
#: The reported score is the full-text score + the tier's boost (BM25 scores of short names stay far below 50, so
#: sorting by score gives the same order; the sort uses the tier explicitly all the same).
EXACT_BOOST = 100.0
CURATED_BOOST = 50.0
#: Full-text candidates ranked per requested hit (at least 50): an exact match among them keeps its full-text score.
CANDIDATE_FACTOR = 10
#: How often (seconds) a process's :class:`EntityLookup` reads the build stamp. Not on every request: that read is a
#: Bolt round trip, as long as a whole cached answer. A build takes tens of seconds and its writes land batch by
#: batch, so lookups during a build see a mixed graph anyway; a few seconds after it ends, every process has the new one.
STAMP_CHECK_INTERVAL_S = 2.0
#: Answers kept per process (query text and limit → hits); about 2 KB each.
ANSWER_CACHE_SIZE = 4096


def escape_lucene(text: str) -> str:
    """``text`` as a Lucene query matching its words literally: special characters escaped, AND/OR/NOT lower-cased
    (the analyzer lower-cases terms anyway, so only their operator meaning is lost)."""
    escaped = "".join("\\" + ch if ch in LUCENE_SPECIAL else ch for ch in text)
    return " ".join(word.lower() if word in ("AND", "OR", "NOT") else word for word in escaped.split())


def normalise_name(text: str) -> str:
    """Case-folded, whitespace-collapsed: what 'equals a name' means for the exact-match boost."""
    return " ".join(text.split()).casefold()


def fulltext_query() -> str:
    """Candidate ids and BM25 scores from the ``entity_names`` index ($query is already Lucene-escaped)."""
    return (
        "CALL db.index.fulltext.queryNodes('entity_names', $query, {limit: $candidates}) YIELD node, score\n"
        "RETURN node.id AS id, score"
    )


#: What a lookup hit shows and ranks on, per entity ``n``, with the ids linked to it by MAPS_TO (either direction).
_ENTRY_COLUMNS = (
    "RETURN n.id AS id, n.name AS name, n.name_zh AS name_zh, coalesce(n.synonyms, []) AS synonyms,\n"
    "       n.source AS source, labels(n) AS labels,\n"
    "       COLLECT { MATCH (n)-[:MAPS_TO]-(m:Entity) RETURN DISTINCT m.id } AS xrefs"
)


def dictionary_query() -> str:
    """Every entity, as an :class:`EntityEntry` row."""
    return "MATCH (n:Entity)\n" + _ENTRY_COLUMNS


def entities_by_id_query() -> str:
    """The entities whose ids are in $ids (those created since the dictionary was loaded), as EntityEntry rows."""
    return "UNWIND $ids AS id\nMATCH (n:Entity {id: id})\n" + _ENTRY_COLUMNS


@dataclass(frozen=True)
class EntityEntry:
    """What the lookup knows of one entity: its names, source, kind (lower-case, '' if none) and MAPS_TO ids, sorted."""

    id: str
    name: str
    name_zh: str | None
    synonyms: tuple[str, ...]
    source: str | None
    kind: str
    xrefs: tuple[str, ...]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "EntityEntry":
        return cls(
            id=row["id"],
            name=row["name"] or "",
            name_zh=row.get("name_zh"),
            synonyms=tuple(row.get("synonyms") or ()),
            source=row.get("source"),
            kind=next((KIND_OF_LABEL[label] for label in row["labels"] if label in KIND_OF_LABEL), ""),
            xrefs=tuple(sorted(x for x in row.get("xrefs") or () if x is not None)),
        )

    def names(self) -> list[str]:
        return [name for name in (self.name, self.name_zh or "", *self.synonyms) if name]

    def candidate(self, score: float) -> dict[str, Any]:
        """A row for :func:`rank_candidates` (built by hand: ``dataclasses.asdict`` deep-copies every list)."""
        return {"id": self.id, "name": self.name, "name_zh": self.name_zh, "synonyms": self.synonyms,
                "source": self.source, "kind": self.kind, "xrefs": self.xrefs, "score": score}


class EntityDictionary:
    """Every entity of one graph build, by id, and the ids of the entities that bear each name (normalised).

    About 8,000 entities take a few MB; loading them is one query (a fraction of a second).
    """

    def __init__(self, entries: Iterable[EntityEntry], stamp: str | None = None) -> None:
        self.stamp = stamp
        self.entries: dict[str, EntityEntry] = {}
        by_name: dict[str, list[str]] = {}
        for entry in entries:
            self.entries[entry.id] = entry
            for name in {normalise_name(name) for name in entry.names()}:
                by_name.setdefault(name, []).append(entry.id)
        self.by_name = {name: tuple(ids) for name, ids in by_name.items()}

    @classmethod
    def load(cls, graph: Graph) -> "EntityDictionary":
        """Read every entity (the stamp first: if a build ends while loading, the next stamp check reloads)."""
        stamp = read_build_stamp(graph)
        return cls((EntityEntry.from_row(row) for row in graph.read(dictionary_query())), stamp)

    def exact(self, text: str) -> tuple[str, ...]:
        """Ids of the entities with a name, Chinese name or synonym equal to ``text`` (both normalised)."""
        return self.by_name.get(normalise_name(text), ())

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class LookupHit:
    """One lookup result; ``xrefs`` are the ids linked to it by MAPS_TO (either direction)."""

    id: str
    name: str
    name_zh: str | None
    kind: str
    score: float
    xrefs: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "name_zh": self.name_zh, "kind": self.kind, "score": self.score,
                "xrefs": list(self.xrefs)}


def rank_candidates(text: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge candidate rows by id (best full-text score kept), add the tier boosts, sort best first.

    Each row has ``id``, ``score`` and the names it is matched on (``name``, ``name_zh``, ``synonyms``) and its
    ``source``. Each returned row gains ``tier`` (2 exact curated, 1 exact, 0 partial) and ``score`` = full-text score +
    EXACT_BOOST (exact) + CURATED_BOOST (exact and from the lexicon). Order: tier, then score, then id (stable).
    """
    folded = normalise_name(text)
    curated = SOURCES["lexicon"].source
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        previous = merged.get(row["id"])
        if previous is None or row["score"] > previous["score"]:
            merged[row["id"]] = dict(row)
    for row in merged.values():
        names = [row.get("name") or "", row.get("name_zh") or "", *(row.get("synonyms") or [])]
        exact = any(normalise_name(name) == folded for name in names if name)
        row["tier"] = (2 if row.get("source") == curated else 1) if exact else 0
        row["score"] = float(row["score"]) + (EXACT_BOOST if exact else 0.0) + (CURATED_BOOST if row["tier"] == 2 else 0.0)
    return sorted(merged.values(), key=lambda row: (-row["tier"], -row["score"], row["id"]))


def lookup(graph: Graph, dictionary: EntityDictionary, text: str, *, limit: int = 10) -> list[LookupHit]:
    """Entities whose name, Chinese name or synonyms match ``text`` (Chinese or English), best first.

    Candidates are the full-text index's top ``candidate_pool(limit)`` and the entities whose name equals ``text``
    (from ``dictionary``), ranked by :func:`rank_candidates`. An entity the full-text index returns that
    ``dictionary`` does not hold (created since it was loaded) is read from the graph. The text is Lucene-escaped and
    sent as a parameter, so it can neither inject Cypher nor Lucene syntax. Returns [] for text with no searchable
    characters.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    query = escape_lucene(text)
    if not re.search(r"\w", query):
        return []
    exact = dictionary.exact(text)
    pool = candidate_pool(limit)
    # Most questions are settled by a short head of the full-text ranking; the whole pool is fetched only when the
    # head cannot tell (see head_settles), so the answer is always the one the whole pool gives.
    head = min(pool, 2 * limit + len(exact))
    scored = graph.read(fulltext_query(), {"query": query, "candidates": head})
    if head < pool and not head_settles(scored, head, exact, limit):
        scored = graph.read(fulltext_query(), {"query": query, "candidates": pool})
    entries = dictionary.entries
    missing = [row["id"] for row in scored if row["id"] not in entries]
    if missing:
        entries = {**entries, **{row["id"]: EntityEntry.from_row(row) for row in graph.read(entities_by_id_query(), {"ids": missing})}}
    rows = [entries[row["id"]].candidate(row["score"]) for row in scored if row["id"] in entries]
    rows += [entries[entity_id].candidate(0.0) for entity_id in exact]
    ranked = rank_candidates(text, rows)[:limit]
    return [
        LookupHit(
            id=row["id"], name=row["name"], name_zh=row["name_zh"], kind=row["kind"],
            score=round(row["score"], 4), xrefs=list(row["xrefs"]),
        )
        for row in ranked
    ]


def candidate_pool(limit: int) -> int:
    """How many full-text candidates a lookup of ``limit`` hits ranks: an exact match's full-text score counts only
    if it is among them (below that it is scored 0 + its boost)."""
    return max(50, limit * CANDIDATE_FACTOR)


def head_settles(head: list[dict[str, Any]], asked: int, exact: Iterable[str], limit: int) -> bool:
    """Whether the first ``asked`` full-text candidates (``head``: id, score) rank ``limit`` hits as the whole pool would.

    True when the index had no more (fewer rows than asked), or when every exact match is in the head (so each keeps
    its full-text score) and at least ``limit`` other candidates score strictly above the lowest score in the head (a
    candidate past the head scores at most that, so it can neither enter the top ``limit`` nor tie with one there,
    whatever order ties are broken in).
    """
    if len(head) < asked:
        return True
    ids = {row["id"] for row in head}
    if any(entity_id not in ids for entity_id in exact):
        return False
    floor = min(row["score"] for row in head)
    exact_ids = set(exact)
    return sum(1 for row in head if row["id"] not in exact_ids and row["score"] > floor) >= limit


class EntityLookup:
    """A process's entity lookup: the :class:`EntityDictionary` of the current build and an LRU of answers.

    Both are dropped when the build stamp changes; the stamp is read at most every ``check_interval_s`` seconds
    (0: on every call), by whichever call finds the check due, while calls running at the same time keep using what is
    held. The first call loads the dictionary; a call that finds a new stamp loads the new one, and the others serve
    the old one until it is ready. Thread-safe (gunicorn's gthread workers call it from several threads).
    """

    def __init__(self, *, check_interval_s: float = STAMP_CHECK_INTERVAL_S, cache_size: int = ANSWER_CACHE_SIZE) -> None:
        if check_interval_s < 0:
            raise ValueError(f"check_interval_s must be >= 0, got {check_interval_s}")
        self.check_interval_s = check_interval_s
        self.cache_size = cache_size
        self._dictionary: EntityDictionary | None = None
        self._answers: OrderedDict[tuple[str, int], tuple[LookupHit, ...]] = OrderedDict()
        self._checked_at = -float("inf")
        self._refresh = threading.Lock()  # one caller reads the stamp and reloads at a time
        self._cache = threading.Lock()

    def lookup(self, graph: Graph, text: str, *, limit: int = 10) -> list[LookupHit]:
        """:func:`lookup` in ``graph`` at its current build, answered from memory when the same question was asked
        before."""
        dictionary = self.dictionary(graph)
        key = (text, limit)
        with self._cache:
            hits = self._answers.get(key)
            if hits is not None:
                self._answers.move_to_end(key)
                return list(hits)
        hits = tuple(lookup(graph, dictionary, text, limit=limit))
        with self._cache:
            if self._dictionary is dictionary:  # not an answer from a graph that has been replaced meanwhile
                self._answers[key] = hits
                while len(self._answers) > self.cache_size:
                    self._answers.popitem(last=False)
        return list(hits)

    def dictionary(self, graph: Graph) -> EntityDictionary:
        """The dictionary of ``graph``'s current build (reloaded if the build stamp changed since it was loaded)."""
        held = self._dictionary
        if held is not None and time.monotonic() - self._checked_at < self.check_interval_s:
            return held
        # Without a dictionary every caller must wait for the first; with one, a caller that finds another already
        # checking serves what is held.
        if not self._refresh.acquire(blocking=held is None):
            return held  # type: ignore[return-value]
        try:
            held = self._dictionary
            if held is None or time.monotonic() - self._checked_at >= self.check_interval_s:
                if held is None or read_build_stamp(graph) != held.stamp:
                    started = time.perf_counter()
                    fresh = EntityDictionary.load(graph)
                    with self._cache:
                        self._dictionary = fresh
                        self._answers.clear()
                    log.info("entity dictionary loaded: %d entities, build stamp %s, in %.2f s",
                             len(fresh), fresh.stamp, time.perf_counter() - started)
                self._checked_at = time.monotonic()
            return self._dictionary  # type: ignore[return-value]
        finally:
            self._refresh.release()


#: One entity with everything its detail view shows, in one round trip. COLLECT/COUNT subqueries keep each list
#: independent (no cross-product between parents, children and phenotypes).
ENTITY_DETAIL = """
MATCH (e:Entity {id: $id})
RETURN e.id AS id, e.name AS name, e.name_zh AS name_zh,
       // the kind label without the shared :Entity
       [l IN labels(e) WHERE l <> 'Entity'][0] AS kind,
       e.definition AS definition, coalesce(e.synonyms, []) AS synonyms,
       coalesce(e.synonym_scopes, []) AS synonym_scopes, coalesce(e.xrefs, []) AS xrefs,
       e.source AS source, e.source_version AS source_version, coalesce(e.profile_label, false) AS profile_label,
       // IS_A points from child to parent
       COLLECT { MATCH (e)-[:IS_A]->(p:Entity) RETURN p {.id, .name, .name_zh} ORDER BY p.id LIMIT $max } AS parents,
       COUNT { (e)<-[:IS_A]-(:Entity) } AS child_count,
       COLLECT { MATCH (e)<-[:IS_A]-(c:Entity) RETURN c {.id, .name, .name_zh} ORDER BY c.id LIMIT $max } AS children,
       // MAPS_TO: the same concept in another source, whichever way the edge was written
       COLLECT { MATCH (e)-[:MAPS_TO]-(m:Entity) RETURN DISTINCT m {.id, .name, .source} ORDER BY m.id LIMIT $max } AS maps_to,
       // a disease's phenotypes, or a phenotype's diseases (HAS_PHENOTYPE points disease → phenotype)
       COUNT { (e)-[:HAS_PHENOTYPE]->(:Entity) } AS phenotype_count,
       COLLECT { MATCH (e)-[h:HAS_PHENOTYPE]->(p:Entity) RETURN p {.id, .name, .name_zh, frequency: h.frequency}
                 ORDER BY p.id LIMIT $max } AS phenotypes,
       COUNT { (e)<-[:HAS_PHENOTYPE]-(:Entity) } AS disease_count,
       COLLECT { MATCH (e)<-[h:HAS_PHENOTYPE]-(d:Entity) RETURN d {.id, .name, .name_zh, frequency: h.frequency}
                 ORDER BY d.id LIMIT $max } AS diseases,
       // videos whose caption mentions it (negated mentions included: the video still talks about it)
       COUNT { MATCH (v:Video)-[:MENTIONS]->(e) RETURN DISTINCT v } AS video_count
"""


def entity_detail(graph: Graph, entity_id: str, *, max_neighbours: int) -> dict[str, Any] | None:
    """One entity: names, synonyms, definition, parents, children, MAPS_TO, diseases or phenotypes (each list at most
    ``max_neighbours`` long; the counts say how many there are in all) and how many videos mention it. None when
    there is no such entity."""
    rows = graph.read(ENTITY_DETAIL, {"id": entity_id, "max": max_neighbours})
    return rows[0] if rows else None
