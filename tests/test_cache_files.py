"""The one atomic writer behind every array cache: a file is replaced whole or left as it was."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.cache_files import save_npy_atomic, save_npz_atomic, write_atomic


def test_arrays_round_trip_and_folders_are_created(tmp_path: Path) -> None:
    npz = save_npz_atomic(tmp_path / "a" / "entry.npz", x=np.arange(3), meta=np.array("{}"))
    npy = save_npy_atomic(tmp_path / "b" / "matrix.npy", np.eye(2, dtype=np.float32))
    with np.load(npz) as data:
        assert data["x"].tolist() == [0, 1, 2] and str(data["meta"]) == "{}"
    assert np.load(npy, mmap_mode="r").tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = save_npy_atomic(tmp_path / "matrix.npy", np.ones(4))

    def half_then_fail(handle: object) -> None:
        handle.write(b"\x93NUMPY half a header")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert np.load(target).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.npy"]
