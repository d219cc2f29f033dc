"""The batch manifest: one video per line of a JSONL file, read into typed :class:`VideoEntry` records.

Format (UTF-8, one JSON object per line; blank lines and lines starting with ``//`` are skipped)::

    {"id": "vid_0001", "path": "videos/vid_0001.mp4", "platform": "douyin",
     "title": "青光眼科普", "caption": "眼压高就是青光眼吗？#青光眼 #eyehealth 👀", "hashtags": ["青光眼", "eyehealth"],
     "published_at": "2024-03-01T20:15:00+08:00", "duration_s": 6.0, "author_followers": 12000,
     "diseases": ["OVP:glaucoma"], "views": 5400, "likes": 310, "comments": 12, "shares": 7,
     "engagement_read_at": "2024-04-01T09:00:00+00:00", "quality": 4, "synthetic": false}

Required fields (the inputs, known when a video is published):

=====================  ==========================================================================================
``id``                 str matching ``[A-Za-z0-9_.:-]{1,128}``, unique within the manifest
``path``               str, the video file; a relative path is resolved against the manifest's folder. For
                       profiling (``media_roots`` given) the path is resolved, symlinks followed, and must lie under
                       the manifest's folder or a configured media root (``OVP_MEDIA_ROOTS``)
``platform``           a lowercase name (``[a-z0-9][a-z0-9_.-]*``): ``douyin bilibili kuaishou youtube tiktok`` have their
                       own slot in the model's metadata; any other (``xiaohongshu``, ``weibo``, an extractor's name,
                       ``other``) shares the ``other`` slot
``title``              str (may be empty), at most 1,000 characters
``caption``            str (may be empty), at most 20,000 characters (``OVP_MAX_TEXT_CHARS``' default)
``hashtags``           list of str, as written by the author, without or with a leading ``#``
``published_at``       ISO 8601 date-time; one without a UTC offset is taken as UTC
``duration_s``         number of seconds, 0 to 31,622,400 (a leap year)
=====================  ==========================================================================================

Optional fields (labels for training and evaluation, and provenance):

=====================  ==========================================================================================
``author_followers``   integer ≥ 0, at most 2^63 − 1 (an INPUT: the audience an author already has when the video is
                       published); absent or ``null`` = unknown (yt-dlp gives it for YouTube, not for TikTok, Douyin
                       or Bilibili)
``url``                str, where the video was published (kept on the graph's Video node)
``transcript``         str, what is said in the video (subtitle text without timing, ``ovp import ytdlp``), at most
                       20,000 characters; linked and encoded beside title, caption and hashtags
``diseases``           list of entity ids (CURIEs such as ``OVP:glaucoma``); ``[]`` = labelled "about no profile
                       disease"; absent = unlabelled
``diseases_weak``      bool (default false): ``diseases`` were proposed from the linked mentions of the video's own
                       text (``ovp import ytdlp --weak-diseases``), not given by a person
``views`` ``likes``    integers ≥ 0 (at most 2^63 − 1, what Neo4j stores), the engagement counts a platform shows (any
``comments`` ``shares``  of them; a platform that hides one, such as YouTube's shares, leaves it out). The popularity
                       target weighs them ``views + 5·likes + 10·comments + 20·shares`` over the counts given (:func:`popularity_target`):
                       an interaction weighs more the more effort it costs the viewer, so a share counts 20 views
``engagement_read_at`` ISO 8601 date-time the counts were read (yt-dlp's ``epoch``). Engagement grows with age, so with
                       it the target is a **per-day rate**: ``log1p(weighted engagement / days online)``, days from
                       ``published_at`` to this date, at least 1 (the "view ratio" of video-quality studies); without
                       it the target is ``log1p(weighted engagement)`` (the synthetic demo set, whose counts have no
                       age). One manifest uses one of the two: dating the counts of some videos and not others is an
                       error
``quality``            integer 1–5, the Global Quality Score used in ophthalmic video studies
``synthetic``          bool (default false): generated data (``ovp demo-data``); every report on it must say so
``raters``             integer ≥ 1: the labels are the consensus of this many reviewers' ratings (written by
                       ``ovp ratings export``; the model card counts the videos that had it)
=====================  ==========================================================================================

Any other field is an error, so a misspelt label (``"qualty"``) is never silently ignored. A line nested deeper than
``MAX_JSON_DEPTH`` is an error too (no field needs more than two levels).
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from encoders.media import confine
from ovp.errors import ManifestError, MediaRefused

logger = logging.getLogger(__name__)

PLATFORMS = ("douyin", "bilibili", "kuaishou", "youtube", "tiktok", "other")
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: Entity ids are CURIEs: a prefix, a colon, a local part (``OVP:glaucoma``, ``ICD10:H40``, ``HP:0000501``).
ENTITY_ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*:[^\s:][^\s]*")
MAX_CAPTION_CHARS = 20_000
MAX_TITLE_CHARS = 1_000
#: Platforms the model gives a slot of their own (``fusion.records.PLATFORMS``); any other name is accepted and shares
#: the ``other`` slot.
PLATFORM_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_TRANSCRIPT_CHARS = 20_000
#: Weights of the engagement counts in the popularity target (see :func:`popularity_target`).
ENGAGEMENT_WEIGHTS = {"views": 1, "likes": 5, "comments": 10, "shares": 20}
#: A video's counts are divided by at least this many days: on its first day a video's rate is its count.
MIN_AGE_DAYS = 1.0
#: At most this many problems are listed in a ManifestError (all are counted); a 1 GB file of garbage should not
#: become a 1 GB error message.
MAX_LISTED_PROBLEMS = 1_000
#: Counts are stored in Neo4j as 64-bit integers: a larger one would pass here and fail in the driver.
MAX_COUNT = 2**63 - 1
#: Seconds in a leap year: no published video is longer, and every bound float survives the driver.
MAX_DURATION_S = 366 * 24 * 3600
#: JSON nesting a manifest line (or any request body) may have; a manifest line needs two levels.
MAX_JSON_DEPTH = 32

REQUIRED_FIELDS = ("id", "path", "platform", "title", "caption", "hashtags", "published_at", "duration_s")
OPTIONAL_FIELDS = ("author_followers", "url", "transcript", "diseases", "diseases_weak", "views", "likes", "comments",
                   "shares", "engagement_read_at", "quality", "synthetic", "raters")
ENGAGEMENT_FIELDS = tuple(ENGAGEMENT_WEIGHTS)


def popularity_target(views: int | None, likes: int | None, comments: int | None, shares: int | None,
                      age_days: float | None = None) -> float | None:
    """The popularity label: ``log1p(views + 5·likes + 10·comments + 20·shares)`` over the counts given (``None`` =
    the platform does not show it), divided by ``max(age_days, 1)`` first when the age is known; ``None`` when no
    count is given.

    The log makes the heavy-tailed counts (a few videos get millions of views) a target a regression head can fit.
    Engagement grows with the time a video has been online, so counts read at different ages are compared as a rate
    per day; the rate of an old video is then an average over its life (most engagement comes early), which favours
    young videos less than raw totals favour old ones.
    """
    counts = {"views": views, "likes": likes, "comments": comments, "shares": shares}
    if all(v is None for v in counts.values()):
        return None
    total = sum(ENGAGEMENT_WEIGHTS[name] * value for name, value in counts.items() if value is not None)
    if age_days is not None:
        total /= max(float(age_days), MIN_AGE_DAYS)
    return math.log1p(total)


#: The text fields a video is linked and encoded by, in the order they are joined.
TEXT_FIELDS = ("title", "caption", "hashtags", "transcript")


def linked_fields(title: str, caption: str, hashtags: Sequence[str], transcript: str) -> dict[str, str]:
    """Each text field as the linker reads it, by :data:`TEXT_FIELDS` name: stripped, ``hashtags`` the ``#a #b`` line
    of the hashtags the caption does not show. Mention and tag offsets index these texts."""
    tags = [t if t.startswith("#") else f"#{t}" for t in hashtags]
    return {"title": title.strip(), "caption": caption.strip(), "hashtags": " ".join(t for t in tags if t not in caption),
            "transcript": transcript.strip()}


@dataclass(frozen=True)
class VideoEntry:
    """One manifest line, validated. ``path`` is absolute when the manifest was read from a file.

    Labels are ``None`` when unknown; ``popularity`` is derived from the four engagement counts.
    """

    id: str
    path: Path
    platform: str
    title: str
    caption: str
    hashtags: tuple[str, ...]
    published_at: datetime
    duration_s: float
    author_followers: int | None = None
    url: str | None = None
    transcript: str = ""
    diseases: tuple[str, ...] | None = None
    diseases_weak: bool = False
    views: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    engagement_read_at: datetime | None = None
    quality: int | None = None
    synthetic: bool = False
    raters: int | None = None

    @property
    def age_days(self) -> float | None:
        """Days between publication and the reading of the engagement counts, or ``None`` when they are not dated."""
        if self.engagement_read_at is None:
            return None
        return (self.engagement_read_at - self.published_at).total_seconds() / 86_400

    @property
    def popularity(self) -> float | None:
        """log1p of the weighted engagement, per day online when the counts are dated (:func:`popularity_target`),
        or ``None`` when unlabelled."""
        return popularity_target(self.views, self.likes, self.comments, self.shares, self.age_days)

    def to_json_dict(self, base_dir: Path | None = None) -> dict[str, Any]:
        """The manifest line as a dict (field order fixed, ``None`` labels left out).

        ``path`` is written relative to ``base_dir`` when it lies under it, so a manifest and its videos can move together.
        """
        path = self.path
        if base_dir is not None and path.is_absolute():
            try:
                path = path.relative_to(base_dir.resolve())
            except ValueError:
                pass
        out: dict[str, Any] = {
            "id": self.id,
            "path": path.as_posix(),
            "platform": self.platform,
            "title": self.title,
            "caption": self.caption,
            "hashtags": list(self.hashtags),
            "published_at": self.published_at.isoformat(),
            "duration_s": self.duration_s,
        }
        if self.author_followers is not None:
            out["author_followers"] = self.author_followers
        if self.url is not None:
            out["url"] = self.url
        if self.transcript:
            out["transcript"] = self.transcript
        if self.diseases is not None:
            out["diseases"] = list(self.diseases)
        if self.diseases_weak:
            out["diseases_weak"] = True
        for name in ENGAGEMENT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.engagement_read_at is not None:
            out["engagement_read_at"] = self.engagement_read_at.isoformat()
        if self.quality is not None:
            out["quality"] = self.quality
        if self.synthetic:
            out["synthetic"] = True
        if self.raters is not None:
            out["raters"] = self.raters
        return out


# --- reading ------------------------------------------------------------------------------------------------------


@dataclass
class _Problems:
    """Every problem found, as ``origin:line: field: what is wrong``; counts past the listing cap."""

    origin: str
    items: list[str] = field(default_factory=list)
    count: int = 0
    bad_lines: set[int] = field(default_factory=set)

    def add(self, line: int, name: str, what: str) -> None:
        self.count += 1
        self.bad_lines.add(line)
        if len(self.items) < MAX_LISTED_PROBLEMS:
            self.items.append(f"{self.origin}:{line}: {name}: {what}")


def json_depth(value: object, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply ``value`` (decoded JSON) nests lists and objects, counted without recursion and only up to
    ``limit + 1``: a hostile document cannot make this slow or overflow the stack."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _show(value: object, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters, so that a huge number or string makes a short problem line."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 128 else f"an integer of {len(str(value))} digits"
    return text if len(text) <= width else text[: width - 1] + "…"


def _type_name(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _as_int(value: object) -> int | None:
    # JSON has one number type; exporters (pandas) write counts as 1200.0, which is an integer all the same.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _check_str(obj: Mapping[str, Any], name: str, line: int, problems: _Problems, *, max_chars: int | None = None) -> str | None:
    value = obj[name]
    if not isinstance(value, str):
        problems.add(line, name, f"expected a string, got {_type_name(value)}")
        return None
    if max_chars is not None and len(value) > max_chars:
        problems.add(line, name, f"{len(value):,} characters, more than the {max_chars:,} allowed; shorten it")
        return None
    return value


def _check_count(obj: Mapping[str, Any], name: str, line: int, problems: _Problems) -> int | None:
    value = _as_int(obj[name])
    if value is None:
        problems.add(line, name, f"expected an integer ≥ 0, got {_show(obj[name])}")
        return None
    if value < 0:
        problems.add(line, name, f"must be ≥ 0, got {_show(value)}")
        return None
    if value > MAX_COUNT:
        problems.add(line, name, f"{_show(value)} is more than the largest count stored, 2^63 − 1")
        return None
    return value


def _parse_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Naive times are read as UTC so that every published_at is comparable (and has an hour for the metadata vector).
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _entry_from_object(obj: Mapping[str, Any], line: int, base_dir: Path | None, problems: _Problems,
                       roots: Sequence[Path] | None = None) -> VideoEntry | None:
    """Validate one decoded line; record every problem and return ``None`` if there was any. With ``roots``, the path
    is resolved and must lie under one of them."""
    before = problems.count
    for name in REQUIRED_FIELDS:
        if name not in obj:
            problems.add(line, name, "missing (required)")
    for name in obj:
        if name not in REQUIRED_FIELDS and name not in OPTIONAL_FIELDS:
            problems.add(line, name, f"unknown field; allowed: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")
    values = {**_video_fields(obj, line, base_dir, problems, roots), **_label_fields(obj, line, problems)}
    read_at, published = values.get("engagement_read_at"), values.get("published_at")
    if read_at is not None and published is not None and read_at < published:
        problems.add(line, "engagement_read_at", f"{obj['engagement_read_at']} is before published_at: counts cannot "
                                                 "be read before the video is published")
    if problems.count != before:
        return None
    return VideoEntry(**values)


def _video_fields(obj: Mapping[str, Any], line: int, base_dir: Path | None, problems: _Problems,
                  roots: Sequence[Path] | None = None) -> dict[str, Any]:
    """The valid values of the video's own fields (id, file, platform, text, publication, author), recording problems."""
    values: dict[str, Any] = {}
    if "id" in obj and (vid := _check_str(obj, "id", line, problems)) is not None:
        if ID_PATTERN.fullmatch(vid):
            values["id"] = vid
        else:
            problems.add(line, "id", f"{vid[:140]!r} must be 1–128 characters of A–Z a–z 0–9 _ . : -")
    if "path" in obj and (path := _check_str(obj, "path", line, problems)) is not None:
        if not path.strip() or "\x00" in path:
            problems.add(line, "path", "must be a non-empty file path")
        else:
            p = Path(path).expanduser()
            p = (base_dir / p) if base_dir is not None and not p.is_absolute() else p
            if roots is None:
                values["path"] = p
            elif not p.is_absolute():
                problems.add(line, "path", f"{_show(path, 140)} is relative and there is no manifest folder; give an absolute path")
            else:
                try:
                    values["path"] = confine(p, roots)
                except MediaRefused as exc:
                    problems.add(line, "path", f"{exc.message}; {exc.hint}")
    if "platform" in obj and (platform := _check_str(obj, "platform", line, problems)) is not None:
        if PLATFORM_PATTERN.fullmatch(platform.lower()):
            values["platform"] = platform.lower()
        else:
            problems.add(line, "platform", f"{platform[:80]!r} is not a platform name (1–64 of a–z 0–9 _ . -, e.g. "
                                           f"{', '.join(PLATFORMS)})")
    if "title" in obj and (title := _check_str(obj, "title", line, problems, max_chars=MAX_TITLE_CHARS)) is not None:
        values["title"] = title
    if "caption" in obj and (caption := _check_str(obj, "caption", line, problems, max_chars=MAX_CAPTION_CHARS)) is not None:
        values["caption"] = caption
    if "hashtags" in obj:
        tags = obj["hashtags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.add(line, "hashtags", f"expected a list of strings, got {_type_name(tags)}"
                         + ("" if not isinstance(tags, list) else " with non-string items"))
        else:
            values["hashtags"] = tuple(tags)
    if "published_at" in obj and (stamp := _check_str(obj, "published_at", line, problems)) is not None:
        parsed = _parse_datetime(stamp)
        if parsed is None:
            problems.add(line, "published_at", f"{stamp[:60]!r} is not an ISO 8601 date-time (e.g. 2024-03-01T20:15:00+08:00)")
        else:
            values["published_at"] = parsed
    if "duration_s" in obj:
        duration = obj["duration_s"]
        # Compared as given (int or float): float() of a 400-digit integer would raise OverflowError.
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or (isinstance(duration, float) and not math.isfinite(duration)):
            problems.add(line, "duration_s", f"expected a number of seconds, got {_show(duration)}")
        elif duration < 0:
            problems.add(line, "duration_s", f"must be ≥ 0, got {_show(duration)}")
        elif duration > MAX_DURATION_S:
            problems.add(line, "duration_s", f"{_show(duration)} is more than {MAX_DURATION_S:,} seconds (a year)")
        else:
            values["duration_s"] = float(duration)
    if obj.get("author_followers") is not None and (followers := _check_count(obj, "author_followers", line, problems)) is not None:
        values["author_followers"] = followers

    if "url" in obj and obj["url"] is not None and (url := _check_str(obj, "url", line, problems, max_chars=2_000)) is not None:
        values["url"] = url
    if obj.get("transcript") is not None and (
            transcript := _check_str(obj, "transcript", line, problems, max_chars=MAX_TRANSCRIPT_CHARS)) is not None:
        values["transcript"] = transcript
    return values


def _label_fields(obj: Mapping[str, Any], line: int, problems: _Problems) -> dict[str, Any]:
    """The valid values of the labels (diseases, engagement, quality), the SYNTHETIC flag and how many reviewers gave the
    labels, recording problems."""
    values: dict[str, Any] = {}
    if "diseases" in obj and obj["diseases"] is not None:
        diseases = obj["diseases"]
        if not isinstance(diseases, list) or not all(isinstance(d, str) for d in diseases):
            problems.add(line, "diseases", f"expected a list of entity ids, got {_type_name(diseases)}"
                         + ("" if not isinstance(diseases, list) else " with non-string items"))
        else:
            bad = [d for d in diseases if not ENTITY_ID_PATTERN.fullmatch(d)]
            repeated = sorted({d for d in diseases if diseases.count(d) > 1})
            if bad:
                problems.add(line, "diseases", f"not entity ids (PREFIX:local, e.g. OVP:glaucoma): {', '.join(map(repr, bad[:5]))}")
            elif repeated:
                problems.add(line, "diseases", f"listed twice: {', '.join(repeated)}")
            else:
                values["diseases"] = tuple(diseases)
    if "diseases_weak" in obj:
        if not isinstance(obj["diseases_weak"], bool):
            problems.add(line, "diseases_weak", f"expected true or false, got {obj['diseases_weak']!r}")
        elif obj["diseases_weak"] and obj.get("diseases") is None:
            problems.add(line, "diseases_weak", "true without diseases: give the proposed diseases or drop the flag")
        else:
            values["diseases_weak"] = obj["diseases_weak"]
    present = [name for name in ENGAGEMENT_FIELDS if obj.get(name) is not None]
    for name in present:
        if (count := _check_count(obj, name, line, problems)) is not None:
            values[name] = count
    if obj.get("engagement_read_at") is not None and (stamp := _check_str(obj, "engagement_read_at", line, problems)) is not None:
        read_at = _parse_datetime(stamp)
        if read_at is None:
            problems.add(line, "engagement_read_at", f"{stamp[:60]!r} is not an ISO 8601 date-time (e.g. 2024-04-01T09:00:00Z)")
        elif not present:
            problems.add(line, "engagement_read_at", "dates engagement counts, but the line gives none (views, likes, …)")
        else:
            values["engagement_read_at"] = read_at
    if "quality" in obj and obj["quality"] is not None:
        quality = _as_int(obj["quality"])
        if quality is None or not 1 <= quality <= 5:
            problems.add(line, "quality", f"expected an integer 1–5 (Global Quality Score), got {_show(obj['quality'])}")
        else:
            values["quality"] = quality
    if "synthetic" in obj:
        if not isinstance(obj["synthetic"], bool):
            problems.add(line, "synthetic", f"expected true or false, got {_show(obj['synthetic'])}")
        else:
            values["synthetic"] = obj["synthetic"]
    if "raters" in obj and obj["raters"] is not None:
        raters = _as_int(obj["raters"])
        if raters is None or raters < 1:
            problems.add(line, "raters", f"expected an integer ≥ 1 (reviewers behind the labels), got {obj['raters']!r}")
        else:
            values["raters"] = raters
    return values


def _validate_objects(objects: Iterable[tuple[int, object]], base_dir: Path | None, problems: _Problems,
                      roots: Sequence[Path] | None = None) -> tuple[list[VideoEntry], int]:
    """Validate ``(line, object)`` pairs into entries, recording problems; returns the entries and the count seen."""
    entries: list[VideoEntry] = []
    lines: list[int] = []
    first_line: dict[str, int] = {}
    total = 0
    for line, obj in objects:
        total += 1
        if not isinstance(obj, dict):
            problems.add(line, "<line>", f"expected a JSON object, got {_type_name(obj)}")
            continue
        if json_depth(obj) > MAX_JSON_DEPTH:
            problems.add(line, "<line>", f"nested more than {MAX_JSON_DEPTH} levels deep; a manifest line needs two")
            continue
        entry = _entry_from_object(obj, line, base_dir, problems, roots)
        vid = obj.get("id")
        if isinstance(vid, str):
            if vid in first_line:
                problems.add(line, "id", f"duplicate id {_show(vid, 140)} (first on line {first_line[vid]})")
                entry = None
            else:
                first_line[vid] = line
        if entry is not None:
            entries.append(entry)
            lines.append(line)
    _check_one_popularity_scale(entries, lines, problems)
    return entries, total


def _check_one_popularity_scale(entries: list[VideoEntry], lines: list[int], problems: _Problems) -> None:
    # A per-day rate and a total are different targets: mixing them in one manifest would train one head on both.
    labelled = [(e, n) for e, n in zip(entries, lines) if e.popularity is not None]
    dated = sum(1 for e, _ in labelled if e.engagement_read_at is not None)
    if 0 < dated < len(labelled):
        for entry, line in labelled:
            if entry.engagement_read_at is None:
                problems.add(line, "engagement_read_at", f"missing, while {dated} other videos date their engagement "
                                                         "counts; date every video's counts or none")


def _finish(entries: list[VideoEntry], total: int, problems: _Problems) -> list[VideoEntry]:
    if problems.count:
        items = sorted(problems.items, key=lambda item: _line_of(item, problems.origin))
        if problems.count > len(items):
            items.append(f"… and {problems.count - len(items):,} more problems")
        raise ManifestError(
            f"manifest {problems.origin}: {len(problems.bad_lines)} of {total} lines are bad "
            f"({problems.count} problem{'s' if problems.count != 1 else ''}); first: {items[0]}",
            problems=items,
            hint="fix every listed line and submit the manifest again",
        )
    if not entries:
        raise ManifestError(f"manifest {problems.origin} lists no videos", hint="add one JSON object per line (see fusion/manifest.py)")
    return entries


def _line_of(problem: str, origin: str) -> int:
    # "origin:LINE: field: ..." — the origin may itself contain colons, so skip it before reading the number.
    return int(problem[len(origin) + 1:].split(":", 1)[0])


def parse_manifest_objects(objects: Iterable[tuple[int, object]], origin: str = "<manifest>", *, base_dir: Path | None = None,
                           media_roots: Sequence[Path] | None = None) -> list[VideoEntry]:
    """Validate already-decoded manifest lines given as ``(line_number, object)`` pairs.

    Same promises as :func:`parse_manifest_lines`; for a JSON request body that holds a list of objects, number
    them from 1.
    """
    problems = _Problems(origin)
    entries, total = _validate_objects(objects, base_dir, problems, _roots(base_dir, media_roots))
    return _finish(entries, total, problems)


def parse_manifest_lines(lines: Iterable[str | bytes], origin: str = "<manifest>", *, base_dir: Path | None = None,
                         media_roots: Sequence[Path] | None = None) -> list[VideoEntry]:
    """Parse and validate manifest lines (``str`` or UTF-8 ``bytes``, line 1 first).

    Args:
        lines: the manifest's lines; blank lines and ``//`` comment lines are skipped.
        origin: the name used in problem messages (a file path, or e.g. ``request body``).
        base_dir: relative ``path`` values are resolved against it; ``None`` keeps them as given.
        media_roots: for videos that will be opened (profiling): every path is resolved (symlinks followed) and must
            lie under ``base_dir`` or one of these folders; a relative path needs ``base_dir``. ``None``: paths are
            kept as given (training and evaluation read the operator's own manifests).

    Returns:
        one :class:`VideoEntry` per video line, in order.

    Raises:
        ManifestError: any line is bad (``problems`` lists every problem as ``origin:line: field: what is wrong``,
            in line order; the message says how many lines are bad and quotes the first problem), or there are no
            videos at all.
    """
    problems = _Problems(origin)
    decoded: list[tuple[int, object]] = []
    undecodable = 0
    for lineno, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                undecodable += 1
                problems.add(lineno, "<line>", f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8")
                continue
        else:
            text = raw
        if lineno == 1:
            text = text.removeprefix("\ufeff")  # a BOM from Windows editors is not worth a rejection
        stripped = text.strip()
        if not stripped or stripped.startswith("//"):
            continue
        try:
            decoded.append((lineno, json.loads(stripped)))
        except json.JSONDecodeError as exc:
            undecodable += 1
            problems.add(lineno, "<line>", f"invalid JSON: {exc.msg} at column {exc.colno}")
        except RecursionError:
            undecodable += 1
            problems.add(lineno, "<line>", f"nested more than {MAX_JSON_DEPTH} levels deep; a manifest line needs two")
        except ValueError as exc:  # a number of more than 4,300 digits: Python refuses to convert it
            undecodable += 1
            problems.add(lineno, "<line>", f"invalid JSON: {str(exc).split(';')[0]}")
    entries, total = _validate_objects(decoded, base_dir, problems, _roots(base_dir, media_roots))
    return _finish(entries, total + undecodable, problems)


def _roots(base_dir: Path | None, media_roots: Sequence[Path] | None) -> list[Path] | None:
    if media_roots is None:
        return None
    return ([base_dir] if base_dir is not None else []) + list(media_roots)


def read_manifest(path: str | Path, *, media_roots: Sequence[Path] | None = None) -> list[VideoEntry]:
    """Read a manifest file; relative video paths are resolved against the manifest's folder.

    ``media_roots``: for profiling, every video must lie under the manifest's folder or one of these (see
    :func:`parse_manifest_lines`).

    Raises:
        ManifestError: the file cannot be read, has bad lines (all listed), or lists no videos.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror}", hint="check the path") from exc
    entries = parse_manifest_lines(data.split(b"\n"), str(path), base_dir=path.resolve().parent, media_roots=media_roots)
    logger.debug("manifest %s: %d videos", path, len(entries))
    return entries


def write_manifest(entries: Iterable[VideoEntry], path: str | Path) -> Path:
    """Write entries as a manifest (UTF-8, one compact JSON object per line, ``\\n`` endings, paths relative to the
    manifest's folder where possible). The same entries always give the same bytes. Returns the path written.
    """
    path = Path(path)
    base = path.resolve().parent
    lines = [json.dumps(entry.to_json_dict(base), ensure_ascii=False, separators=(", ", ": ")) for entry in entries]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a manifest
    return path
