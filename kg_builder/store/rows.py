"""Typed records that the store's write functions take: the graph's shape of a video, a mention, a prediction and a
profile. Callers above the graph layer (the worker's write-back, a submission) build them from their own records."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class VideoMeta:
    """The manifest's description of a video, as stored on ``(:Video)``."""

    id: str
    platform: str = "other"
    url: str = ""
    path: str = ""
    title: str = ""
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    duration_s: float = 0.0
    published_at: str = ""
    author_followers: int | None = None  # None: the platform does not say (stored as no property)
    transcript: str = ""
    synthetic: bool = False

    def properties(self) -> dict[str, Any]:
        """The (:Video) properties: the fields, with hashtags as a list (Neo4j stores lists, not tuples)."""
        props = asdict(self)
        props["hashtags"] = list(self.hashtags)
        return props


@dataclass(frozen=True)
class MentionRecord:
    """One ``(:Video)-[:MENTIONS]->(:Entity)``: where the video's text names the entity, and how sure the linker was.
    ``start``/``end`` index the text of ``field``: title, caption, hashtags (the ``#a #b`` line of those the caption
    does not show) or transcript."""

    entity_id: str
    surface: str
    start: int
    end: int
    score: float
    negated: bool = False
    field: str = "caption"


@dataclass(frozen=True)
class DiseasePrediction:
    """One ``(:Profile)-[:PREDICTS {prob, rank}]->(:Disease)``."""

    disease_id: str
    prob: float
    rank: int


@dataclass(frozen=True)
class DiseaseTagRow:
    """One ``(:Profile)-[:TAGGED {score, source, sources, rank, evidence}]->(:Disease)``: an open-vocabulary tag, kept
    apart from the trained head's PREDICTS. ``evidence`` is JSON (Neo4j properties cannot be maps): per source, what
    made the tag."""

    disease_id: str
    score: float
    source: str
    sources: tuple[str, ...]
    rank: int
    evidence: str


@dataclass(frozen=True)
class ProfileProperties:
    """The properties of one ``(:Profile)`` node. Neo4j properties cannot be maps, so the explanation is stored
    twice: as parallel lists that Cypher can read (``top_*``), and as one JSON string that the API returns as is."""

    id: str
    video_id: str
    model_version: str
    created_at: str
    popularity: float | None  # None: the model has no popularity head (stored as no property)
    popularity_pct: float | None
    quality: int | None  # None: the model has no quality head (no training video had a quality label)
    quality_probs: tuple[float, ...]
    top_keyframe_times: tuple[float, ...]
    top_keyframe_weights: tuple[float, ...]
    top_entity_ids: tuple[str, ...]
    top_entity_weights: tuple[float, ...]
    explanation: str
    # The encoders the profile's features came from (worker.records.ProfileRecord says what they mean).
    visual_backbone: str
    visual_weights: str
    text_model: str


@dataclass(frozen=True)
class ProfileRow:
    """One video's profile as one write stores it: the video, its fused embedding and its text's sentence vector
    (either empty keeps the stored one), the profile node, the caption's mentions, the predicted diseases and the
    open-vocabulary tags."""

    video: VideoMeta
    profile: ProfileProperties
    embedding: tuple[float, ...] = ()
    mentions: tuple[MentionRecord, ...] = ()
    predictions: tuple[DiseasePrediction, ...] = ()
    tags: tuple[DiseaseTagRow, ...] = ()
    text_vector: tuple[float, ...] = ()

    def parameters(self) -> dict[str, Any]:
        """The row as the profile statements read it (``row.video``, ``row.profile``, …); tuples become lists."""
        profile = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self.profile).items()}
        return {"video": self.video.properties(), "embedding": list(self.embedding), "text_vector": list(self.text_vector),
                "profile": profile, "mentions": [asdict(m) for m in self.mentions],
                "predictions": [asdict(p) for p in self.predictions],
                "tags": [{**asdict(t), "sources": list(t.sources)} for t in self.tags]}
