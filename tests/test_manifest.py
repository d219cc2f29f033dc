"""The manifest format: every kind of problem is reported by line and field, all at once, in one ManifestError."""
from __future__ import annotations

import json
import math
from datetime import timezone
from pathlib import Path

import pytest

from fusion.manifest import (
    VideoEntry,
    parse_manifest_lines,
    parse_manifest_objects,
    popularity_target,
    read_manifest,
    write_manifest,
)
from ovp.errors import ManifestError


def good(**overrides: object) -> dict:
    line = {
        "id": "vid_1",
        "path": "videos/a.mp4",
        "platform": "douyin",
        "title": "青光眼科普",
        "caption": "眼压高是青光眼吗？#青光眼 👀",
        "hashtags": ["青光眼"],
        "published_at": "2024-03-01T20:15:00+08:00",
        "duration_s": 6.5,
        "author_followers": 1200,
    }
    line.update(overrides)
    return {k: v for k, v in line.items() if v is not ...}


def lines_of(*objects: dict | str) -> list[str]:
    return [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objects]


def problems_of(lines: list[str] | list[bytes], origin: str = "m.jsonl") -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest_lines(lines, origin)
    return info.value.problems


def test_a_good_line_becomes_a_typed_entry_with_labels() -> None:
    [entry] = parse_manifest_lines(lines_of(good(diseases=["OVP:glaucoma"], views=100, likes=10, comments=2,
                                                 shares=1, quality=4, synthetic=True)), "m.jsonl")
    assert isinstance(entry, VideoEntry)
    assert entry.id == "vid_1" and entry.platform == "douyin" and entry.hashtags == ("青光眼",)
    assert entry.diseases == ("OVP:glaucoma",) and entry.quality == 4 and entry.synthetic
    assert entry.published_at.utcoffset().total_seconds() == 8 * 3600
    assert entry.popularity == pytest.approx(math.log1p(100 + 5 * 10 + 10 * 2 + 20 * 1))


def test_labels_are_optional_and_unknown_labels_are_none() -> None:
    [entry] = parse_manifest_lines(lines_of(good()))
    assert entry.diseases is None and entry.quality is None and entry.popularity is None and not entry.synthetic


def test_popularity_target_is_the_documented_weighted_log() -> None:
    assert popularity_target(0, 0, 0, 0) == 0.0
    assert popularity_target(1000, 10, 1, 1) == pytest.approx(math.log1p(1000 + 50 + 10 + 20))
    assert popularity_target(None, None, None, None) is None
    assert popularity_target(1000, None, 1, None, age_days=4) == pytest.approx(math.log1p((1000 + 10) / 4))


def test_naive_timestamps_are_read_as_utc_and_z_is_accepted() -> None:
    a, b = parse_manifest_lines(lines_of(good(published_at="2024-03-01T12:00:00"),
                                         good(id="vid_2", published_at="2024-03-01T12:00:00Z")))
    assert a.published_at.tzinfo == timezone.utc and a.published_at == b.published_at


def test_relative_paths_resolve_against_the_manifest_folder_and_round_trip(tmp_path: Path) -> None:
    manifest = tmp_path / "sets" / "m.jsonl"
    manifest.parent.mkdir()
    manifest.write_text("\n".join(lines_of(good(), good(id="vid_2", path="/abs/b.mp4"))) + "\n", encoding="utf-8")
    first, second = read_manifest(manifest)
    assert first.path == manifest.parent.resolve() / "videos" / "a.mp4"
    assert second.path == Path("/abs/b.mp4")
    copy = tmp_path / "sets" / "copy.jsonl"
    write_manifest([first, second], copy)
    written = [json.loads(line) for line in copy.read_text(encoding="utf-8").splitlines()]
    assert written[0]["path"] == "videos/a.mp4" and written[1]["path"] == "/abs/b.mp4"
    assert read_manifest(copy) == [first, second]


def test_write_manifest_is_byte_stable(tmp_path: Path) -> None:
    entries = parse_manifest_lines(lines_of(good(diseases=[], quality=1)), base_dir=tmp_path)
    a, b = write_manifest(entries, tmp_path / "a.jsonl"), write_manifest(entries, tmp_path / "b.jsonl")
    assert a.read_bytes() == b.read_bytes()
    assert '"diseases": []' in a.read_text(encoding="utf-8")  # "labelled: no disease" is kept, not dropped


def test_blank_and_comment_lines_are_skipped_and_a_bom_is_tolerated() -> None:
    entries = parse_manifest_lines(["\ufeff// header", "", json.dumps(good()), "   "])
    assert [e.id for e in entries] == ["vid_1"]


def test_invalid_json_is_reported_with_its_line() -> None:
    [problem] = problems_of(lines_of(good(), '{"id": "x",'))
    assert problem.startswith("m.jsonl:2: <line>: invalid JSON")


def test_non_utf8_bytes_are_reported_not_raised() -> None:
    raw = [json.dumps(good()).encode(), b'{"id": "\xff\xfe"}']
    [problem] = problems_of(raw)
    assert problem.startswith("m.jsonl:2: <line>: not UTF-8")


def test_a_line_that_is_not_an_object_is_reported() -> None:
    [problem] = problems_of(lines_of(good(), "[1, 2]"))
    assert problem == "m.jsonl:2: <line>: expected a JSON object, got list"


def test_missing_and_unknown_fields_are_each_reported() -> None:
    problems = problems_of(lines_of(good(caption=..., qualty=3)))
    assert "m.jsonl:1: caption: missing (required)" in problems
    assert any(p.startswith("m.jsonl:1: qualty: unknown field") for p in problems)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("id", "has space", "must be 1–128 characters"),
        ("id", "x" * 129, "must be 1–128 characters"),
        ("id", 7, "expected a string, got int"),
        ("path", "", "non-empty file path"),
        ("platform", "My Space", "is not a platform name"),
        ("transcript", 5, "expected a string, got int"),
        ("diseases_weak", True, "true without diseases"),
        ("engagement_read_at", "2024-04-01T00:00:00Z", "the line gives none"),
        ("title", None, "expected a string, got null"),
        ("hashtags", "#tag", "expected a list of strings"),
        ("hashtags", ["ok", 3], "non-string items"),
        ("published_at", "yesterday", "not an ISO 8601 date-time"),
        ("duration_s", -1, "must be ≥ 0"),
        ("duration_s", "6", "expected a number of seconds"),
        ("duration_s", True, "expected a number of seconds"),
        ("author_followers", -5, "must be ≥ 0"),
        ("author_followers", 12.5, "expected an integer ≥ 0"),
        ("author_followers", True, "expected an integer ≥ 0"),
        ("diseases", "OVP:glaucoma", "expected a list of entity ids"),
        ("diseases", ["glaucoma"], "not entity ids"),
        ("diseases", ["OVP:a", "OVP:a"], "listed twice"),
        ("quality", 0, "expected an integer 1–5"),
        ("quality", 6, "expected an integer 1–5"),
        ("quality", 3.5, "expected an integer 1–5"),
        ("synthetic", "yes", "expected true or false"),
    ],
)
def test_bad_values_name_the_field_and_what_is_wrong(field: str, value: object, expected: str) -> None:
    [problem] = problems_of(lines_of(good(**{field: value})))
    assert problem.startswith(f"m.jsonl:1: {field}: ") and expected in problem


def test_integral_floats_are_accepted_as_counts() -> None:
    [entry] = parse_manifest_lines(lines_of(good(author_followers=1200.0)))
    assert entry.author_followers == 1200 and isinstance(entry.author_followers, int)


def test_engagement_counts_may_be_partial_and_are_non_negative() -> None:
    # YouTube shows no share count, Bilibili none through yt-dlp: the target sums the counts a platform shows.
    [entry] = parse_manifest_lines(lines_of(good(views=10, likes=1)))
    assert entry.shares is None and entry.popularity == pytest.approx(math.log1p(10 + 5 * 1))
    [problem] = problems_of(lines_of(good(views=10, likes=-1, comments=0, shares=0)))
    assert problem == "m.jsonl:1: likes: must be ≥ 0, got -1"


def test_dated_engagement_is_a_per_day_rate_from_publication_to_reading() -> None:
    [entry] = parse_manifest_lines(lines_of(good(views=1000, likes=20, published_at="2024-03-01T00:00:00Z",
                                                 engagement_read_at="2024-03-11T00:00:00Z")))
    assert entry.age_days == pytest.approx(10.0)
    assert entry.popularity == pytest.approx(math.log1p((1000 + 5 * 20) / 10))
    # Read on the day it was published: the count itself (at least one day), not a rate blown up by hours.
    [young] = parse_manifest_lines(lines_of(good(views=1000, published_at="2024-03-01T00:00:00Z",
                                                 engagement_read_at="2024-03-01T06:00:00Z")))
    assert young.popularity == pytest.approx(math.log1p(1000))
    assert json.loads(json.dumps(entry.to_json_dict()))["engagement_read_at"] == "2024-03-11T00:00:00+00:00"


def test_counts_read_before_publication_or_dated_for_some_videos_only_are_problems() -> None:
    [problem] = problems_of(lines_of(good(views=1, published_at="2024-03-02T00:00:00Z",
                                          engagement_read_at="2024-03-01T00:00:00Z")))
    assert problem.startswith("m.jsonl:1: engagement_read_at: ") and "before published_at" in problem
    problems = problems_of(lines_of(good(views=1, engagement_read_at="2024-04-01T00:00:00Z"), good(id="vid_2", views=3),
                                    good(id="vid_3")))
    assert problems == ["m.jsonl:2: engagement_read_at: missing, while 1 other videos date their engagement counts; "
                        "date every video's counts or none"]


def test_followers_are_optional_and_any_platform_name_is_kept() -> None:
    line = good(platform="xiaohongshu", transcript="今天讲青光眼", diseases=["OVP:glaucoma"], diseases_weak=True)
    del line["author_followers"]
    [entry] = parse_manifest_lines(lines_of(line))
    assert entry.author_followers is None and entry.platform == "xiaohongshu"
    assert entry.transcript == "今天讲青光眼" and entry.diseases_weak
    out = entry.to_json_dict()
    assert "author_followers" not in out and out["diseases_weak"] is True and out["transcript"] == "今天讲青光眼"
    [again] = parse_manifest_objects([(1, out)])
    assert again == entry


def test_a_caption_over_20000_characters_is_a_problem() -> None:
    parse_manifest_lines(lines_of(good(caption="a" * 20_000)))
    [problem] = problems_of(lines_of(good(caption="a" * 20_001)))
    assert problem.startswith("m.jsonl:1: caption: 20,001 characters, more than the 20,000 allowed")


def test_duplicate_ids_name_the_first_line() -> None:
    [problem] = problems_of(lines_of(good(), "// comment", good()))
    assert problem == "m.jsonl:3: id: duplicate id 'vid_1' (first on line 1)"


def test_all_problems_are_collected_in_line_order_and_the_message_counts_bad_lines() -> None:
    lines = lines_of(good(platform="We Ibo", quality=9), "not json", good(id="vid_3"), good(id="vid_4", duration_s=-2))
    with pytest.raises(ManifestError) as info:
        parse_manifest_lines(lines, "batch.jsonl")
    error = info.value
    assert [p.split(":")[1] for p in error.problems] == ["1", "1", "2", "4"]
    assert "3 of 4 lines are bad (4 problems)" in str(error)
    assert "first: batch.jsonl:1: platform" in str(error)
    assert error.code == "manifest_invalid" and error.http_status == 422


def test_an_empty_manifest_is_an_error(tmp_path: Path) -> None:
    for lines in ([], ["", "// only a comment"]):
        with pytest.raises(ManifestError, match="lists no videos"):
            parse_manifest_lines(lines, "empty.jsonl")
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(ManifestError, match="lists no videos"):
        read_manifest(path)


def test_a_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(tmp_path / "nope.jsonl")


def test_objects_from_a_json_body_are_validated_the_same_way() -> None:
    entries = parse_manifest_objects([(1, good())], "request body")
    assert entries[0].id == "vid_1"
    with pytest.raises(ManifestError) as info:
        parse_manifest_objects([(1, good()), (2, good(id="vid_2", platform=3))], "request body")
    assert info.value.problems == ["request body:2: platform: expected a string, got int"]


def test_origins_containing_colons_still_sort_by_line() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest_lines(lines_of("x", good(), "y"), "C:/data/m.jsonl")
    assert [p.split(": ")[0] for p in info.value.problems] == ["C:/data/m.jsonl:1", "C:/data/m.jsonl:3"]
