"""Training on what an import gives: popularity labels for every video, weak disease labels for some, no quality
label. Each head trains on the videos that have its label; a head with no label at all is left out and said so, and
the model then predicts nothing for it instead of noise; weak labels are counted for the model card."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fusion.config import FusionConfig
from fusion.records import LabelMap, VideoFeatures, metadata_vector
from fusion.training import labelled_tasks, train


def items(n: int = 12, seed: int = 0) -> list[VideoFeatures]:
    rng = np.random.default_rng(seed)
    return [VideoFeatures(
        video_id=f"v{i}", frames=rng.normal(size=(2, 8)), frame_times=[0.0, 1.0], tokens=rng.normal(size=(3, 8)),
        token_text=["a", "b", "c"], entities=np.zeros((0, 64)), entity_ids=[],
        metadata=metadata_vector(duration_s=5, platform="youtube", published_hour=3, author_followers=None),
        diseases=["OVP:a"] if i % 2 else None, diseases_weak=bool(i % 2), popularity=float(rng.normal()),
    ) for i in range(n)]


def test_labelled_tasks_are_those_some_video_has_a_label_for() -> None:
    videos = items()
    assert labelled_tasks(videos) == ("disease", "popularity")
    assert labelled_tasks([v for v in videos if v.diseases is None]) == ("popularity",)
    assert labelled_tasks([]) == ()


def test_a_head_without_labels_is_not_trained_and_predicts_nothing(tmp_path: Path) -> None:
    videos, labels = items(), LabelMap(("OVP:a", "OVP:b"))
    config = FusionConfig.from_items(videos, labels, tasks=labelled_tasks(videos[:8]), epochs=2, min_epochs=1)
    result = train(videos[:8], videos[8:], config, labels, out_dir=tmp_path, progress=False)
    assert result.untrained == {"quality": "no training video has a quality label"}
    assert result.weak_diseases == 6 and result.config.tasks == ("disease", "popularity")
    [prediction] = result.predictor.predict(videos[8:9])
    assert prediction.quality is None and prediction.quality_probs is None and prediction.popularity is not None
    card = (tmp_path / "model_card.md").read_text(encoding="utf-8")
    assert "Not trained: the quality head (no training video has a quality label)" in card
    assert "**WEAK disease labels** on 6 of these videos" in card


def test_a_model_without_weak_labels_says_nothing_of_them(tmp_path: Path) -> None:
    videos = [VideoFeatures(**{**v.__dict__, "diseases_weak": False}) for v in items()]
    labels = LabelMap(("OVP:a", "OVP:b"))
    config = FusionConfig.from_items(videos, labels, tasks=labelled_tasks(videos), epochs=1, min_epochs=1)
    train(videos[:8], videos[8:], config, labels, out_dir=tmp_path, progress=False)
    assert "WEAK" not in (tmp_path / "model_card.md").read_text(encoding="utf-8")
