"""Keyframes decoded on the GPU (torchcodec on NVIDIA's NVDEC), chosen by the same rule as :mod:`encoders.keyframes`.

PyAV stays the CPU path and the fallback. On a machine where the encoders run on CUDA and torchcodec loads,
:func:`keyframe_decoder` picks this path: PyAV only reads the container's packets (no decoding: which packets are key
frames, every frame's time, the duration, the same checks for missing, empty, truncated and non-video files), and
torchcodec decodes the key frames, in batches, on the device. Each key frame's thumbnail and colour histogram are
computed on the device from the decoded picture; the picks come from :func:`encoders.keyframes.plan_picks`; a pick
between key frames (``"uniform"``) takes the frame nearest its time, as the CPU path does. Frames come back upright
(torchcodec applies the display matrix) as RGB ``height × width × 3`` uint8 arrays. A file passes the CPU path's
checks first (a regular file within :class:`encoders.media.MediaLimits`, frame size and duration from the headers),
under the same deadline; a stream whose frames are larger than ``MAX_FRAME_PIXELS`` is left to PyAV, which scales
them down before they become RGB, rather than decoded full size onto the device.

The same path runs on the CPU (``device="cpu"``: torchcodec decodes with FFmpeg), which is how it is tested on a
machine without a GPU: there it gives the CPU path's frames bit for bit. On NVDEC the colour conversion is NVIDIA's,
so pixels may differ by a few levels from FFmpeg's, and the histograms with them; a scene score that lies within that
much of the threshold could then pick another key frame.

torchcodec needs FFmpeg's shared libraries (4 to 8; Debian's ``libavcodec59`` and friends) and, for the GPU, the
driver's ``libnvcuvid``. Neither is needed by the CPU path.
"""
from __future__ import annotations

import bisect
import importlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np
import torch
import torch.nn.functional as F

from encoders import keyframes
from encoders.keyframes import (
    _EPS,
    HIST_BINS,
    THUMB_SIZE,
    KeyframeSet,
    _checked_stream,
    _Deadline,
    _duration,
    _reason,
    _start,
    extract_keyframes,
    histogram_distance,
    plan_picks,
)
from encoders.media import MediaLimits
from ovp.errors import VideoDecodeError

logger = logging.getLogger(__name__)

#: Key frames decoded per call: bounds the device memory one video takes (16 × 1080p RGB ≈ 100 MB).
DECODE_BATCH = 16
#: Up to this many key frames, all of them are kept on the device so that the chosen ones need no second decode;
#: past it (long videos), the chosen ones are decoded again.
HOLD_KEYFRAMES = 64
#: ``OVP_VIDEO_DECODER`` values.
DECODER_CHOICES = ("auto", "pyav", "torchcodec")


@dataclass(frozen=True)
class KeyframeDecoder:
    """The keyframe extraction a worker uses: ``name`` says which (``"pyav"``, ``"torchcodec-cuda"``,
    ``"torchcodec-cpu"``), ``reason`` why it was chosen; ``extract`` has :func:`encoders.keyframes.extract_keyframes`'
    arguments."""

    name: str
    reason: str
    extract: Callable[..., KeyframeSet]


def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (not installed, or FFmpeg's libraries missing), or None if it can."""
    try:
        importlib.import_module("torchcodec.decoders")
    except ImportError as exc:
        return f"torchcodec is not installed ({exc})"
    except (RuntimeError, OSError) as exc:  # its core library loads FFmpeg's at import
        return f"torchcodec cannot load FFmpeg's libraries ({' '.join(str(exc).split())[:200]})"
    return None


def choose_decoder(choice: str, device: torch.device, problem: str | None) -> tuple[str, str]:
    """(decoder name, reason) for the ``OVP_VIDEO_DECODER`` ``choice``, the encoders' ``device`` and torchcodec's
    ``problem`` (None: usable). A pure rule, so that it is tested without a GPU.

    ``auto``: torchcodec on the GPU when the encoders run on CUDA and torchcodec works, else PyAV. ``torchcodec``:
    torchcodec on the encoders' device (an error if it cannot load). ``pyav``: PyAV.

    Raises:
        ValueError: an unknown choice, or ``torchcodec`` asked for where it cannot load.
    """
    if choice not in DECODER_CHOICES:
        raise ValueError(f"video decoder must be one of {', '.join(DECODER_CHOICES)}, got {choice!r}")
    if choice == "pyav":
        return "pyav", "asked for (OVP_VIDEO_DECODER=pyav)"
    if choice == "torchcodec":
        if problem is not None:
            raise ValueError(f"OVP_VIDEO_DECODER=torchcodec but {problem}; install torchcodec and FFmpeg's libraries "
                             "or set OVP_VIDEO_DECODER=auto")
        return f"torchcodec-{device.type}", "asked for (OVP_VIDEO_DECODER=torchcodec)"
    if device.type != "cuda":
        return "pyav", "the encoders run on the CPU"
    if problem is not None:
        return "pyav", problem
    return "torchcodec-cuda", "the encoders run on CUDA and torchcodec loads"


def keyframe_decoder(choice: str, device: torch.device) -> KeyframeDecoder:
    """The keyframe extraction for this process (see :func:`choose_decoder`), logged once by the caller."""
    problem = torchcodec_problem() if choice != "pyav" and (choice == "torchcodec" or device.type == "cuda") else None
    name, reason = choose_decoder(choice, device, problem)
    if name == "pyav":
        return KeyframeDecoder(name, reason, extract_keyframes)

    def extract(path: str | Path, k: int = 8, *, timeout_s: float = 20.0, scene_threshold: float = 0.45,
                limits: MediaLimits | None = None, spent_s: float = 0.0) -> KeyframeSet:
        started = time.monotonic()
        try:
            return extract_keyframes_torchcodec(path, k, device=device, timeout_s=timeout_s,
                                                scene_threshold=scene_threshold, limits=limits, spent_s=spent_s)
        except _Unsupported as exc:
            # NVDEC decodes H.264, HEVC, VP9 and AV1 on recent GPUs; anything else, or a stream it refuses, goes to
            # the CPU path, which also reports a damaged file as a VideoDecodeError naming it. The time the GPU path
            # spent counts against the same deadline.
            logger.warning("%s: not decoded on %s (%s); decoding it with PyAV", path, device, exc)
            return extract_keyframes(path, k, timeout_s=timeout_s, scene_threshold=scene_threshold, limits=limits,
                                     spent_s=spent_s + time.monotonic() - started)

    return KeyframeDecoder(name, reason, extract)


class _Unsupported(Exception):
    """torchcodec could not decode a file that PyAV opened: fall back to PyAV for it."""


@dataclass
class _PacketIndex:
    """What the container's packets say, without decoding: every frame's pts in presentation order, which are key
    frames, how many packets, where the stream ends."""

    pts: list[int]
    key_pts: list[int]
    packets: int
    end_pts: int | None


def _index_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                   deadline: _Deadline) -> _PacketIndex:
    pts: list[int] = []
    key_pts: list[int] = []
    packets = 0
    end_pts: int | None = None
    for packet in container.demux(stream):
        deadline.check()
        if not packet.size:
            continue
        packets += 1
        if packet.pts is None:
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            key_pts.append(packet.pts)
        packet_end = packet.pts + (packet.duration or 0)
        end_pts = packet_end if end_pts is None else max(end_pts, packet_end)
    return _PacketIndex(sorted(pts), sorted(key_pts), packets, end_pts)


def _probe(container: av.container.InputContainer, path: Path, deadline: _Deadline,
           limits: MediaLimits) -> tuple[_PacketIndex, object, int, float]:
    """The stream's packet index, time base, start time and duration, read with PyAV from the opened ``container``
    (no frame is decoded), which it closes.

    Raises:
        _Unsupported: frames larger than ``MAX_FRAME_PIXELS``: torchcodec would hand them back full size (8K: 100 MB
            each, a batch of them on the device), so PyAV, which scales them down first, decodes them.
    """
    try:
        stream = _checked_stream(container, path, limits)
        width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
        if width * height > keyframes.MAX_FRAME_PIXELS:
            raise _Unsupported(f"frames of {width} × {height} are scaled down on the CPU path")
        index = _index_packets(container, stream, deadline)
        if index.packets == 0:
            raise VideoDecodeError(f"{path}: the video stream has no frames (zero-length video)")
        start_pts = stream.start_time or 0
        return index, stream.time_base, start_pts, _duration(container, stream, index.end_pts, start_pts, [])
    except av.ExitError as exc:
        raise deadline.expired() from exc
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise VideoDecodeError(f"{path}: cannot decode the video ({_reason(exc)})",
                               hint="the file is damaged; re-export or re-download it") from exc
    finally:
        container.close()


def extract_keyframes_torchcodec(
    path: str | Path,
    k: int = 8,
    *,
    device: torch.device | str = "cpu",
    timeout_s: float = 20.0,
    scene_threshold: float = 0.45,
    limits: MediaLimits | None = None,
    spent_s: float = 0.0,
) -> KeyframeSet:
    """:func:`encoders.keyframes.extract_keyframes` with the decoding done by torchcodec on ``device``.

    Raises:
        ValueError: as extract_keyframes.
        VideoDecodeError: as extract_keyframes (missing, empty, not a video, truncated, no frames, too slow).
        MediaRefused: as extract_keyframes (not a regular file, over ``limits``).
        _Unsupported: torchcodec cannot decode this stream, or its frames are larger than ``MAX_FRAME_PIXELS``
            (the caller falls back to PyAV, which scales such frames down before converting them).
    """
    from torchcodec.decoders import VideoDecoder

    path, device = Path(path), torch.device(device)
    deadline, limits, container = _start(path, k, scene_threshold, timeout_s, spent_s, limits)
    index, tb, start_pts, duration_s = _probe(container, path, deadline, limits)
    try:
        decoder = VideoDecoder(str(path), device=device, seek_mode="exact", dimension_order="NCHW")
    except (RuntimeError, ValueError) as exc:
        raise _Unsupported(_reason(exc)) from exc
    # torchcodec numbers frames in presentation order, like the sorted packet times.
    position = {p: i for i, p in enumerate(index.pts)}
    key_indices = [position[p] for p in index.key_pts]
    times = [_seconds(p, tb, start_pts) for p in index.key_pts]
    histograms: list[np.ndarray] = []
    held: dict[int, torch.Tensor] = {}  # frame index → decoded frame
    for start in range(0, len(key_indices), DECODE_BATCH):
        deadline.check()
        indices = key_indices[start:start + DECODE_BATCH]
        batch = _frames_at(decoder, indices)
        histograms.extend(colour_histograms(batch).cpu().numpy())
        if len(key_indices) <= HOLD_KEYFRAMES:
            held.update(zip(indices, batch))
    if not histograms:
        raise VideoDecodeError(f"{path}: no video frame could be decoded", hint="the file is damaged; re-export it")
    scores = [0.0] + [histogram_distance(histograms[i - 1], histograms[i]) for i in range(1, len(histograms))]
    picks = plan_picks(times, scores, duration_s, k, scene_threshold)

    frame_times = [_seconds(p, tb, start_pts) for p in index.pts]
    chosen: list[int] = []  # a frame index per pick
    for pick in picks:
        if pick.keyframe_index is not None:
            chosen.append(key_indices[pick.keyframe_index])
        else:
            chosen.append(_nearest(frame_times, pick.time_s))
    deadline.check()
    missing = sorted({i for i in chosen if i not in held})
    if missing:
        held.update(zip(missing, _frames_at(decoder, missing)))
    kept: list[int] = []
    for i, frame_index in enumerate(chosen):
        # A uniform pick past the last frame lands on a frame already picked.
        if any(abs(frame_times[frame_index] - frame_times[chosen[j]]) < _EPS for j in kept):
            continue
        kept.append(i)
    frames = [held[chosen[i]].permute(1, 2, 0).contiguous().cpu().numpy() for i in kept]
    height, width = frames[0].shape[:2]
    rotation = decoder.metadata.rotation
    return KeyframeSet(
        path=path,
        frames=frames,
        timestamps_s=[round(frame_times[chosen[i]], 6) for i in kept],
        reasons=[picks[i].reason for i in kept],
        duration_s=duration_s,
        width=width,
        height=height,
        rotation=int(round((rotation or 0) / 90) * 90 % 360),
        keyframes_in_stream=len(key_indices),
        scene_scores=[round(picks[i].scene_score, 4) for i in kept],
    )


def _seconds(pts: int, time_base: object, start_pts: int) -> float:
    """A frame's time from the stream's start, computed as the CPU path computes it (``frame.time`` less the start's
    time: two roundings), so that both take the same frame when a pick lies half-way between two."""
    if not time_base:
        return 0.0
    return float(pts * time_base) - float(start_pts * time_base)


def _frames_at(decoder: object, indices: list[int]) -> torch.Tensor:
    try:
        return decoder.get_frames_at(indices).data  # type: ignore[attr-defined]
    except (RuntimeError, IndexError) as exc:
        raise _Unsupported(_reason(exc)) from exc


def _nearest(times: list[float], target: float) -> int:
    """Index of the frame nearest ``target`` (the later one on a tie; the last frame past the end), as the CPU path
    takes a uniform pick."""
    after = bisect.bisect_left(times, target - _EPS)
    if after >= len(times):
        return len(times) - 1
    if after > 0 and target - times[after - 1] < times[after] - target:
        return after - 1
    return after


def colour_histograms(frames: torch.Tensor) -> torch.Tensor:
    """Per-channel colour histograms (``N × 3 × HIST_BINS``, rows summing to 1) of ``N × 3 × H × W`` uint8 frames,
    each squeezed to ``THUMB_SIZE × THUMB_SIZE`` first, on the frames' device
    (:func:`encoders.keyframes.colour_histogram` for a batch on the GPU)."""
    thumbs = F.interpolate(frames.float(), size=(THUMB_SIZE, THUMB_SIZE), mode="bilinear", antialias=True,
                           align_corners=False)
    bins = (thumbs.round().clamp(0, 255).to(torch.int64) >> (8 - int(math.log2(HIST_BINS))))
    n = frames.shape[0]
    offsets = torch.arange(n * 3, device=frames.device).view(n, 3, 1, 1) * HIST_BINS
    counts = torch.bincount((bins + offsets).flatten(), minlength=n * 3 * HIST_BINS).view(n, 3, HIST_BINS)
    return counts.to(torch.float64) / (THUMB_SIZE * THUMB_SIZE)
