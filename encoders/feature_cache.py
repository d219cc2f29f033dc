"""On-disk cache of visual features, keyed by what the video *is* (a hash of its bytes), not where it lives.

Profiling the same video again — a retried task, a re-submitted batch, the same clip posted on two platforms — then
costs one streamed SHA-256 of the file instead of a decode and a CNN pass. Entries are ``.npz`` files under
``Settings.cache_dir / "visual"``, written atomically so concurrent workers never read half a file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from encoders.cache_files import save_npz_atomic

if TYPE_CHECKING:
    from ovp.settings import Settings

logger = logging.getLogger(__name__)

#: Bumped when the stored layout or the keyframe selection changes, so old entries stop matching.
CACHE_FORMAT = 2


def file_sha256(path: str | Path, block_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks (memory stays flat for multi-GB videos).

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class VisualFeatures:
    """CNN features of one video's keyframes.

    Attributes:
        features: ``K × D`` float32, one row per keyframe (D = 1280 for EfficientNet-Lite0, 2048 for ResNet-50,
            512 for ResNet-18).
        timestamps_s, reasons: of the keyframes, as in :class:`encoders.keyframes.KeyframeSet`.
        backbone: a key of :data:`BACKBONES`.
        weights: ``"random"`` (seeded random initialisation), the weights file's name (``"efficientnet-lite0-57934424"``),
            a torchvision weights name (``"IMAGENET1K_V2"``), or ``"file:<stem>:<sha256 prefix>"`` for a given file.
        model_version: identifies everything that shapes the numbers (backbone, weights, the code and preprocessing).
        video_sha256: content hash of the video file ("" when encoded from frames alone).
    """

    features: np.ndarray
    timestamps_s: list[float]
    reasons: list[str]
    backbone: str
    weights: str
    model_version: str
    video_sha256: str = ""

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])


class FeatureCache:
    """Visual features stored as ``<root>/<video sha256>.<backbone>.<k>.<identity hash>.npz``; the identity hash covers
    the backbone, its weights (a file's content hash for a given file) and the code that ran it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureCache:
        """The cache under ``settings.cache_dir / "visual"``."""
        return cls(settings.cache_dir / "visual")

    def key(self, video_sha256: str, encoder_identity: str, k: int) -> str:
        """The entry name for a video, an encoder (backbone, weights, seed, preprocessing) and a keyframe count."""
        recipe = hashlib.sha256(f"{CACHE_FORMAT}|{encoder_identity}|k={k}".encode()).hexdigest()[:12]
        backbone = re.sub(r"[^A-Za-z0-9]+", "", encoder_identity.split("/", 1)[0]) or "model"
        return f"{video_sha256}.{backbone}.k{k}.{recipe}"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> VisualFeatures | None:
        """The stored features, or None on a miss. An unreadable entry is logged, removed and treated as a miss."""
        file = self.path(key)
        if not file.is_file():
            return None
        try:
            with np.load(file, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                features = np.asarray(data["features"], dtype=np.float32)
            return VisualFeatures(
                features=features,
                timestamps_s=[float(t) for t in meta["timestamps_s"]],
                reasons=list(meta["reasons"]),
                backbone=meta["backbone"],
                weights=meta["weights"],
                model_version=meta["model_version"],
                video_sha256=meta.get("video_sha256", ""),
            )
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            logger.warning("dropping unreadable cache entry %s: %s", file, exc)
            file.unlink(missing_ok=True)
            return None

    def put(self, key: str, features: VisualFeatures) -> Path:
        """Store features under ``key`` (atomically: write a temporary file, then rename). Returns the entry's path."""
        meta = {
            "timestamps_s": list(features.timestamps_s),
            "reasons": list(features.reasons),
            "backbone": features.backbone,
            "weights": features.weights,
            "model_version": features.model_version,
            "video_sha256": features.video_sha256,
        }
        return save_npz_atomic(self.path(key), features=np.asarray(features.features, dtype=np.float32),
                               meta=np.array(json.dumps(meta)))
