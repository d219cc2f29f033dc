"""Typed records between the encoders and the fusion model: one ``VideoFeatures`` per video, and the ``LabelMap``.

The encoders fill ``VideoFeatures`` (visual: keyframe features; text: enriched-caption token states; graph: GNN
embeddings of the linked entities; the worker: metadata and, for training data, labels). The fusion model reads them
and nothing else, so this file is the contract between the two sides.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Platforms with their own one-hot slot; anything else goes to "other".
PLATFORMS = ("douyin", "bilibili", "kuaishou", "youtube", "tiktok", "other")

#: Names of the metadata vector's slots, in order (``metadata_vector`` builds it).
#: Only information known when a video is published: nothing derived from its engagement, which is the popularity target.
#: ``log_author_followers`` is an INPUT (the audience an author already has), not a target and not a leak of one.
METADATA_FIELDS = (
    "log1p_duration_s",
    *(f"platform_{p}" for p in PLATFORMS),
    "hour_sin",  # hour of publication on the unit circle, so 23:00 sits next to 00:00
    "hour_cos",
    "log1p_author_followers",
)
METADATA_DIM = len(METADATA_FIELDS)

#: The Global Quality Score scale used in ophthalmic video studies.
QUALITY_LEVELS = (1, 2, 3, 4, 5)


def metadata_vector(
    *,
    duration_s: float | None,
    platform: str | None,
    published_hour: float | None,
    author_followers: float | None,
) -> np.ndarray:
    """The float32 metadata vector in ``METADATA_FIELDS`` order.

    Unknown values (``None``) become 0 in their slots (an unknown platform is "other"); the model sees the same
    encoding at training and at serving time, so this is a consistent choice rather than an imputation.
    """
    vec = np.zeros(METADATA_DIM, dtype=np.float32)
    vec[0] = math.log1p(max(float(duration_s), 0.0)) if duration_s is not None else 0.0
    name = (platform or "other").lower()
    vec[1 + PLATFORMS.index(name if name in PLATFORMS else "other")] = 1.0
    if published_hour is not None:
        angle = 2.0 * math.pi * (float(published_hour) % 24.0) / 24.0
        vec[1 + len(PLATFORMS)] = math.sin(angle)
        vec[2 + len(PLATFORMS)] = math.cos(angle)
    vec[3 + len(PLATFORMS)] = math.log1p(max(float(author_followers), 0.0)) if author_followers is not None else 0.0
    return vec


def _matrix(value: object, name: str, video_id: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"video {video_id!r}: {name} must be a 2-D array (n × dim), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"video {video_id!r}: {name} contains NaN or infinite values")
    return arr


@dataclass(eq=False)
class VideoFeatures:
    """Everything the fusion model knows about one video, as precomputed feature arrays.

    Shapes (K keyframes, L tokens, E linked entities; any of them may be 0, which the model treats as a missing modality):

    - ``frames``: K × D_v float32 keyframe features (ResNet pooled features), ``frame_times``: K seconds;
    - ``tokens``: L × D_t float32 token states of the knowledge-enriched caption (BERT family, e.g. D_t=384 for MiniLM),
      ``token_text``: the L tokens as strings, for explanations;
    - ``entities``: E × D_g float32 GNN embeddings of the linked graph entities, ``entity_ids``: their E CURIEs;
    - ``related_ids``: the profile-label diseases the graph links to an affirmed linked phenotype (HAS_PHENOTYPE):
      knowledge enrichment, so empty for caption-only features;
    - ``caption_tokens``: C × D_t token states of the caption encoded on its own, without the knowledge appended
      (``FeatureSettings.caption_states``; None when not extracted); ``FusionConfig.quality_skip_caption_alone`` reads them;
    - ``metadata``: float32 vector (``metadata_vector`` builds the standard one). Author followers are an input here;
    - ``visual_model``, ``text_model``: the encoders the frames and tokens come from (``VisualEncoder.features_name``,
      ``TextEncoder.name``; "" when not known), so a model refuses features of encoders it was not trained on.

    Labels are optional and independent (``None`` = unknown, masked out of the loss):
    ``diseases`` (disease ids; ``[]`` means "labelled: about no profile disease"), ``popularity`` (log1p engagement),
    ``quality`` (GQS 1–5). ``synthetic`` marks generated data, so every report made on it can say so. ``raters``: how
    many reviewers' consensus gave the labels (0 = labels from elsewhere; the model card counts rated videos).

    Raises:
        ValueError: shapes disagree, values are not finite, or a label is out of range (the message names the video).
    """

    video_id: str
    frames: np.ndarray
    frame_times: np.ndarray
    tokens: np.ndarray
    token_text: list[str]
    entities: np.ndarray
    entity_ids: list[str]
    metadata: np.ndarray
    diseases: list[str] | None = None
    popularity: float | None = None
    quality: int | None = None
    synthetic: bool = False
    diseases_weak: bool = False  # the disease labels were proposed from the video's own linked text, not by a person
    related_ids: list[str] = field(default_factory=list)
    raters: int = 0
    caption_tokens: np.ndarray | None = None
    visual_model: str = ""
    text_model: str = ""

    def __post_init__(self) -> None:
        vid = self.video_id
        self.frames = _matrix(self.frames, "frames", vid)
        self.tokens = _matrix(self.tokens, "tokens", vid)
        self.entities = _matrix(self.entities, "entities", vid)
        if self.caption_tokens is not None:
            self.caption_tokens = _matrix(self.caption_tokens, "caption_tokens", vid)
            if self.caption_tokens.shape[1] != self.tokens.shape[1]:
                raise ValueError(f"video {vid!r}: caption_tokens have width {self.caption_tokens.shape[1]} "
                                 f"but tokens {self.tokens.shape[1]}")
        self.frame_times = np.asarray(self.frame_times, dtype=np.float32).reshape(-1)
        self.metadata = np.asarray(self.metadata, dtype=np.float32).reshape(-1)
        self.token_text = [str(t) for t in self.token_text]
        self.entity_ids = [str(e) for e in self.entity_ids]
        self.related_ids = [str(e) for e in self.related_ids]
        if len(self.frame_times) != len(self.frames):
            raise ValueError(f"video {vid!r}: {len(self.frames)} frames but {len(self.frame_times)} frame_times")
        if len(self.token_text) != len(self.tokens):
            raise ValueError(f"video {vid!r}: {len(self.tokens)} token states but {len(self.token_text)} token_text entries")
        if len(self.entity_ids) != len(self.entities):
            raise ValueError(f"video {vid!r}: {len(self.entities)} entity embeddings but {len(self.entity_ids)} entity_ids")
        if not np.isfinite(self.metadata).all():
            raise ValueError(f"video {vid!r}: metadata contains NaN or infinite values")
        if self.diseases is not None:
            self.diseases = [str(d) for d in self.diseases]
        if self.popularity is not None:
            self.popularity = float(self.popularity)
            if not math.isfinite(self.popularity):
                raise ValueError(f"video {vid!r}: popularity {self.popularity} is not finite (use None when unknown)")
        if self.quality is not None:
            if int(self.quality) != self.quality or int(self.quality) not in QUALITY_LEVELS:
                raise ValueError(f"video {vid!r}: quality {self.quality!r} is not a GQS level 1–5 (use None when unknown)")
            self.quality = int(self.quality)

    @property
    def dims(self) -> tuple[int, int, int, int]:
        """(D_v, D_t, D_g, D_meta): what a ``FusionConfig`` for these features must say."""
        return self.frames.shape[1], self.tokens.shape[1], self.entities.shape[1], self.metadata.shape[0]


@dataclass(frozen=True)
class LabelMap:
    """The ordered disease ids the model classifies (graph Disease nodes with ``profile_label: true``).

    Output column ``i`` of the disease head is ``disease_ids[i]``; the order is saved with the model so a graph that
    gains a label later cannot silently shift columns.
    """

    disease_ids: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "disease_ids", tuple(str(d) for d in self.disease_ids))
        seen: set[str] = set()
        dupes = [d for d in self.disease_ids if d in seen or seen.add(d)]  # type: ignore[func-returns-value]
        if dupes:
            raise ValueError(f"label map lists {sorted(set(dupes))} more than once")

    def __len__(self) -> int:
        return len(self.disease_ids)

    def index(self, disease_id: str) -> int:
        """Column of ``disease_id``; raises KeyError when it is not a profile label."""
        try:
            return self.disease_ids.index(disease_id)
        except ValueError:
            raise KeyError(f"{disease_id!r} is not in the label map") from None

    def encode(self, disease_ids: Iterable[str]) -> tuple[np.ndarray, list[str]]:
        """Multi-hot float32 vector over the label map, and the ids that are not in it (ignored, for the caller to report)."""
        vec = np.zeros(len(self), dtype=np.float32)
        unknown = []
        lookup = {d: i for i, d in enumerate(self.disease_ids)}
        for d in disease_ids:
            if d in lookup:
                vec[lookup[d]] = 1.0
            else:
                unknown.append(d)
        return vec, unknown

    @classmethod
    def from_items(cls, items: Sequence[VideoFeatures]) -> "LabelMap":
        """Every disease id that labels at least one item, sorted (for data without a graph to read labels from)."""
        return cls(tuple(sorted({d for it in items for d in (it.diseases or [])})))

    def to_dict(self) -> dict[str, object]:
        return {"disease_ids": list(self.disease_ids), "names": dict(self.names)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "LabelMap":
        return cls(tuple(data["disease_ids"]), dict(data.get("names") or {}))  # type: ignore[arg-type]

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "LabelMap":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def disease_decisions(probs: np.ndarray, threshold: float = 0.5, at_least_one: bool | np.ndarray = False) -> np.ndarray:
    """N × C booleans: the labels predicted from N × C probabilities — those at or above ``threshold``, and, on the
    rows where ``at_least_one`` holds (one bool, or one per row) and no label reaches it, the most probable label
    (the first in label order on a tie). The one decision rule the metrics, the bootstrap and
    ``Prediction.ranked_diseases`` share."""
    probs = np.asarray(probs, dtype=float)
    pred = probs >= threshold
    rows = np.broadcast_to(np.asarray(at_least_one, dtype=bool), probs.shape[:1]) & ~pred.any(axis=1)
    if probs.shape[1] and rows.any():
        pred[np.flatnonzero(rows), probs[rows].argmax(axis=1)] = True
    return pred


@dataclass
class Prediction:
    """One video's profile as the fusion model predicts it (what the worker writes back to the graph).

    Fields of a task the model was not trained for are ``None``. Attention lists cover the video's real keyframes,
    tokens and entities only, in input order; each list's weights sum to 1 (or are empty).
    """

    video_id: str
    disease_probs: dict[str, float]  # label-map order
    popularity: float | None  # predicted log1p engagement
    popularity_pct: float | None  # its percentile (0–100) within the training set's targets
    quality: int | None  # GQS 1..5
    quality_probs: list[float] | None  # over GQS 1..5
    frame_attention: list[tuple[float, float]]  # (keyframe time in s, weight)
    token_attention: list[tuple[str, float]]  # (token, weight)
    entity_attention: list[tuple[str, float]]  # (entity id, weight)
    modality_gates: dict[str, float]  # mean gate per modality (visual, text, graph, metadata)
    embedding: list[float]  # the fused embedding (config.width floats), for the Neo4j vector index
    # Per label, the log-odds the mention prior gave (named / related by the graph / neither; ``disease_mentions``):
    # logit(disease_probs[d]) minus this is what the fused embedding's head added. Empty without the prior.
    disease_prior_logits: dict[str, float] = field(default_factory=dict)
    # Per label, the log-odds the keyframes' own path gave (``disease_visual``; empty without it), and the keyframe that
    # gave it most: (its time in s, its share of the path's evidence for that label).
    disease_frame_logits: dict[str, float] = field(default_factory=dict)
    disease_keyframes: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The model's decision rule (``FusionConfig.disease_at_least_one``): when no label reaches the threshold, the most
    # probable one is predicted anyway — set when every disease-labelled training video had a label.
    at_least_one: bool = False

    def ranked_diseases(self, threshold: float = 0.5) -> list[tuple[str, float]]:
        """(disease id, probability) at or above ``threshold`` — or, when none is and ``at_least_one`` holds, the most
        probable one alone — most probable first: the PREDICTS edges with their rank."""
        pairs = list(self.disease_probs.items())
        chosen = disease_decisions(np.array([[p for _, p in pairs]]), threshold, self.at_least_one)[0]
        return sorted((dp for dp, keep in zip(pairs, chosen) if keep), key=lambda dp: (-dp[1], dp[0]))
