"""Search by meaning: videos ranked by the cosine of their text's sentence vector to a query's (vector index
``video_text_vector``) plus the share of the query's graph concepts they mention or are tagged with.

The ranking runs in one query (:func:`search_query`): candidates are the nearest videos in the vector index and, when
the query names graph entities, the videos that mention them (affirmed) or whose latest profile is tagged with them;
every candidate is then scored

    score = cosine(video, query) + entity_weight · (query concepts the video shares / query concepts)

A concept is a linked entity together with its MAPS_TO equivalents (the lexicon's Glaucoma is ICD-10's H40), so a
video that mentions ``ICD10:H40`` shares the concept of a query that named ``OVP:glaucoma``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from kg_builder.graph import Graph

#: The vector index of the videos' text vectors (cypher/schema.cypher).
TEXT_VECTOR_INDEX = "video_text_vector"

#: An entity and its equivalents in other sources (MAPS_TO either way), for the ids the graph has.
CONCEPTS = """
UNWIND $ids AS id
MATCH (e:Entity {id: id})
OPTIONAL MATCH (e)-[:MAPS_TO]-(x:Entity)
RETURN e.id AS id, e.name AS name, e.name_zh AS name_zh, collect(DISTINCT x.id) AS equivalents
"""

#: What a video says about itself for "more like this": its text vector and the entities it mentions (affirmed) or
#: its latest profile is tagged with.
VIDEO_MEANING = """
MATCH (v:Video {id: $id})
RETURN v.text_vector AS vector,
       COLLECT { MATCH (v)-[m:MENTIONS]->(e:Entity) WHERE NOT coalesce(m.negated, false) RETURN DISTINCT e.id } +
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(:Profile {latest: true})-[:TAGGED]->(d:Disease) RETURN DISTINCT d.id }
         AS entity_ids
"""

_VECTOR_CANDIDATES = """
  // the nearest videos by the meaning of their text (approximate nearest neighbours from the vector index)
  CALL db.index.vector.queryNodes('video_text_vector', $candidates, $vector) YIELD node
  RETURN node AS v"""

_ENTITY_CANDIDATES = """
  UNION
  // videos that mention a query concept, not negated (any $entity_candidates of them: each gets the same bonus)
  UNWIND $concepts AS c
  UNWIND c.ids AS id
  MATCH (:Entity {id: id})<-[m:MENTIONS]-(v:Video)
  WHERE NOT coalesce(m.negated, false)
  WITH DISTINCT v LIMIT $entity_candidates
  RETURN v
  UNION
  // videos whose latest profile is tagged with a query concept
  UNWIND $concepts AS c
  UNWIND c.ids AS id
  MATCH (:Entity {id: id})<-[:TAGGED]-(:Profile {latest: true})<-[:HAS_PROFILE]-(v:Video)
  WITH DISTINCT v LIMIT $entity_candidates
  RETURN v"""

_SCORE = """
}
WITH DISTINCT v
WHERE v.text_vector IS NOT NULL AND NOT v.id IN $exclude
// vector.similarity.cosine is (1 + cos) / 2; the raw cosine is what the tags and the reasons speak of
WITH v, 2 * vector.similarity.cosine(v.text_vector, $vector) - 1 AS similarity
// per query concept: does the video mention it (affirmed), is its latest profile tagged with it?
WITH v, similarity,
     [c IN $concepts WHERE EXISTS { MATCH (v)-[m:MENTIONS]->(e:Entity) WHERE e.id IN c.ids AND NOT coalesce(m.negated, false) }
        | c.id] AS mentioned,
     [c IN $concepts WHERE EXISTS { MATCH (v)-[:HAS_PROFILE]->(:Profile {latest: true})-[:TAGGED]->(d:Disease)
                                    WHERE d.id IN c.ids } | c.id] AS tagged
WITH v, similarity, mentioned, tagged,
     size([c IN $concepts WHERE c.id IN mentioned OR c.id IN tagged]) AS shared
WITH v, similarity, mentioned, tagged,
     similarity + $entity_weight * CASE size($concepts) WHEN 0 THEN 0.0 ELSE toFloat(shared) / size($concepts) END AS score
OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true})
RETURN v.id AS video_id, v.title AS title, v.platform AS platform, v.synthetic AS synthetic, score, similarity,
       mentioned, tagged, p.quality AS quality, p.popularity_pct AS popularity_pct
ORDER BY score DESC, video_id
LIMIT $k
"""


def search_query(with_entities: bool) -> str:
    """The ranking query: vector candidates, and entity candidates when the query has concepts (``$concepts``: a list
    of ``{id, ids}``; the entity branch is left out when it is empty, which saves its scan)."""
    return "CALL () {" + _VECTOR_CANDIDATES + (_ENTITY_CANDIDATES if with_entities else "") + _SCORE


@dataclass(frozen=True)
class Concept:
    """A query entity and the ids that count as it (itself and its MAPS_TO equivalents)."""

    id: str
    name: str
    name_zh: str
    ids: tuple[str, ...]


def concepts(graph: Graph, entity_ids: Sequence[str]) -> list[Concept]:
    """The concepts of the given entity ids (unknown ids left out), in the order given."""
    rows = {r["id"]: r for r in graph.read(CONCEPTS, {"ids": list(dict.fromkeys(entity_ids))})}
    return [Concept(i, rows[i]["name"] or "", rows[i]["name_zh"] or "",
                    (i, *sorted(x for x in rows[i]["equivalents"] if x and x != i)))
            for i in dict.fromkeys(entity_ids) if i in rows]


def video_meaning(graph: Graph, video_id: str) -> tuple[list[float] | None, list[str]] | None:
    """A video's text vector (None when it has none) and the entities it mentions or is tagged with; None when there
    is no such video."""
    rows = graph.read(VIDEO_MEANING, {"id": video_id})
    if not rows:
        return None
    return rows[0]["vector"], list(dict.fromkeys(rows[0]["entity_ids"]))


def search_videos(graph: Graph, vector: Sequence[float], found: Sequence[Concept], *, k: int, candidates: int,
                  entity_candidates: int, entity_weight: float, exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ``k`` best videos for a query vector and its concepts (see the module docstring), best first:
    ``{video_id, title, platform, synthetic, score, similarity, mentioned, tagged, quality, popularity_pct}``,
    ``mentioned`` and ``tagged`` the ids of the query concepts the video shares that way."""
    params = {"vector": [float(x) for x in vector], "concepts": [{"id": c.id, "ids": list(c.ids)} for c in found],
              "candidates": int(candidates), "entity_candidates": int(entity_candidates), "k": int(k),
              "entity_weight": float(entity_weight), "exclude": list(exclude)}
    if not found:
        del params["entity_candidates"]
    return graph.read(search_query(bool(found)), params)
