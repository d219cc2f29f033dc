"""Which video files are opened, and how: confined to the allowed folders, only regular files of bounded size, read
and decoded within the video's deadline, frames and durations capped, large frames scaled down before RGB.

Each hostile file here used to hold its reader for good (the issue's first finding): ``/dev/zero`` and a 200 GB sparse
file were hashed in full, and a FIFO blocked the open until a writer came. Nothing here times anything: a check that
regressed would hang, and pytest-timeout fails it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from encoders import keyframes
from encoders.keyframes import extract_keyframes
from encoders.media import MediaLimits, check_media_file, confine, hash_media, media_sha256
from fusion.manifest import read_manifest
from ovp.errors import ManifestError, MediaRefused, VideoDecodeError
from videos import make_video

LIMITS = MediaLimits()


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    os.mkfifo(path)
    return path


@pytest.fixture()
def sparse(tmp_path: Path) -> Path:
    """A 200 GB file that takes no disk: a hole."""
    path = tmp_path / "huge.mp4"
    with path.open("wb") as handle:
        handle.truncate(200 << 30)
    return path


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "sparse", "folder"])
def test_only_regular_files_of_bounded_size_are_read(kind: str, fifo: Path, sparse: Path, tmp_path: Path) -> None:
    path = {"dev_zero": Path("/dev/zero"), "fifo": fifo, "sparse": sparse, "folder": tmp_path}[kind]
    expected = {"dev_zero": "not a regular file (a device)", "fifo": "not a regular file (a FIFO)",
                "sparse": "214,748,364,800 bytes, more than the", "folder": "not a regular file (a folder)"}[kind]
    for check in (lambda: check_media_file(path, LIMITS), lambda: media_sha256(path, LIMITS, timeout_s=20),
                  lambda: extract_keyframes(path, k=2)):
        with pytest.raises(MediaRefused, match=expected.replace("(", r"\(").replace(")", r"\)")):
            check()


def test_hashing_runs_under_the_video_s_deadline(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    path.write_bytes(os.urandom(8 << 20))
    with pytest.raises(VideoDecodeError, match="reading the file took longer than"):
        media_sha256(path, LIMITS, timeout_s=1e-9)
    hashed = hash_media(path, LIMITS, timeout_s=20)
    assert len(hashed.sha256) == 64 and hashed.seconds >= 0


def test_confine_follows_symlinks_and_refuses_what_leaves_the_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "media", tmp_path / "elsewhere"
    (root / "sub").mkdir(parents=True), outside.mkdir()
    (root / "inner.mp4").symlink_to(root / "sub")
    (root / "escape.mp4").symlink_to(outside / "x.mp4")
    assert confine(root / "sub" / "a.mp4", [root]) == (root / "sub" / "a.mp4").resolve()
    assert confine(root / "inner.mp4", [root]) == (root / "sub").resolve()
    for bad in (root / ".." / "elsewhere" / "x.mp4", root / "escape.mp4", Path("/etc/passwd")):
        with pytest.raises(MediaRefused, match="outside the folders"):
            confine(bad, [root])
    with pytest.raises(MediaRefused, match="OVP_MEDIA_ROOTS is empty"):
        confine(root / "sub" / "a.mp4", [])


def test_a_manifest_for_profiling_may_name_only_files_under_its_folder_or_the_media_roots(tmp_path: Path) -> None:
    (tmp_path / "batch").mkdir(), (tmp_path / "library").mkdir()
    line = ('{{"id": "{id}", "path": "{path}", "platform": "other", "title": "", "caption": "", "hashtags": [], '
            '"published_at": "2024-01-01T00:00:00", "duration_s": 1, "author_followers": 0}}')
    manifest = tmp_path / "batch" / "manifest.jsonl"
    manifest.write_text("\n".join([line.format(id="a", path="clip.mp4"), line.format(id="b", path="../library/x.mp4"),
                                   line.format(id="c", path="/etc/passwd")]) + "\n")
    assert len(read_manifest(manifest)) == 3  # training and evaluation read the operator's own manifests as they are
    with pytest.raises(ManifestError) as refused:
        read_manifest(manifest, media_roots=[])
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in refused.value.problems] == ["2", "3"]
    manifest.write_text("\n".join(manifest.read_text().splitlines()[:2]) + "\n")
    entries = read_manifest(manifest, media_roots=[tmp_path / "library"])  # now ../library is allowed too
    assert entries[1].path == (tmp_path / "library" / "x.mp4").resolve()


def test_frames_and_durations_beyond_the_caps_are_refused_before_decoding(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", seconds=2, size=(64, 48))
    with pytest.raises(MediaRefused, match=r"frames of 64 × 48 \(0.0 MP\), more than"):
        extract_keyframes(video, k=2, limits=MediaLimits(max_pixels=64 * 48 - 1))
    with pytest.raises(MediaRefused, match="2 s long, more than the 1 s"):
        extract_keyframes(video, k=2, limits=MediaLimits(max_duration_s=1.0))
    with pytest.raises(MediaRefused, match="bytes, more than the 100 a video may have"):
        extract_keyframes(video, k=2, limits=MediaLimits(max_bytes=100))
    assert len(extract_keyframes(video, k=2, limits=MediaLimits(max_pixels=64 * 48, max_duration_s=2.5))) == 2


def test_large_frames_are_scaled_down_before_they_become_rgb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame with more pixels than MAX_FRAME_PIXELS comes back scaled down (aspect kept): a 12,000 × 12,000 video
    within the caps never becomes full-size RGB or goes whole to the GPU. The cap is lowered so a small video shows it."""
    video = make_video(tmp_path / "wide.mp4", seconds=2, size=(160, 90), gop=10)
    full = extract_keyframes(video, k=3)
    monkeypatch.setattr(keyframes, "MAX_FRAME_PIXELS", 80 * 45)
    small = extract_keyframes(video, k=3)
    monkeypatch.setattr(keyframes, "MAX_FRAME_PIXELS", 80 * 45)
    sought = extract_keyframes(video, k=3, max_held_bytes=0)  # the key frames decoded again by seeking
    assert {f.shape for f in full.frames} == {(90, 160, 3)}
    assert {f.shape for f in small.frames} == {f.shape for f in sought.frames} == {(44, 80, 3)}
    assert small.timestamps_s == full.timestamps_s and (small.width, small.height) == (80, 44)
    # The same picture, smaller: the mean colour survives the area average.
    assert np.allclose([f.mean() for f in small.frames], [f.mean() for f in full.frames], atol=3)


def test_reading_the_file_counts_against_the_decoding_deadline(tmp_path: Path) -> None:
    """The time spent hashing a video is taken off its decoding deadline, and the error names the whole deadline."""
    video = make_video(tmp_path / "clip.mp4", seconds=2, size=(64, 48))
    with pytest.raises(VideoDecodeError, match=r"decoding took longer than 5s"):
        extract_keyframes(video, k=2, timeout_s=5, spent_s=5.0)
    assert len(extract_keyframes(video, k=2, timeout_s=5, spent_s=1.0)) == 2
