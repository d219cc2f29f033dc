"""A video's texts cut into segments around its linked mentions, for highlighting.

Mention offsets point into the text that was linked. A mention with a ``field`` (``title``, ``caption``,
``transcript``) points into that field; one without points into the composed text the worker links (title, caption
and the hashtags the caption does not show, joined by newlines, as ``fusion.features.compose_text`` makes it). A
mention whose offsets do not spell its surface in that text (the text changed since it was linked) is not
highlighted; the page still lists it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

#: The text a mention without ``field`` points into.
COMPOSED = "composed"
#: The whole linked text (title, caption, hashtags line and transcript joined by newlines, as
#: ``fusion.features.compose_text`` makes it): what tag evidence with field ``all`` (or none) points into.
WHOLE = "all"
#: The fields a video's text is linked in, in the order they are joined.
FIELDS = ("title", "caption", "hashtags", "transcript")


@dataclass(frozen=True)
class Segment:
    """A run of text; ``mention`` is the linked mention it is (None for plain text)."""

    text: str
    mention: Mapping[str, Any] | None = None


def composed_text(title: str, caption: str, hashtags: Sequence[str]) -> str:
    """Title, caption and the hashtags the caption does not show, joined by newlines (what the worker links)."""
    tags = [t if t.startswith("#") else f"#{t}" for t in hashtags]
    missing = [t for t in tags if t not in caption]
    return "\n".join(p for p in (title.strip(), caption.strip(), " ".join(missing)) if p)


def field_texts(video: Mapping[str, Any]) -> dict[str, str]:
    """Every text an offset may point into, by field: each linked field stripped as the worker links it (``hashtags``
    the ``#a #b`` line of those the caption does not show), :data:`COMPOSED` and :data:`WHOLE`."""
    title, caption = str(video.get("title") or "").strip(), str(video.get("caption") or "").strip()
    hashtags = list(video.get("hashtags") or [])
    tags = [t if t.startswith("#") else f"#{t}" for t in hashtags]
    texts = {
        "title": title,
        "caption": caption,
        "hashtags": " ".join(t for t in tags if t not in caption),
        "transcript": str(video.get("transcript") or "").strip(),
    }
    texts[COMPOSED] = composed_text(title, caption, hashtags)
    texts[WHOLE] = "\n".join(texts[f] for f in FIELDS if texts[f])
    return texts


def mention_field(mention: Mapping[str, Any]) -> str:
    return str(mention.get("field") or COMPOSED)


def segments(text: str, mentions: Sequence[Mapping[str, Any]]) -> tuple[list[Segment], list[Mapping[str, Any]]]:
    """``text`` cut at the mentions whose offsets spell their surface there (overlaps: the earlier, longer one wins).

    Returns the segments and the mentions that could not be placed.
    """
    placed: list[Mapping[str, Any]] = []
    unplaced: list[Mapping[str, Any]] = []
    for m in sorted(mentions, key=lambda m: (int(m.get("start") or 0), -int(m.get("end") or 0))):
        start, end = int(m.get("start") or 0), int(m.get("end") or 0)
        fits = 0 <= start < end <= len(text) and text[start:end] == m.get("surface")
        if not fits or (placed and start < int(placed[-1]["end"])):
            unplaced.append(m)
            continue
        placed.append(m)
    out: list[Segment] = []
    position = 0
    for m in placed:
        start, end = int(m["start"]), int(m["end"])
        if start > position:
            out.append(Segment(text[position:start]))
        out.append(Segment(text[start:end], m))
        position = end
    if position < len(text):
        out.append(Segment(text[position:]))
    return out, unplaced
