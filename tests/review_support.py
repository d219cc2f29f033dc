"""Test data for the review app: profiled SYNTHETIC videos with real media files, reviewers, clean-up.

Everything written here has ids or names that start with a prefix given by the test module, and is deleted with it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from api.accounts import NewRater, add_rater
from kg_builder.graph import Graph
from ovp.settings import Settings
from videos import make_video
from worker.records import DiseaseEvidence, DiseasePrediction, Explanation, MentionRecord, ProfileRecord, VideoMeta
from worker.writeback import write_profile

TITLE = "青光眼科普"
CAPTION = "眼压高 视野缩小 不是近视"
# Offsets into the composed text "青光眼科普\n眼压高 视野缩小 不是近视\n#青光眼" (title, caption, missing hashtags).
MENTIONS = (
    MentionRecord("OVP:glaucoma", "青光眼", 0, 3, 1.0),
    MentionRecord("OVP:myopia", "近视", 17, 19, 0.9, negated=True),
)


def profiled_video(graph: Graph, video_id: str, path: Path, *, quality_probs: tuple[float, ...],
                   model_version: str = "m-test", disease_prob: float = 0.9, quality: int | None = None) -> None:
    """A profiled SYNTHETIC video about glaucoma (with evidence and two keyframes) whose media file is ``path``."""
    quality = quality or (max(range(5), key=lambda i: quality_probs[i]) + 1)
    record = ProfileRecord(
        video=VideoMeta(id=video_id, platform="bilibili", url=f"https://example.org/{video_id}", path=str(path),
                        title=TITLE, caption=CAPTION, hashtags=("青光眼",), duration_s=2.0,
                        published_at="2024-03-01T12:00:00+00:00", author_followers=100, synthetic=True),
        model_version=model_version, popularity=3.2, popularity_pct=64.0, quality=quality, quality_probs=quality_probs,
        predictions=(DiseasePrediction("OVP:glaucoma", disease_prob, 1),),
        mentions=MENTIONS,
        explanation=Explanation(
            keyframes=((0.4, 0.7), (1.4, 0.3)), entities=(("OVP:glaucoma", 1.0),),
            diseases=(DiseaseEvidence("OVP:glaucoma", named=True, via=("HP:0001123",), prior_logit=1.5,
                                      head_logit=0.4, frames_logit=0.3, keyframe=(0.4, 0.8)),),
        ),
        embedding=tuple([1.0] + [0.0] * 255), visual_weights="imagenet",
    )
    write_profile(graph, record)


def media_video(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return make_video(folder / f"{name}.mp4", seconds=2.0, size=(96, 64), scenes=(0.0, 1.0))


def add_reviewer(graph: Graph, name: str) -> NewRater:
    return add_rater(graph, name)


def delete_review_data(graph: Graph, prefix: str) -> None:
    """Remove the prefix's videos (with profiles and ratings) and reviewers (with their ratings)."""
    graph.write(
        "MATCH (v:Video) WHERE v.id STARTS WITH $prefix "
        "OPTIONAL MATCH (v)-[:HAS_PROFILE]->(p:Profile) OPTIONAL MATCH (v)<-[:RATES]-(x:Rating) "
        "DETACH DELETE p, x, v",
        {"prefix": prefix},
    )
    graph.write(
        "MATCH (r:Rater) WHERE r.name STARTS WITH $prefix OPTIONAL MATCH (r)-[:RATED]->(x:Rating) DETACH DELETE x, r",
        {"prefix": prefix},
    )


def app_settings(media_root: Path, **changes: object) -> Settings:
    return dataclasses.replace(Settings.from_env(), media_roots=str(media_root), secret_key="test-secret-key",
                               **changes)
