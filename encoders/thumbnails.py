"""JPEG thumbnails of a video's frame at a given time, made with PyAV on demand and cached on disk, with the cache
held under a size bound (oldest files removed first).

The cache key is the file's resolved path, size and modification time, the time in milliseconds and the width, so a
replaced video gets new thumbnails and an old entry is simply never asked for again (and ages out).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from pathlib import Path

import av
from PIL import Image

from ovp.errors import VideoDecodeError

log = logging.getLogger(__name__)

DEFAULT_WIDTH = 320
MAX_WIDTH = 640
JPEG_QUALITY = 82


def _key(path: Path, time_s: float, width: int) -> str:
    stat = path.stat()
    raw = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{round(time_s * 1000)}|{width}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def frame_at(path: Path, time_s: float, *, timeout_s: float = 10.0) -> Image.Image:
    """The frame shown at ``time_s`` (the first frame at or after it; the last frame when past the end), upright.

    Raises:
        VideoDecodeError: the file cannot be opened or decoded, has no video stream, or decoding ran out of time.
    """
    deadline = time.monotonic() + timeout_s
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream", hint="only video files have keyframes")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base = stream.start_time * stream.time_base if stream.start_time is not None else 0
            target = float(base) + max(0.0, time_s)
            if stream.time_base:
                container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
            last = None
            for frame in container.decode(stream):
                if time.monotonic() > deadline:
                    raise VideoDecodeError(f"{path}: decoding the frame at {time_s:.2f}s took longer than {timeout_s:g}s")
                last = frame
                if frame.time is not None and frame.time >= target - 1e-3:
                    break
            if last is None:
                raise VideoDecodeError(f"{path}: no frame could be decoded", hint="the file may be damaged")
            image = last.to_image()
            rotation = int(round((getattr(last, "rotation", 0) or 0) / 90)) % 4
            return image.rotate(90 * rotation, expand=True) if rotation else image
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"{path}: {' '.join(str(exc).split())}", hint="the file may be damaged") from exc


def thumbnail(path: Path, time_s: float, *, cache_dir: Path, max_cache_bytes: int, width: int = DEFAULT_WIDTH,
              timeout_s: float = 10.0) -> bytes:
    """A JPEG of the frame at ``time_s``, ``width`` pixels wide, from the cache or made now (and cached).

    Raises:
        VideoDecodeError: see :func:`frame_at`.
        ValueError: ``width`` outside 16..MAX_WIDTH or a negative time.
    """
    if not 16 <= width <= MAX_WIDTH:
        raise ValueError(f"thumbnail width must be 16-{MAX_WIDTH}, got {width}")
    if time_s < 0:
        raise ValueError(f"time must be at least 0 s, got {time_s}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"{_key(path, time_s, width)}.jpg"
    if cached.is_file():
        os.utime(cached)  # recently used: the last to be evicted
        return cached.read_bytes()
    image = frame_at(path, time_s, timeout_s=timeout_s).convert("RGB")
    height = max(1, round(image.height * width / image.width))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    data = buffer.getvalue()
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(cached)
    trim_cache(cache_dir, max_cache_bytes)
    return data


def trim_cache(cache_dir: Path, max_bytes: int) -> int:
    """Remove the least recently used thumbnails until the folder holds at most ``max_bytes``; returns files removed."""
    files = []
    for entry in os.scandir(cache_dir):
        if entry.is_file() and entry.name.endswith(".jpg"):
            stat = entry.stat()
            files.append((stat.st_mtime, stat.st_size, entry.path))
    total = sum(size for _, size, _ in files)
    removed = 0
    for _, size, file in sorted(files):
        if total <= max_bytes:
            break
        try:
            os.remove(file)
        except FileNotFoundError:  # another process trimmed it first
            pass
        total -= size
        removed += 1
    if removed:
        log.debug("thumbnail cache %s: removed %d files", cache_dir, removed)
    return removed
