"""Persisted text-encoder vectors of knowledge-graph entities, shared by the semantic linker and the GNN inputs.

Both the linker's semantic fallback (:class:`encoders.linking.SemanticMatcher`) and the R-GCN's node inputs
(:func:`encoders.graph.node_features`) need the same thing: the pooled sentence vector of ``"name. definition"`` for
every entity. Encoding the ~8,100 entities of the real graph takes about ten minutes on two shared CPU cores, so the
matrix is computed once and kept on disk.

Cache layout, in ``Settings.cache_dir`` (``OVP_CACHE_DIR``, default ``~/.cache/ovp/cache``):

* ``entity_vectors_<key>.npy`` — ``N × D`` float32, one unit row per text, in the order the texts were given.
* ``entity_vectors_<key>.digests.npy`` — ``N × 16`` uint8, a BLAKE2 digest per text. When the exact set of texts
  changes (a lexicon edit adds a concept, a definition is reworded), rows whose text is unchanged are taken from any
  earlier file of the same encoder and only the new texts are encoded.

``<key>`` is :func:`cache_key`: SHA-256 over the encoder identity (model path and ``max_length``) and every text,
NUL-separated, first 16 hex digits. It is the key the GNN used for its ``gnn_inputs_<key>.npy`` files, which are
read too, so a matrix the GNN already paid for is not encoded again.

Files are written to a temporary name and renamed, so a concurrent reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from encoders.cache_files import save_npy_atomic

if TYPE_CHECKING:
    from encoders.text import TextEncoder
    from ovp.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["entity_text", "EncoderIdentity", "cache_key", "EntityVectorCache", "entity_text_vectors"]

#: File-name prefix of this cache, and of the GNN's older cache (same key, same content) that is read as well.
PREFIX = "entity_vectors_"
LEGACY_PREFIXES = ("gnn_inputs_",)
#: Bytes of the per-text digest kept next to each matrix.
DIGEST_BYTES = 16


def entity_text(entity_id: str, name: str, definition: str) -> str:
    """What is embedded for an entity: ``"name. definition"``; the name alone without a definition; the id without
    a name. One rule for the linker and the GNN, so both read the same cached rows."""
    name = (name or "").strip() or entity_id
    definition = (definition or "").strip()
    return f"{name.rstrip('.')}. {definition}" if definition else name


@dataclass(frozen=True)
class EncoderIdentity:
    """What makes two encoders produce the same vectors: the model (directory or name) and the token limit."""

    model: str
    max_length: int

    @classmethod
    def of(cls, encoder: "TextEncoder") -> "EncoderIdentity":
        """The identity of a :class:`encoders.text.TextEncoder` (does not load the model)."""
        return cls(model=encoder.model_path, max_length=encoder.config.max_length)

    def header(self) -> bytes:
        return json.dumps({"model": self.model, "max_length": self.max_length}, sort_keys=True).encode()


def cache_key(texts: Sequence[str], identity: EncoderIdentity) -> str:
    """16 hex digits naming the matrix of ``texts`` under ``identity`` (order matters)."""
    key = hashlib.sha256()
    key.update(identity.header())
    for text in texts:
        key.update(text.encode("utf-8"))
        key.update(b"\x00")
    return key.hexdigest()[:16]


def _digests(texts: Sequence[str], identity: EncoderIdentity) -> np.ndarray:
    header = identity.header()
    out = np.empty((len(texts), DIGEST_BYTES), dtype=np.uint8)
    for i, text in enumerate(texts):
        h = hashlib.blake2b(header, digest_size=DIGEST_BYTES)
        h.update(text.encode("utf-8"))
        out[i] = np.frombuffer(h.digest(), dtype=np.uint8)
    return out


class EntityVectorCache:
    """Entity text vectors on disk, keyed by the texts and the encoder identity.

    Args:
        cache_dir: where the files live (created on first write).
        identity: the encoder whose vectors these are.
    """

    def __init__(self, cache_dir: Path, identity: EncoderIdentity) -> None:
        self.cache_dir = Path(cache_dir)
        self.identity = identity

    def path_for(self, texts: Sequence[str]) -> Path:
        """The matrix file for exactly these texts in this order."""
        return self.cache_dir / f"{PREFIX}{cache_key(texts, self.identity)}.npy"

    def load(self, texts: Sequence[str]) -> np.ndarray | None:
        """The cached matrix for exactly ``texts`` (this cache's file or the GNN's older one), or None."""
        key = cache_key(texts, self.identity)
        for prefix in (PREFIX, *LEGACY_PREFIXES):
            path = self.cache_dir / f"{prefix}{key}.npy"
            if not path.is_file():
                continue
            try:
                matrix = np.load(path)
            except (OSError, ValueError) as exc:  # a truncated or foreign file: recompute rather than fail
                log.warning("ignoring unreadable vector cache %s (%s)", path, exc)
                continue
            if matrix.ndim == 2 and matrix.shape[0] == len(texts):
                log.info("entity vectors read from cache %s", path)
                matrix = np.asarray(matrix, dtype=np.float32)
                if prefix != PREFIX:
                    # adopt the GNN's file under this cache's name, with digests, so later edits reuse its rows
                    self._save(texts, _digests(texts, self.identity), matrix)
                return matrix
        return None

    def _save(self, texts: Sequence[str], digests: np.ndarray, matrix: np.ndarray) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self.path_for(texts)
        save_npy_atomic(path.with_name(path.name.replace(".npy", ".digests.npy")), digests)
        save_npy_atomic(path, matrix)
        return path

    def _reusable_rows(self, wanted: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Rows of earlier files whose text digest matches: (matrix with those rows filled, mask of filled rows)."""
        index = {bytes(d): i for i, d in enumerate(wanted)}
        filled = np.zeros(len(wanted), dtype=bool)
        matrix: np.ndarray | None = None
        for digest_path in sorted(self.cache_dir.glob(f"{PREFIX}*.digests.npy")):
            if filled.all():
                break
            matrix_path = digest_path.with_name(digest_path.name.replace(".digests.npy", ".npy"))
            try:
                old_digests = np.load(digest_path)
                old = np.load(matrix_path, mmap_mode="r")
            except (OSError, ValueError):
                continue
            if old.ndim != 2 or old.shape[0] != old_digests.shape[0]:
                continue
            for row, d in enumerate(old_digests):
                i = index.get(bytes(d))
                if i is None or filled[i]:
                    continue
                if matrix is None:
                    matrix = np.zeros((len(wanted), old.shape[1]), dtype=np.float32)
                elif matrix.shape[1] != old.shape[1]:
                    continue
                matrix[i] = old[row]
                filled[i] = True
        return matrix, filled

    def get(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """The ``N × D`` matrix for ``texts``: from disk when cached, else computed (reusing unchanged rows) and saved.

        Args:
            texts: one text per entity (see :func:`entity_text`).
            encode: computes unit vectors for a list of texts (called only for texts not cached).
        """
        texts = list(texts)
        if not texts:
            return np.asarray(encode([]), dtype=np.float32)
        cached = self.load(texts)
        if cached is not None:
            return cached
        digests = _digests(texts, self.identity)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        matrix, filled = self._reusable_rows(digests)
        missing = [i for i in range(len(texts)) if not filled[i]]
        started = time.perf_counter()
        if missing:
            fresh = np.asarray(encode([texts[i] for i in missing]), dtype=np.float32)
            if matrix is None:
                matrix = np.zeros((len(texts), fresh.shape[1] if fresh.ndim == 2 else 0), dtype=np.float32)
            matrix[np.asarray(missing, dtype=np.int64)] = fresh
        assert matrix is not None  # texts is non-empty, so every row was either reused or encoded
        path = self._save(texts, digests, matrix)
        log.info(
            "entity vectors: %d reused, %d encoded in %.1fs; cached at %s",
            len(texts) - len(missing), len(missing), time.perf_counter() - started, path,
        )
        return matrix


def entity_text_vectors(
    texts: Sequence[str],
    settings: "Settings",
    *,
    encoder: "TextEncoder | None" = None,
    batch_size: int = 64,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Pooled unit vectors of entity texts, ``N × D`` float32, read from or written to ``settings.cache_dir``.

    Args:
        texts: one per entity, usually :func:`entity_text` of each.
        settings: ``cache_dir``, and ``device`` when ``encoder`` is not given (the linking model then).
        encoder: the text encoder to use (default one from ``settings``; loaded only when something must be encoded).
        batch_size: texts per forward pass.
        chunk_size: texts per ``encode`` call (bounds the memory token states take).

    Raises:
        ModelNotFound: something must be encoded and the text model cannot be loaded.
    """
    from encoders.text import TextEncoder, TextEncoderConfig

    encoder = encoder or TextEncoder(TextEncoderConfig.for_linking(settings))
    cache = EntityVectorCache(settings.cache_dir, EncoderIdentity.of(encoder))

    def encode(batch: list[str]) -> np.ndarray:
        from tqdm.auto import tqdm

        # Sorting by length keeps padding (and so encoder time) small; rows go back to input order below.
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
        parts: list[np.ndarray] = []
        with tqdm(total=len(batch), desc="entity vectors", unit="text", disable=None) as bar:
            for start in range(0, len(order), chunk_size):
                chunk = [batch[i] for i in order[start : start + chunk_size]]
                parts.append(encoder.encode(chunk, batch_size=batch_size).pooled)
                bar.update(len(chunk))
        if not parts:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        sorted_rows = np.concatenate(parts)
        out = np.empty_like(sorted_rows)
        out[np.asarray(order)] = sorted_rows
        return out

    return cache.get(texts, encode)
