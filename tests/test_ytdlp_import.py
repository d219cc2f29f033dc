"""`ovp import ytdlp`: yt-dlp folders (fixtures shaped like YouTube, Bilibili, Douyin, TikTok and Vimeo info files, in
tests/data/ytdlp) become manifest entries; every unusable file is reported and the others go on."""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from fusion.manifest import read_manifest, write_manifest
from fusion.subtitles import SubtitleError, join_lines, read_subtitle
from fusion.ytdlp_import import MAX_INFO_BYTES, filled_fields, import_ytdlp
from ytdlp_folder import FIXTURES, build_download_folder



def ytdlp_folder(tmp_path: Path) -> Path:
    """The fixtures in ``tmp_path/dl``, each with a stand-in media file (the import never decodes it)."""
    folder = tmp_path / "dl"
    build_download_folder(folder)
    return folder


def by_platform(entries) -> dict:  # type: ignore[no-untyped-def]
    return {e.platform: e for e in entries}


def test_each_platform_fixture_maps_onto_a_manifest_entry(tmp_path: Path) -> None:
    result = import_ytdlp(ytdlp_folder(tmp_path))
    assert result.problems == () and result.info_files == 5
    videos = by_platform(result.entries)
    assert set(videos) == {"youtube", "bilibili", "douyin", "tiktok", "vimeo"}

    yt = videos["youtube"]
    assert yt.id == "youtube:gl4uc0ma001" and yt.url == "https://www.youtube.com/watch?v=gl4uc0ma001"
    assert yt.author_followers == 251000 and (yt.views, yt.likes, yt.comments, yt.shares) == (182340, 5120, 412, None)
    assert yt.published_at == datetime.fromtimestamp(1709652600, timezone.utc)
    assert yt.engagement_read_at == datetime.fromtimestamp(1718000000, timezone.utc)
    assert yt.hashtags == ("glaucoma", "eye pressure", "optic nerve", "ophthalmology", "eyehealth")
    # Rolling automatic captions: each spoken line once, word timings and tags gone.
    assert yt.transcript == "glaucoma damages the optic nerve it's not macular degeneration and eye pressure matters"
    age = (1718000000 - 1709652600) / 86400
    assert yt.popularity == pytest.approx(math.log1p((182340 + 5 * 5120 + 10 * 412) / age))

    bili = videos["bilibili"]
    assert bili.id == "bilibili:BV1Ey4y1q7Lh" and bili.author_followers is None and bili.shares is None
    assert bili.hashtags == ("老花眼", "眼科", "科普", "视力") and bili.duration_s == 10.0
    assert bili.transcript == "大家好，今天讲老花眼老花眼不是近视，也不是白内障"  # ai-zh: CJK lines joined without a space

    douyin = videos["douyin"]
    assert douyin.hashtags == ("青光眼", "眼科", "健康科普")  # no tags field: the #hashtags of the description
    assert (douyin.views, douyin.likes, douyin.comments, douyin.shares) == (0, 15300, 860, 2100)
    assert douyin.transcript == ""

    tiktok = videos["tiktok"]
    assert tiktok.caption.endswith("#fyp") and tiktok.title.endswith("…")
    assert tiktok.transcript.startswith("Is it pink eye or allergies? Pink eye, or conjunctivitis")

    vimeo = videos["vimeo"]  # an extractor OVP does not know keeps its name
    assert vimeo.id == "vimeo:912345678" and vimeo.platform == "vimeo"
    assert vimeo.transcript == "On the day of your cataract surgery we numb the eye with drops & check your pressure."


def test_fields_filled_per_platform(tmp_path: Path) -> None:
    filled = {e.platform: set(filled_fields(e)) for e in import_ytdlp(ytdlp_folder(tmp_path)).entries}
    assert "author_followers" in filled["youtube"] and "author_followers" not in filled["tiktok"]
    assert "shares" in filled["tiktok"] and "shares" not in filled["youtube"]
    assert "transcript" not in filled["douyin"] and "hashtags" not in filled["vimeo"]


def test_the_same_folder_gives_the_same_manifest_twice(tmp_path: Path) -> None:
    folder = ytdlp_folder(tmp_path)
    first = write_manifest(import_ytdlp(folder).entries, tmp_path / "a.jsonl").read_bytes()
    second = write_manifest(import_ytdlp(folder).entries, tmp_path / "b.jsonl").read_bytes()
    assert first == second
    entries = read_manifest(tmp_path / "a.jsonl")  # and the manifest reads back, paths relative to it
    assert [e.id for e in entries] == [e.id for e in import_ytdlp(folder).entries]
    assert all(e.path.is_file() for e in entries)


def test_every_unusable_file_is_reported_and_the_rest_go_on(tmp_path: Path) -> None:
    folder = ytdlp_folder(tmp_path)
    (folder / "latin1.info.json").write_bytes('{"id": "x", "title": "caf\xe9"}'.encode("latin-1"))
    with open(folder / "huge.info.json", "wb") as f:  # sparse: 50 MB without writing them
        f.truncate(50 << 20)
    (folder / "cut.info.json").write_text('{"id": "abc", "title": ', encoding="utf-8")
    (folder / "list.info.json").write_text("[1, 2]", encoding="utf-8")
    (folder / "deep.info.json").write_text("[" * 100_000, encoding="utf-8")
    os.symlink("loop_b.info.json", folder / "loop_a.info.json")
    os.symlink("loop_a.info.json", folder / "loop_b.info.json")
    os.symlink(folder, folder / "again")  # a folder link back to itself: not followed
    outside = tmp_path / "secret.info.json"
    outside.write_text("{}", encoding="utf-8")
    os.symlink(outside, folder / "escape.info.json")
    base = json.loads(next(FIXTURES.glob("*gl4uc0ma001*.info.json")).read_text(encoding="utf-8"))
    (folder / "playlist.info.json").write_text(json.dumps({"_type": "playlist", "id": "PL1", "entries": []}), encoding="utf-8")
    (folder / "nomedia.info.json").write_text(json.dumps(base | {"id": "nomedia1"}), encoding="utf-8")
    (folder / "live.info.json").write_text(json.dumps(base | {"id": "live1", "live_status": "is_live"}), encoding="utf-8")
    (folder / "live.mp4").write_bytes(b"x")
    (folder / "noextractor.info.json").write_text(json.dumps({k: v for k, v in base.items() if not k.startswith("extractor")}
                                                               | {"id": "noext1"}), encoding="utf-8")
    (folder / "noextractor.mp4").write_bytes(b"x")
    (folder / "twice.info.json").write_text(json.dumps(base), encoding="utf-8")
    (folder / "twice.mp4").write_bytes(b"x")
    (folder / "empty.info.json").write_text(json.dumps(base | {"id": "empty1"}), encoding="utf-8")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "medialoop.info.json").write_text(json.dumps(base | {"id": "medialoop1"}), encoding="utf-8")
    os.symlink("medialoop.mp4", folder / "medialoop.mp4")

    result = import_ytdlp(folder)
    assert len(result.entries) == 5  # the five fixtures, untouched by the rest
    said = {Path(p.path).name: p.what for p in result.problems if p.skipped}
    assert said["latin1.info.json"].startswith("not UTF-8 (byte 0xe9 at offset 25)")
    assert said["huge.info.json"].startswith(f"50.0 MiB, more than the {MAX_INFO_BYTES >> 20} MiB")
    assert said["cut.info.json"].startswith("invalid JSON")
    assert said["list.info.json"] == "holds a JSON list, not the object yt-dlp writes"
    assert said["deep.info.json"].startswith("invalid JSON")
    assert said["loop_a.info.json"] == said["loop_b.info.json"] == "a symbolic link loop"
    assert said["escape.info.json"] == "a symbolic link to a file outside the folder; not read"
    assert said["playlist.info.json"].startswith("a playlist's info file")
    assert said["nomedia.info.json"].startswith("no media file beside it (looked for nomedia.mp4")
    assert said["live.info.json"].startswith("live_status 'is_live'")
    assert said["noextractor.info.json"] == "names no extractor (extractor_key, extractor); give --platform-default"
    assert said["twice.info.json"].startswith("the same video (youtube:gl4uc0ma001) as ")
    assert said["empty.info.json"] == "its media file empty.mp4 is empty (0 bytes): the download did not complete"
    assert said["medialoop.info.json"] == "its media file medialoop.mp4: a symbolic link loop"
    assert not any("again" in p.path for p in result.problems)  # the folder link was not walked
    # With a default platform the extractor-less file is imported.
    assert "other:noext1" in {e.id for e in import_ytdlp(folder, platform_default="other").entries}


def test_a_recorded_media_path_outside_the_folder_is_never_opened(tmp_path: Path) -> None:
    folder = tmp_path / "dl"
    folder.mkdir()
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    base = json.loads(next(FIXTURES.glob("*gl4uc0ma001*.info.json")).read_text(encoding="utf-8"))
    (folder / "a.info.json").write_text(json.dumps(base | {"_filename": str(secret), "filepath": "../secret.mp4"}),
                                        encoding="utf-8")
    result = import_ytdlp(folder)
    assert not result.entries
    [problem] = result.problems
    assert problem.what.startswith("no media file beside it")
    # With the media beside it, the video is imported from there and the outside path is named in a note.
    (folder / "a.mp4").write_bytes(b"x")
    result = import_ytdlp(folder)
    assert [e.path for e in result.entries] == [(folder / "a.mp4").resolve()]
    assert [p.what for p in result.problems] == [
        "the media path the info file records (../secret.mp4) leads outside the folder; not read"]
    # A recorded path inside the folder is used even when the stems differ (the video was renamed after download).
    (folder / "a.mp4").rename(folder / "renamed.mp4")
    (folder / "a.info.json").write_text(json.dumps(base | {"filepath": str(folder / "renamed.mp4")}), encoding="utf-8")
    assert [e.path.name for e in import_ytdlp(folder).entries] == ["renamed.mp4"]


def test_a_subtitle_in_another_encoding_is_reported_and_the_video_kept(tmp_path: Path) -> None:
    folder = ytdlp_folder(tmp_path)
    [srt] = folder.glob("*.ai-zh.srt")
    srt.write_bytes(srt.read_text(encoding="utf-8").encode("gb18030"))
    result = import_ytdlp(folder)
    bili = by_platform(result.entries)["bilibili"]
    assert bili.transcript == ""
    [note] = [p for p in result.problems if not p.skipped]
    assert note.path.endswith("[BV1Ey4y1q7Lh].info.json")
    assert note.what.startswith(f"subtitle {srt.name}: not UTF-8 (byte 0xb4 at offset 32)") and "iconv" in note.what


def test_no_epoch_dates_the_counts_by_the_file_time_and_says_so(tmp_path: Path) -> None:
    folder = ytdlp_folder(tmp_path)
    [info] = folder.glob("*7298765432109876543*.info.json")
    data = json.loads(info.read_text(encoding="utf-8"))
    del data["epoch"]
    info.write_text(json.dumps(data), encoding="utf-8")
    os.utime(info, (1716000000, 1716000000))
    result = import_ytdlp(folder)
    assert by_platform(result.entries)["tiktok"].engagement_read_at == datetime.fromtimestamp(1716000000, timezone.utc)
    assert [p.what for p in result.problems] == ["no epoch: the engagement counts are dated by the file's modification time"]


def test_uploaded_subtitles_are_preferred_to_automatic_ones(tmp_path: Path) -> None:
    folder = ytdlp_folder(tmp_path)
    [info] = folder.glob("*gl4uc0ma001*.info.json")
    data = json.loads(info.read_text(encoding="utf-8"))
    data["subtitles"] = {"de": [{"ext": "srt", "url": "https://example.invalid/de"}]}
    info.write_text(json.dumps(data), encoding="utf-8")
    info.with_name(info.name.replace(".info.json", ".de.srt")).write_text(
        "1\n00:00:00,000 --> 00:00:01,000\n<i>Grüner Star</i> {\\an8}ist ein Augenleiden.\n", encoding="utf-8")
    info.with_name(info.name.replace(".info.json", ".de.ass")).write_text("[Script Info]\n", encoding="utf-8")
    result = import_ytdlp(folder)
    assert by_platform(result.entries)["youtube"].transcript == "Grüner Star ist ein Augenleiden."
    assert [p.what for p in result.problems] == [
        f"subtitle {info.name.replace('.info.json', '.de.ass')}: .ass is not read; ask yt-dlp for --sub-format vtt or "
        "--convert-subs srt"]


def test_subtitle_reading(tmp_path: Path) -> None:
    rolling = tmp_path / "a.en.vtt"
    rolling.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n \nno<00:00:00.500><c> no</c>\n\n"
                       "00:00:01.000 --> 00:00:01.010\nno no\n \n\n00:00:01.010 --> 00:00:02.000\nno no\nyes\n", encoding="utf-8")
    assert read_subtitle(rolling).lines == ("no no", "yes") and read_subtitle(rolling).automatic
    # Uploaded cues keep a repeated line: the speaker said it twice.
    assert read_subtitle(rolling, automatic=False).lines == ("no no", "no no", "no no", "yes")
    utf16 = tmp_path / "b.srt"
    utf16.write_bytes("1\r\n00:00:00,000 --> 00:00:01,000\r\n青光眼\r\n".encode("utf-16"))
    assert read_subtitle(utf16).text == "青光眼"
    (tmp_path / "c.vtt").write_text("1\n00:00:00.000 --> 00:00:01.000\nhi\n", encoding="utf-8")
    with pytest.raises(SubtitleError, match="does not start with WEBVTT"):
        read_subtitle(tmp_path / "c.vtt")
    (tmp_path / "d.srt").write_text("just text\n", encoding="utf-8")
    with pytest.raises(SubtitleError, match="no timed cue"):
        read_subtitle(tmp_path / "d.srt")
    (tmp_path / "e.srt").write_bytes(b"1\n\x00\x00")
    with pytest.raises(SubtitleError, match="NUL bytes"):
        read_subtitle(tmp_path / "e.srt")
    assert join_lines(["眼压", "高", "so what", "好"]) == "眼压高 so what 好"


def test_the_command_writes_the_manifest_and_prints_each_problem(tmp_path: Path) -> None:
    from cli import main

    folder = ytdlp_folder(tmp_path)
    (folder / "bad.info.json").write_bytes(b"\xff\xfe\x00")
    out = tmp_path / "m" / "manifest.jsonl"
    result = CliRunner().invoke(main, ["import", "ytdlp", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"skipped {folder / 'bad.info.json'}: not UTF-8" in result.output
    assert "5 videos imported from 6 info files, 1 skipped" in result.output
    assert len(read_manifest(out)) == 5
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["import", "ytdlp", str(empty), "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "no video imported" in result.output and not (tmp_path / "x.jsonl").exists()
