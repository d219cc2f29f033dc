"""Pure parts of the review app: agreement statistics, the consensus rule, rating validation, text segments, the media
path guard, thumbnails and their cache bound, the SVG pictures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from api.pages.media import MediaRefused, media_file
from api.pages.svg import Bar, Group, Node, agreement_chart_svg, neighbourhood_svg
from api.pages.text import composed_text, segments
from api.ratings import parse_rating
from api.validation import RequestValidationError
from encoders.thumbnails import thumbnail, trim_cache
from fusion.agreement import agreement_report, binary_kappa, percent_agreement, weighted_kappa
from fusion.consensus import consensus, consensus_diseases, consensus_gqs, export_manifest
from fusion.manifest import parse_manifest_objects, read_manifest
from kg_builder.store.ratings import RatingRecord, VideoRatings
from ovp.errors import ManifestError, VideoDecodeError
from ovp.settings import Settings
from videos import make_video


# --- agreement ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["quadratic", "linear", "none"])
def test_weighted_kappa_matches_sklearn(weights: str) -> None:
    a = [1, 2, 3, 4, 5, 3, 2, 4, 4, 5, 1, 3]
    b = [1, 3, 3, 4, 4, 2, 2, 5, 4, 5, 2, 3]
    expected = cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights=None if weights == "none" else weights)
    assert weighted_kappa(a, b, weights=weights) == pytest.approx(expected)


def test_kappa_edges() -> None:
    assert weighted_kappa([], []) is None
    assert weighted_kappa([3, 3], [3, 3]) is None  # no variation: undefined, not 1 or 0
    assert binary_kappa([True, False, True, False], [True, False, True, False]) == pytest.approx(1.0)
    assert binary_kappa([True, False], [False, True]) == pytest.approx(-1.0)
    assert percent_agreement([1, 2, 3], [1, 2, 4]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="paired"):
        weighted_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="levels"):
        weighted_kappa([0, 2], [1, 2])


def rating(rater: str, video: str, gqs: int, *, discern=None, jama=None, diseases=None) -> RatingRecord:
    return RatingRecord(id=f"{rater}-{video}", rater=rater, video_id=video, gqs=gqs, created_at="2026-01-01T00:00:00",
                        discern=discern, jama=jama, diseases=diseases)


def test_agreement_report_counts_pairs_and_scales() -> None:
    yes5, no5 = (True,) * 5, (False, True, False, True, False)
    rated = [
        VideoRatings("v1", (rating("a", "v1", 4, discern=yes5, diseases=("OVP:glaucoma",)),
                            rating("b", "v1", 4, discern=yes5, diseases=("OVP:glaucoma",))),
                     model_quality=4, model_diseases=("OVP:glaucoma",)),
        VideoRatings("v2", (rating("a", "v2", 2, discern=no5, diseases=("OVP:cataract",)),
                            rating("b", "v2", 3, discern=yes5, diseases=()),
                            rating("c", "v2", 2)), model_quality=5, model_diseases=("OVP:cataract",)),
        VideoRatings("v3", (rating("a", "v3", 1),), model_quality=None),
    ]
    report = agreement_report(rated)
    rows = {r.scale: r for r in report.reviewers}
    assert report.videos == 3 and report.double_rated == 2
    assert rows["gqs"].pairs == 1 + 3  # v1: one pair; v2: three raters, three pairs; v3 none
    assert rows["gqs"].value == pytest.approx(weighted_kappa([4, 2, 2, 3], [4, 3, 2, 2]))
    assert rows["discern"].pairs == 2 and rows["discern"].answers == 10
    assert rows["jama"].pairs == 0 and rows["jama"].value is None
    assert rows["diseases"].pairs == 2  # c gave no disease list
    model = {r.scale: r for r in report.model}
    assert model["gqs"].pairs == 2  # v3 has no profile
    # consensus: v1 → 4, v2 → median(2, 3, 2) = 2; model says 4 and 5
    assert model["gqs"].value == pytest.approx(weighted_kappa([4, 5], [4, 2]))
    assert model["discern"].value is None and model["discern"].pairs == 0


# --- consensus ------------------------------------------------------------------------------------------------------


def test_consensus_rule() -> None:
    assert consensus_gqs([4]) == 4
    assert consensus_gqs([3, 4]) == 3  # between two grades: rounded down
    assert consensus_gqs([2, 5, 4]) == 4
    assert consensus_gqs([1, 2, 4, 5]) == 3
    with pytest.raises(ValueError):
        consensus_gqs([])
    assert consensus_diseases([None, None]) is None
    assert consensus_diseases([("A:1", "A:2"), ("A:1",)]) == ("A:1",)  # two reviewers: both must list it
    assert consensus_diseases([("A:1",), ("A:2",), ("A:1", "A:2"), None]) == ("A:1", "A:2")
    assert consensus_diseases([()]) == ()
    agreed = consensus([rating("a", "v", 5, diseases=("A:1",)), rating("b", "v", 2)])
    assert (agreed.gqs, agreed.diseases, agreed.raters) == (3, ("A:1",), 2)
    with pytest.raises(ValueError, match="several videos"):
        consensus([rating("a", "v", 5), rating("b", "w", 2)])


def test_export_manifest_is_read_by_the_manifest_reader(tmp_path: Path) -> None:
    video = {"id": "v1", "platform": "douyin", "path": str(tmp_path / "v1.mp4"), "title": "青光眼", "caption": "眼压",
             "hashtags": ["青光眼"], "published_at": "2024-03-01T12:00:00+00:00", "duration_s": 3.0,
             "author_followers": 10, "synthetic": True, "transcript": "今天讲青光眼"}
    rated = [
        VideoRatings("v1", (rating("a", "v1", 4, diseases=("OVP:glaucoma",)), rating("b", "v1", 3, diseases=("OVP:glaucoma",))),
                     video=video),
        VideoRatings("v2", (rating("a", "v2", 2),), video={**video, "id": "v2", "published_at": "not a date"}),
        VideoRatings("v3", (rating("a", "v3", 2),), video={**video, "id": "v3"}),
    ]
    out = tmp_path / "rated.jsonl"
    summary = export_manifest(rated, out, min_raters=1)
    assert summary.written == 2 and set(summary.skipped) == {"v2"}
    entries = {e.id: e for e in read_manifest(out)}
    assert entries["v1"].quality == 3 and entries["v1"].diseases == ("OVP:glaucoma",) and entries["v1"].raters == 2
    assert entries["v3"].diseases is None and entries["v3"].raters == 1 and entries["v3"].synthetic
    assert entries["v1"].transcript == "今天讲青光眼"  # the transcript travels with the labels
    # min_raters leaves single-rated videos out, and the previous file is replaced whole
    assert export_manifest(rated, out, min_raters=2).written == 1
    assert [e.id for e in read_manifest(out)] == ["v1"]


def test_manifest_raters_field_is_checked() -> None:
    base = {"id": "x", "path": "/x.mp4", "platform": "other", "title": "", "caption": "", "hashtags": [],
            "published_at": "2024-01-01T00:00:00Z", "duration_s": 1, "author_followers": 0}
    assert parse_manifest_objects([(1, {**base, "raters": 2})])[0].raters == 2
    with pytest.raises(ManifestError, match="raters"):
        parse_manifest_objects([(1, {**base, "raters": 0})])


# --- rating input ---------------------------------------------------------------------------------------------------


def test_parse_rating() -> None:
    full = parse_rating({"gqs": 4, "discern": [True, True, False, True, False],
                         "jama": {"authorship": True, "attribution": False, "disclosure": False, "currency": True},
                         "diseases": ["OVP:glaucoma", "OVP:glaucoma"], "note": " fine "})
    assert full.jama == (True, False, False, True) and full.diseases == ("OVP:glaucoma",) and full.note == "fine"
    assert parse_rating({"gqs": 1}).discern is None
    for bad, message in [({}, "gqs"), ({"gqs": 6}, "gqs"), ({"gqs": True}, "gqs"), ({"gqs": "4"}, "gqs"),
                         ({"gqs": 3, "discern": [True] * 4}, "discern"), ({"gqs": 3, "jama": {"authorship": True}}, "jama"),
                         ({"gqs": 3, "diseases": ["not an id!"]}, "diseases"), ({"gqs": 3, "qualty": 2}, "unknown"),
                         ({"gqs": 3, "note": "x" * 5000}, "note"), ({"gqs": 3, "note": "a\x00b"}, "control")]:
        with pytest.raises(RequestValidationError, match=message):
            parse_rating(bad)


# --- texts ----------------------------------------------------------------------------------------------------------


def test_segments_highlight_only_mentions_that_fit() -> None:
    text = composed_text("青光眼科普", "眼压高 不是近视 #青光眼", ["青光眼", "护眼"])
    assert text == "青光眼科普\n眼压高 不是近视 #青光眼\n#护眼"
    glaucoma = {"entity_id": "OVP:glaucoma", "surface": "青光眼", "start": 0, "end": 3}
    myopia = {"entity_id": "OVP:myopia", "surface": "近视", "start": 12, "end": 14, "negated": True}
    stale = {"entity_id": "X:1", "surface": "白内障", "start": 2, "end": 5}
    parts, unplaced = segments(text, [myopia, stale, glaucoma])
    assert "".join(p.text for p in parts) == text
    assert [p.mention["entity_id"] for p in parts if p.mention] == ["OVP:glaucoma", "OVP:myopia"]
    assert unplaced == [stale]


# --- media guard ----------------------------------------------------------------------------------------------------


def test_media_file_only_under_the_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "media", tmp_path / "private"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    inside = root / "sub" / "a.mp4"
    inside.write_bytes(b"x")
    secret = outside / "secret.mp4"
    secret.write_bytes(b"y")
    (root / "escape.mp4").symlink_to(secret)
    (root / "inner.mp4").symlink_to(inside)
    settings = Settings(media_roots=str(root))
    assert media_file(settings, str(inside)) == inside.resolve()
    assert media_file(settings, str(root / "inner.mp4")) == inside.resolve()  # a link that stays inside is fine
    for path, reason in [(str(secret), "outside"), (str(root / "escape.mp4"), "outside"),
                         (str(root / "sub" / ".." / "sub" / "a.mp4"), r"\.\."), (f"{root}/../private/secret.mp4", r"\.\."),
                         (str(root / "sub"), "not a regular file"), (str(root / "missing.mp4"), "not a regular file"),
                         ("", "empty"), ("sub/a.mp4", "outside")]:
        with pytest.raises(MediaRefused, match=reason):
            media_file(settings, path)
    with pytest.raises(MediaRefused, match="no media roots"):
        media_file(Settings(media_roots=""), str(inside))


# --- thumbnails -----------------------------------------------------------------------------------------------------


def test_thumbnail_is_cached_and_the_cache_bounded(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=2.0, size=(96, 64), scenes=(0.0, 1.0))
    cache = tmp_path / "thumbs"
    first = thumbnail(video, 0.2, cache_dir=cache, max_cache_bytes=10_000_000, width=48)
    assert first[:3] == b"\xff\xd8\xff"  # JPEG
    assert len(list(cache.glob("*.jpg"))) == 1
    assert thumbnail(video, 0.2, cache_dir=cache, max_cache_bytes=10_000_000, width=48) == first
    second = thumbnail(video, 1.5, cache_dir=cache, max_cache_bytes=10_000_000, width=48)
    assert second != first  # another scene, another colour
    thumbnail(video, 9.0, cache_dir=cache, max_cache_bytes=10_000_000, width=48)  # past the end: the last frame
    files = sorted(cache.glob("*.jpg"), key=lambda p: p.stat().st_mtime)
    os.utime(files[0], (1, 1))
    keep = sum(p.stat().st_size for p in files[1:])
    assert trim_cache(cache, keep) == 1 and not files[0].exists()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        thumbnail(bad, 0.0, cache_dir=cache, max_cache_bytes=10_000_000)


# --- pictures -------------------------------------------------------------------------------------------------------


def test_svg_escapes_and_links() -> None:
    picture = neighbourhood_svg(
        Node("OVP:x", "<script>alert(1)</script>"),
        [Group("Parents", "top", (Node("OVP:p", 'a "quoted" & <b>'),), 1),
         Group("Children", "bottom", tuple(Node(f"OVP:c{i}", f"child {i}") for i in range(10)), 12)],
        lambda entity_id: f"/ui/entities/{entity_id}",
    )
    assert "<script>" not in picture and "&lt;script&gt;" in picture
    assert 'href="/ui/entities/OVP:p"' in picture
    assert "+5 more" in picture  # 7 of 12 children drawn
    chart = agreement_chart_svg([Bar("GQS", 0.5, "n=3", 0), Bar("GQS", None, "n=0", 1)], ["a", "b"], "undefined")
    assert "0.50" in chart and "undefined" in chart and "n=3" in chart


def test_texts_follow_the_mention_field_when_there_is_one() -> None:
    from api.pages.videos import _texts

    video = {"title": " 青光眼 ", "caption": "眼压高 #护眼", "hashtags": ["护眼", "近视"], "transcript": "今天讲青光眼和近视"}
    legacy = _texts(video, [{"entity_id": "OVP:glaucoma", "surface": "青光眼", "start": 0, "end": 3}])
    assert list(legacy["texts"]) == ["composed", "transcript"]  # the transcript is shown even without mentions in it
    assert [s.mention["entity_id"] for s in legacy["texts"]["composed"] if s.mention] == ["OVP:glaucoma"]
    fielded = _texts(video, [{"entity_id": "OVP:glaucoma", "surface": "青光眼", "start": 3, "end": 6, "field": "transcript"},
                             {"entity_id": "OVP:myopia", "surface": "近视", "start": 7, "end": 9, "field": "transcript",
                              "negated": True},
                             {"entity_id": "OVP:glaucoma", "surface": "青光眼", "start": 0, "end": 3, "field": "title"},
                             {"entity_id": "OVP:myopia", "surface": "近视", "start": 1, "end": 3, "field": "hashtags"},
                             {"entity_id": "X:1", "surface": "眼压", "start": 5, "end": 7, "field": "caption"}])
    assert list(fielded["texts"]) == ["title", "caption", "hashtags", "transcript"]
    assert [s.text for s in fielded["texts"]["title"] if s.mention] == ["青光眼"]  # offsets into the stripped title
    assert "".join(s.text for s in fielded["texts"]["hashtags"]) == "#近视"  # only the tags the caption does not show
    assert [s.text for s in fielded["texts"]["transcript"] if s.mention] == ["青光眼", "近视"]
    assert [m["entity_id"] for m in fielded["unplaced"]] == ["X:1"]  # offsets that do not spell the surface
    assert _texts({"title": "", "caption": ""}, [])["texts"] == {"composed": []}


# --- open tags and search on the pages -----------------------------------------------------------------------------


def test_snippet_cuts_context_and_long_spans() -> None:
    from api.pages.tags import snippet

    text = "a" * 50 + "青光眼" + "b" * 50
    s = snippet("caption", text, 50, 53, context=10)
    assert (s.before, s.match, s.after, s.clipped_start, s.clipped_end) == ("a" * 10, "青光眼", "b" * 10, True, True)
    whole = snippet("all", "短文本", 0, 3, context=10)
    assert (whole.before, whole.match, whole.after, whole.clipped_start, whole.clipped_end) == ("", "短文本", "", False, False)
    long = snippet("transcript", "x" * 500, 0, 500, max_match=300)
    assert long.match == "x" * 300 and long.after == "" and long.clipped_end
    words = "the optic nerve is damaged slowly by glaucoma and high eye pressure over many years"
    at = words.index("glaucoma")
    cut = snippet("transcript", words, at, at + 8, context=12)
    assert (cut.before, cut.after) == ("slowly by ", " and high")  # the context starts and ends on whole words
    assert snippet("title", "abc", 2, 9) is None and snippet("title", "abc", -1, 2) is None and snippet("title", "abc", 2, 2) is None


def test_tag_evidence_written_by_the_worker_is_placed_in_its_own_field() -> None:
    """The worker's own path: evidence offsets into the whole linked text → located per field (worker.pipeline) →
    stored JSON (worker.writeback) → placed by the page in the field texts it shows."""
    from api.pages.tags import evidence_ids, tag_views
    from api.pages.text import WHOLE, field_texts
    from encoders.disease_tags import WHOLE_TEXT, NamedEvidence, SimilarityEvidence, SourceTag, combine_tags
    from encoders.phenotype_ic import PhenotypeEvidence
    from fusion.features import compose_text
    from worker.pipeline import located_tags
    from worker.writeback import tag_row

    video = {"id": "v1", "platform": "bilibili", "path": "/v1.mp4", "title": " 青光眼科普 ", "caption": "眼压高 视野缩小 #护眼",
             "hashtags": ["护眼", "眼健康"], "published_at": "2024-03-01T12:00:00+00:00", "duration_s": 3.0,
             "author_followers": 10, "transcript": "Glaucoma damages the optic nerve. Dry eyes feel gritty."}
    (entry,) = parse_manifest_objects([(1, video)])
    whole = compose_text(entry)
    texts = field_texts(video)
    assert texts[WHOLE] == whole  # the page's whole text is the text the worker linked and tagged
    at = whole.index("Glaucoma")
    sentence = whole.index("Dry eyes"), whole.index("gritty.") + len("gritty.")
    tags = combine_tags(
        [SourceTag("OVP:glaucoma", "named", 1.0, named=(NamedEvidence("青光眼", 0, 3, 1.0, "dictionary"),
                                                        NamedEvidence("Glaucoma", at, at + 8, 0.95, "dictionary")))],
        [SourceTag("OVP:glaucoma", "phenotypes", 0.4, summed_ic=3.1, matched=2,
                   phenotypes=(PhenotypeEvidence("HP:0007663", 1.0, "HP:0007663", 1.0),
                               PhenotypeEvidence("HP:0001123", 2.1, "HP:0000501", 1.5)))],
        [SourceTag("OVP:dry_eye", "similarity", 0.61, similarity=SimilarityEvidence(0.61, *sentence, "Dry eye. Tears ...")),
         SourceTag("OVP:myopia", "similarity", 0.52, similarity=SimilarityEvidence(0.52, 0, len(whole), "近视", WHOLE_TEXT))])
    rows = []
    for tag in located_tags(entry, tags):
        row = tag_row(tag)
        rows.append({"disease_id": row.disease_id, "name": row.disease_id.split(":")[1], "name_zh": None,
                     "score": row.score, "source": row.source, "sources": list(row.sources), "rank": row.rank,
                     "evidence": row.evidence})
    assert evidence_ids(rows) == ["HP:0007663", "HP:0001123", "HP:0000501"]
    names = {"HP:0001123": {"id": "HP:0001123", "name": "Visual field defect", "name_zh": "视野缺损"}}
    glaucoma, dry, myopia = tag_views(rows, texts, names)

    assert glaucoma.sources == ("named", "phenotypes") and glaucoma.rank == 1
    first, second = glaucoma.named
    assert (first.field, first.snippet.match, first.snippet.after) == ("title", "青光眼", "科普")
    assert (second.field, second.snippet.match, second.snippet.before) == ("transcript", "Glaucoma", "")
    assert [p.entity["id"] for p in glaucoma.phenotypes] == ["HP:0001123", "HP:0007663"]  # the most specific first
    defect = glaucoma.phenotypes[0]
    assert defect.entity["name_zh"] == "视野缺损" and not defect.exact and defect.via["id"] == "HP:0000501"
    assert (glaucoma.summed_ic, glaucoma.matched) == (3.1, 2)

    assert dry.similarity.field == "transcript" and dry.similarity.snippet.match == "Dry eyes feel gritty."
    assert not dry.similarity.whole and dry.similarity.matched_text.startswith("Dry eye.")
    assert myopia.similarity.whole and myopia.similarity.snippet.match == whole[:len(myopia.similarity.snippet.match)]

    # a stored text that changed since it was tagged: the mention is listed, not placed; unreadable evidence is said
    changed = tag_views(rows[:1], {**texts, "title": "新标题"}, names)[0]
    assert changed.named[0].snippet is None and changed.named[1].snippet is not None
    broken = tag_views([{**rows[0], "evidence": "{not json"}], texts, names)[0]
    assert not broken.readable and broken.named == () and broken.similarity is None


def test_search_page_query_problems_and_reasons() -> None:
    from api.pages.search import query_problem, shared_label
    from encoders.video_search import SharedConcept
    from kg_builder.store.search import Concept

    assert query_problem("青光眼 眼压高", "en") is None
    assert query_problem("   ", "en") == "Type a few words to search (Chinese or English)."
    assert query_problem("x" * 501, "zh") == "查询有 501 个字符，最多接受 500 个。请缩短后重新搜索。"
    assert "control characters" in query_problem("glau\x00coma", "en")
    glaucoma = Concept("OVP:glaucoma", "Glaucoma", "青光眼", ("OVP:glaucoma", "ICD10:H40"))
    assert shared_label(SharedConcept(glaucoma, ("mention", "tag")), "en") == "mentions and tagged Glaucoma"
    assert shared_label(SharedConcept(glaucoma, ("tag",)), "zh") == "标注为 青光眼"
    assert shared_label(SharedConcept(glaucoma, ("mention", "tag")), "zh") == "提到且标注为 青光眼"
