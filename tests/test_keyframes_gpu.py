"""The GPU keyframe path (torchcodec) and how a worker chooses it: the choice rule without a GPU, and the same key
frames as the PyAV path on CPU-decodable fixtures (torchcodec decodes on the CPU too, with FFmpeg)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import encoders.keyframes_gpu as gpu
from encoders import keyframes
from encoders.keyframes import extract_keyframes
from encoders.keyframes_gpu import choose_decoder, extract_keyframes_torchcodec, keyframe_decoder, torchcodec_problem
from encoders.media import MediaLimits
from ovp.errors import MediaRefused, VideoDecodeError
from videos import make_video, truncate_copy

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
PROBLEM = torchcodec_problem()
needs_torchcodec = pytest.mark.skipif(PROBLEM is not None, reason=f"{PROBLEM} (make venv installs both)")


# --- the choice ---------------------------------------------------------------------------------------------------

def test_auto_takes_the_gpu_decoder_only_where_the_encoders_run_on_cuda_and_torchcodec_loads() -> None:
    assert choose_decoder("auto", CUDA, None)[0] == "torchcodec-cuda"
    assert choose_decoder("auto", CPU, None) == ("pyav", "the encoders run on the CPU")
    assert choose_decoder("auto", CUDA, "torchcodec is not installed") == ("pyav", "torchcodec is not installed")


def test_a_decoder_can_be_asked_for() -> None:
    assert choose_decoder("pyav", CUDA, None)[0] == "pyav"
    assert choose_decoder("torchcodec", CPU, None)[0] == "torchcodec-cpu"
    with pytest.raises(ValueError, match="OVP_VIDEO_DECODER=torchcodec but torchcodec is not installed"):
        choose_decoder("torchcodec", CUDA, "torchcodec is not installed")
    with pytest.raises(ValueError, match="must be one of auto, pyav, torchcodec"):
        choose_decoder("nvdec", CUDA, None)


def test_on_this_cpu_machine_auto_is_pyav() -> None:
    decoder = keyframe_decoder("auto", CPU)
    assert decoder.name == "pyav" and decoder.extract is extract_keyframes


# --- the same key frames -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gpu-videos")
    return {
        "cut": make_video(d / "cut.mp4", seconds=4, fps=25, gop=25, scenes=(0.0, 1.5)),
        "dense": make_video(d / "dense.mp4", seconds=4, fps=25, gop=5, scenes=(0.0, 2.3)),
        "single": make_video(d / "single.mp4", seconds=2, fps=25, gop=1000),  # uniform fill-ins
        "odd": make_video(d / "odd.mp4", seconds=1, fps=25, size=(97, 61)),
        "rotated": make_video(d / "rotated.mp4", seconds=1, fps=25, size=(64, 48), rotate=90),
        "vfr": make_video(d / "vfr.mp4", seconds=3, fps=25, gop=25, vfr=True),
        "faststart": make_video(d / "faststart.mp4", seconds=2, fps=25, faststart=True),
    }


@needs_torchcodec
@pytest.mark.parametrize("name", ["cut", "dense", "single", "odd", "rotated", "vfr", "faststart"])
@pytest.mark.parametrize("k", [3, 8])
def test_torchcodec_picks_the_frames_pyav_picks(videos: dict[str, Path], name: str, k: int) -> None:
    cpu = extract_keyframes(videos[name], k=k)
    tc = extract_keyframes_torchcodec(videos[name], k=k, device="cpu")
    assert (tc.timestamps_s, tc.reasons) == (cpu.timestamps_s, cpu.reasons)
    assert (tc.width, tc.height, tc.rotation, tc.keyframes_in_stream) == (cpu.width, cpu.height, cpu.rotation,
                                                                         cpu.keyframes_in_stream)
    assert tc.duration_s == pytest.approx(cpu.duration_s)
    # Both decode with FFmpeg and convert with swscale at full size: the same pixels. The thumbnails behind the scene
    # scores are squeezed differently (swscale from YUV, torch from RGB), so the scores are close, not equal.
    assert all(np.array_equal(a, b) for a, b in zip(cpu.frames, tc.frames)) and len(tc.frames) == len(cpu.frames)
    assert tc.scene_scores == pytest.approx(cpu.scene_scores, abs=0.01)


@needs_torchcodec
@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated"])
def test_damaged_files_fail_as_on_the_cpu_path(videos: dict[str, Path], tmp_path: Path, kind: str) -> None:
    path = {"missing": tmp_path / "missing.mp4", "empty": tmp_path / "empty.mp4", "text": tmp_path / "notes.mp4",
            "truncated": tmp_path / "half.mp4"}[kind]
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("a caption, not a video\n" * 50)
    elif kind == "truncated":
        truncate_copy(videos["cut"], path)
    with pytest.raises(VideoDecodeError) as info:
        extract_keyframes_torchcodec(path, device="cpu")
    assert path.name in str(info.value)


@needs_torchcodec
def test_a_stream_torchcodec_refuses_is_decoded_by_pyav(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise gpu._Unsupported("NVDEC does not decode this profile")

    monkeypatch.setattr(gpu, "extract_keyframes_torchcodec", refuse)
    decoder = keyframe_decoder("torchcodec", CPU)
    assert decoder.name == "torchcodec-cpu"
    result = decoder.extract(videos["cut"], k=4)
    assert result.timestamps_s == extract_keyframes(videos["cut"], k=4).timestamps_s
    assert "decoding it with PyAV" in caplog.text


@needs_torchcodec
@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "sparse"])
def test_only_regular_files_of_bounded_size_reach_torchcodec(tmp_path: Path, kind: str) -> None:
    """The GPU path checks a file as the CPU path does before FFmpeg opens it (a FIFO would block the open)."""
    if kind == "fifo":
        path = tmp_path / "clip.mp4"
        os.mkfifo(path)
    elif kind == "sparse":
        path = tmp_path / "huge.mp4"
        with path.open("wb") as handle:
            handle.truncate(200 << 30)
    else:
        path = Path("/dev/zero")
    expected = "more than the" if kind == "sparse" else "not a regular file"
    with pytest.raises(MediaRefused, match=expected):
        extract_keyframes_torchcodec(path, device="cpu")


@needs_torchcodec
def test_the_gpu_path_keeps_the_caps_the_deadline_and_leaves_large_frames_to_pyav(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    video = make_video(tmp_path / "wide.mp4", seconds=2, size=(160, 90), gop=10)
    with pytest.raises(MediaRefused, match="frames of 160 × 90"):
        extract_keyframes_torchcodec(video, device="cpu", limits=MediaLimits(max_pixels=100 * 50))
    with pytest.raises(VideoDecodeError, match=r"decoding took longer than 5s"):
        extract_keyframes_torchcodec(video, device="cpu", timeout_s=5, spent_s=5.0)  # hashing spent it all
    # Frames over MAX_FRAME_PIXELS (lowered so that a small video shows it) are decoded by PyAV, scaled down.
    monkeypatch.setattr(keyframes, "MAX_FRAME_PIXELS", 80 * 45)
    result = keyframe_decoder("torchcodec", CPU).extract(video, k=3)
    assert {f.shape for f in result.frames} == {(44, 80, 3)}
    assert "scaled down on the CPU path" in caplog.text and "decoding it with PyAV" in caplog.text


def test_nearest_frame_takes_the_later_one_on_a_tie_and_the_last_past_the_end() -> None:
    times = [0.0, 0.25, 0.5, 0.75]  # exact in binary, so that the tie below is a tie
    assert gpu._nearest(times, 0.3) == 1
    assert gpu._nearest(times, 0.45) == 2
    assert gpu._nearest(times, 0.375) == 2  # half-way: the later frame, as the CPU path takes it
    assert gpu._nearest(times, 5.0) == 3
    assert gpu._nearest(times, 0.0) == 0


@needs_torchcodec
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["h264", "vp9", "av1", "hevc", "rotated", "vfr", "vertical"])
def test_torchcodec_picks_what_pyav_picks_on_real_codecs(real_media: dict[str, Path], variant: str) -> None:
    cpu = extract_keyframes(real_media[variant], k=8)
    tc = extract_keyframes_torchcodec(real_media[variant], k=8, device="cpu")
    assert (tc.timestamps_s, tc.reasons, tc.rotation) == (cpu.timestamps_s, cpu.reasons, cpu.rotation)
    assert all(np.array_equal(a, b) for a, b in zip(cpu.frames, tc.frames)) and len(tc.frames) == len(cpu.frames)
