"""Tiny synthetic videos for tests (and benches), written with PyAV so nothing is checked in.

Videos are deterministic: the same arguments give the same frames. Each *scene* is a solid palette colour with a moving
texture on top, so scenes differ strongly in colour histogram while frames inside a scene stay close (like a shot cut).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

#: Scene colours (RGB), far apart so that a cut between any two is an obvious histogram change.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (200, 40, 40),
    (40, 190, 60),
    (50, 60, 210),
    (230, 220, 60),
    (160, 50, 200),
    (40, 200, 210),
)


def make_video(
    path: str | Path,
    seconds: float = 2.0,
    fps: int = 25,
    size: tuple[int, int] = (64, 48),
    gop: int = 25,
    scenes: Sequence[float] = (0.0,),
    rotate: int | None = None,
    *,
    vfr: bool = False,
    faststart: bool = False,
    preset: str = "ultrafast",
) -> Path:
    """Write an H.264 MP4 with key frames exactly every ``gop`` frames.

    Args:
        path: where to write (parent must exist).
        seconds: duration.
        fps: nominal frame rate.
        size: (width, height); odd sizes are written as yuv444p, which x264 allows (4:2:0 needs even sizes).
        gop: frames between key frames; x264's scene-cut detection is switched off so this is exact.
        scenes: start times (s) of scenes; scene i is ``PALETTE[i]``. ``(0.0, 1.5)`` cuts at 1.5 s.
        rotate: display rotation in degrees counter-clockwise (the display matrix; read back as ``frame.rotation``).
        vfr: frame durations cycle through 1, 2, 1, 3 frame periods (a variable frame rate), timestamps in ms.
        faststart: put the index (moov) at the front, as streaming uploads do.
        preset: x264 preset.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    width, height = size
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    container = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    try:
        stream = container.add_stream("libx264", rate=fps, options={"sc_threshold": "0", "preset": preset})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.gop_size = gop
        time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)
        stream.codec_context.time_base = time_base
        if rotate is not None:
            stream.set_display_rotation(rotate)
        texture, coloured = _texture(width, height), {}
        cycle = (1, 2, 1, 3) if vfr else (1,)
        t, i = 0.0, 0
        while t < seconds - 1e-9:
            frame = av.VideoFrame.from_ndarray(_frame(t, width, height, scenes, texture, coloured), format="rgb24")
            frame.pts = round(t / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            t += cycle[i % len(cycle)] / fps
            i += 1
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def make_audio_only(path: str | Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """Write an MP4 that holds only an AAC audio track (a 440 Hz tone)."""
    path = Path(path)
    container = av.open(str(path), "w", format="mp4")
    try:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        n = int(seconds * rate)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
        for start in range(0, n, 1024):
            chunk = tone[start : start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def truncate_copy(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (an interrupted upload)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _texture(width: int, height: int) -> np.ndarray:
    # One fixed texture twice the frame width, scrolled per frame: motion for the encoder without drawing a new image
    # per frame. Smooth blobs plus faint grain compress like camera footage; pure noise would make every key frame
    # huge and skew decode timings.
    rng = np.random.default_rng(0)
    y = np.linspace(0, 2 * np.pi, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 4 * np.pi, width * 2, dtype=np.float32)[None, :]
    blobs = 30 * np.sin(3 * x + 1.3) * np.cos(2 * y) + 15 * np.sin(7 * x) * np.sin(5 * y + 0.7)
    grain = rng.integers(-3, 4, size=blobs.shape)
    return (blobs + grain).astype(np.int16)[:, :, None]


def _frame(t: float, width: int, height: int, scenes: Sequence[float], texture: np.ndarray, cache: dict[int, np.ndarray]) -> np.ndarray:
    scene = max(0, sum(1 for start in scenes if start <= t + 1e-9) - 1) % len(PALETTE)
    if scene not in cache:  # colour the texture once per scene; frames are then just windows into it
        cache[scene] = np.clip(np.array(PALETTE[scene], dtype=np.int16) + texture, 0, 255).astype(np.uint8)
    shift = int(t * 20) % width
    return np.ascontiguousarray(cache[scene][:, shift : shift + width])
