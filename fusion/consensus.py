"""The reviewers' consensus on a video, and the training manifest made of it (``ovp ratings export``).

The rule (also in docs/review-app.md), applied to each video's latest rating per reviewer:

- **GQS**: the median of the reviewers' grades; a median that falls between two grades (an even number of reviewers
  who disagree) is rounded down, so a video is never labelled better than half its reviewers judged it.
- **Diseases**: only reviewers who confirmed or corrected the disease labels count; a disease is in the consensus when
  more than half of them listed it (with two reviewers, both). No such reviewer: the video keeps no disease label.
- A video enters the export when at least ``min_raters`` reviewers rated it (default 1).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from fusion.manifest import PLATFORMS, parse_manifest_objects
from kg_builder.store.ratings import RatingRecord, VideoRatings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Consensus:
    """The consensus labels of one video; ``diseases`` is None when no reviewer judged the diseases."""

    video_id: str
    gqs: int
    diseases: tuple[str, ...] | None
    raters: int


def consensus_gqs(grades: Sequence[int]) -> int:
    """The median grade, rounded down when it falls between two grades.

    Raises:
        ValueError: no grades.
    """
    if not grades:
        raise ValueError("no grades to take the consensus of")
    ordered = sorted(grades)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return int(math.floor(median))


def consensus_diseases(lists: Sequence[Sequence[str] | None]) -> tuple[str, ...] | None:
    """The diseases listed by more than half of the reviewers who gave a list (None when none did), sorted."""
    given = [set(items) for items in lists if items is not None]
    if not given:
        return None
    counts: dict[str, int] = {}
    for items in given:
        for disease in items:
            counts[disease] = counts.get(disease, 0) + 1
    return tuple(sorted(d for d, n in counts.items() if n * 2 > len(given)))


def consensus(ratings: Sequence[RatingRecord]) -> Consensus:
    """The consensus of one video's latest ratings (one per reviewer).

    Raises:
        ValueError: no ratings, or ratings of different videos.
    """
    if not ratings:
        raise ValueError("no ratings to take the consensus of")
    videos = {r.video_id for r in ratings}
    if len(videos) != 1:
        raise ValueError(f"ratings of several videos given together: {', '.join(sorted(videos))}")
    return Consensus(
        video_id=ratings[0].video_id,
        gqs=consensus_gqs([r.gqs for r in ratings]),
        diseases=consensus_diseases([r.diseases for r in ratings]),
        raters=len(ratings),
    )


@dataclass(frozen=True)
class ExportSummary:
    """What ``export_manifest`` wrote: lines, and videos left out with why."""

    path: Path
    written: int
    skipped: dict[str, str]

    def line(self) -> str:
        return f"{self.written} rated videos written to {self.path}; {len(self.skipped)} left out"


def manifest_object(rated: VideoRatings, agreed: Consensus) -> dict[str, object]:
    """One manifest line: the video's stored manifest fields, the consensus labels and how many reviewers gave them."""
    video = rated.video
    platform = video.get("platform") or "other"
    obj: dict[str, object] = {
        "id": rated.video_id,
        "path": video.get("path") or "",
        "platform": platform if platform in PLATFORMS else "other",
        "title": video.get("title") or "",
        "caption": video.get("caption") or "",
        "hashtags": list(video.get("hashtags") or []),
        "published_at": video.get("published_at") or "",
        "duration_s": float(video.get("duration_s") or 0.0),
        "author_followers": int(video.get("author_followers") or 0),
        "quality": agreed.gqs,
        "raters": agreed.raters,
    }
    if video.get("url"):
        obj["url"] = video["url"]
    if video.get("transcript"):
        obj["transcript"] = video["transcript"]
    if agreed.diseases is not None:
        obj["diseases"] = list(agreed.diseases)
    if video.get("synthetic"):
        obj["synthetic"] = True
    return obj


def export_manifest(rated_videos: Iterable[VideoRatings], out: Path, *, min_raters: int = 1) -> ExportSummary:
    """Write the rated videos with their consensus labels as a manifest that ``ovp train`` reads.

    Every line is checked with the manifest parser before anything is written, and the file is replaced atomically,
    so a failed export leaves the previous one intact. Videos rated by fewer than ``min_raters`` reviewers, or whose
    stored metadata does not make a valid manifest line (e.g. no media path), are left out and named in the summary.
    """
    if min_raters < 1:
        raise ValueError(f"min_raters must be at least 1, got {min_raters}")
    lines: list[str] = []
    skipped: dict[str, str] = {}
    for rated in rated_videos:
        if len(rated.ratings) < min_raters:
            skipped[rated.video_id] = f"{len(rated.ratings)} reviewer(s), fewer than {min_raters}"
            continue
        obj = manifest_object(rated, consensus(rated.ratings))
        try:
            parse_manifest_objects([(1, obj)], f"video {rated.video_id}")
        except Exception as exc:  # noqa: BLE001 - ManifestError or a parser error: the video is skipped with it
            skipped[rated.video_id] = str(exc)
            continue
        lines.append(json.dumps(obj, ensure_ascii=False))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(out)
    for video_id, reason in skipped.items():
        log.warning("export: %s left out: %s", video_id, reason)
    return ExportSummary(path=out, written=len(lines), skipped=skipped)
