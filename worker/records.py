"""Typed records the profiling pipeline hands to the graph write-back.

A profile's video, mentions and predictions are the graph's own rows (:mod:`kg_builder.store.rows`); the explanation
and the profile record are the worker's, turned into the graph's rows by :mod:`worker.writeback`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from encoders.disease_tags import DiseaseTag
from fusion.manifest import VideoEntry
from kg_builder.store.rows import DiseasePrediction, MentionRecord, VideoMeta


@dataclass(frozen=True)
class DiseaseEvidence:
    """Why one predicted disease was predicted, in terms a reviewer can check against the caption and the graph.

    ``named``: the caption's affirmed linked entities include the disease. ``via``: the caption's linked phenotypes the
    graph says the disease has (HAS_PHENOTYPE). ``prior_logit``: the log-odds the model's mention prior gave for that
    (named / related / neither; None for a model without one), ``frames_logit`` what the keyframes' own path added
    (None for a model without one) and ``head_logit`` what the head on the fused keyframes, text and entities added
    (with the caption's and entities' own disease path, ``FusionConfig.disease_context``, where the model has it);
    they sum to the logit of the predicted probability. ``keyframe``: the time (s) of the keyframe that gave the
    frames' path most of its evidence for this disease, and that share (None without the path or without frames).
    ``by_rule``: its probability is below the threshold; it is predicted because the model predicts at least one
    disease (``FusionConfig.disease_at_least_one``) and it is the most probable.
    """

    disease_id: str
    named: bool = False
    via: tuple[str, ...] = ()
    prior_logit: float | None = None
    head_logit: float | None = None
    frames_logit: float | None = None
    keyframe: tuple[float, float] | None = None
    by_rule: bool = False


@dataclass(frozen=True)
class Explanation:
    """What drove a profile: keyframes (timestamp, attention weight) and entities (id, attention weight), best first,
    and the evidence for each predicted disease, in prediction rank order."""

    keyframes: tuple[tuple[float, float], ...] = ()
    entities: tuple[tuple[str, float], ...] = ()
    diseases: tuple[DiseaseEvidence, ...] = ()


@dataclass(frozen=True)
class ProfileRecord:
    """One video's profile from one model version: what ``write_profile`` stores in one transaction."""

    video: VideoMeta
    model_version: str
    popularity: float | None  # None for a task the model was not trained for
    popularity_pct: float | None
    quality: int | None
    quality_probs: tuple[float, ...]
    predictions: tuple[DiseasePrediction, ...] = ()
    mentions: tuple[MentionRecord, ...] = ()
    explanation: Explanation = field(default_factory=Explanation)
    embedding: tuple[float, ...] = ()
    # The encoders the profile's features came from: a user can tell a profile made on random visual weights
    # (visual_weights "random") or another backbone from one made on ImageNet weights.
    visual_backbone: str = ""
    visual_weights: str = ""
    text_model: str = ""
    tags: tuple[DiseaseTag, ...] = ()  # open-vocabulary tags (any disease of the graph), apart from predictions
    text_vector: tuple[float, ...] = ()  # the text's cross-lingual sentence vector, for search by meaning

    @property
    def profile_id(self) -> str:
        # Keyed by video and model version: a redelivered or repeated task writes the same node, never a second one.
        return f"{self.video.id}@{self.model_version}"


def video_meta(entry: VideoEntry) -> VideoMeta:
    """The (:Video) metadata of a manifest entry: what a submission records and a profile stores."""
    return VideoMeta(
        id=entry.id,
        platform=entry.platform,
        url=entry.url or "",
        path=str(entry.path),
        title=entry.title,
        caption=entry.caption,
        hashtags=tuple(entry.hashtags),
        duration_s=float(entry.duration_s),
        published_at=entry.published_at.isoformat(),
        author_followers=entry.author_followers,
        transcript=entry.transcript,
        synthetic=bool(entry.synthetic),
    )
