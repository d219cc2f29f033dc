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

from fusion.manifest import TEXT_FIELDS, linked_fields

#: The text a mention without ``field`` points into.
COMPOSED = "composed"
#: The whole linked text (title, caption, hashtags line and transcript joined by newlines, as
#: ``fusion.features.compose_text`` makes it): what tag evidence with field ``all`` (or none) points into.
WHOLE = "all"


@dataclass(frozen=True)
class Segment:
    """A run of text; ``mention`` is the linked mention it is (None for plain text)."""

    text: str
    mention: Mapping[str, Any] | None = None


def composed_text(title: str, caption: str, hashtags: Sequence[str]) -> str:
    """Title, caption and the hashtags the caption does not show, joined by newlines (what the worker linked before
    transcripts)."""
    return _joined(linked_fields(title, caption, hashtags, ""), TEXT_FIELDS)


def field_texts(video: Mapping[str, Any]) -> dict[str, str]:
    """Every text an offset may point into, by field: each linked field as the worker links it
    (:func:`fusion.manifest.linked_fields`), :data:`COMPOSED` and :data:`WHOLE`."""
    texts = linked_fields(str(video.get("title") or ""), str(video.get("caption") or ""),
                          list(video.get("hashtags") or []), str(video.get("transcript") or ""))
    texts[COMPOSED] = _joined(texts, TEXT_FIELDS[:3])
    texts[WHOLE] = _joined(texts, TEXT_FIELDS)
    return texts


def _joined(texts: Mapping[str, str], names: Sequence[str]) -> str:
    """The non-empty ones of ``names`` joined by newlines, as the worker joins its fields."""
    return "\n".join(texts[name] for name in names if texts[name])


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
