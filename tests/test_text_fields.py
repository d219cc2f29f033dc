"""The linked text of a video is its title, caption, hashtags and transcript; a mention's offsets index the field it
lies in, which the profile stores on MENTIONS and the API serves."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from fusion.features import compose_text, locate, text_segments
from fusion.manifest import VideoEntry
from worker.pipeline import mention_records


def entry(**overrides: object) -> VideoEntry:
    values = dict(id="v1", path=Path("/v.mp4"), platform="youtube", title="Glaucoma", caption="eye pressure #iop",
                  hashtags=("iop", "eyes"), published_at=datetime(2024, 1, 1, tzinfo=timezone.utc), duration_s=5.0,
                  transcript="it is not cataract")
    values.update(overrides)
    return VideoEntry(**values)  # type: ignore[arg-type]


def test_the_transcript_follows_title_caption_and_hashtags() -> None:
    video = entry()
    assert compose_text(video) == "Glaucoma\neye pressure #iop\n#eyes\nit is not cataract"
    assert [(s.field, s.start) for s in text_segments(video)] == [("title", 0), ("caption", 9), ("hashtags", 27),
                                                                  ("transcript", 33)]
    # Without a transcript the text is what it was before transcripts existed (cached token states stay valid).
    assert compose_text(entry(transcript="")) == "Glaucoma\neye pressure #iop\n#eyes"
    assert [s.field for s in text_segments(entry(title="", hashtags=()))] == ["caption", "transcript"]


def test_offsets_of_the_linked_text_become_offsets_into_one_field() -> None:
    video = entry()
    text = compose_text(video)
    segments = text_segments(video)
    for surface, field in (("Glaucoma", "title"), ("pressure", "caption"), ("eyes", "hashtags"), ("cataract", "transcript")):
        start = text.index(surface)
        name, a, b = locate(segments, start, start + len(surface))
        source = {"title": video.title, "caption": video.caption, "hashtags": "#eyes", "transcript": video.transcript}[name]
        assert name == field and source[a:b] == surface
    with pytest.raises(ValueError, match="outside the linked text"):
        locate(segments, len(text) + 5, len(text) + 6)


def test_profile_mentions_carry_their_field() -> None:
    video = entry()
    text = compose_text(video)
    start = text.index("cataract")
    mention = SimpleNamespace(id="OVP:cataract", surface="cataract", start=start, end=start + 8, score=1.0, negated=True)
    [record] = mention_records(video, [mention])
    assert (record.field, record.start, record.end, record.negated) == ("transcript", 10, 18, True)
    assert video.transcript[record.start:record.end] == "cataract"
