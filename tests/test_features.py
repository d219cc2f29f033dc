"""Features of a tiny SYNTHETIC demo set (ResNet-18 with random weights, K = 4) against the real graph: shapes, labels,
a corrupt video as a FeatureFailure that does not stop the batch, the per-video cache, and the split."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.enrichment import GNN_DIM
from fusion.demo_data import generate_demo_set
from fusion.features import FeatureExtractor, FeatureFailure, FeatureSettings, compose_text
from fusion.manifest import read_manifest
from fusion.records import METADATA_DIM, VideoFeatures
from fusion.splits import DataSplit, split_ids
from ovp.errors import ModelNotFound
from ovp.settings import Settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo_set(out, videos=6, seed=3, corrupt=2)
    return out / "manifest.jsonl"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # The default encoders (EfficientNet-Lite0 with its ImageNet weights, bge-small-zh-v1.5), K = 4.
    return dataclasses.replace(Settings.from_env(), home=tmp_path_factory.mktemp("home"), keyframes=4, device="cpu")


@pytest.fixture(scope="module")
def extractor(graph, built_kg, settings: Settings):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield FeatureExtractor(graph, settings)
    torch.set_num_threads(previous)


def test_compose_text_adds_only_hashtags_the_caption_lacks(demo: Path) -> None:
    entry = dataclasses.replace(read_manifest(demo)[0], title="T", caption="c #a", hashtags=("a", "#b"))
    assert compose_text(entry) == "T\nc #a\n#b"


def test_features_shapes_labels_failures_and_cache(extractor: FeatureExtractor, demo: Path) -> None:
    entries = read_manifest(demo)
    results = extractor.extract(entries)
    assert [r.video_id for r in results] == [e.id for e in entries]
    failures = [r for r in results if isinstance(r, FeatureFailure)]
    items = [r for r in results if isinstance(r, VideoFeatures)]
    assert {f.video_id for f in failures} == {e.id for e in entries if "corrupt" in e.id} and len(failures) == 2
    assert all(f.reason for f in failures)
    assert len(items) == 6
    labels = set(extractor.label_map.disease_ids)
    for it, entry in zip(items, [e for e in entries if "corrupt" not in e.id]):
        assert 1 <= it.frames.shape[0] <= 4 and it.frames.shape[1] == 1280
        assert it.tokens.shape[1] == 512 and 2 <= it.tokens.shape[0] <= extractor.features.text_max_length
        assert (it.visual_model, it.text_model) == ("efficientnet_lite0/efficientnet-lite0-57934424", "bge-small-zh-v1.5")
        assert it.tokens.shape[0] == len(it.token_text)
        assert it.entities.shape == (len(it.entity_ids), GNN_DIM)
        assert it.metadata.shape == (METADATA_DIM,)
        assert it.synthetic and it.quality == entry.quality and it.popularity == pytest.approx(entry.popularity)
        assert set(it.diseases or []) <= labels and set(it.diseases or []) == set(entry.diseases or []) & labels
    assert "[SEP]" in "".join(items[0].token_text).upper() or any("[SEP]" in t for it in items for t in it.token_text)
    first = extractor.timings.cache_hits
    again = extractor.extract(entries)
    assert extractor.timings.cache_hits - first == 6  # every readable video from the cache
    for a, b in zip(items, [r for r in again if isinstance(r, VideoFeatures)]):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.tokens, b.tokens)


def extract_with(extractor: FeatureExtractor, entries: list, **changes: object) -> list:
    """``extractor.extract(entries)`` with its feature settings changed by ``changes`` for this one call."""
    base = extractor.features
    extractor.features = dataclasses.replace(base, **changes)
    try:
        return extractor.extract(entries)
    finally:
        extractor.features = base


def test_caption_only_text_is_a_different_cache_entry(extractor: FeatureExtractor, demo: Path) -> None:
    entries = [e for e in read_manifest(demo) if "corrupt" not in e.id][:2]
    enriched = extractor.extract(entries)
    caption = extract_with(extractor, entries, enrich=False)
    for a, b in zip(enriched, caption):
        np.testing.assert_array_equal(a.frames, b.frames)  # the same video
        assert len(b.tokens) < len(a.tokens)  # the annotations are gone
    assert FeatureSettings.from_dict(extractor.features.to_dict()) == extractor.features


def test_features_of_a_model_trained_with_separate_knowledge_are_refused_naming_it(extractor: FeatureExtractor,
                                                                                    settings: Settings,
                                                                                    tmp_path: Path) -> None:
    saved = extractor.features.to_dict()
    # Saved before the option was retired, at the value still built in: the same settings.
    assert FeatureSettings.from_dict({**saved, "separate_knowledge": False}) == extractor.features
    with pytest.raises(ValueError, match="separate_knowledge=True.*retrain"):
        FeatureSettings.from_dict({**saved, "separate_knowledge": True})
    # Beside a model (what the worker and `ovp evaluate` read), the refusal is a ModelNotFound the CLI prints as one line.
    (tmp_path / "features.json").write_text(json.dumps({**saved, "separate_knowledge": True}))
    with pytest.raises(ModelNotFound, match="separate_knowledge=True.*retrain"):
        FeatureSettings.for_model(tmp_path, settings)


def test_features_json_of_models_trained_before_the_backbone_was_recorded() -> None:
    """A ResNet asked for random weights maps onto today's settings (with MiniLM, the text model "" meant then); one
    whose weights were never recorded (torchvision's cache, or random without a word) is refused, saying to retrain."""
    old = {"keyframes": 4, "resnet_arch": "resnet18", "resnet_weights": "none", "text_model": "", "text_max_length": 256,
           "enrich": True, "enrichment": {}, "caption_states": False}
    mapped = FeatureSettings.from_dict(old)
    assert (mapped.visual_backbone, mapped.visual_weights, mapped.resnet_weights, mapped.text_model) == (
        "resnet18", "random", "", "all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="resnet18 features whose weights were not recorded.*retrain"):
        FeatureSettings.from_dict({**old, "resnet_weights": ""})


def test_caption_states_are_the_caption_only_token_states_beside_the_joint_ones(extractor: FeatureExtractor,
                                                                                 demo: Path) -> None:
    entries = [e for e in read_manifest(demo) if "corrupt" not in e.id]
    base = extractor.features
    caption = extract_with(extractor, entries, enrich=False)
    both = extract_with(extractor, entries, caption_states=True)
    alone = extract_with(extractor, entries, enrich=False, caption_states=True)
    joint = extractor.extract(entries)
    for c, b, a, j in zip(caption, both, alone, joint):
        assert j.caption_tokens is None  # off unless asked for
        np.testing.assert_array_equal(b.tokens, j.tokens)  # the joint states are untouched
        np.testing.assert_allclose(b.caption_tokens, c.tokens, atol=1e-6)  # the caption encoded on its own
        np.testing.assert_array_equal(a.caption_tokens, a.tokens)  # without enrichment they are the tokens
    assert any(len(b.tokens) > len(b.caption_tokens) for b in both)  # some caption had knowledge appended
    assert FeatureSettings.from_dict({k: v for k, v in base.to_dict().items() if k != "caption_states"}) == base


def test_split_is_deterministic_disjoint_and_stable_under_growth() -> None:
    ids = [f"v{i:03d}" for i in range(400)]
    split = split_ids(ids, seed=1)
    assert split == split_ids(list(reversed(ids)), seed=1)
    assert sorted(split.ids("all")) == ids and len(set(split.ids("all"))) == 400
    assert 240 <= len(split.train) <= 320 and 35 <= len(split.test) <= 85
    assert split_ids(ids, seed=2).test != split.test
    grown = split_ids(ids + ["v999"], seed=1)
    assert set(split.test) <= set(grown.test)
    assert DataSplit.from_dict(split.to_dict()) == split
    with pytest.raises(ValueError):
        split_ids(ids, seed=0, fractions=(0.5, 0.5, 0.5))
