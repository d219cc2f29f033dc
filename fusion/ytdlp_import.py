"""``ovp import ytdlp``: a folder that yt-dlp downloaded into, read as manifest entries.

yt-dlp (``--write-info-json --write-subs --write-auto-subs``) leaves, per video, ``NAME.info.json`` (what the platform
said about the video), the media file ``NAME.EXT`` and subtitles ``NAME.LANG.vtt`` / ``NAME.LANG.srt``.
:func:`import_ytdlp` walks a folder for ``*.info.json``, pairs each with its media file and one subtitle track and
maps the fields onto a :class:`fusion.manifest.VideoEntry`; ``docs/import.md`` is the field mapping, field by field.

Every file that cannot be used becomes an :class:`ImportProblem` (``path: what is wrong``) and the rest go on: a
non-UTF-8 or huge info file, a link that loops or leaves the folder, a recorded media path outside the folder, a
subtitle in another encoding. Nothing outside the folder is ever opened. The entries come out sorted by the info
file's path and hold nothing that depends on when the import ran, so importing the same folder twice writes the same
manifest.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from fusion.manifest import (
    ID_PATTERN,
    MAX_CAPTION_CHARS,
    MAX_TITLE_CHARS,
    MAX_TRANSCRIPT_CHARS,
    PLATFORM_PATTERN,
    VideoEntry,
)
from fusion.subtitles import READ_EXTENSIONS, UNREAD_EXTENSIONS, Subtitle, SubtitleError, read_subtitle

logger = logging.getLogger(__name__)

INFO_SUFFIX = ".info.json"
#: A video's info file is tens to hundreds of kilobytes (its formats list); with ``--write-comments`` a few
#: megabytes. Past this the file is not read (json would hold all of it in memory).
MAX_INFO_BYTES = 32 << 20
#: Media extensions tried beside ``NAME.info.json`` after the ``ext`` the info file names.
VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "mov", "m4v", "flv", "avi", "3gp", "ts")
#: Extractor names (``extractor_key``, else ``extractor``, lower-cased) → platform, by prefix: ``BiliBiliBangumi``
#: is Bilibili, ``YoutubeTab`` YouTube. Anything else keeps its own name.
PLATFORM_PREFIXES = (
    ("youtube", "youtube"),
    ("bilibili", "bilibili"),
    ("douyin", "douyin"),
    ("tiktok", "tiktok"),
    ("kuaishou", "kuaishou"),
    ("xiaohongshu", "xiaohongshu"),
    ("weibo", "weibo"),
)
#: yt-dlp count field → manifest engagement field.
COUNT_FIELDS = (("view_count", "views"), ("like_count", "likes"), ("comment_count", "comments"), ("repost_count", "shares"))
#: Live states whose media and counts are not final.
NOT_FINISHED = ("is_live", "is_upcoming", "post_live")
MAX_HASHTAGS = 100
MAX_HASHTAG_CHARS = 100
_HASHTAG = re.compile(r"#([^\s#]+)")
_TAG_TRAILING = "，。！？；：、,.!?;:)）]】」』\"'"


@dataclass(frozen=True)
class ImportProblem:
    """A file that could not be used (``skipped``: its video is left out) or a caveat about an imported video."""

    path: str
    what: str
    skipped: bool = True

    def line(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_ytdlp` found: one entry per usable video, sorted by info file, and every problem."""

    entries: tuple[VideoEntry, ...]
    problems: tuple[ImportProblem, ...]
    info_files: int

    @property
    def skipped(self) -> int:
        return sum(1 for p in self.problems if p.skipped)

    def summary(self) -> str:
        notes = len(self.problems) - self.skipped
        return (f"{len(self.entries)} videos imported from {self.info_files} info files, {self.skipped} skipped"
                + (f", {notes} imported with a note" if notes else ""))


class _Unusable(Exception):
    """Raised inside one file's import: the file is skipped with this message."""


@dataclass
class _Folder:
    """One directory's file names, listed once for all the info files in it, and its subtitle files by stem
    (``NAME.LANG.EXT`` under ``NAME``), so finding a video's subtitles does not scan the folder again."""

    names: frozenset[str]
    subtitles: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, names: list[str]) -> "_Folder":
        subtitles: dict[str, list[str]] = {}
        for name in sorted(names):
            parts = name.rsplit(".", 2)
            if len(parts) == 3 and parts[0] and parts[1] and parts[2].lower() in READ_EXTENSIONS + UNREAD_EXTENSIONS:
                subtitles.setdefault(parts[0], []).append(name)
        return cls(frozenset(names), subtitles)


@dataclass
class _FileImport:
    """The state of one info file's import: where it is, and the caveats collected on the way."""

    path: Path
    shown: str
    root: Path
    notes: list[str] = field(default_factory=list)


def import_ytdlp(
    folder: str | Path,
    *,
    platform_default: str | None = None,
    on_file: Callable[[], None] | None = None,
) -> ImportResult:
    """Read every ``*.info.json`` under ``folder`` (subfolders too; links to folders are not followed).

    Args:
        folder: what yt-dlp downloaded into.
        platform_default: the platform of info files that name no extractor (``--platform-default``).
        on_file: called after each info file (a progress bar).

    Returns:
        An :class:`ImportResult`; entries' paths are absolute (``write_manifest`` writes them relative to the manifest).

    Raises:
        ValueError: ``folder`` is not a directory, or ``platform_default`` is not a platform name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; give the folder yt-dlp downloaded into")
    if platform_default is not None:
        platform_default = platform_default.lower()
        if not PLATFORM_PATTERN.fullmatch(platform_default):
            raise ValueError(f"--platform-default {platform_default!r} is not a platform name (a–z 0–9 _ . -)")
    # Walked from the resolved folder: every path found is then under root by its very spelling.
    root = folder.resolve()
    entries: list[VideoEntry] = []
    problems: list[ImportProblem] = []
    first_seen: dict[str, str] = {}
    folders: dict[Path, _Folder] = {}
    count = 0
    for path in _info_files(root, problems):
        count += 1
        job = _FileImport(path, str(path), root)
        try:
            entry = _import_one(job, folders, platform_default)
        except _Unusable as exc:
            problems.append(ImportProblem(job.shown, str(exc)))
            entry = None
        except Exception as exc:  # noqa: BLE001 - one file's unforeseen failure must not stop the other files
            logger.exception("%s: unexpected error", job.shown)
            problems.append(ImportProblem(job.shown, f"unexpected error ({type(exc).__name__}: {exc}); please report it"))
            entry = None
        if entry is not None:
            if entry.id in first_seen:
                problems.append(ImportProblem(job.shown, f"the same video ({entry.id}) as {first_seen[entry.id]}; kept that one"))
            else:
                first_seen[entry.id] = job.shown
                entries.append(entry)
                problems.extend(ImportProblem(job.shown, note, skipped=False) for note in job.notes)
        if on_file is not None:
            on_file()
    result = ImportResult(tuple(entries), tuple(problems), count)
    logger.info("import %s: %s", folder, result.summary())
    return result


def filled_fields(entry: VideoEntry) -> list[str]:
    """The manifest fields an entry has a value for (non-empty text or list, a number, a date): what an import filled."""
    out = []
    for f in fields(VideoEntry):
        value = getattr(entry, f.name)
        if value is None or value == "" or value == () or (f.name in ("synthetic", "diseases_weak") and not value):
            continue
        out.append(f.name)
    return out


# --- walking -----------------------------------------------------------------------------------------------------


def _info_files(folder: Path, problems: list[ImportProblem]) -> Iterator[Path]:
    """Info files under ``folder`` in sorted path order. Links to folders are not followed (no loops, no escape)."""
    def walk_error(exc: OSError) -> None:
        problems.append(ImportProblem(str(exc.filename), f"cannot list this folder ({exc.strerror})"))

    for current, dirs, files in os.walk(folder, onerror=walk_error, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(INFO_SUFFIX) and len(name) > len(INFO_SUFFIX):
                yield Path(current) / name


def _inside(path: Path, root: Path, *, walked: bool = True) -> Path | None:
    """``path`` resolved (links followed), or ``None`` when it leads outside ``root``.

    ``walked``: ``path`` is a name in a folder reached from ``root`` without following links, so only a link at the
    name itself can lead out (and resolving every path costs more than the rest of the import).

    Raises:
        _Unusable: a link loop or a path that cannot be resolved.
    """
    if walked and not os.path.islink(path):
        if not os.path.lexists(path):
            raise _Unusable("disappeared while the folder was read")
        return path
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a link loop this way
        raise _Unusable("a symbolic link loop") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise _Unusable("a symbolic link loop") from None
        raise _Unusable(f"cannot be opened ({exc.strerror})") from None
    return resolved if resolved == root or resolved.is_relative_to(root) else None


def _listing(directory: Path, folders: dict[Path, _Folder]) -> _Folder:
    if directory not in folders:
        try:
            folders[directory] = _Folder.of(os.listdir(directory))
        except OSError:
            folders[directory] = _Folder(frozenset())
    return folders[directory]


# --- one info file -----------------------------------------------------------------------------------------------


def _import_one(job: _FileImport, folders: dict[Path, _Folder], platform_default: str | None) -> VideoEntry | None:
    info = _read_info(job)
    kind = info.get("_type", "video")
    if kind != "video":
        raise _Unusable(f"a {kind}'s info file (_type {kind!r}), not one video's; its videos have their own files")
    live = info.get("live_status")
    if live in NOT_FINISHED:
        raise _Unusable(f"live_status {live!r}: the stream had not ended; download it again once it has")

    platform = _platform(info, platform_default)
    video_id = _video_id(info, platform)
    published = _published_at(info)
    media = _media_file(job, info, folders)
    duration = _duration(info, media)
    counts = {name: _count(info, key, job) for key, name in COUNT_FIELDS}
    read_at = _read_at(job, info, published) if any(v is not None for v in counts.values()) else None
    title = _text(info, "title", job) or _text(info, "fulltitle", job)
    caption = _text(info, "description", job)
    return VideoEntry(
        id=video_id,
        path=media,
        platform=platform,
        title=_cut(title, MAX_TITLE_CHARS, "title", job),
        caption=_cut(caption, MAX_CAPTION_CHARS, "description", job),
        hashtags=_hashtags(info, caption),
        published_at=published,
        duration_s=duration,
        author_followers=_count(info, "channel_follower_count", job),
        url=_url(info),
        transcript=_transcript(job, info, folders),
        engagement_read_at=read_at,
        **counts,
    )


def _read_info(job: _FileImport) -> dict[str, Any]:
    resolved = _inside(job.path, job.root)
    if resolved is None:
        raise _Unusable("a symbolic link to a file outside the folder; not read")
    size = resolved.stat().st_size
    if size > MAX_INFO_BYTES:
        raise _Unusable(f"{size / 2**20:.1f} MiB, more than the {MAX_INFO_BYTES >> 20} MiB an info file may have "
                        "(an info file written with --write-comments can be this big; write it without)")
    data = resolved.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Unusable(f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); yt-dlp writes UTF-8, "
                        "so the file was changed or is not an info file") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Unusable(f"invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                        "the download may have been cut short") from None
    except RecursionError:
        raise _Unusable("invalid JSON (nested too deeply to be an info file)") from None
    if not isinstance(info, dict):
        raise _Unusable(f"holds a JSON {type(info).__name__}, not the object yt-dlp writes")
    return info


def _platform(info: dict[str, Any], platform_default: str | None) -> str:
    name = next((v for v in (info.get("extractor_key"), info.get("extractor")) if isinstance(v, str) and v.strip()), None)
    if name is None:
        if platform_default is None:
            raise _Unusable("names no extractor (extractor_key, extractor); give --platform-default")
        return platform_default
    key = name.strip().lower()
    for prefix, platform in PLATFORM_PREFIXES:
        if key.startswith(prefix):
            return platform
    # An extractor we do not know keeps its own name, made a valid platform name (vimeo, generic, …).
    platform = re.sub(r"[^a-z0-9_.-]+", "_", key).strip("_.-")[:64]
    if not platform or not PLATFORM_PATTERN.fullmatch(platform):
        raise _Unusable(f"extractor {name[:60]!r} gives no usable platform name; give --platform-default")
    return platform


def _video_id(info: dict[str, Any], platform: str) -> str:
    raw = info.get("id")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise _Unusable("has no video id (id)")
    video_id = f"{platform}:{raw.strip()}"
    if not ID_PATTERN.fullmatch(video_id):
        raise _Unusable(f"id {raw[:60]!r} has characters a manifest id cannot hold (A–Z a–z 0–9 _ . : -) "
                        "or is longer than 128 with its platform")
    return video_id


def _published_at(info: dict[str, Any]) -> datetime:
    # The moment the video became available; upload_date alone gives the day, so the hour is read as 00:00 UTC.
    for key in ("timestamp", "release_timestamp"):
        value = info.get(key)
        if _finite_number(value) and 0 < value < 4_102_444_800:  # before 2100
            return datetime.fromtimestamp(value, timezone.utc)
    for key in ("upload_date", "release_date"):
        value = info.get(key)
        if isinstance(value, str) and re.fullmatch(r"\d{8}", value):
            try:
                return datetime.strptime(value, "%Y%m%d").replace(tzinfo=timezone.utc)
            except ValueError:
                continue
    raise _Unusable("no publication date (timestamp, upload_date, release_timestamp or release_date)")


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(info: dict[str, Any], key: str, job: _FileImport) -> int | None:
    value = info.get(key)
    if value is None:
        return None
    if _finite_number(value) and float(value).is_integer() and value >= 0:
        return int(value)
    job.notes.append(f"{key} {str(value)[:40]!r} is not a count ≥ 0; left out")
    return None


def _read_at(job: _FileImport, info: dict[str, Any], published: datetime) -> datetime:
    # yt-dlp's epoch is when the extraction finished: the moment the counts were read. Older info files lack it;
    # then the info file's modification time (written right after extraction; copying without -p changes it).
    epoch = info.get("epoch")
    if _finite_number(epoch) and 0 < epoch < 4_102_444_800:
        read_at = datetime.fromtimestamp(epoch, timezone.utc)
    else:
        read_at = datetime.fromtimestamp(int(job.path.stat().st_mtime), timezone.utc)
        job.notes.append("no epoch: the engagement counts are dated by the file's modification time")
    if read_at < published:
        job.notes.append(f"counts read ({read_at:%Y-%m-%d}) before the video was published ({published:%Y-%m-%d}); "
                         "dated at publication")
        read_at = published
    return read_at


def _text(info: dict[str, Any], key: str, job: _FileImport) -> str:
    value = info.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        job.notes.append(f"{key} is a {type(value).__name__}, not text; left out")
        return ""
    return value.replace("\x00", "").strip()


def _cut(text: str, limit: int, name: str, job: _FileImport) -> str:
    if len(text) <= limit:
        return text
    job.notes.append(f"{name} of {len(text):,} characters cut to {limit:,}")
    return text[:limit]


def _url(info: dict[str, Any]) -> str | None:
    for key in ("webpage_url", "original_url"):
        value = info.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) <= 2_000:
            return value
    return None


def _hashtags(info: dict[str, Any], caption: str) -> tuple[str, ...]:
    # The platform's tags (YouTube, Bilibili), then the #hashtags written in the description (TikTok and Douyin have
    # no tags field: their hashtags live in the text).
    found: list[str] = []
    tags = info.get("tags")
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str) and tag.strip():
            found.append(tag.strip().lstrip("#"))
    found.extend(m.group(1).rstrip(_TAG_TRAILING) for m in _HASHTAG.finditer(caption))
    unique: list[str] = []
    for tag in found:
        if tag and len(tag) <= MAX_HASHTAG_CHARS and tag not in unique:
            unique.append(tag)
    return tuple(unique[:MAX_HASHTAGS])


# --- media and subtitles -----------------------------------------------------------------------------------------


def _stem(job: _FileImport) -> str:
    return job.path.name[: -len(INFO_SUFFIX)]


def _media_file(job: _FileImport, info: dict[str, Any], folders: dict[Path, _Folder]) -> Path:
    directory = job.path.parent
    recorded = _recorded_path(info)
    if recorded is not None:
        candidates = [recorded] if recorded.is_absolute() else [directory / recorded, directory / recorded.name]
        for candidate in candidates:
            if not os.path.lexists(candidate):
                continue
            resolved = _inside(candidate, job.root, walked=False)
            if resolved is None:
                job.notes.append(f"the media path the info file records ({str(recorded)[:200]}) leads outside the "
                                 "folder; not read")
                break
            if resolved.is_file():
                return _usable_media(resolved, job)
    names = _listing(directory, folders).names
    stem = _stem(job)
    ext = info.get("ext")
    exts = ([ext] if isinstance(ext, str) and ext.isalnum() else []) + [e for e in VIDEO_EXTENSIONS if e != ext]
    for ext in exts:
        name = f"{stem}.{ext}"
        if name in names:
            try:
                resolved = _inside(directory / name, job.root)
            except _Unusable as exc:
                raise _Unusable(f"its media file {name}: {exc}") from None
            if resolved is None:
                raise _Unusable(f"its media file {name} is a link to a file outside the folder; not read")
            return _usable_media(resolved, job)
    raise _Unusable(f"no media file beside it (looked for {stem}.{exts[0]} and {len(exts) - 1} other video extensions); "
                    "download the video too (yt-dlp without --skip-download)")


def _recorded_path(info: dict[str, Any]) -> Path | None:
    # Only with --no-clean-info-json does the info file keep the path yt-dlp wrote the media to.
    downloads = info.get("requested_downloads")
    values = [info.get("filepath"), info.get("_filename"), info.get("filename")]
    if isinstance(downloads, list) and downloads and isinstance(downloads[-1], dict):
        values.insert(0, downloads[-1].get("filepath"))
    for value in values:
        if isinstance(value, str) and value.strip() and "\x00" not in value and len(value) < 4096:
            return Path(value)
    return None


def _usable_media(path: Path, job: _FileImport) -> Path:
    if not path.is_file():
        raise _Unusable(f"its media file {path.name} is not a regular file")
    if path.stat().st_size == 0:
        raise _Unusable(f"its media file {path.name} is empty (0 bytes): the download did not complete")
    return path


def _duration(info: dict[str, Any], media: Path) -> float:
    value = info.get("duration")
    if _finite_number(value) and value >= 0:
        return float(value)
    # Some extractors give no duration (audio slideshows, old Bilibili parts): the container header has one.
    import av

    try:
        with av.open(str(media), metadata_errors="replace") as container:
            if container.duration is not None and container.duration > 0:
                return round(container.duration / av.time_base, 3)
    except (av.FFmpegError, OSError, ValueError):
        pass
    raise _Unusable(f"no duration, and {media.name} does not say its own; the media file may be damaged")


@dataclass(frozen=True)
class _Track:
    name: str
    lang: str
    ext: str


def _transcript(job: _FileImport, info: dict[str, Any], folders: dict[Path, _Folder]) -> str:
    """The text of one subtitle track: uploaded before automatic, the video's own language before translations."""
    stem = _stem(job)
    tracks: list[_Track] = []
    for name in _listing(job.path.parent, folders).subtitles.get(stem, []):
        lang, _, ext = name[len(stem) + 1:].rpartition(".")
        ext = ext.lower()
        if ext in UNREAD_EXTENSIONS and lang:
            job.notes.append(f"subtitle {name}: .{ext} is not read; ask yt-dlp for --sub-format vtt or --convert-subs srt")
        elif ext in READ_EXTENSIONS and lang:
            tracks.append(_Track(name, lang, ext))
    uploaded = set(info["subtitles"]) if isinstance(info.get("subtitles"), dict) else set()
    automatic = set(info["automatic_captions"]) if isinstance(info.get("automatic_captions"), dict) else set()
    language = info.get("language") if isinstance(info.get("language"), str) else None

    def is_automatic(track: _Track) -> bool | None:
        if track.lang in uploaded:
            return False
        if track.lang in automatic or track.lang.startswith("ai-"):  # Bilibili's AI subtitles are ai-zh, ai-en
            return True
        return None  # not said: decided from the file (rolling word timings)

    def rank(track: _Track) -> tuple[int, int, str]:
        original = track.lang.endswith("-orig") or (language is not None and track.lang.split("-")[0] == language.split("-")[0])
        return (1 if is_automatic(track) else 0, 0 if original else 1, track.name)

    for track in sorted(tracks, key=rank):
        path = job.path.parent / track.name
        try:
            resolved = _inside(path, job.root)
            if resolved is None:
                job.notes.append(f"subtitle {track.name} is a link to a file outside the folder; not read")
                continue
            subtitle: Subtitle = read_subtitle(resolved, automatic=is_automatic(track))
        except _Unusable as exc:
            job.notes.append(f"subtitle {track.name}: {exc}")
            continue
        except (SubtitleError, OSError) as exc:
            job.notes.append(f"subtitle {track.name}: {exc}")
            continue
        text = subtitle.text
        if not text:
            job.notes.append(f"subtitle {track.name} has no text")
            continue
        if len(text) > MAX_TRANSCRIPT_CHARS:
            job.notes.append(f"transcript of {len(text):,} characters cut to {MAX_TRANSCRIPT_CHARS:,}")
            text = text[:MAX_TRANSCRIPT_CHARS]
        return text
    return ""
