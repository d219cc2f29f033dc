"""Keyframe selection on tiny synthetic H.264 videos with known key frames, scenes and damage."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from encoders.keyframes import colour_histogram, extract_keyframes, plan_picks
from cli import main
from ovp.errors import VideoDecodeError
from videos import make_audio_only, make_video, truncate_copy

FRAME = 1 / 25  # one frame period of the 25 fps test videos


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "gop1s": make_video(d / "gop1s.mp4", seconds=4, fps=25, gop=25),
        "cut": make_video(d / "cut.mp4", seconds=4, fps=25, gop=25, scenes=(0.0, 1.5)),
        "dense": make_video(d / "dense.mp4", seconds=4, fps=25, gop=5, scenes=(0.0, 2.3)),
        "single": make_video(d / "single.mp4", seconds=2, fps=25, gop=1000),
        "odd": make_video(d / "odd.mp4", seconds=1, fps=25, size=(97, 61)),
        "rotated": make_video(d / "rotated.mp4", seconds=1, fps=25, size=(64, 48), rotate=90),
        "upright": make_video(d / "upright.mp4", seconds=1, fps=25, size=(64, 48)),
        "vfr": make_video(d / "vfr.mp4", seconds=3, fps=25, gop=25, vfr=True),
        "faststart": make_video(d / "faststart.mp4", seconds=2, fps=25, faststart=True),
    }


def test_key_frames_are_the_gop_boundaries(videos: dict[str, Path]) -> None:
    ks = extract_keyframes(videos["gop1s"], k=4)
    assert ks.timestamps_s == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert ks.reasons == ["keyframe"] * 4
    assert ks.keyframes_in_stream == 4
    assert ks.duration_s == pytest.approx(4.0)
    assert (ks.width, ks.height, ks.rotation) == (64, 48, 0)
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in ks.frames)


def test_too_few_key_frames_are_filled_with_evenly_spaced_frames(videos: dict[str, Path]) -> None:
    ks = extract_keyframes(videos["gop1s"], k=8)
    keyed = [t for t, r in zip(ks.timestamps_s, ks.reasons) if r == "keyframe"]
    uniform = [t for t, r in zip(ks.timestamps_s, ks.reasons) if r == "uniform"]
    assert keyed == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert uniform == pytest.approx([0.5, 1.5, 2.5, 3.5], abs=FRAME)  # the middle of each GOP, to the nearest frame


def test_single_key_frame_video_falls_back_to_uniform(videos: dict[str, Path]) -> None:
    ks = extract_keyframes(videos["single"], k=8)
    assert ks.keyframes_in_stream == 1
    assert ks.reasons == ["keyframe"] + ["uniform"] * 7
    assert ks.timestamps_s == sorted(set(ks.timestamps_s))
    assert np.diff(ks.timestamps_s) == pytest.approx([0.25] * 7, abs=FRAME)
    # Frames really come from different times: the texture scrolls, so they differ.
    assert not np.array_equal(ks.frames[0], ks.frames[-1])


def test_scene_change_is_picked_up(videos: dict[str, Path]) -> None:
    ks = extract_keyframes(videos["cut"], k=4)
    # The cut at 1.5 s is seen at the next key frame (2 s), which starts the new scene.
    assert dict(zip(ks.timestamps_s, ks.reasons)) == {0.0: "keyframe", 1.0: "keyframe", 2.0: "scene_change", 3.0: "keyframe"}
    assert ks.scene_scores[2] > 0.45 > max(ks.scene_scores[1], ks.scene_scores[3])


def test_scene_change_wins_a_slot_when_key_frames_exceed_k(videos: dict[str, Path]) -> None:
    ks = extract_keyframes(videos["dense"], k=3)
    assert ks.keyframes_in_stream == 20
    assert len(ks) == 3
    assert (2.4, "scene_change") in list(zip(ks.timestamps_s, ks.reasons))  # first key frame after the 2.3 s cut
    assert all(r in ("keyframe", "scene_change") for r in ks.reasons)


def test_picks_are_capped_at_k_and_spread(videos: dict[str, Path]) -> None:
    ks = extract_keyframes(make_video(videos["dense"].parent / "dense1.mp4", seconds=4, gop=5), k=4)
    assert len(ks) == 4 and ks.reasons == ["keyframe"] * 4
    assert ks.timestamps_s[0] == 0.0 and ks.timestamps_s[-1] >= 3.0
    assert min(np.diff(ks.timestamps_s)) >= 0.8


def test_odd_size(videos: dict[str, Path]) -> None:
    ks = extract_keyframes(videos["odd"], k=3)
    assert (ks.width, ks.height) == (97, 61)
    assert all(f.shape == (61, 97, 3) for f in ks.frames)


def test_rotation_metadata_is_applied(videos: dict[str, Path]) -> None:
    rotated = extract_keyframes(videos["rotated"], k=2)
    upright = extract_keyframes(videos["upright"], k=2)
    assert rotated.rotation == 90
    assert (rotated.width, rotated.height) == (48, 64)
    # Same pixels were encoded; the display matrix says "turn 90° counter-clockwise".
    for r, u in zip(rotated.frames, upright.frames):
        assert np.array_equal(r, np.rot90(u, 1))


def test_variable_frame_rate_timestamps_are_real_frame_times(videos: dict[str, Path]) -> None:
    # make_video(vfr=True) spaces frames 1, 2, 1, 3 periods apart.
    steps, t, frame_times = (1, 2, 1, 3), 0.0, []
    while t < 3 - 1e-9:
        frame_times.append(round(t, 3))
        t += steps[len(frame_times) % 4 - 1] * FRAME
    ks = extract_keyframes(videos["vfr"], k=8)
    assert len(ks) == 8 and ks.duration_s == pytest.approx(3.0, abs=0.2)
    assert all(round(t, 3) in frame_times for t in ks.timestamps_s)
    assert ks.timestamps_s == sorted(ks.timestamps_s)


def test_seeking_path_gives_the_same_frames(videos: dict[str, Path]) -> None:
    # Past max_held_bytes the chosen key frames are decoded again by seeking; the result must not change.
    held = extract_keyframes(videos["dense"], k=5)
    sought = extract_keyframes(videos["dense"], k=5, max_held_bytes=0)
    assert held.timestamps_s == sought.timestamps_s and held.reasons == sought.reasons
    assert all(np.array_equal(a, b) for a, b in zip(held.frames, sought.frames))


def test_audio_only_file(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match="no video stream"):
        extract_keyframes(make_audio_only(tmp_path / "voice.mp4"))


def _damaged(kind: str, videos: dict[str, Path], d: Path) -> Path:
    if kind == "empty":
        (d / "empty.mp4").write_bytes(b"")
        return d / "empty.mp4"
    if kind == "text":
        (d / "notes.mp4").write_text("this is a caption, not a video\n" * 50)
        return d / "notes.mp4"
    if kind == "truncated":  # index (moov) at the end: cut off
        return truncate_copy(videos["gop1s"], d / "half.mp4")
    if kind == "truncated_faststart":  # index at the front, media half missing
        return truncate_copy(videos["faststart"], d / "half_fs.mp4")
    return d / "missing.mp4"


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "truncated_faststart", "missing"])
def test_damaged_files_fail_fast_with_the_file_named(kind: str, videos: dict[str, Path], tmp_path: Path) -> None:
    path = _damaged(kind, videos, tmp_path)
    start = time.monotonic()
    with pytest.raises(VideoDecodeError) as info:
        extract_keyframes(path)
    assert time.monotonic() - start < 1.0  # bounded failure, not a benchmark
    assert path.name in str(info.value)


def test_decode_deadline(videos: dict[str, Path]) -> None:
    with pytest.raises(VideoDecodeError, match="longer than"):
        extract_keyframes(videos["gop1s"], timeout_s=1e-6)


def test_invalid_arguments(videos: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="k must be"):
        extract_keyframes(videos["gop1s"], k=0)
    with pytest.raises(ValueError, match="scene_threshold"):
        extract_keyframes(videos["gop1s"], scene_threshold=0.0)
    with pytest.raises(ValueError, match="timeout_s"):
        extract_keyframes(videos["gop1s"], timeout_s=0)


def test_threads_at_once_give_the_frames_one_thread_gives(videos: dict[str, Path]) -> None:
    # Each thread converts with reformatters of its own (one is not safe to share).
    alone = [extract_keyframes(videos[name], k=5) for name in ("dense", "cut", "odd", "rotated")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda name: extract_keyframes(videos[name], k=5), ["dense", "cut", "odd", "rotated"] * 2))
    for one, other in zip(alone * 2, together):
        assert other.timestamps_s == one.timestamps_s and other.scene_scores == one.scene_scores
        assert all(np.array_equal(a, b) for a, b in zip(one.frames, other.frames))


def test_colour_histogram_counts_each_channel() -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 16)
    rgb[1, 1] = (255, 17, 16)
    hist = colour_histogram(rgb)
    assert hist.shape == (3, 16) and np.allclose(hist.sum(axis=1), 1.0)
    assert hist[0].tolist() == [0.5] + [0.0] * 14 + [0.5]  # red: two 0s, two 255s
    assert hist[1, 0] == 0.75 and hist[1, 1] == 0.25  # green: 17 falls in bin 1
    assert hist[2, 0] == 0.5 and hist[2, 1] == 0.5


# --- plan_picks: the selection rule alone ------------------------------------------------------------------------


def test_plan_prefers_scene_changes_then_spreads() -> None:
    times = [float(t) for t in range(10)]
    scores = [0.0] * 10
    scores[7] = 0.9
    picks = plan_picks(times, scores, 10.0, k=3)
    assert [(p.time_s, p.reason) for p in picks] == [(0.0, "keyframe"), (3.0, "keyframe"), (7.0, "scene_change")]


def test_plan_without_key_frames_is_uniform() -> None:
    picks = plan_picks([], [], 4.0, k=4)
    # Bisecting the largest gap: 2, then 1 and 3, then 0.5.
    assert [(p.time_s, p.reason) for p in picks] == [(0.5, "uniform"), (1.0, "uniform"), (2.0, "uniform"), (3.0, "uniform")]
    assert all(p.keyframe_index is None for p in picks)


def test_plan_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="scene_scores"):
        plan_picks([0.0, 1.0], [0.0], 2.0, k=2)


# --- CLI --------------------------------------------------------------------------------------------------------


def test_cli_json(videos: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["keyframes", str(videos["cut"]), "--json", "-k", "4"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(f["timestamp_s"], f["reason"]) for f in report["frames"]] == [
        (0.0, "keyframe"), (1.0, "keyframe"), (2.0, "scene_change"), (3.0, "keyframe")
    ]


def test_cli_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    result = CliRunner().invoke(main, ["keyframes", str(bad), "--json"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "bad.mp4" in lines[0]
    assert "Traceback" not in result.output
