"""Reviewers' ratings of videos: ``(:Rater)-[:RATED]->(:Rating {…})-[:RATES]->(:Video)``.

Nothing is overwritten: every rating is a new node, and the latest one of each rater (by ``created_at``, then id) is
the one that counts. The rating records the model version of the video's latest profile at the time, so a rating can
be read against the profile the reviewer saw.

Neo4j properties cannot be maps or hold nulls in lists, so the JAMA benchmark is stored as four booleans in
:data:`JAMA_ITEMS` order, DISCERN as five booleans, and "not given" as an absent property (``diseases: []`` means
"about none of the profile diseases", which is not the same as not judged).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kg_builder.graph import Graph

#: The JAMA benchmark criteria, in stored order.
JAMA_ITEMS = ("authorship", "attribution", "disclosure", "currency")
#: The modified DISCERN items (yes/no), in stored order.
DISCERN_ITEMS = 5


@dataclass(frozen=True)
class RatingRecord:
    """One rating as stored. ``discern``/``jama``/``diseases`` are None when the reviewer did not give them."""

    id: str
    rater: str
    video_id: str
    gqs: int
    created_at: str
    discern: tuple[bool, ...] | None = None
    jama: tuple[bool, ...] | None = None
    diseases: tuple[str, ...] | None = None
    note: str = ""
    model_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The rating as the JSON API returns it (JAMA as an object)."""
        return {
            "id": self.id, "rater": self.rater, "video_id": self.video_id, "gqs": self.gqs,
            "discern": None if self.discern is None else list(self.discern),
            "jama": None if self.jama is None else dict(zip(JAMA_ITEMS, self.jama)),
            "diseases": None if self.diseases is None else list(self.diseases),
            "note": self.note, "created_at": self.created_at, "model_version": self.model_version,
        }


@dataclass(frozen=True)
class VideoRatings:
    """A video's latest rating per rater, with what the model said (for consensus, agreement and export)."""

    video_id: str
    ratings: tuple[RatingRecord, ...]
    model_quality: int | None = None
    model_diseases: tuple[str, ...] = ()
    video: dict[str, Any] = field(default_factory=dict)


# The rating is created with its two relationships in one statement; the video's latest profile gives the model
# version. Returns nothing when the rater or the video does not exist (the caller reports which).
CREATE_RATING = """
MATCH (r:Rater {name: $rater}) WHERE r.active
MATCH (v:Video {id: $video_id})
CREATE (r)-[:RATED]->(x:Rating {id: $id, gqs: $gqs, note: $note, created_at: $created_at})-[:RATES]->(v)
// optional parts are absent when not given (a null SET removes nothing and stores nothing)
SET x.discern = $discern, x.jama = $jama, x.diseases = $diseases,
    x.model_version = COLLECT { MATCH (v)-[:HAS_PROFILE]->(p:Profile {latest: true}) RETURN p.model_version LIMIT 1 }[0]
RETURN x.id AS id, x.model_version AS model_version
"""

_RATING_FIELDS = """{id: x.id, rater: r.name, video_id: v.id, gqs: x.gqs, discern: x.discern, jama: x.jama,
                     diseases: x.diseases, note: x.note, created_at: x.created_at, model_version: x.model_version}"""

# Every rating of a video, newest first (the history the video page and GET /videos/{id}/ratings show).
VIDEO_RATINGS = f"""
MATCH (v:Video {{id: $video_id}})<-[:RATES]-(x:Rating)<-[:RATED]-(r:Rater)
RETURN {_RATING_FIELDS} AS rating
ORDER BY x.created_at DESC, x.id DESC
"""

# Each rated video's latest rating per rater, with the model's latest quality and predicted diseases and the video's
# manifest fields (for the export). One row per video.
LATEST_RATINGS = f"""
MATCH (v:Video)<-[:RATES]-(:Rating)
WITH DISTINCT v
CALL (v) {{
  MATCH (v)<-[:RATES]-(x:Rating)<-[:RATED]-(r:Rater)
  WITH r, x ORDER BY x.created_at DESC, x.id DESC
  // the newest rating of each rater
  WITH r, collect(x)[0] AS x
  RETURN collect({_RATING_FIELDS}) AS ratings
}}
OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile {{latest: true}})
RETURN v {{.id, .platform, .url, .path, .title, .caption, .hashtags, .duration_s, .published_at, .author_followers,
          .transcript, .synthetic}} AS video,
       ratings, p.quality AS model_quality,
       COLLECT {{ MATCH (p)-[:PREDICTS]->(d:Disease) RETURN d.id ORDER BY d.id }} AS model_diseases
ORDER BY v.id
"""


def _rating(data: dict[str, Any]) -> RatingRecord:
    return RatingRecord(
        id=data["id"], rater=data["rater"], video_id=data["video_id"], gqs=int(data["gqs"]),
        created_at=data["created_at"],
        discern=None if data.get("discern") is None else tuple(bool(b) for b in data["discern"]),
        jama=None if data.get("jama") is None else tuple(bool(b) for b in data["jama"]),
        diseases=None if data.get("diseases") is None else tuple(data["diseases"]),
        note=data.get("note") or "", model_version=data.get("model_version"),
    )


def create_rating(graph: "Graph", rating: RatingRecord) -> RatingRecord | None:
    """Store ``rating`` as a new node (its ``model_version`` is taken from the video's latest profile).

    Returns the stored rating, or None when the rater is unknown or revoked, or the video does not exist.
    """
    params = {
        "id": rating.id, "rater": rating.rater, "video_id": rating.video_id, "gqs": rating.gqs, "note": rating.note,
        "created_at": rating.created_at,
        "discern": None if rating.discern is None else list(rating.discern),
        "jama": None if rating.jama is None else list(rating.jama),
        "diseases": None if rating.diseases is None else list(rating.diseases),
    }
    rows = graph.write_transaction(lambda tx: tx.run(CREATE_RATING, params).data())
    if not rows:
        return None
    return RatingRecord(**{**rating.__dict__, "model_version": rows[0]["model_version"]})


def video_ratings(graph: "Graph", video_id: str) -> list[RatingRecord]:
    """Every rating of the video, newest first (empty when none, or no such video)."""
    return [_rating(row["rating"]) for row in graph.read(VIDEO_RATINGS, {"video_id": video_id})]


def latest_ratings(graph: "Graph") -> list[VideoRatings]:
    """For every rated video: the latest rating of each rater, the model's latest quality and predicted diseases."""
    out = []
    for row in graph.read(LATEST_RATINGS):
        ratings = tuple(sorted((_rating(r) for r in row["ratings"]), key=lambda r: r.rater))
        out.append(VideoRatings(video_id=row["video"]["id"], ratings=ratings, model_quality=row["model_quality"],
                                model_diseases=tuple(row["model_diseases"]), video=row["video"]))
    return out
