"""Cache files written whole or not at all, so a concurrent reader (another worker, another thread) never loads half
of one: the bytes go to a temporary file in the same folder, which is then renamed over the target in one step.

Every on-disk array cache of the project writes through :func:`write_atomic`: the visual features
(:mod:`encoders.feature_cache`), the entity text vectors (:mod:`encoders.entity_vectors`) and the extracted feature
arrays (:mod:`fusion.features`).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

import numpy as np

__all__ = ["write_atomic", "save_npz_atomic", "save_npy_atomic"]


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file through ``write(handle)`` and rename it to ``path`` only once it is complete.

    The folder is created when missing. A failure (or an interrupt) inside ``write`` removes the temporary file and
    leaves whatever was at ``path`` untouched. Temporary names start with ``.tmp-``, so globs over cache entries never
    see them.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz_atomic(path: str | Path, **arrays: np.ndarray) -> Path:
    """``np.savez(path, **arrays)`` (uncompressed), atomically (see :func:`write_atomic`)."""
    return write_atomic(path, lambda handle: np.savez(handle, **arrays))


def save_npy_atomic(path: str | Path, array: np.ndarray) -> Path:
    """``np.save(path, array)``, atomically (see :func:`write_atomic`); the file can be memory-mapped when read."""
    return write_atomic(path, lambda handle: np.save(handle, array))
