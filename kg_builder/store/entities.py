"""Entities: the bilingual full-text lookup over names and synonyms, and one entity with its neighbourhood.

The lookup's queries are built by small pure functions (testable by exact string); the text a user types reaches
them only Lucene-escaped and as a parameter.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from kg_builder.graph import Graph
from kg_builder.schema import ENTITY_KINDS
from kg_builder.source_config import SOURCES

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
#: Full-text candidates fetched per requested hit, so that exact matches ranked low by BM25 still get re-ranked.
CANDIDATE_FACTOR = 10


def escape_lucene(text: str) -> str:
    """``text`` as a Lucene query matching its words literally: special characters escaped, AND/OR/NOT lower-cased
    (the analyzer lower-cases terms anyway, so only their operator meaning is lost)."""
    escaped = "".join("\\" + ch if ch in LUCENE_SPECIAL else ch for ch in text)
    return " ".join(word.lower() if word in ("AND", "OR", "NOT") else word for word in escaped.split())


def normalise_name(text: str) -> str:
    """Case-folded, whitespace-collapsed: what 'equals a name' means for the exact-match boost."""
    return " ".join(text.split()).casefold()


def fulltext_query() -> str:
    """Candidates from the ``entity_names`` index ($query is already Lucene-escaped)."""
    return (
        "CALL db.index.fulltext.queryNodes('entity_names', $query, {limit: $candidates}) YIELD node, score\n"
        "RETURN node.id AS id, node.name AS name, node.name_zh AS name_zh, node.synonyms AS synonyms,\n"
        "       node.source AS source, labels(node) AS labels, score"
    )


def exact_match_query() -> str:
    """Entities whose name, Chinese name or a synonym equals $folded (lower-cased, trimmed).

    A label scan over a few thousand entities takes milliseconds; it catches exact names BM25 ranked too low.
    """
    return (
        "MATCH (node:Entity)\n"
        "WHERE toLower(node.name) = $folded OR toLower(node.name_zh) = $folded\n"
        "   OR any(s IN coalesce(node.synonyms, []) WHERE toLower(s) = $folded)\n"
        "RETURN node.id AS id, node.name AS name, node.name_zh AS name_zh, node.synonyms AS synonyms,\n"
        "       node.source AS source, labels(node) AS labels, 0.0 AS score\n"
        "LIMIT $candidates"
    )


def linked_ids_query() -> str:
    """Ids linked to each of $ids by MAPS_TO, in either direction."""
    return (
        "UNWIND $ids AS id\n"
        "MATCH (n:Entity {id: id})\n"
        "OPTIONAL MATCH (n)-[:MAPS_TO]-(m:Entity)\n"
        "RETURN id, [x IN collect(DISTINCT m.id) WHERE x IS NOT NULL] AS linked"
    )


@dataclass
class LookupHit:
    """One lookup result; ``xrefs`` are the ids linked to it by MAPS_TO (either direction)."""

    id: str
    name: str
    name_zh: str | None
    kind: str
    score: float
    xrefs: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_candidates(text: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge candidate rows by id (best full-text score kept), add the tier boosts, sort best first.

    Each returned row gains ``tier`` (2 exact curated, 1 exact, 0 partial) and ``score`` = full-text score +
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


def lookup(graph: Graph, text: str, *, limit: int = 10) -> list[LookupHit]:
    """Entities whose name, Chinese name or synonyms match ``text`` (Chinese or English), best first.

    The text is Lucene-escaped and sent as a parameter, so it can neither inject Cypher nor Lucene syntax.
    Returns [] for text with no searchable characters.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    query = escape_lucene(text)
    if not re.search(r"\w", query):
        return []
    candidates = max(50, limit * CANDIDATE_FACTOR)
    rows = graph.read(fulltext_query(), {"query": query, "candidates": candidates})
    rows += graph.read(exact_match_query(), {"folded": " ".join(text.split()).lower(), "candidates": candidates})
    ranked = rank_candidates(text, rows)[:limit]
    linked = {row["id"]: row["linked"] for row in graph.read(linked_ids_query(), {"ids": [r["id"] for r in ranked]})}
    kinds = {label: kind for kind, label in ENTITY_KINDS.items()}
    return [
        LookupHit(
            id=row["id"],
            name=row["name"],
            name_zh=row.get("name_zh"),
            kind=next((kinds[label] for label in row["labels"] if label in kinds), ""),
            score=round(row["score"], 4),
            xrefs=sorted(linked.get(row["id"], [])),
        )
        for row in ranked
    ]


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
