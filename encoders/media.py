"""Which video files may be opened, and opening them safely: before a byte of a video is hashed, probed or decoded.

A manifest's ``path`` is untrusted input. It is resolved (``..`` collapsed, every symlink followed) and must lie under
an allowed folder (:func:`confine`): the manifest's own folder for a manifest the CLI reads, and the configured media
roots (``OVP_MEDIA_ROOTS``). Only a regular file of bounded size is read (:func:`check_media_file`,
:func:`media_sha256`): ``/dev/zero``, a FIFO or a 200 GB sparse file would otherwise hold a worker for good. The
checks run on the opened descriptor (``fstat``) where the file is read here, so what was checked is what is read; a
FIFO is opened non-blocking, so even the open cannot wait for a writer.
"""
from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ovp.errors import MediaRefused, VideoDecodeError

if TYPE_CHECKING:
    from ovp.settings import Settings

#: Bytes read per block while hashing; the deadline is checked between blocks.
HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class MediaLimits:
    """Bounds on one video file (``OVP_MAX_VIDEO_BYTES``, ``OVP_MAX_VIDEO_PIXELS``, ``OVP_MAX_VIDEO_DURATION_S``)."""

    max_bytes: int = 8 << 30
    max_pixels: int = 7680 * 4320
    max_duration_s: float = 4 * 3600.0

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1 or self.max_duration_s <= 0:
            raise ValueError(f"media limits must be positive, got {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaLimits:
        return cls(max_bytes=settings.max_video_bytes, max_pixels=settings.max_video_pixels,
                   max_duration_s=settings.max_video_duration_s)


def confine(path: str | Path, roots: Sequence[Path]) -> Path:
    """``path`` resolved (symlinks followed), if the result lies under one of ``roots`` (themselves resolved).

    The answer does not depend on whether the file exists, so a refusal tells nothing about files outside the roots.

    Raises:
        MediaRefused: no roots, or the resolved path is outside all of them.
    """
    resolved = Path(path).expanduser().resolve()
    if not roots:
        raise MediaRefused(f"{path}: no folder may hold videos here (OVP_MEDIA_ROOTS is empty)",
                           hint="set OVP_MEDIA_ROOTS to the folders that hold the videos")
    if not any(resolved.is_relative_to(Path(root).resolve()) for root in roots):
        raise MediaRefused(
            f"{path}: outside the folders videos may be read from (the manifest's folder and OVP_MEDIA_ROOTS)",
            hint="move the video under the manifest's folder or add its folder to OVP_MEDIA_ROOTS",
        )
    return resolved


def check_media_file(path: str | Path, limits: MediaLimits) -> int:
    """Check that ``path`` is a non-empty regular file of at most ``limits.max_bytes``; return its size.

    Raises:
        VideoDecodeError: no such file, or an empty one.
        MediaRefused: not a regular file (folder, FIFO, device), or larger than the limit.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise VideoDecodeError(f"{path}: no such file", hint="check the path") from exc
    except OSError as exc:
        raise VideoDecodeError(f"{path}: cannot read the file ({exc.strerror or exc})", hint="check the path and its permissions") from exc
    return _checked_size(path, info, limits)


@dataclass(frozen=True)
class HashedFile:
    """A video file checked and hashed by :func:`hash_media`; ``seconds`` counts against its deadline."""

    path: Path
    sha256: str
    seconds: float


def hash_media(path: str | Path, limits: MediaLimits, *, timeout_s: float) -> HashedFile:
    """:func:`media_sha256` with the time it took, so that decoding gets only what is left of the video's deadline."""
    started = time.monotonic()
    digest = media_sha256(path, limits, timeout_s=timeout_s)
    return HashedFile(Path(path), digest, time.monotonic() - started)


def media_sha256(path: str | Path, limits: MediaLimits, *, timeout_s: float) -> str:
    """Hex SHA-256 of a video file, after the checks of :func:`check_media_file` on the opened descriptor, read
    within ``timeout_s`` seconds.

    Raises:
        VideoDecodeError: missing, empty, unreadable, or not read within ``timeout_s``.
        MediaRefused: not a regular file, or larger than the limit.
    """
    started = time.monotonic()
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, before any check could run.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise VideoDecodeError(f"{path}: no such file", hint="check the path") from exc
    except OSError as exc:
        raise VideoDecodeError(f"{path}: cannot read the file ({exc.strerror or exc})", hint="check the path and its permissions") from exc
    try:
        _checked_size(path, os.fstat(fd), limits)
        handle = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    digest = hashlib.sha256()
    with handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
            if time.monotonic() - started > timeout_s:
                raise VideoDecodeError(
                    f"{path}: reading the file took longer than {timeout_s:g}s",
                    hint="the storage is too slow or the file too large; raise OVP_DECODE_TIMEOUT_S for very long videos",
                )
    return digest.hexdigest()


def _checked_size(path: str | Path, info: os.stat_result, limits: MediaLimits) -> int:
    if stat.S_ISDIR(info.st_mode):
        raise MediaRefused(f"{path}: not a regular file (a folder)", hint="pass a video file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket or other special file"
        raise MediaRefused(f"{path}: not a regular file ({kind})", hint="pass a video file")
    if info.st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)", hint="the upload or download did not complete")
    if info.st_size > limits.max_bytes:
        raise MediaRefused(
            f"{path}: {info.st_size:,} bytes, more than the {limits.max_bytes:,} a video may have",
            hint="raise OVP_MAX_VIDEO_BYTES if such videos are expected",
        )
    return info.st_size
