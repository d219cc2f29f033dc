"""Search by meaning as pages: ``/ui/search`` (the header's box: videos ranked by the meaning of a Chinese or English
query, each with why it was found) and ``/ui/videos/<id>/similar`` (videos like one video, by meaning).

Both go through the JSON API's searcher (:func:`api.blueprints.search.get_searcher`: one sentence encoder and one
linker per process) and its limits, and the rate limit of the expensive pages (``OVP_API_RATE_LIMIT`` per address,
signed-in reviewers not counted); a blank, oversized or control-character query gets the search page again with
what is wrong (400), never a 500.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import abort, g, render_template, request

from api.blueprints.search import LIMITS, get_searcher
from api.db import get_graph
from api.extensions import expensive_page
from api.pages.blueprint import bp
from api.pages.i18n import entity_label, translate
from api.validation import RequestValidationError, arg_int, check_id, check_str, strip_control
from encoders.video_search import SharedConcept
from kg_builder.store.reviews import video_page

log = logging.getLogger(__name__)

#: Hits a page shows unless ``k`` asks for another number (1 to ``LIMITS.max_k``).
DEFAULT_K = 20


def query_problem(q: str, lang: str) -> str | None:
    """What is wrong with a search query, in ``lang``; None when it can be searched."""
    if len(q) > LIMITS.max_query_chars:
        return (translate("search_too_long", lang).replace("{n}", str(len(q)))
                .replace("{max}", str(LIMITS.max_query_chars)))
    if not q.strip():
        return translate("search_blank", lang)
    try:
        check_str("q", q, max_len=LIMITS.max_query_chars)
    except RequestValidationError as exc:
        return str(exc)
    return None


def concept_entity(concept: Any) -> Mapping[str, Any]:
    """A query concept as the pages' entity mapping (for its name in the page's language and its link)."""
    return {"id": concept.id, "name": concept.name, "name_zh": concept.name_zh}


def shared_label(shared: SharedConcept, lang: str) -> str:
    """How a hit shares a query concept, in ``lang``: "mentions and tagged Glaucoma", "提到且标注为 青光眼"."""
    joiner = f" {translate('reason_and', lang)} " if lang != "zh" else translate("reason_and", lang)
    how = joiner.join(translate(f"reason_{v}", lang) for v in shared.via)
    return f"{how} {entity_label(concept_entity(shared.concept), lang)}"


@bp.app_context_processor
def _search_limits() -> dict[str, Any]:
    return {"max_query_chars": LIMITS.max_query_chars}


@bp.app_template_filter("shared_label")
def _shared_label_filter(shared: SharedConcept) -> str:
    return shared_label(shared, g.get("lang", "en"))


@bp.get("/search")
@expensive_page
def search() -> Any:
    """``q`` (Chinese or English, at most ``LIMITS.max_query_chars``), ``k`` (1–100, default 20)."""
    k = arg_int(request, "k", minimum=1, maximum=LIMITS.max_k, default=DEFAULT_K)
    q = request.args.get("q")
    if q is None:  # the page itself, before a search
        return render_template("search.html", q="", result=None, problem=None, k=k)
    problem = query_problem(q, g.lang)
    if problem:
        shown = strip_control(q)[: LIMITS.max_query_chars]
        return render_template("search.html", q=shown, result=None, problem=problem, k=k), 400
    result = get_searcher().search(q, k)
    log.info("page search: %d characters, %d hits", len(q), len(result.hits))
    return render_template("search.html", q=q, result=result, problem=None, k=k)


@bp.get("/videos/<video_id>/similar")
@expensive_page
def similar(video_id: str) -> Any:
    """Videos closest in meaning to one video (its text vector, the concepts it mentions or is tagged with)."""
    check_id("video id", video_id)
    k = arg_int(request, "k", minimum=1, maximum=LIMITS.max_k, default=DEFAULT_K)
    page = video_page(get_graph(), video_id)
    if page is None:
        abort(404, description=f"no video {video_id}")
    result = get_searcher().similar(video_id, k)
    return render_template("search.html", q="", result=result, problem=None, k=k, video=page["video"])
