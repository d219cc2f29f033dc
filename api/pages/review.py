"""Reviewing: signing in and out, the queue of videos to rate (least certain first), and the agreement page."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from api.accounts import MIN_PASSWORD_CHARS, RaterError, change_password, check_password
from api.context import get_settings
from api.db import get_graph
from api.extensions import Reviewer, limiter
from api.pages.blueprint import bp
from api.pages.i18n import translate
from api.pages.svg import Bar, agreement_chart_svg
from fusion.agreement import AgreementReport, agreement_report
from kg_builder.store.ratings import latest_ratings
from kg_builder.store.reviews import review_queue

log = logging.getLogger(__name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, not ``//host``): an open redirect otherwise."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("pages.queue")


def _signin_limit() -> str:
    return get_settings().signin_rate_limit


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_signin_limit, methods=["POST"])
def sign_in() -> Any:
    if request.method == "GET":
        return render_template("sign_in.html", next=request.args.get("next", ""), failed=False)
    name = request.form.get("name", "").strip()[:64]
    rater = check_password(get_graph(), name, request.form.get("password", "")[:1024])
    if rater is None:
        log.info("failed sign-in for %r from %s", name, request.remote_addr)
        return render_template("sign_in.html", next=request.form.get("next", ""), failed=True, name=name), 401
    login_user(Reviewer(name=rater.name, token_id=rater.token_id, must_change_password=rater.password_temporary))
    log.info("reviewer %s signed in", rater.name)
    if rater.password_temporary:
        return redirect(url_for("pages.password", next=_safe_next(request.form.get("next"))))
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(_signin_limit, methods=["POST"])
def password() -> Any:
    """Replace the one-time password (required before anything else after the first sign-in) or one's own."""
    if request.method == "GET":
        return render_template("password.html", next=request.args.get("next", ""), error=None,
                               min_chars=MIN_PASSWORD_CHARS)
    new = request.form.get("new", "")
    try:
        if new != request.form.get("repeat", ""):
            raise RaterError("the two new passwords differ")
        change_password(get_graph(), current_user.name, request.form.get("current", ""), new)
    except RaterError as exc:
        return render_template("password.html", next=request.form.get("next", ""), error=str(exc),
                               min_chars=MIN_PASSWORD_CHARS), 400
    flash("password_saved", "ok")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/sign-out")
def sign_out() -> Any:
    logout_user()
    return redirect(url_for("pages.videos"))


@bp.get("/queue")
@login_required
def queue() -> str:
    per_video = get_settings().reviewers_per_video
    items = review_queue(get_graph(), current_user.name, per_video=per_video, limit=20)
    return render_template("queue.html", items=items, per_video=per_video)


def chart(report: AgreementReport, lang: str) -> Any:
    bars = []
    for series, rows in enumerate((report.reviewers, report.model)):
        for row in rows:
            if row.pairs or series == 0:
                bars.append(Bar(translate(f"scale_{row.scale}", lang), row.value, f"n={row.pairs}", series))
    return agreement_chart_svg(bars, [translate("between_reviewers", lang), translate("model_vs_consensus", lang)],
                               translate("undefined", lang))


@bp.get("/agreement")
@login_required
def agreement() -> str:
    rated = latest_ratings(get_graph())
    report = agreement_report(rated)
    any_synthetic = any(v.video.get("synthetic") for v in rated)
    return render_template("agreement.html", report=report, picture=chart(report, g.lang) if rated else None,
                           any_synthetic=any_synthetic)
