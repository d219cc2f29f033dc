"""The text encoder over the bundled all-MiniLM-L6-v2: shapes, unit vectors, determinism, truncation, errors."""
from __future__ import annotations

import numpy as np
import pytest

from encoders.text import TextEncoder, TextEncoderConfig, TextFeatures, default_model_dir
from ovp.errors import ModelNotFound
from ovp.settings import Settings


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    # loaded once for the module: the model load is the slow part
    return TextEncoder(TextEncoderConfig(device="cpu")).load()


def test_default_model_dir_is_the_bundled_minilm() -> None:
    path = default_model_dir()
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_shapes_tokens_and_unit_pooled_vectors(encoder: TextEncoder) -> None:
    texts = ["a dark curtain came down over my vision", "pink eye", ""]
    feats = encoder.encode(texts, batch_size=2)
    assert isinstance(feats, TextFeatures) and len(feats) == 3
    assert feats.pooled.shape == (3, 384) and feats.pooled.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats.pooled, axis=1), 1.0, atol=1e-5)
    for states, mask, tokens in zip(feats.token_states, feats.attention_masks, feats.tokens):
        assert states.dtype == np.float32 and states.shape == (len(tokens), 384)
        assert mask.shape == (len(tokens),) and mask.all()
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert feats.tokens[1] == ["[CLS]", "pink", "eye", "[SEP]"]
    assert feats.tokens[2] == ["[CLS]", "[SEP]"]
    states, mask = feats.padded(16)
    assert states.shape == (3, 16, 384) and mask.shape == (3, 16)
    assert mask[1].sum() == 4 and not states[1, 4:].any()


def test_deterministic_and_independent_of_batching(encoder: TextEncoder) -> None:
    texts = ["glaucoma damages the optic nerve", "my eyes are red and itchy", "I love cooking pasta"]
    a = encoder.encode(texts, batch_size=3)
    b = encoder.encode(texts, batch_size=1)
    np.testing.assert_allclose(a.pooled, b.pooled, atol=1e-5)
    for x, y in zip(a.token_states, b.token_states):
        np.testing.assert_allclose(x, y, atol=1e-4)
    c = encoder.encode(texts, batch_size=3)
    np.testing.assert_array_equal(a.pooled, c.pooled)


def test_long_text_truncated_at_max_length(encoder: TextEncoder) -> None:
    feats = encoder.encode(["vision " * 500])
    assert feats.token_states[0].shape == (128, 384)


def test_semantic_neighbourhood_is_sensible(encoder: TextEncoder) -> None:
    p = encoder.encode(["my eyes are red and itchy", "Conjunctivitis. Inflammation of the conjunctiva causing red, itchy, watery eyes.", "I love cooking pasta"]).pooled
    assert p[0] @ p[1] > p[2] @ p[1] + 0.3


def test_bad_inputs(encoder: TextEncoder) -> None:
    with pytest.raises(TypeError):
        encoder.encode("a single string")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encoder.encode(["ok", None])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        encoder.encode(["ok"], batch_size=0)
    empty = encoder.encode([])
    assert len(empty) == 0 and empty.pooled.shape == (0, 384)


def test_missing_model_names_path_and_variable(tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFound) as err:
        TextEncoder(TextEncoderConfig(model=str(missing), device="cpu")).load()
    assert str(missing) in str(err.value) and "OVP_TEXT_MODEL" in str(err.value)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(ModelNotFound) as err:
        TextEncoder(TextEncoderConfig(model=str(empty_dir), device="cpu")).load()
    assert str(empty_dir) in str(err.value) and "OVP_TEXT_MODEL" in str(err.value)


def test_config_from_settings() -> None:
    settings = Settings.from_env({"OVP_TEXT_MODEL": "/models/bert", "OVP_DEVICE": "cpu"})
    config = TextEncoderConfig.from_settings(settings, max_length=64)
    assert (config.model, config.device, config.max_length) == ("/models/bert", "cpu", 64)
    with pytest.raises(ValueError):
        TextEncoderConfig(max_length=1)
