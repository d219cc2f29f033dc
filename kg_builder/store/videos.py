"""Videos: one video with its linked mentions, its latest profile and the history of its profiles."""
from __future__ import annotations

from typing import Any

from kg_builder.graph import Graph

#: The video and everything its detail view shows, in one round trip.
VIDEO_DETAIL = """
MATCH (v:Video {id: $id})
// the metadata without the 256-d embedding, which is for the vector index, not for readers
RETURN v {.id, .platform, .url, .path, .title, .caption, .hashtags, .transcript, .duration_s, .published_at,
          .author_followers, .synthetic, has_embedding: v.embedding IS NOT NULL} AS video,
       // linked entities by field, in text order; field is null for mentions written before mentions had one
       COLLECT { MATCH (v)-[m:MENTIONS]->(e:Entity)
                 RETURN {entity_id: e.id, name: e.name, name_zh: e.name_zh,
                         kind: [l IN labels(e) WHERE l <> 'Entity'][0], surface: m.surface, field: m.field,
                         start: m.start, end: m.end, score: m.score, negated: coalesce(m.negated, false)} AS mention
                 ORDER BY m.field, m.start, m.end } AS mentions,
       // the latest profile (at most one is latest) with its predicted diseases, best rank first
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true})
                 RETURN p {.*, predictions: COLLECT { MATCH (p)-[pr:PREDICTS]->(d:Disease)
                                                      RETURN {disease_id: d.id, name: d.name, name_zh: d.name_zh,
                                                              prob: pr.prob, rank: pr.rank} AS prediction
                                                      ORDER BY pr.rank } } AS profile
                 ORDER BY p.created_at DESC LIMIT 1 } AS latest,
       // every profile, newest first (one per model version)
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile)
                 RETURN p {.id, .model_version, .created_at, .popularity, .popularity_pct, .quality, .latest} AS profile
                 ORDER BY p.created_at DESC, p.id } AS history
"""


def video_detail(graph: Graph, video_id: str) -> dict[str, Any] | None:
    """``{video, mentions, latest, history}`` of one video (``latest``: a list of at most one profile, with its
    ``predictions``; its ``explanation`` is still the stored JSON string); None when there is no such video."""
    rows = graph.read(VIDEO_DETAIL, {"id": video_id})
    return rows[0] if rows else None
