"""The linked text of a video is its title, caption, hashtags and transcript; a mention's offsets index the field it
lies in, which the profile stores on MENTIONS and the API serves."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from fusion.features import compose_text, locate, text_segments
from fusion.manifest import VideoEntry
from encoders.disease_tags import WHOLE_TEXT, NamedEvidence, SimilarityEvidence, SourceTag, combine_tags
from worker.pipeline import located_tags, mention_records


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


def test_tag_evidence_is_stored_as_offsets_into_its_field() -> None:
    video = entry()
    text = compose_text(video)
    start = text.index("cataract")
    sentence = text.index("eye pressure")
    tags = combine_tags([
        SourceTag("D1", "named", 1.0, named=(NamedEvidence("cataract", start, start + 8, 1.0, "dictionary"),)),
        SourceTag("D1", "similarity", 0.6, similarity=SimilarityEvidence(0.6, sentence, sentence + 12, "x")),
        SourceTag("D2", "similarity", 0.7, similarity=SimilarityEvidence(0.7, 0, len(text), "y", WHOLE_TEXT)),
    ])
    located = {t.disease_id: t for t in located_tags(video, tags)}
    named, similar = located["D1"].evidence
    assert (named.named[0].field, named.named[0].start, named.named[0].end) == ("transcript", 10, 18)
    assert video.transcript[10:18] == "cataract"
    assert (similar.similarity.field, similar.similarity.start, similar.similarity.end) == ("caption", 0, 12)
    # A similarity won by the whole text keeps its field and offsets: it points into no single field.
    whole = located["D2"].evidence[0].similarity
    assert (whole.field, whole.start, whole.end) == (WHOLE_TEXT, 0, len(text))
