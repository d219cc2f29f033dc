"""Diseases: one disease's names, and the videos whose latest profile predicts it (the trained head) or is tagged with
it (open-vocabulary tags)."""
from __future__ import annotations

from typing import Any

from kg_builder.graph import Graph

#: The orders ``disease_videos`` can sort in.
SORT_KEYS = ("popularity", "quality")
#: What makes a video about a disease: the trained head's prediction, or an open-vocabulary tag.
VIA = ("predicted", "tagged")

#: Is there such a disease? (``:Entity:Disease``, not ``:Disease`` alone: the id's index is on ``:Entity``.)
DISEASE_EXISTS = "MATCH (d:Entity:Disease {id: $id}) RETURN d.id AS id, d.name AS name, d.name_zh AS name_zh"

#: Videos about the disease. The sort key is a parameter too: ORDER BY a CASE on $sort, so nothing is formatted into
#: the query text.
DISEASE_VIDEOS = """
MATCH (d:Entity:Disease {id: $id})
// only each video's latest profile speaks for it
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true})-[pr:PREDICTS]->(d)
WHERE p.quality >= $min_quality
RETURN v.id AS video_id, v.title AS title, v.platform AS platform, v.url AS url, v.published_at AS published_at,
       v.synthetic AS synthetic,
       p.popularity AS popularity, p.popularity_pct AS popularity_pct, p.quality AS quality,
       pr.prob AS prob, pr.rank AS rank, p.model_version AS model_version
// by quality: best quality first, the more popular of equals first; by popularity: most popular first
ORDER BY CASE $sort WHEN 'quality' THEN p.quality ELSE p.popularity END DESC, p.popularity DESC, video_id
LIMIT $limit
"""

#: Videos whose latest profile is tagged with the disease (any source), sorted like DISEASE_VIDEOS.
DISEASE_TAGGED_VIDEOS = """
MATCH (d:Entity:Disease {id: $id})
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true})-[t:TAGGED]->(d)
WHERE p.quality >= $min_quality
RETURN v.id AS video_id, v.title AS title, v.platform AS platform, v.url AS url, v.published_at AS published_at,
       v.synthetic AS synthetic,
       p.popularity AS popularity, p.popularity_pct AS popularity_pct, p.quality AS quality,
       t.score AS score, t.source AS source, t.sources AS sources, t.rank AS rank, p.model_version AS model_version
ORDER BY CASE $sort WHEN 'quality' THEN p.quality ELSE p.popularity END DESC, p.popularity DESC, video_id
LIMIT $limit
"""


def disease(graph: Graph, disease_id: str) -> dict[str, Any] | None:
    """``{id, name, name_zh}`` of the disease; None when there is no such disease."""
    rows = graph.read(DISEASE_EXISTS, {"id": disease_id})
    return rows[0] if rows else None


def disease_videos(graph: Graph, disease_id: str, *, sort: str, min_quality: int, limit: int,
                   via: str = "predicted") -> list[dict[str, Any]]:
    """Videos whose latest profile predicts the disease (``via="predicted"``: with ``prob`` and ``rank``) or is tagged
    with it (``via="tagged"``: with the tag's ``score``, ``source``, ``sources`` and ``rank``), with quality at least
    ``min_quality``, sorted by ``sort`` (one of SORT_KEYS), at most ``limit``."""
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {SORT_KEYS}, got {sort!r}")
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}, got {via!r}")
    query = DISEASE_VIDEOS if via == "predicted" else DISEASE_TAGGED_VIDEOS
    return graph.read(query, {"id": disease_id, "sort": sort, "min_quality": min_quality, "limit": limit})
