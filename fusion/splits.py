"""Deterministic train/validation/test splits of video ids: by a seeded hash of each id, or into cross-fitting folds.

The split depends only on ``(seed, video id)`` (SHA-256 → a number in [0, 1)), so the same manifest and seed give the
same split in ``ovp train``, ``ovp evaluate`` and ``ovp ablate``, and adding videos never moves the others.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

from fusion.records import VideoFeatures

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


def _unit_hash(seed: int, video_id: str) -> float:
    digest = hashlib.sha256(f"ovp-split|{seed}|{video_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class DataSplit:
    """Video ids per split (each list sorted), with the seed and fractions that made them (saved as ``split.json``)."""

    seed: int
    fractions: tuple[float, float, float]
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def ids(self, name: str) -> tuple[str, ...]:
        """The ids of split ``name`` (``train``, ``val``, ``test``) or of all three (``all``)."""
        if name == "all":
            return self.train + self.val + self.test
        if name not in SPLITS:
            raise ValueError(f"split {name!r} is not one of {SPLITS + ('all',)}")
        return getattr(self, name)

    def select(self, items: Sequence[VideoFeatures], name: str) -> list[VideoFeatures]:
        """The items of split ``name``, in the order of ``items``."""
        wanted = set(self.ids(name))
        return [it for it in items if it.video_id in wanted]

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "fractions": list(self.fractions), "method": "sha256(ovp-split|seed|id)",
                **{name: list(getattr(self, name)) for name in SPLITS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataSplit":
        return cls(int(data["seed"]), tuple(data["fractions"]), *(tuple(data[name]) for name in SPLITS))  # type: ignore[arg-type]


def split_ids(ids: Sequence[str], seed: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> DataSplit:
    """Assign each id to train / val / test by a seeded hash of the id (deterministic, order-independent).

    Raises:
        ValueError: the fractions are negative or do not sum to 1, or an id appears twice.
    """
    if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"split fractions {fractions} must be ≥ 0 and sum to 1")
    if len(set(ids)) != len(ids):
        raise ValueError("video ids must be unique to split them")
    cut_train, cut_val = fractions[0], fractions[0] + fractions[1]
    parts: dict[str, list[str]] = {name: [] for name in SPLITS}
    for vid in ids:
        u = _unit_hash(seed, vid)
        parts["train" if u < cut_train else "val" if u < cut_val else "test"].append(vid)
    return DataSplit(seed, tuple(fractions), *(tuple(sorted(parts[name])) for name in SPLITS))  # type: ignore[arg-type]


def fold_splits(ids: Sequence[str], seed: int, folds: int) -> list[DataSplit]:
    """K-fold cross-fitting: the ids, ordered by the seeded hash, are dealt into ``folds`` folds of equal size (±1);
    split k tests fold k, validates (early stopping) on fold k + 1 (mod K) and trains on the other K − 2. Every id is
    in exactly one test fold, so the K models' test predictions together cover every video once.

    Raises:
        ValueError: fewer than 3 folds, fewer ids than folds, or an id appears twice.
    """
    if folds < 3:
        raise ValueError(f"cross-fitting needs at least 3 folds (test, validation, training), got {folds}")
    if len(set(ids)) != len(ids):
        raise ValueError("video ids must be unique to split them")
    if len(ids) < folds:
        raise ValueError(f"{len(ids)} videos cannot fill {folds} folds")
    order = sorted(ids, key=lambda vid: (_unit_hash(seed, vid), vid))
    dealt = [tuple(sorted(order[k::folds])) for k in range(folds)]
    fractions = ((folds - 2) / folds, 1 / folds, 1 / folds)
    splits = []
    for k in range(folds):
        test, val = dealt[k], dealt[(k + 1) % folds]
        train = tuple(sorted(set(ids) - set(test) - set(val)))
        splits.append(DataSplit(seed, fractions, train, val, test))
    return splits
