"""The synthetic demo set: decodable, labelled, reproducible, marked synthetic, and built on the documented latent model."""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from fusion.demo_data import (
    DemoLexicon,
    generate_demo_set,
    load_demo_lexicon,
    plan_demo_set,
    render_video,
    visual_cue,
)
from fusion.manifest import read_manifest
from cli.fusion_cmd import demo_data
from ovp.errors import OVPError, SourceValidationError

LEXICON_LINES = [
    "// a small lexicon for tests; the real one is kg_builder/data/lexicon.jsonl",
    {"id": "OVP:glaucoma", "kind": "disease", "name": "Glaucoma", "name_zh": "青光眼", "synonyms_en": ["silent thief of sight"],
     "synonyms_zh": ["青光眼病"], "profile_label": True},
    {"id": "OVP:cataract", "kind": "disease", "name": "Cataract", "name_zh": "白内障", "synonyms_en": ["cloudy lens"],
     "synonyms_zh": ["白障"], "profile_label": True},
    {"id": "OVP:diabetic_retinopathy", "kind": "disease", "name": "Diabetic retinopathy", "name_zh": "糖尿病视网膜病变",
     "synonyms_en": ["diabetic eye disease"], "synonyms_zh": ["糖网"], "profile_label": True},
    {"id": "OVP:conjunctivitis", "kind": "disease", "name": "Conjunctivitis", "name_zh": "结膜炎", "synonyms_en": ["pink eye"],
     "synonyms_zh": ["红眼病"], "profile_label": True},
    {"id": "OVP:strabismus", "kind": "disease", "name": "Strabismus", "name_zh": "斜视", "synonyms_en": ["crossed eyes"],
     "synonyms_zh": ["斗鸡眼"], "profile_label": True},
    {"id": "OVP:presbyopia", "kind": "disease", "name": "Presbyopia", "name_zh": "老花眼", "synonyms_en": ["aging eyes"],
     "synonyms_zh": ["老花"], "profile_label": True},
    {"id": "OVP:floaters", "kind": "disease", "name": "Vitreous floaters", "name_zh": "飞蚊症", "profile_label": False},
    {"id": "OVP:oct", "kind": "exam", "name": "OCT scan", "name_zh": "OCT检查"},
    {"id": "OVP:eye_drops", "kind": "treatment", "name": "eye drops", "name_zh": "眼药水"},
]
PROFILE_IDS = {line["id"] for line in LEXICON_LINES if isinstance(line, dict) and line.get("profile_label")}


def write_lexicon(path: Path) -> Path:
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l, ensure_ascii=False) for l in LEXICON_LINES) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory: pytest.TempPathFactory) -> DemoLexicon:
    return load_demo_lexicon(write_lexicon(tmp_path_factory.mktemp("lex") / "lexicon.jsonl"))


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory, lexicon: DemoLexicon) -> Path:
    out = tmp_path_factory.mktemp("demo") / "set"
    generate_demo_set(out, videos=12, seed=5, corrupt=2, lexicon=lexicon)
    return out


def decode(path: Path) -> tuple[int, int, float]:
    """(frames, key frames, seconds) of a video; raises av's error for an undecodable file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = keys = 0
        for frame in container.decode(stream):
            frames += 1
            keys += frame.key_frame
        return frames, keys, float(stream.duration * stream.time_base)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        _, inverse = np.unique(x, return_inverse=True)  # ties share their mean rank
        return (np.bincount(inverse, r) / np.bincount(inverse))[inverse]

    return float(np.corrcoef(ranks(np.asarray(a, float)), ranks(np.asarray(b, float)))[0, 1])


def test_every_file_is_marked_synthetic(demo_set: Path) -> None:
    assert "SYNTHETIC" in (demo_set / "README.txt").read_text(encoding="utf-8")
    assert all(p.name.startswith("synthetic_") for p in (demo_set / "videos").iterdir())
    lines = (demo_set / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 14 and all(json.loads(line)["synthetic"] is True for line in lines)


def test_videos_decode_with_key_frames_every_second(demo_set: Path) -> None:
    entries = [e for e in read_manifest(demo_set / "manifest.jsonl") if "corrupt" not in e.id]
    assert len(entries) == 12
    for entry in entries:
        frames, keys, seconds = decode(entry.path)
        assert seconds == pytest.approx(entry.duration_s, abs=0.1)
        assert 4 <= entry.duration_s <= 8 and frames >= 10 * entry.duration_s
        assert keys >= 2 and keys == round(entry.duration_s)  # one GOP per second, so keyframes exist to pick


def test_labels_are_in_range_and_diseases_are_profile_labels_of_the_lexicon(demo_set: Path) -> None:
    for entry in read_manifest(demo_set / "manifest.jsonl"):
        assert entry.diseases and 1 <= len(entry.diseases) <= 2 and set(entry.diseases) <= PROFILE_IDS
        assert entry.quality in (1, 2, 3, 4, 5)
        assert 0 <= entry.likes <= entry.views and 0 <= entry.comments <= entry.views and 0 <= entry.shares <= entry.views
        assert entry.popularity is not None and entry.popularity >= 0
        assert entry.platform in ("douyin", "bilibili", "kuaishou", "youtube", "tiktok", "other")
        assert entry.author_followers >= 0 and entry.caption and entry.synthetic


def test_corrupt_entries_are_listed_and_do_not_decode(demo_set: Path) -> None:
    corrupt = [e for e in read_manifest(demo_set / "manifest.jsonl") if "corrupt" in e.id]
    assert [e.id for e in corrupt] == ["synthetic_corrupt_0000", "synthetic_corrupt_0001"]
    for entry in corrupt:
        assert entry.path.is_file()
        with pytest.raises(av.error.FFmpegError):
            decode(entry.path)


def test_the_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path, demo_set: Path, lexicon: DemoLexicon) -> None:
    again = generate_demo_set(tmp_path / "again", videos=12, seed=5, corrupt=2, lexicon=lexicon).out
    assert (again / "manifest.jsonl").read_bytes() == (demo_set / "manifest.jsonl").read_bytes()
    for video in (demo_set / "videos").iterdir():
        assert (again / "videos" / video.name).read_bytes() == video.read_bytes(), video.name
    other = generate_demo_set(tmp_path / "other", videos=12, seed=6, lexicon=lexicon).manifest
    assert other.read_bytes() != (demo_set / "manifest.jsonl").read_bytes()


def test_a_larger_set_extends_a_smaller_one(lexicon: DemoLexicon) -> None:
    small, large = plan_demo_set(lexicon, 5, seed=3), plan_demo_set(lexicon, 10, seed=3)
    assert small == large[:5]


def test_regenerating_replaces_a_previous_synthetic_set_but_never_other_data(tmp_path: Path, lexicon: DemoLexicon) -> None:
    out = tmp_path / "set"
    generate_demo_set(out, videos=3, seed=1, lexicon=lexicon)
    generate_demo_set(out, videos=1, seed=1, lexicon=lexicon)
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["synthetic_0000.mp4"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("precious")
    with pytest.raises(OVPError, match="holds no synthetic demo set"):
        generate_demo_set(tmp_path / "mine", videos=1, lexicon=lexicon)


def test_popularity_is_only_partly_predictable_from_inputs(lexicon: DemoLexicon) -> None:
    plans = plan_demo_set(lexicon, 1500, seed=11)
    popularity = np.array([p.entry.popularity for p in plans])
    inputs = {
        "author_followers": [p.entry.author_followers for p in plans],
        "duration_s": [p.entry.duration_s for p in plans],
        "published_hour": [p.entry.published_at.hour for p in plans],
        "published_at": [p.entry.published_at.timestamp() for p in plans],
        "caption_chars": [len(p.entry.caption) for p in plans],
        "hashtags": [len(p.entry.hashtags) for p in plans],
        "clinical_fraction": [p.clinical_fraction for p in plans],
    }
    for name, values in inputs.items():
        assert abs(spearman(popularity, np.array(values))) < 0.6, name
    # Followers carry some signal (a learnable part) but the hidden virality carries most of it.
    assert 0.1 < spearman(popularity, np.array(inputs["author_followers"])) < 0.6
    assert spearman(popularity, np.array([p.latents.virality for p in plans])) > 0.6


def test_quality_follows_production_quality_and_shows_in_the_content(lexicon: DemoLexicon) -> None:
    plans = plan_demo_set(lexicon, 1500, seed=12)
    quality = np.array([p.entry.quality for p in plans])
    assert spearman(quality, np.array([p.clinical_fraction for p in plans])) > 0.3
    doctor = np.array([any(w in p.entry.caption for w in ("眼科医生", "ophthalmologist", "Eye doctor", "Doctor's note")) for p in plans])
    clickbait = np.array([any(w in p.entry.caption + p.entry.title for w in ("震惊", "SHOCKING", "miracle cure", "偏方")) for p in plans])
    assert quality[doctor].mean() > quality[~doctor].mean() + 0.5
    assert quality[clickbait].mean() < quality[~clickbait].mean() - 0.5
    assert set(quality.tolist()) == {1, 2, 3, 4, 5}


def test_neither_vision_nor_text_alone_gives_the_labels_away(lexicon: DemoLexicon) -> None:
    plans = plan_demo_set(lexicon, 1000, seed=13)
    by_id = {d.id: d for d in lexicon.diseases}
    named = []
    cue_seen = []
    for plan in plans:
        main = by_id[plan.entry.diseases[0]]
        names = (main.name, main.name_zh, *main.synonyms_en, *main.synonyms_zh)
        text = (plan.entry.title + plan.entry.caption + " ".join(plan.entry.hashtags)).lower()
        named.append(any(n.lower() in text for n in names))
        if main.cue is not None:
            cue_seen.append(any(s.cue == main.cue for s in plan.segments))
    assert 0.55 < np.mean(named) < 0.9  # some captions only describe symptoms
    assert 0.4 < np.mean(cue_seen) < 0.95  # p_cue < 1 and low-quality videos show few clinical frames
    languages = {p.latents.language for p in plans}
    assert languages == {"zh", "en", "mixed"}


def test_visual_cues_follow_the_disease_names() -> None:
    assert visual_cue("OVP:glaucoma", "Glaucoma") == ("large_cup", "fundus")
    assert visual_cue("OVP:x", "Diabetic retinopathy") == ("dr_lesions", "fundus")
    assert visual_cue("OVP:pinkeye", "Acute conjunctivitis") == ("red_sclera", "eye")
    assert visual_cue("OVP:amd", "Age-related macular degeneration") == ("drusen", "fundus")
    assert visual_cue("OVP:y", "Something", ["pink eye"]) == ("red_sclera", "eye")
    cue, modality = visual_cue("OVP:presbyopia", "Presbyopia")
    assert cue is None and modality == visual_cue("OVP:presbyopia", "Presbyopia")[1] in ("fundus", "eye")


def test_render_is_deterministic_for_one_plan(tmp_path: Path, lexicon: DemoLexicon) -> None:
    [plan] = plan_demo_set(lexicon, 1, seed=2, size=224)
    a, b = render_video(plan, tmp_path / "a.mp4"), render_video(plan, tmp_path / "b.mp4")
    assert a.read_bytes() == b.read_bytes()
    with av.open(str(a)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (224, 224)


def test_a_lexicon_without_profile_labels_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "lex.jsonl"
    path.write_text(json.dumps({"id": "OVP:a", "kind": "disease", "name": "A"}) + "\n", encoding="utf-8")
    with pytest.raises(SourceValidationError, match="profile_label"):
        load_demo_lexicon(path)


def test_cli_writes_a_set_and_prints_one_summary_line(tmp_path: Path) -> None:
    lexicon = write_lexicon(tmp_path / "lexicon.jsonl")
    result = CliRunner().invoke(demo_data, [str(tmp_path / "out"), "--videos", "2", "--seed", "1", "--corrupt", "1",
                                            "--lexicon", str(lexicon)])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("SYNTHETIC demo set: 2 videos (+1 corrupt)")
    assert len(read_manifest(tmp_path / "out" / "manifest.jsonl")) == 3


def test_the_project_lexicon_if_present_gives_enough_targets_and_valid_plans() -> None:
    from kg_builder.source_config import LEXICON_FILE

    if not LEXICON_FILE.is_file():
        pytest.skip(f"{LEXICON_FILE} not written yet")
    lexicon = load_demo_lexicon()
    ids = {d.id for d in lexicon.diseases}
    assert len(ids) >= 15
    for plan in plan_demo_set(lexicon, 200, seed=0):
        assert set(plan.entry.diseases) <= ids


def test_symptom_only_captions_describe_the_main_disease_s_own_lexicon_phenotypes(tmp_path: Path) -> None:
    lines = LEXICON_LINES + [
        {"id": "OVP:halos", "kind": "phenotype", "name": "Halos around lights", "name_zh": "光晕",
         "synonyms_en": ["seeing halos"], "synonyms_zh": ["看灯有光圈"]},
        {"id": "OVP:red_eye", "kind": "phenotype", "name": "Red eye", "name_zh": "眼睛红", "synonyms_en": ["bloodshot eyes"],
         "synonyms_zh": ["眼睛充血"]},
    ]
    symptoms = {"OVP:glaucoma": ["OVP:halos"], "OVP:cataract": ["OVP:halos"], "OVP:conjunctivitis": ["OVP:red_eye"]}
    lines = [{**l, "has_phenotype": symptoms[l["id"]]} if isinstance(l, dict) and l["id"] in symptoms else l for l in lines]
    path = tmp_path / "lexicon.jsonl"
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l, ensure_ascii=False) for l in lines) + "\n",
                    encoding="utf-8")
    lexicon = load_demo_lexicon(path)
    words = {"OVP:halos": ("halos around lights", "seeing halos", "光晕", "看灯有光圈"),
             "OVP:red_eye": ("red eye", "bloodshot eyes", "眼睛红", "眼睛充血")}
    unnamed = [p for p in plan_demo_set(lexicon, 300, seed=3) if not p.latents.named_main]
    assert len(unnamed) > 40
    for plan in unnamed:
        caption = plan.entry.caption.lower()
        main = plan.entry.diseases[0]
        said = {s for s, ws in words.items() if any(w in caption for w in ws)}
        assert said == set(symptoms.get(main, [])), (main, caption)  # its own symptoms; none for a disease without
    # Generator 2 changed only what symptom-only captions say: the rest of each video stays generator 1's.
    plain = plan_demo_set(load_demo_lexicon(write_lexicon(tmp_path / "plain.jsonl")), 300, seed=3)
    for a, b in zip(plan_demo_set(lexicon, 300, seed=3), plain):
        assert (a.segments, a.entry.diseases, a.entry.quality, a.entry.views, a.entry.title) == \
            (b.segments, b.entry.diseases, b.entry.quality, b.entry.views, b.entry.title)
        assert a.entry.caption == b.entry.caption or not a.latents.named_main
