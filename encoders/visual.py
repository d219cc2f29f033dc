"""ResNet features of a video's keyframes (torchvision), the visual half of the OVP encoder.

Following the OVP paper, each of the K keyframes is passed through an ImageNet ResNet with its classifier removed, so
a frame becomes the globally average-pooled activation of the last stage: 2048 numbers for ResNet-50, 512 for
ResNet-18. Preprocessing is the weights' own ``transforms()`` (resize, centre crop 224, ImageNet normalisation).

Weights never come from the network. They are, in order: the file in ``VisualEncoderConfig.weights``
(``OVP_RESNET_WEIGHTS``); torchvision's own cache (``torch.hub.get_dir()/checkpoints/<file name of the weights URL>``);
otherwise random initialisation with a fixed seed — the features are then reproducible but carry no ImageNet knowledge,
so one loud warning is logged per process and the features record ``weights="none"``.

Construction resolves the device and the weights file (cheap); the network is built on first use (:meth:`load`), so a
feature-cache hit never builds a model.
"""
from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from torchvision import models

from encoders.device import resolve_device
from encoders.keyframes import KeyframeSet, extract_keyframes
from encoders.media import HashedFile, MediaLimits, hash_media
from ovp.errors import ModelNotFound, VideoDecodeError

if TYPE_CHECKING:
    from encoders.feature_cache import FeatureCache
    from ovp.settings import Settings

logger = logging.getLogger(__name__)

#: Architecture → (torchvision builder, weights enum, feature dimension after global pooling).
ARCHITECTURES: dict[str, tuple[object, type[models.WeightsEnum], int]] = {
    "resnet50": (models.resnet50, models.ResNet50_Weights, 2048),
    "resnet18": (models.resnet18, models.ResNet18_Weights, 512),
}
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: Logged once per process: random weights silently degrade every profile, so say it loudly but only once.
_random_weights_warned = False


@dataclass(frozen=True)
class VisualEncoderConfig:
    """Everything the visual encoder reads.

    Attributes:
        arch: ``"resnet50"`` (2048-d, the default) or ``"resnet18"`` (512-d, for tests and small machines).
        weights: path to an ImageNet state dict; ``""`` looks in torchvision's cache and falls back to random
            weights; ``"none"`` forces random weights (reproducible tests on any machine).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see :func:`encoders.device.resolve_device`).
        batch_size: frames per forward pass.
        seed: seed of the random initialisation when there are no weights.
        precision: ``"auto"`` (bf16 autocast on CUDA where supported, else fp16; fp32 on CPU), ``"fp32"``,
            ``"fp16"`` or ``"bf16"`` (the last two need CUDA).
        require_weights: raise :class:`ModelNotFound` instead of running with random weights.
    """

    arch: str = "resnet50"
    weights: str = ""
    device: str = "auto"
    batch_size: int = 8
    seed: int = 0
    precision: str = "auto"
    require_weights: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {self.arch!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.require_weights and self.weights == "none":
            raise ValueError("require_weights=True conflicts with weights='none' (random weights were asked for)")
        if self.precision in ("fp16", "bf16") and self.device.strip().lower() == "cpu":
            raise ValueError(f"precision={self.precision!r} conflicts with device='cpu' (autocast is used on CUDA only)")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> VisualEncoderConfig:
        """The config ``OVP_RESNET_ARCH``, ``OVP_RESNET_WEIGHTS`` and ``OVP_DEVICE`` describe, with overrides."""
        base = cls(arch=settings.resnet_arch, weights=settings.resnet_weights, device=settings.device)
        return replace(base, **overrides) if overrides else base


@dataclass
class VisualFeatures:
    """ResNet features of one video's keyframes.

    Attributes:
        features: ``K × D`` float32, one row per keyframe (D = 2048 for ResNet-50, 512 for ResNet-18).
        timestamps_s, reasons: of the keyframes, as in :class:`encoders.keyframes.KeyframeSet`.
        arch: ``"resnet50"`` or ``"resnet18"``.
        weights: ``"none"`` (random initialisation), a torchvision weights name such as ``"IMAGENET1K_V2"``, or
            ``"file:<stem>:<sha256 prefix>"`` for a weights file.
        model_version: identifies everything that shapes the numbers (arch, weights, torchvision's preprocessing).
        video_sha256: content hash of the video file ("" when encoded from frames alone).
    """

    features: np.ndarray
    timestamps_s: list[float]
    reasons: list[str]
    arch: str
    weights: str
    model_version: str
    video_sha256: str = ""

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])


class VisualEncoder:
    """A headless ImageNet ResNet that turns RGB frames into pooled feature vectors.

    Raises (constructor):
        ValueError: conflicting options (see :class:`VisualEncoderConfig`), or fp16/bf16 on a CPU device.
        ConfigError: the device cannot be used.
        ModelNotFound: ``weights`` names a file that does not exist, or no weights were found and
            ``require_weights`` is set.
    """

    def __init__(self, config: VisualEncoderConfig | None = None) -> None:
        self.config = config or VisualEncoderConfig()
        self.device = resolve_device(self.config.device)
        if self.config.precision in ("fp16", "bf16") and self.device.type != "cuda":
            raise ValueError(
                f"precision={self.config.precision!r} conflicts with device={self.config.device!r} "
                f"(resolved to {self.device}; autocast is used on CUDA only)"
            )
        builder, weights_enum, self.dim = ARCHITECTURES[self.config.arch]
        self._builder = builder
        self.weights_file, self.weights_tag, known = _resolve_weights(self.config, weights_enum)
        # Preprocessing follows the weights (V2 resizes to 232, V1 to 256); random weights use the default recipe.
        self.transforms = known.transforms()
        self._model: torch.nn.Module | None = None

    @property
    def model_version(self) -> str:
        """``<arch>/<weights tag>/torchvision-<version>``; stored with every feature set."""
        return f"{self.config.arch}/{self.weights_tag}/torchvision-{torchvision.__version__}"

    @property
    def identity(self) -> str:
        """What the features depend on, for cache keys: the model version, plus the seed when weights are random."""
        seed = f"/seed{self.config.seed}" if self.weights_tag == "none" else ""
        return self.model_version + seed

    def load(self) -> torch.nn.Module:
        """Build the network (once): weights loaded, classifier dropped, eval mode, channels-last on the device.

        Raises:
            ModelNotFound: the weights file cannot be read or does not hold this architecture's weights.
        """
        if self._model is not None:
            return self._model
        # fork_rng keeps the seeded initialisation from disturbing anyone else's random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            model = self._builder(weights=None)
        if self.weights_file is not None:
            _load_state(model, self.weights_file, self.config.arch)
        else:
            _warn_random_weights(self.config.arch)
        model.fc = torch.nn.Identity()  # keep the 2048/512-d pooled features, not ImageNet logits
        model.eval()
        self._model = model.to(self.device, memory_format=torch.channels_last)
        logger.info("visual encoder %s on %s", self.model_version, self.device)
        return self._model

    def encode_frames(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Features of RGB frames.

        Args:
            frames: ``H × W × 3`` uint8 images (sizes may differ).

        Returns:
            ``len(frames) × dim`` float32 array.
        """
        if not frames:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.load()
        outputs = []
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(frames), self.config.batch_size):
                chunk = frames[start : start + self.config.batch_size]
                # Transform on the device: resizing a 1080p frame is the costliest preprocessing step.
                batch = torch.stack(
                    [self.transforms(torch.from_numpy(np.ascontiguousarray(f)).to(self.device).permute(2, 0, 1)) for f in chunk]
                )
                batch = batch.contiguous(memory_format=torch.channels_last)
                outputs.append(model(batch).float().cpu())
        return torch.cat(outputs).numpy().astype(np.float32, copy=False)

    def encode(self, keyframes: KeyframeSet, video_sha256: str = "") -> VisualFeatures:
        """Features of a :class:`KeyframeSet`, with its timestamps and reasons."""
        return self.features_of(keyframes, self.encode_frames(keyframes.frames), video_sha256)

    def features_of(self, keyframes: KeyframeSet, features: np.ndarray, video_sha256: str = "") -> VisualFeatures:
        """The :class:`VisualFeatures` of ``keyframes`` whose frames this encoder encoded into ``features``."""
        return VisualFeatures(
            features=np.ascontiguousarray(features, dtype=np.float32),
            timestamps_s=list(keyframes.timestamps_s),
            reasons=list(keyframes.reasons),
            arch=self.config.arch,
            weights=self.weights_tag,
            model_version=self.model_version,
            video_sha256=video_sha256,
        )

    def _autocast(self) -> object:
        if self.device.type != "cuda" or self.config.precision == "fp32":
            return nullcontext()
        if self.config.precision == "auto":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)


def encode_video(
    path: str | Path,
    encoder: VisualEncoder,
    cache: FeatureCache | None = None,
    *,
    k: int = 8,
    timeout_s: float = 20.0,
    limits: MediaLimits | None = None,
) -> VisualFeatures:
    """Keyframes → ResNet features of one video, answered from the cache when this exact file was seen before.

    The cache key is the SHA-256 of the file's bytes with the encoder's identity (arch, weights, seed) and ``k``, so a
    renamed copy is a hit and a re-encoded video is not. A hit neither decodes the video nor builds the model.

    Args:
        path: the video file.
        encoder: the visual encoder.
        cache: where features are kept; ``None`` always computes.
        k: keyframes per video (``Settings.keyframes``).
        timeout_s: time bound on reading, probing and decoding the video (``Settings.decode_timeout_s``).
        limits: the file size, frame size and duration allowed.

    Returns:
        The video's :class:`VisualFeatures`.

    Raises:
        VideoDecodeError: see :func:`encoders.keyframes.extract_keyframes`.
        ModelNotFound: see :meth:`VisualEncoder.load`.
    """
    result = encode_videos([path], encoder, cache, k=k, timeout_s=timeout_s, limits=limits)[0]
    if isinstance(result, VideoDecodeError):
        raise result
    return result


def encode_videos(
    paths: Sequence[str | Path | HashedFile],
    encoder: VisualEncoder,
    cache: FeatureCache | None = None,
    *,
    k: int = 8,
    timeout_s: float = 20.0,
    workers: int = 1,
    on_done: Callable[[int], object] | None = None,
    limits: MediaLimits | None = None,
) -> list[VisualFeatures | VideoDecodeError]:
    """Keyframes → ResNet features of several videos, as :func:`encode_video` gives them one by one, but faster.

    Cache hits are answered first. The other videos are decoded by ``workers`` threads (PyAV releases the GIL while
    FFmpeg decodes), in windows of ``max(8, 2 × workers)`` videos: while the network encodes one window's frames in
    batches of ``encoder.config.batch_size``, the threads decode the next. At most two windows of decoded frames are
    held at once. One worker decoding one video at a time left a GPU idle most of the time (``bench/profile_gpu.py``).

    Each video gets ``timeout_s`` for reading (hashing), probing and decoding together; a file is checked
    (:mod:`encoders.media`: a regular file within ``limits``) before a byte of it is read.

    Args:
        paths: the videos; a :class:`encoders.media.HashedFile` (already checked and hashed by the caller) is not
            read again, and the seconds its hashing took count against its deadline.
        on_done: called with the number of videos finished, after each window (a progress bar's ``update``).
        limits: the file size, frame size and duration allowed (default: :class:`MediaLimits`' defaults).

    Returns:
        One result per path, in order: its features, or the :class:`VideoDecodeError` it raised (a file that cannot
        be read or decoded never fails the others).

    Raises:
        ValueError: ``workers < 1``.
        ModelNotFound: see :meth:`VisualEncoder.load`.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    limits = limits or MediaLimits()
    results: list[VisualFeatures | VideoDecodeError | None] = [None] * len(paths)
    todo: list[tuple[int, HashedFile, str | None]] = []  # (position, the checked file, cache key)
    for i, raw in enumerate(paths):
        try:
            hashed = raw if isinstance(raw, HashedFile) else hash_media(raw, limits, timeout_s=timeout_s)
        except VideoDecodeError as exc:
            results[i] = exc
            continue
        key = cache.key(hashed.sha256, encoder.identity, k) if cache is not None else None
        hit = cache.get(key) if cache is not None and key is not None else None
        if hit is not None:
            logger.debug("%s: visual features from cache (%s)", hashed.path, key)
            results[i] = hit
        else:
            todo.append((i, hashed, key))

    def decode(item: tuple[int, HashedFile, str | None]) -> KeyframeSet | VideoDecodeError:
        hashed = item[1]
        try:
            # Reading the file to hash it spent part of the video's deadline.
            return extract_keyframes(hashed.path, k=k, timeout_s=timeout_s, limits=limits, spent_s=hashed.seconds)
        except VideoDecodeError as exc:
            return exc

    size = max(8, 2 * workers)
    windows = [todo[start:start + size] for start in range(0, len(todo), size)]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ovp-decode")
    try:
        pending = [pool.submit(decode, item) for item in windows[0]] if windows else []
        for n, window in enumerate(windows):
            decoded = [future.result() for future in pending]
            pending = [pool.submit(decode, item) for item in windows[n + 1]] if n + 1 < len(windows) else []
            sets = [d for d in decoded if isinstance(d, KeyframeSet)]
            features = encoder.encode_frames([frame for s in sets for frame in s.frames])
            offset = 0
            for (i, hashed, key), d in zip(window, decoded):
                if isinstance(d, VideoDecodeError):
                    results[i] = d
                    continue
                count = len(d.frames)
                results[i] = encoder.features_of(d, features[offset:offset + count], video_sha256=hashed.sha256)
                offset += count
                if cache is not None and key is not None:
                    cache.put(key, results[i])
            if on_done is not None:
                on_done(len(window))
    finally:
        # Never wait here for a decoding thread: when the task's soft time limit interrupts this loop, the chunk must
        # go on at once (each thread ends by its own video's deadline).
        pool.shutdown(wait=False, cancel_futures=True)
    return results  # type: ignore[return-value]


def _resolve_weights(
    config: VisualEncoderConfig, weights_enum: type[models.WeightsEnum]
) -> tuple[Path | None, str, models.WeightsEnum]:
    """(weights file or None, weights tag, torchvision weights entry whose transforms apply)."""
    default = weights_enum.DEFAULT
    by_filename = {Path(urlparse(w.url).path).name: w for w in weights_enum}
    if config.weights == "none":
        return None, "none", default
    if config.weights:
        file = Path(config.weights).expanduser()
        if not file.is_file():
            raise ModelNotFound(
                f"ResNet weights file {file} does not exist",
                hint="set OVP_RESNET_WEIGHTS to an existing .pth state dict, or unset it to use torchvision's cache",
            )
        known = by_filename.get(file.name, default)
        return file, f"file:{file.stem}:{_sha256_prefix(file)}", known
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    # DEFAULT first (IMAGENET1K_V2 for ResNet-50: the better recipe), then any other ImageNet weights present.
    for entry in [default, *(w for w in weights_enum if w is not default)]:
        file = checkpoints / Path(urlparse(entry.url).path).name
        if file.is_file():
            return file, entry.name, entry
    if config.require_weights:
        raise ModelNotFound(
            f"no {config.arch} ImageNet weights in {checkpoints}",
            hint=f"copy {Path(urlparse(default.url).path).name} there or set OVP_RESNET_WEIGHTS to a weights file",
        )
    return None, "none", default


def _sha256_prefix(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _load_state(model: torch.nn.Module, file: Path, arch: str) -> None:
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises RuntimeError, UnpicklingError, EOFError… depending on the damage
        raise ModelNotFound(f"cannot read ResNet weights {file}: {exc}", hint="re-download the weights file") from exc
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
    if not isinstance(state, dict):
        raise ModelNotFound(f"{file} does not hold a state dict", hint="save the weights with torch.save(model.state_dict())")
    # Training scripts often save DataParallel models ("module." prefix); the classifier is dropped anyway.
    state = {key.removeprefix("module."): value for key, value in state.items()}
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    try:
        missing, _unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: weights of another architecture
        raise ModelNotFound(f"{file} does not hold {arch} weights: {str(exc).splitlines()[0]}", hint="check OVP_RESNET_ARCH") from exc
    missing = [key for key in missing if not key.startswith("fc.")]
    if missing:
        raise ModelNotFound(
            f"{file} does not hold {arch} weights ({len(missing)} tensors missing, e.g. {missing[0]})",
            hint="check OVP_RESNET_ARCH matches the weights file",
        )


def _warn_random_weights(arch: str) -> None:
    global _random_weights_warned
    if _random_weights_warned:
        return
    _random_weights_warned = True
    logger.warning(
        "!!! NO IMAGENET WEIGHTS for %s: visual features come from a RANDOMLY INITIALISED network (fixed seed). "
        "They are reproducible but carry no visual knowledge; profiles record weights='none'. "
        "Put the torchvision checkpoint in %s or set OVP_RESNET_WEIGHTS. !!!",
        arch,
        Path(torch.hub.get_dir()) / "checkpoints",
    )
