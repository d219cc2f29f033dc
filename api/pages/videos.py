"""The video list (search, filters, sort, pages) and one video's page: player, texts with the linked mentions, the open
tags with their evidence, keyframes with their attention, the profile with its evidence, the history, the ratings and
the rating form."""
from __future__ import annotations

import json
import logging
import math
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from api.context import get_settings
from api.db import get_graph
from api.extensions import expensive_page
from api.pages.blueprint import bp
from api.pages.media import MediaRefused, media_file
from api.pages.tags import evidence_ids, tag_views
from api.pages.text import COMPOSED, field_texts, mention_field, segments
from api.ratings import parse_rating, store_rating
from api.validation import RequestValidationError, arg_enum, arg_int, arg_str, check_id
from kg_builder.store.ratings import DISCERN_ITEMS, JAMA_ITEMS, video_ratings
from kg_builder.store.reviews import (RATED_FILTERS, VIDEO_SORTS, VideoFilter, entity_names, list_videos,
                                      profile_label_diseases, video_page)
from kg_builder.store.tags import video_tags

log = logging.getLogger(__name__)

PER_PAGE = 50
PLATFORMS = ("douyin", "bilibili", "kuaishou", "youtube", "tiktok", "other")


@bp.get("/videos")
@expensive_page
def videos() -> str:
    """The list: ``q``, ``platform``, ``disease``, ``quality``, ``rated``, ``sort``, ``page``."""
    disease = arg_str(request, "disease", max_len=128, default="")
    if disease:
        check_id("disease", disease)
    quality = arg_int(request, "quality", minimum=0, maximum=5, default=0)
    spec = VideoFilter(
        q=arg_str(request, "q", max_len=200, default="").strip(),
        platform=arg_enum(request, "platform", ("",) + PLATFORMS, default=""),
        disease=disease,
        quality=quality or None,
        rated=arg_enum(request, "rated", RATED_FILTERS, default="any"),
        sort=arg_enum(request, "sort", tuple(VIDEO_SORTS), default="published"),
        page=arg_int(request, "page", minimum=1, maximum=100_000, default=1),
        per_page=PER_PAGE,
    )
    graph = get_graph()
    total, rows = list_videos(graph, spec)
    pages = max(1, math.ceil(total / PER_PAGE))
    return render_template("videos.html", spec=spec, total=total, rows=rows, pages=pages, platforms=PLATFORMS,
                           sorts=tuple(VIDEO_SORTS), diseases=profile_label_diseases(graph),
                           any_synthetic=any(r.get("synthetic") for r in rows))


def _explanation(latest: dict[str, Any] | None) -> dict[str, Any]:
    raw = (latest or {}).get("explanation")
    if not isinstance(raw, str):
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("profile %s has an explanation that is not JSON", (latest or {}).get("id"))
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _keyframes(latest: dict[str, Any] | None, explanation: dict[str, Any]) -> list[dict[str, float]]:
    """Keyframe (time, weight) pairs, in time order: the explanation's, else the profile's parallel lists."""
    frames = [f for f in explanation.get("keyframes", []) if isinstance(f, dict) and "t" in f]
    if not frames and latest:
        frames = [{"t": t, "weight": w} for t, w in zip(latest.get("top_keyframe_times") or [],
                                                        latest.get("top_keyframe_weights") or [])]
    return sorted(({"t": float(f["t"]), "weight": float(f.get("weight") or 0.0)} for f in frames), key=lambda f: f["t"])


def _evidence(latest: dict[str, Any], explanation: dict[str, Any], names: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each predicted disease with its evidence (explanation entry matched by id; names for its phenotypes)."""
    by_id = {d.get("id"): d for d in explanation.get("diseases", []) if isinstance(d, dict)}
    out = []
    for prediction in latest.get("predictions") or []:
        ev = by_id.get(prediction["id"], {})
        out.append({**prediction, "named": bool(ev.get("named")), "via": [names.get(p, {"id": p}) for p in ev.get("via") or []],
                    "prior_logit": ev.get("prior_logit"), "head_logit": ev.get("head_logit"),
                    "frames_logit": ev.get("frames_logit"), "keyframe": ev.get("keyframe"),
                    "by_rule": bool(ev.get("by_rule")), "has_evidence": bool(ev)})
    return out


def _texts(video: dict[str, Any], mentions: list[dict[str, Any]]) -> dict[str, Any]:
    """The texts to show, each cut into segments by the mentions that point into it.

    A mention's ``field`` names the text its offsets index, stripped as the worker links it (title, caption, the
    ``#a #b`` line of the hashtags the caption does not show, transcript); one without a field (written before fields
    existed) indexes the three first joined by newlines.
    """
    sources = field_texts(video)
    by_field: dict[str, list[dict[str, Any]]] = {}
    for m in mentions:
        by_field.setdefault(mention_field(m), []).append(m)
    # Without field-aware mentions the linked (composed) text is what the offsets point into; show that.
    if COMPOSED in by_field or not by_field:
        order = [COMPOSED]
    else:
        order = [f for f in ("title", "caption", "hashtags") if sources[f]]
    if sources["transcript"]:
        order.append("transcript")
    shown: dict[str, Any] = {}
    unplaced: list[dict[str, Any]] = []
    for name in order:
        parts, missed = segments(sources[name], by_field.get(name, []))
        shown[name] = parts
        unplaced.extend(missed)
    for name, items in by_field.items():
        if name not in shown:
            unplaced.extend(items)
    return {"texts": shown, "unplaced": unplaced}


def video_context(video_id: str) -> dict[str, Any]:
    """Everything the video page renders; 404 when the video is unknown."""
    check_id("video id", video_id)
    graph = get_graph()
    page = video_page(graph, video_id)
    if page is None:
        abort(404, description=f"no video {video_id}")
    video, latest = page["video"], page["latest"]
    explanation = _explanation(latest)
    phenotype_ids = [p for d in explanation.get("diseases", []) if isinstance(d, dict) for p in d.get("via") or []]
    tags = video_tags(graph, video_id) if latest else []
    names = entity_names(graph, phenotype_ids + evidence_ids(tags))
    try:
        media_file(get_settings(), str(video.get("path") or ""))
        playable = True
    except MediaRefused:
        playable = False
    # Ratings are the reviewers' work: shown to signed-in reviewers only.
    ratings = video_ratings(graph, video_id) if current_user.is_authenticated else []
    counted: set[str] = set()
    rating_rows = []
    for rating in ratings:  # newest first: the first of each reviewer counts
        rating_rows.append({"rating": rating, "counts": rating.rater not in counted})
        counted.add(rating.rater)
    mine = next((r for r in ratings if current_user.is_authenticated and r.rater == current_user.name), None)
    quality_probs = list((latest or {}).get("quality_probs") or [])
    return {
        "video": video, "latest": latest, "history": page["history"], "mentions": page["mentions"],
        **_texts(video, page["mentions"]),
        "keyframes": _keyframes(latest, explanation),
        "tags": tag_views(tags, field_texts(video), names),
        "evidence": _evidence(latest, explanation, names) if latest else [],
        "quality_probs": quality_probs,
        "playable": playable, "ratings": rating_rows, "mine": mine,
        "label_diseases": profile_label_diseases(graph), "discern_items": DISCERN_ITEMS, "jama_items": JAMA_ITEMS,
    }


@bp.get("/videos/<video_id>")
def video(video_id: str) -> str:
    return render_template("video.html", **video_context(video_id))


def rating_from_form(form: Any) -> dict[str, Any]:
    """The rating form as the JSON twin's body (so both go through one validator).

    DISCERN and JAMA count only when every item is answered; the diseases only when "I judged the diseases" is ticked.
    """
    body: dict[str, Any] = {}
    gqs = form.get("gqs", "")
    body["gqs"] = int(gqs) if gqs.isdigit() else gqs
    discern = [form.get(f"discern_{i}") for i in range(1, DISCERN_ITEMS + 1)]
    if all(v in ("yes", "no") for v in discern):
        body["discern"] = [v == "yes" for v in discern]
    jama = {item: form.get(f"jama_{item}") for item in JAMA_ITEMS}
    if all(v in ("yes", "no") for v in jama.values()):
        body["jama"] = {item: v == "yes" for item, v in jama.items()}
    if form.get("judge_diseases"):
        body["diseases"] = form.getlist("diseases")
    note = form.get("note", "")
    if note.strip():
        body["note"] = note
    return body


@bp.post("/videos/<video_id>/rate")
def rate(video_id: str) -> Any:
    """Store the signed-in reviewer's rating (CSRF-checked); back to the video, or to the next in the queue."""
    if not current_user.is_authenticated:
        return redirect(url_for("pages.sign_in", next=url_for("pages.video", video_id=video_id)))
    check_id("video id", video_id)
    try:
        rating = parse_rating(rating_from_form(request.form))
        store_rating(get_graph(), current_user.name, video_id, rating)
    except RequestValidationError as exc:
        context = video_context(video_id)
        return render_template("video.html", **context, form_error=str(exc), form=request.form), 400
    log.info("rating of %s by %s (page)", video_id, current_user.name)
    flash("rating_saved", "ok")
    if request.form.get("then") == "queue":
        return redirect(url_for("pages.queue"))
    return redirect(url_for("pages.video", video_id=video_id) + "#ratings")

