"""Pick K representative frames of a video with PyAV, decoding as little as possible.

How frames are chosen (cheapest first):

1. **Key frames.** Only the packets the container marks as key frames reach the decoder, so one pass over the file
   decodes only the intra frames an encoder placed every GOP (typically every 1–10 s) — a small fraction of the
   decoding work of the whole video (``bench/keyframes.py`` measures it). The packets are chosen rather than the
   decoder told to skip (``skip_frame = "NONKEY"``) because decoders differ: FFmpeg's VP9 decoder ignores that
   setting and decodes every frame, and libdav1d (AV1) reads it once when it opens, so it would keep skipping when
   the uniform fill-ins below need every frame.
2. **Scene changes.** Each key frame gets a small colour-histogram thumbnail; a key frame whose histogram differs from
   the previous key frame's by more than ``scene_threshold`` (total-variation distance, 0–1) starts a new scene and is
   preferred when more than K key frames exist. Detection runs on the key-frame sequence only, so a cut is found at the
   first key frame after it (at most one GOP late); encoders such as x264 place a key frame at a cut anyway, and a
   per-frame pass would cost the full decode that step 1 avoids.
3. **Even spread.** When there are more than K key frames, the remaining slots go to key frames far from those already
   chosen (farthest-point in time), so picks cover the video. When there are fewer than K key frames (one GOP for the
   whole clip is common in screen recordings), the missing slots are filled with frames at evenly spaced times
   (seek to the key frame before each time, decode forward), reason ``"uniform"``.

Frames come back upright: the display matrix (``frame.rotation`` in PyAV ≥ 14) or the legacy ``rotate`` tag is applied,
and no larger than ``MAX_FRAME_PIXELS``: a larger frame is scaled down while it is still in the decoder's format, so
a 4K or 8K video never becomes full-size RGB (the network looks at 224 × 224 anyway).
A file that is empty, not a video, truncated or corrupt raises :class:`ovp.errors.VideoDecodeError` naming the file and
the reason; so does one over the limits of :class:`encoders.media.MediaLimits` (not a regular file, too many bytes,
frames or duration larger than allowed; checked before decoding starts). All decoding runs under a deadline, so a
damaged file fails in bounded time instead of hanging.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from encoders.media import MediaLimits, check_media_file
from ovp.errors import MediaRefused, VideoDecodeError

logger = logging.getLogger(__name__)

Reason = Literal["keyframe", "scene_change", "uniform"]

#: Side of the square RGB thumbnail a key frame's colour histogram is computed on: enough for colour statistics,
#: negligible next to decoding the frame.
THUMB_SIZE = 64
#: Histogram bins per RGB channel.
HIST_BINS = 16
#: Two timestamps closer than this (seconds) are the same frame.
_EPS = 1e-3
#: Frames with more pixels than this are scaled down (aspect kept) before they are converted to RGB.
MAX_FRAME_PIXELS = 1920 * 1080


@dataclass
class KeyframeSet:
    """The frames chosen from one video, in time order.

    Attributes:
        path: the video file.
        frames: upright RGB images, each ``height × width × 3`` uint8.
        timestamps_s: presentation time of each frame, seconds from the start of the video stream.
        reasons: how each frame was chosen: ``"keyframe"``, ``"scene_change"`` (a key frame that starts a new scene)
            or ``"uniform"`` (evenly spaced fill-in for videos with too few key frames).
        duration_s: duration of the video stream.
        width, height: size of the frames as displayed (after rotation).
        rotation: degrees counter-clockwise that were applied to make the frames upright (0, 90, 180 or 270).
        keyframes_in_stream: how many key frames the stream has (all of them, not only the chosen ones).
        scene_scores: for each chosen frame, its histogram distance to the previous key frame (0 for the first key
            frame and for uniform frames).
    """

    path: Path
    frames: list[np.ndarray]
    timestamps_s: list[float]
    reasons: list[Reason]
    duration_s: float
    width: int
    height: int
    rotation: int = 0
    keyframes_in_stream: int = 0
    scene_scores: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class Pick:
    """One planned frame: its time, why it was chosen, and the key frame it is (None for a uniform pick)."""

    time_s: float
    reason: Reason
    keyframe_index: int | None = None
    scene_score: float = 0.0


def extract_keyframes(
    path: str | Path,
    k: int = 8,
    *,
    timeout_s: float = 20.0,
    scene_threshold: float = 0.45,
    max_held_bytes: int = 256 << 20,
    limits: MediaLimits | None = None,
    spent_s: float = 0.0,
) -> KeyframeSet:
    """Choose up to ``k`` frames of a video: key frames, scene changes, evenly spaced fill-ins (see module doc).

    Args:
        path: a video file any FFmpeg demuxer reads (MP4, MOV, MKV, WebM, …).
        k: how many frames at most (``Settings.keyframes``). Fewer come back only when the video has fewer
            distinct frames.
        timeout_s: upper bound on the whole extraction (``Settings.decode_timeout_s``).
        scene_threshold: histogram distance (0–1) between consecutive key frames above which a key frame is a scene
            change.
        max_held_bytes: decoded key frames are held in memory up to this many bytes so that the chosen ones need no
            second decode; past it, the chosen key frames are decoded again by seeking (long, high-resolution videos).
        limits: the file size, frame size and duration allowed (default :class:`MediaLimits`' defaults).
        spent_s: seconds of ``timeout_s`` the caller already spent on this video (reading the file to hash it).

    Returns:
        A :class:`KeyframeSet` with frames in time order.

    Raises:
        ValueError: ``k < 1``, ``scene_threshold`` outside (0, 1] or ``timeout_s <= 0``.
        VideoDecodeError: the file is missing or empty, has no video stream, is truncated, is not a video or cannot
            be decoded, or decoding took longer than ``timeout_s``.
        MediaRefused: not a regular file, or larger than ``limits`` allow (bytes, frame size, duration).
    """
    path = Path(path)
    deadline, limits, container = _start(path, k, scene_threshold, timeout_s, spent_s, limits)
    try:
        stream = _checked_stream(container, path, limits)
        stream.codec_context.thread_type = "AUTO"
        scan = _scan_keyframes(container, stream, deadline, max_held_bytes)
        if scan.packets == 0:
            raise VideoDecodeError(f"{path}: the video stream has no frames (zero-length video)")
        picks = plan_picks(scan.times, scan.scene_scores, scan.duration_s, k, scene_threshold)
        frames, times = _materialise(container, stream, scan, picks, deadline)
    except VideoDecodeError:
        raise
    except av.ExitError as exc:
        raise deadline.expired() from exc
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise VideoDecodeError(f"{path}: cannot decode the video ({_reason(exc)})", hint="the file is damaged; re-export or re-download it") from exc
    finally:
        container.close()

    # Dedupe: a uniform pick past the last frame lands on the same frame as a key frame pick.
    kept: list[int] = []
    for i in range(len(picks)):
        if frames[i] is None or any(abs(times[i] - times[j]) < _EPS for j in kept):
            continue
        kept.append(i)
    if not kept:
        raise VideoDecodeError(f"{path}: no video frame could be decoded", hint="the file is damaged; re-export it")
    rotation = scan.rotation
    upright = [_rotate(frames[i], rotation) for i in kept]
    height, width = upright[0].shape[:2]
    result = KeyframeSet(
        path=path,
        frames=upright,
        timestamps_s=[round(times[i], 6) for i in kept],
        reasons=[picks[i].reason for i in kept],
        duration_s=scan.duration_s,
        width=width,
        height=height,
        rotation=rotation,
        keyframes_in_stream=len(scan.times),
        scene_scores=[round(picks[i].scene_score, 4) for i in kept],
    )
    logger.debug(
        "%s: %d frames (%s) from %d key frames in %.2fs",
        path, len(result), ",".join(result.reasons), len(scan.times), deadline.elapsed(),
    )
    return result


def plan_picks(
    keyframe_times: Sequence[float],
    scene_scores: Sequence[float],
    duration_s: float,
    k: int,
    scene_threshold: float = 0.45,
) -> list[Pick]:
    """Decide which frames to take, from key-frame times and scene scores alone (no decoding).

    Args:
        keyframe_times: times (s) of the stream's key frames, ascending.
        scene_scores: histogram distance of each key frame to the previous one (the first is ignored).
        duration_s: duration of the video; uniform fill-ins are spread over ``[0, duration_s)``.
        k: at most this many picks.
        scene_threshold: a key frame whose score reaches this starts a new scene.

    Returns:
        Up to ``k`` picks in time order: scene changes first (strongest first), then key frames spread by
        farthest-point sampling in time; if there are fewer than ``k`` key frames, ``"uniform"`` times bisect the
        largest gaps until there are ``k`` picks.
    """
    n = len(keyframe_times)
    if len(scene_scores) != n:
        raise ValueError(f"keyframe_times has {n} entries but scene_scores has {len(scene_scores)}")
    scenes = [i for i in range(1, n) if scene_scores[i] >= scene_threshold]
    scenes = sorted(scenes, key=lambda i: (-scene_scores[i], keyframe_times[i]))[:k]
    scene_set = set(scenes)
    if n <= k:
        chosen = list(range(n))
    else:
        chosen = list(scenes) or [0]
        # Farthest-point sampling: each new pick is the key frame farthest in time from all picks so far,
        # earliest on ties, so the picks spread over the whole video whatever the GOP pattern.
        while len(chosen) < k:
            best = max(
                (i for i in range(n) if i not in chosen),
                key=lambda i: (min(abs(keyframe_times[i] - keyframe_times[j]) for j in chosen), -keyframe_times[i]),
            )
            chosen.append(best)
    picks = [
        Pick(keyframe_times[i], "scene_change" if i in scene_set else "keyframe", i, float(scene_scores[i]) if i else 0.0)
        for i in chosen
    ]
    if len(picks) < k and duration_s > 0:
        # Fill-ins bisect the largest gap between picks (the video's ends count as walls), earliest first on ties:
        # one key frame at 0 in a 2 s clip gives 1.0, 0.5, 1.5, 0.25, … — evenly spaced, and around existing key
        # frames rather than on top of them.
        taken = sorted(p.time_s for p in picks)
        while len(picks) < k:
            edges = [0.0, *taken, duration_s]
            gaps = [(edges[j + 1] - edges[j], -edges[j], j) for j in range(len(edges) - 1)]
            width, _, j = max(gaps)
            if width <= _EPS:
                break
            middle = (edges[j] + edges[j + 1]) / 2
            taken = sorted([*taken, middle])
            picks.append(Pick(middle, "uniform"))
    return sorted(picks, key=lambda p: p.time_s)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance (0 = same colours, 1 = disjoint) between two per-channel normalised histograms."""
    return float(0.5 * np.abs(a - b).sum() / a.shape[0])


#: Added to a pixel's bin per channel, so that one bincount counts all three channels.
_CHANNEL_OFFSETS = np.arange(3, dtype=np.intp) * HIST_BINS


def colour_histogram(rgb: np.ndarray) -> np.ndarray:
    """Per-channel histogram (``3 × HIST_BINS``, each row sums to 1) of an RGB uint8 image."""
    pixels = rgb.reshape(-1, 3)
    bins = (pixels >> (8 - int(math.log2(HIST_BINS)))).astype(np.intp) + _CHANNEL_OFFSETS
    hist = np.bincount(bins.ravel(), minlength=3 * HIST_BINS).reshape(3, HIST_BINS).astype(np.float64)
    return hist / max(1, pixels.shape[0])


# --- conversion -------------------------------------------------------------------------------------------------

#: Each decoding thread keeps its own two reformatters (one is not safe to share between threads). A reformatter
#: keeps FFmpeg's scaler set up between calls with the same sizes and formats; a frame's own ``reformat`` and
#: ``to_ndarray(format=...)`` set up a new one each time, which costs more than converting a 720p frame (2.4 ms per
#: frame instead of 0.7 ms, the same pixels).
_reformatters = threading.local()


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame as an RGB ``height × width × 3`` uint8 array, scaled down first (area averaging, aspect kept) when
    it has more than ``MAX_FRAME_PIXELS``."""
    reformatter = getattr(_reformatters, "rgb", None)
    if reformatter is None:
        reformatter = _reformatters.rgb = VideoReformatter()
    pixels = frame.width * frame.height
    if pixels <= MAX_FRAME_PIXELS:
        return reformatter.reformat(frame, format="rgb24").to_ndarray()
    scale = math.sqrt(MAX_FRAME_PIXELS / pixels)
    width, height = max(2, int(frame.width * scale) // 2 * 2), max(2, int(frame.height * scale) // 2 * 2)
    return reformatter.reformat(frame, width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()


def _thumbnail(frame: av.VideoFrame) -> np.ndarray:
    """The frame squeezed to ``THUMB_SIZE × THUMB_SIZE`` RGB, for its colour histogram."""
    reformatter = getattr(_reformatters, "thumbnail", None)
    if reformatter is None:
        reformatter = _reformatters.thumbnail = VideoReformatter()
    return reformatter.reformat(frame, width=THUMB_SIZE, height=THUMB_SIZE, format="rgb24").to_ndarray()


# --- decoding ---------------------------------------------------------------------------------------------------


class _Deadline:
    """Raises VideoDecodeError once the time budget for one video is spent; checked inside every decode loop."""

    def __init__(self, path: Path, timeout_s: float, spent_s: float = 0.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.start = time.monotonic() - spent_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        """Seconds left (a millisecond at least, so that FFmpeg's own timeout still fires rather than waiting)."""
        return max(self.timeout_s - self.elapsed(), 1e-3)

    def check(self) -> None:
        if self.elapsed() > self.timeout_s:
            raise self.expired()

    def expired(self) -> VideoDecodeError:
        return VideoDecodeError(
            f"{self.path}: decoding took longer than {self.timeout_s:g}s",
            hint="the file may be damaged; for very long videos raise OVP_DECODE_TIMEOUT_S",
        )


@dataclass
class _Scan:
    times: list[float] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    scene_scores: list[float] = field(default_factory=list)
    # Decoded key frames as the decoder gave them (YUV): only the chosen ones are converted to RGB.
    held: list[av.VideoFrame] | None = field(default_factory=list)
    duration_s: float = 0.0
    rotation: int = 0
    start_pts: int = 0
    packets: int = 0


def _check_limits(container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path,
                  limits: MediaLimits) -> None:
    # From the headers, before anything is decoded: a decoder holds several frames of this size at once. Headers can
    # lie about the duration; the deadline bounds what they hide.
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if width * height > limits.max_pixels:
        raise MediaRefused(
            f"{path}: frames of {width} × {height} ({width * height / 1e6:.1f} MP), more than the "
            f"{limits.max_pixels / 1e6:.1f} MP a video may have",
            hint="scale the video down, or raise OVP_MAX_VIDEO_PIXELS",
        )
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = container.duration / av.time_base if container.duration else 0.0
    if duration > limits.max_duration_s:
        raise MediaRefused(
            f"{path}: {duration:,.0f} s long, more than the {limits.max_duration_s:,.0f} s a video may last",
            hint="cut the video, or raise OVP_MAX_VIDEO_DURATION_S",
        )


def _check_arguments(k: int, scene_threshold: float, timeout_s: float) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0.0 < scene_threshold <= 1.0:
        raise ValueError(f"scene_threshold must be in (0, 1], got {scene_threshold}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")


def _start(path: Path, k: int, scene_threshold: float, timeout_s: float, spent_s: float,
           limits: MediaLimits | None) -> tuple[_Deadline, MediaLimits, av.container.InputContainer]:
    """What both keyframe paths do first: check the arguments, start the video's deadline (less what the caller
    already spent on it), check the file and open it."""
    _check_arguments(k, scene_threshold, timeout_s)
    deadline = _Deadline(path, timeout_s, spent_s)
    limits = limits or MediaLimits()
    return deadline, limits, _open(path, deadline, limits)


def _checked_stream(container: av.container.InputContainer, path: Path,
                    limits: MediaLimits) -> av.video.stream.VideoStream:
    """The video stream, once its index and its headers' frame size and duration pass."""
    stream = _video_stream(container, path)
    _check_index(stream, path)
    _check_limits(container, stream, path, limits)
    return stream


def _open(path: Path, deadline: _Deadline, limits: MediaLimits) -> av.container.InputContainer:
    """The file opened by FFmpeg, after the checks that need no decoder (:func:`encoders.media.check_media_file`:
    missing, not a regular file, empty, too large), with what is left of the deadline."""
    check_media_file(path, limits)
    try:
        return av.open(str(path), timeout=deadline.remaining(), metadata_errors="replace")
    except av.ExitError as exc:  # PyAV's timeout interrupted FFmpeg
        raise deadline.expired() from exc
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(
            f"{path}: not a video FFmpeg can read, or cut short ({_reason(exc)})",
            hint="check the file is a complete video file",
        ) from exc


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
        raise VideoDecodeError(f"{path}: no video stream (streams: {kinds})", hint="audio-only files cannot be profiled visually")
    return container.streams.video[0]


def _check_index(stream: av.video.stream.VideoStream, path: Path) -> None:
    # An MP4/MOV index that points past the end of the file means the file was cut short (an interrupted upload
    # with the index at the front); catching it here fails fast instead of decoding half a video.
    entries = stream.index_entries
    if not entries:
        return
    end = max(e.pos + e.size for e in entries if e.pos >= 0) if any(e.pos >= 0 for e in entries) else 0
    size = path.stat().st_size
    if end > size:
        raise VideoDecodeError(
            f"{path}: truncated (the index needs {end} bytes, the file has {size})",
            hint="the upload or download did not complete",
        )


def _frame_time(frame: av.VideoFrame, start_s: float) -> float:
    return (frame.time if frame.time is not None else 0.0) - start_s


def _frame_rotation(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    degrees = getattr(frame, "rotation", 0) or 0  # display matrix, counter-clockwise (PyAV >= 14)
    if not degrees:
        return _tag_rotation(stream)
    quarter = round(degrees / 90) * 90 % 360
    if abs(((degrees - quarter) + 180) % 360 - 180) > 1:
        logger.warning("rotation %.1f° is not a multiple of 90°; using %d°", degrees, quarter)
    return int(quarter)


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return rgb
    # np.rot90 turns counter-clockwise, like the display matrix angle; copy so each frame owns contiguous memory.
    return np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))


def _scan_keyframes(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    deadline: _Deadline,
    max_held_bytes: int,
) -> _Scan:
    """One pass over the stream decoding key frames only; also measures duration from the packets themselves."""
    tb = stream.time_base
    scan = _Scan(start_pts=stream.start_time or 0)
    start_s = float(scan.start_pts * tb) if tb else 0.0
    held_bytes = 0
    previous_hist: np.ndarray | None = None
    end_pts: int | None = None
    rotation: int | None = None
    for packet in container.demux(stream):
        deadline.check()
        if packet.size and packet.pts is not None:
            scan.packets += 1
            packet_end = packet.pts + (packet.duration or 0)
            end_pts = packet_end if end_pts is None else max(end_pts, packet_end)
        elif packet.size:
            scan.packets += 1
        if packet.size and not packet.is_keyframe:
            continue  # the flush packet (size 0) still goes through, to drain a frame-threaded decoder
        for frame in packet.decode():
            deadline.check()
            if rotation is None:
                rotation = _frame_rotation(frame, stream)
            hist = colour_histogram(_thumbnail(frame))
            scan.scene_scores.append(0.0 if previous_hist is None else histogram_distance(previous_hist, hist))
            previous_hist = hist
            scan.times.append(_frame_time(frame, start_s))
            scan.pts.append(frame.pts if frame.pts is not None else 0)
            if scan.held is not None:
                # Kept as decoded and counted at the RGB size a chosen frame will take: only the K chosen ones are
                # converted to RGB (_materialise), which saves most conversions on videos with many key frames.
                held_bytes += frame.width * frame.height * 3
                if held_bytes > max_held_bytes:
                    scan.held = None  # too big to keep: chosen key frames will be decoded again by seeking
                else:
                    scan.held.append(frame)
    scan.rotation = rotation if rotation is not None else _tag_rotation(stream)
    scan.duration_s = _duration(container, stream, end_pts, scan.start_pts, scan.times)
    return scan


def _tag_rotation(stream: av.video.stream.VideoStream) -> int:
    # The legacy MOV "rotate" tag (older muxers) is clockwise; the display matrix and our result are counter-clockwise.
    try:
        degrees = -float(stream.metadata.get("rotate", 0) or 0)
    except ValueError:
        return 0
    return int(round(degrees / 90) * 90 % 360)


def _duration(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    end_pts: int | None,
    start_pts: int,
    times: list[float],
) -> float:
    # Prefer what the packets say (true for truncated or mislabelled files), then the headers.
    if end_pts is not None and stream.time_base:
        return max(0.0, float((end_pts - start_pts) * stream.time_base))
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return times[-1] if times else 0.0


def _materialise(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    scan: _Scan,
    picks: list[Pick],
    deadline: _Deadline,
) -> tuple[list[np.ndarray | None], list[float]]:
    """Decode the RGB image of every pick (from the held key frames where possible)."""
    frames: list[np.ndarray | None] = [None] * len(picks)
    times = [p.time_s for p in picks]
    start_s = float(scan.start_pts * stream.time_base) if stream.time_base else 0.0
    need_keyframes = []
    for i, pick in enumerate(picks):
        if pick.keyframe_index is None:
            continue
        if scan.held is not None:
            frames[i] = _to_rgb(scan.held[pick.keyframe_index])
        else:
            need_keyframes.append(i)
    if need_keyframes:
        for i in need_keyframes:
            frame = next(_decode_from(container, stream, scan.pts[picks[i].keyframe_index], deadline), None)
            if frame is not None:
                frames[i] = _to_rgb(frame)
    uniform = [i for i, p in enumerate(picks) if p.keyframe_index is None]
    if uniform:
        _decode_uniform(container, stream, scan, picks, uniform, frames, times, start_s, deadline)
    return frames, times


def _decode_from(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, pts: int, deadline: _Deadline
) -> Iterator[av.VideoFrame]:
    """Seek to the key frame at or before ``pts`` and yield frames from there (flushing the decoder at the end)."""
    container.seek(pts, stream=stream, backward=True, any_frame=False)
    for packet in container.demux(stream):
        deadline.check()
        for frame in packet.decode():
            deadline.check()
            if frame.pts is None or frame.pts >= pts:
                yield frame


def _decode_uniform(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    scan: _Scan,
    picks: list[Pick],
    uniform: list[int],
    frames: list[np.ndarray | None],
    times: list[float],
    start_s: float,
    deadline: _Deadline,
) -> None:
    # Uniform picks are visited in time order and decoding continues forward from one to the next; it seeks only
    # when a key frame lies between the last decoded frame and the next pick, so a single-GOP video is decoded at
    # most once, not once per pick. Each pick takes the frame nearest its target time.
    iterator: Iterator[av.VideoFrame] | None = None
    pushback: tuple[av.VideoFrame, float] | None = None  # a frame read past one pick that may serve the next
    position = -math.inf  # time of the frame taken last
    for i in sorted(uniform, key=lambda j: picks[j].time_s):
        target = picks[i].time_s
        before = [j for j, t in enumerate(scan.times) if t <= target + _EPS]
        keyframe_before = scan.times[before[-1]] if before else -math.inf
        if iterator is None or keyframe_before > position + _EPS:
            seek_pts = scan.pts[before[-1]] if before else scan.start_pts
            iterator = _decode_from(container, stream, seek_pts, deadline)
            pushback = None
        previous: tuple[av.VideoFrame, float] | None = None
        chosen: tuple[av.VideoFrame, float] | None = None
        while chosen is None:
            if pushback is not None:
                current, pushback = pushback, None
            else:
                frame = next(iterator, None)
                if frame is None:  # the stream ended before the target: take the last frame
                    iterator, chosen = None, previous
                    break
                current = (frame, _frame_time(frame, start_s))
            if current[1] >= target - _EPS:
                if previous is not None and target - previous[1] < current[1] - target:
                    chosen, pushback = previous, current
                else:
                    chosen = current
            else:
                previous = current
        if chosen is not None:
            frames[i] = _to_rgb(chosen[0])
            times[i] = chosen[1]
            position = chosen[1]


def _reason(exc: BaseException) -> str:
    # FFmpeg errors carry the errno text ("Invalid data found when processing input"); keep one line.
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())
