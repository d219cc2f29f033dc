"""The review pages' reads: the video list, one video with everything its page shows, the review queue, an entity's
videos, the profile-label diseases.

Sorting keys come from fixed allow-lists (:data:`VIDEO_SORTS`); every value is a parameter.

**Certainty** (what the review queue orders by, least certain first) is computed from the video's latest profile:

- quality certainty = 1 − H(quality_probs) / ln 5, the normalised entropy of the GQS distribution (0 when the five
  grades are equally likely, 1 when one grade has all the probability; 0 when the profile has no distribution);
- disease certainty = the mean of |2·p − 1| over the predicted diseases' probabilities p (how far each is from a coin
  toss);
- certainty = the mean of the two (quality certainty alone when no disease is predicted).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kg_builder.graph import Graph

#: Video list sort keys → ORDER BY clauses (``disagreement``: |model GQS − mean of the reviewers' latest GQS|).
VIDEO_SORTS: dict[str, str] = {
    "published": "row.published_at DESC, row.id",
    "quality": "row.quality DESC, row.popularity_pct DESC, row.id",
    "quality_asc": "row.quality ASC, row.popularity_pct DESC, row.id",
    "popularity": "row.popularity_pct DESC, row.id",
    "disagreement": "row.disagreement DESC, row.id",
    "title": "toLower(row.title), row.id",
}
RATED_FILTERS = ("any", "yes", "no")

# Certainty of a latest profile `p` as defined in the module docstring (a Cypher expression over p and `probs`).
_CERTAINTY = """
  CASE WHEN size(coalesce(p.quality_probs, [])) = 0 THEN 0.0
       ELSE 1.0 - reduce(h = 0.0, q IN p.quality_probs | h - CASE WHEN q > 0 THEN q * log(q) ELSE 0.0 END) / log(5)
  END AS quality_certainty,
  CASE WHEN size(probs) = 0 THEN null
       ELSE reduce(s = 0.0, x IN probs | s + abs(2.0 * x - 1.0)) / size(probs)
  END AS disease_certainty
"""

# The reviewers' consensus-relevant numbers of a video `v`: how many raters, the mean of their latest GQS.
_RATERS = """
CALL (v) {
  OPTIONAL MATCH (v)<-[:RATES]-(x:Rating)<-[:RATED]-(r:Rater)
  WITH r, x ORDER BY x.created_at DESC, x.id DESC
  WITH r, collect(x)[0] AS last
  RETURN count(r) AS raters, avg(last.gqs) AS mean_gqs
}
"""


def video_list_query(sort: str) -> str:
    """The video list query for one of :data:`VIDEO_SORTS` (KeyError for anything else)."""
    order = VIDEO_SORTS[sort]
    return f"""
MATCH (v:Video)
WHERE $q = '' OR toLower(coalesce(v.title, '')) CONTAINS $q OR toLower(coalesce(v.caption, '')) CONTAINS $q
      OR toLower(v.id) CONTAINS $q
OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile {{latest: true}})
WITH v, p
WHERE ($platform = '' OR v.platform = $platform)
  AND ($quality IS NULL OR p.quality = $quality)
  AND ($disease = '' OR EXISTS {{ (p)-[:PREDICTS]->(:Entity {{id: $disease}}) }})
{_RATERS}
WITH v, p, raters, mean_gqs
WHERE $rated = 'any' OR ($rated = 'yes' AND raters > 0) OR ($rated = 'no' AND raters = 0)
WITH {{id: v.id, title: v.title, platform: v.platform, published_at: v.published_at, synthetic: v.synthetic,
       quality: p.quality, popularity_pct: p.popularity_pct, raters: raters, mean_gqs: mean_gqs,
       disagreement: CASE WHEN p IS NULL OR mean_gqs IS NULL THEN null ELSE abs(p.quality - mean_gqs) END,
       diseases: COLLECT {{ MATCH (p)-[pr:PREDICTS]->(d:Disease)
                            RETURN {{id: d.id, name: d.name, name_zh: d.name_zh, prob: pr.prob}} ORDER BY pr.rank }}
      }} AS row
ORDER BY {order}
WITH collect(row) AS rows
RETURN size(rows) AS total, rows[$skip..$skip + $limit] AS rows
"""


@dataclass(frozen=True)
class VideoFilter:
    """What the video list is filtered and sorted by (``q`` is matched case-insensitively in title, caption and id)."""

    q: str = ""
    platform: str = ""
    disease: str = ""
    quality: int | None = None
    rated: str = "any"
    sort: str = "published"
    page: int = 1
    per_page: int = 50


def list_videos(graph: "Graph", spec: VideoFilter) -> tuple[int, list[dict[str, Any]]]:
    """(how many videos match, the page of them) for ``spec``."""
    if spec.rated not in RATED_FILTERS:
        raise ValueError(f"rated must be one of {RATED_FILTERS}, got {spec.rated!r}")
    rows = graph.read(video_list_query(spec.sort), {
        "q": spec.q.lower(), "platform": spec.platform, "disease": spec.disease, "quality": spec.quality,
        "rated": spec.rated, "skip": (spec.page - 1) * spec.per_page, "limit": spec.per_page,
    })
    row = rows[0] if rows else {"total": 0, "rows": []}
    return int(row["total"]), list(row["rows"])


# One video with everything its page shows, in one round trip: the stored metadata (without the embedding and the text
# vector, which are for the vector indexes; whether it has a text vector, which search by meaning needs), linked
# mentions, the latest profile (every property, the explanation as its JSON string), each predicted disease with the
# phenotype names the evidence refers to, and the profile history with each version's distribution and diseases.
VIDEO_PAGE = """
MATCH (v:Video {id: $id})
RETURN v {.*, embedding: null, text_vector: null, has_text_vector: v.text_vector IS NOT NULL} AS video,
       COLLECT { MATCH (v)-[m:MENTIONS]->(e:Entity)
                 RETURN {entity_id: e.id, name: e.name, name_zh: e.name_zh,
                         kind: [l IN labels(e) WHERE l <> 'Entity'][0], surface: m.surface, start: m.start,
                         end: m.end, score: m.score, negated: coalesce(m.negated, false), field: m.field}
                 ORDER BY m.start, m.end } AS mentions,
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true})
                 RETURN p {.*, predictions: COLLECT { MATCH (p)-[pr:PREDICTS]->(d:Disease)
                                                      RETURN {id: d.id, name: d.name, name_zh: d.name_zh,
                                                              prob: pr.prob, rank: pr.rank}
                                                      ORDER BY pr.rank } }
                 ORDER BY p.created_at DESC LIMIT 1 } AS latest,
       COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile)
                 RETURN p {.id, .model_version, .created_at, .popularity, .popularity_pct, .quality, .quality_probs,
                           .latest, .visual_weights, .visual_backbone,
                           diseases: COLLECT { MATCH (p)-[pr:PREDICTS]->(d:Disease)
                                               RETURN {id: d.id, name: d.name, name_zh: d.name_zh, prob: pr.prob}
                                               ORDER BY pr.rank }}
                 ORDER BY p.created_at DESC, p.id } AS history
"""

# Names of entities an explanation refers to (phenotypes behind a prediction, attended entities).
ENTITY_NAMES = """
UNWIND $ids AS id
MATCH (e:Entity {id: id})
RETURN e.id AS id, e.name AS name, e.name_zh AS name_zh, [l IN labels(e) WHERE l <> 'Entity'][0] AS kind
"""


def video_page(graph: "Graph", video_id: str) -> dict[str, Any] | None:
    """The video page's data (``video``, ``mentions``, ``latest`` profile or None, ``history``); None when unknown."""
    rows = graph.read(VIDEO_PAGE, {"id": video_id})
    if not rows:
        return None
    row = rows[0]
    video = {k: v for k, v in row["video"].items() if k not in ("embedding", "text_vector")}
    return {"video": video, "mentions": row["mentions"], "latest": row["latest"][0] if row["latest"] else None,
            "history": row["history"]}


def entity_names(graph: "Graph", ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{id: {id, name, name_zh, kind}}`` for the ids that exist."""
    if not ids:
        return {}
    return {row["id"]: row for row in graph.read(ENTITY_NAMES, {"ids": sorted(set(ids))})}


# The next videos for a reviewer: profiled, not yet rated by them, rated by fewer than $per_video reviewers; least
# certain first (see the module docstring), then videos that already have a reviewer (to complete double rating).
REVIEW_QUEUE = f"""
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {{latest: true}})
WHERE NOT EXISTS {{ (v)<-[:RATES]-(:Rating)<-[:RATED]-(:Rater {{name: $rater}}) }}
WITH v, p, COUNT {{ MATCH (v)<-[:RATES]-(:Rating)<-[:RATED]-(r:Rater) RETURN DISTINCT r }} AS raters
WHERE raters < $per_video
WITH v, p, raters, COLLECT {{ MATCH (p)-[pr:PREDICTS]->(:Disease) RETURN pr.prob }} AS probs
WITH v, p, raters, {_CERTAINTY}
WITH v, p, raters, quality_certainty, disease_certainty,
     CASE WHEN disease_certainty IS NULL THEN quality_certainty
          ELSE (quality_certainty + disease_certainty) / 2.0 END AS certainty
RETURN v.id AS id, v.title AS title, v.platform AS platform, v.synthetic AS synthetic, p.quality AS quality, raters,
       quality_certainty, disease_certainty, certainty
ORDER BY certainty ASC, raters DESC, id
LIMIT $limit
"""


def review_queue(graph: "Graph", rater: str, *, per_video: int, limit: int = 20) -> list[dict[str, Any]]:
    """The next videos for ``rater``, least certain first (each with its certainty and how many reviewers it has)."""
    return graph.read(REVIEW_QUEUE, {"rater": rater, "per_video": per_video, "limit": limit})


# Videos that mention the entity (affirmed or negated) or whose latest profile predicts it.
ENTITY_VIDEOS = """
MATCH (e:Entity {id: $id})
CALL (e) {
  MATCH (v:Video)-[m:MENTIONS]->(e) RETURN v, CASE WHEN coalesce(m.negated, false) THEN 'negated' ELSE 'mentions' END AS how
  UNION
  MATCH (v:Video)-[:HAS_PROFILE]->(:Profile {latest: true})-[:PREDICTS]->(e) RETURN v, 'predicted' AS how
}
WITH v, collect(DISTINCT how) AS how
OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true})
RETURN v.id AS id, v.title AS title, v.platform AS platform, v.synthetic AS synthetic, how,
       p.quality AS quality, p.popularity_pct AS popularity_pct
ORDER BY p.popularity_pct DESC, id
LIMIT $limit
"""


def entity_videos(graph: "Graph", entity_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Videos that mention the entity or are predicted to be about it, most popular first."""
    return graph.read(ENTITY_VIDEOS, {"id": entity_id, "limit": limit})


PROFILE_LABELS = """
MATCH (d:Disease {profile_label: true})
RETURN d.id AS id, d.name AS name, d.name_zh AS name_zh
ORDER BY d.name
"""


def profile_label_diseases(graph: "Graph") -> list[dict[str, Any]]:
    """The diseases a profile can predict (the list's disease filter and the rating form's checkboxes)."""
    return graph.read(PROFILE_LABELS)


VIDEO_PATH = "MATCH (v:Video {id: $id}) RETURN v.path AS path"


def video_path(graph: "Graph", video_id: str) -> str | None:
    """The stored media path of the video ('' when it has none); None when there is no such video."""
    rows = graph.read(VIDEO_PATH, {"id": video_id})
    return (rows[0]["path"] or "") if rows else None
