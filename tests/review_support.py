"""Test data for the review app: profiled SYNTHETIC videos with real media files, reviewers, clean-up.

Everything written here has ids or names that start with a prefix given by the test module, and is deleted with it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import dataclasses as _dc

from api.accounts import NewRater, add_rater, change_password
from kg_builder.graph import Graph
from ovp.settings import Settings
from videos import make_video
from worker.records import DiseaseEvidence, DiseasePrediction, Explanation, MentionRecord, ProfileRecord, VideoMeta
from worker.writeback import write_profile

TITLE = "青光眼科普"
CAPTION = "眼压高 视野缩小 不是近视"
# Each mention's offsets index the text of its field, as the worker writes them.
MENTIONS = (
    MentionRecord("OVP:glaucoma", "青光眼", 0, 3, 1.0, field="title"),
    MentionRecord("OVP:myopia", "近视", 11, 13, 0.9, negated=True, field="caption"),
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
    """A reviewer who has already replaced the one-time password with their own (returned as ``password``)."""
    created = add_rater(graph, name)
    own = f"own-password-of-{name}"
    change_password(graph, name, created.password, own)
    return _dc.replace(created, password=own)


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


def seed_profiled_videos(graph: Graph, prefix: str, count: int, media: Path, *, seed: int = 0,
                         chunk: int = 50) -> list[str]:
    """``count`` profiled SYNTHETIC videos (``prefix`` + number) with varied profiles over the graph's profile-label
    diseases, all pointing at the media file ``media``; written in chunks like the worker does. Returns their ids."""
    import random

    from worker.writeback import write_profiles

    rng = random.Random(seed)
    labels = [row["id"] for row in graph.read("MATCH (d:Disease {profile_label: true}) RETURN d.id AS id ORDER BY d.id")]
    ids: list[str] = []
    records: list[ProfileRecord] = []
    for i in range(count):
        video_id = f"{prefix}{i:05d}"
        ids.append(video_id)
        raw = [rng.random() ** 2 for _ in range(5)]
        probs = tuple(x / sum(raw) for x in raw)
        diseases = rng.sample(labels, k=min(len(labels), rng.randint(1, 3)))
        records.append(ProfileRecord(
            video=VideoMeta(id=video_id, platform=rng.choice(["douyin", "bilibili", "youtube"]), path=str(media),
                            title=f"SYNTHETIC {TITLE} {i}", caption=CAPTION, hashtags=("青光眼",), duration_s=2.0,
                            published_at=f"2024-{1 + i % 12:02d}-01T12:00:00+00:00", author_followers=rng.randint(0, 10**5),
                            synthetic=True),
            model_version="m-bench", popularity=rng.uniform(0, 8), popularity_pct=rng.uniform(0, 100),
            quality=max(range(5), key=lambda q: probs[q]) + 1, quality_probs=probs,
            predictions=tuple(DiseasePrediction(d, rng.uniform(0.5, 1.0), r) for r, d in enumerate(diseases, start=1)),
            mentions=MENTIONS,
            explanation=Explanation(
                # times differ per video (to the millisecond), so each page's thumbnails are made from the file once
                keyframes=tuple((round(rng.uniform(0.0, 1.9), 3), w) for w in (0.4, 0.3, 0.2, 0.1)),
                entities=(("OVP:glaucoma", 1.0),),
                diseases=tuple(DiseaseEvidence(d, named=r == 1, via=("HP:0001123",) if r == 2 else (), prior_logit=0.5,
                                               head_logit=0.2, frames_logit=0.1, keyframe=(0.7, 0.6))
                               for r, d in enumerate(diseases, start=1)),
            ),
            embedding=tuple(rng.uniform(-1, 1) for _ in range(256)), visual_weights="imagenet",
        ))
        if len(records) == chunk:
            write_profiles(graph, records)
            records = []
    if records:
        write_profiles(graph, records)
    return ids
