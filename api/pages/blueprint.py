"""The review pages' blueprint: the language of each request, the helpers every template uses, and error pages.

The routes live in one module per page family (:mod:`api.pages.videos`, ``entities``, ``batches``, ``review``,
``search``, ``media``), each decorating :data:`bp`; :mod:`api.pages` imports them so that importing the package
registers every route.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from api.pages.i18n import COOKIE, LANGUAGES, choose_language, entity_label, translate
from ovp.errors import OVPError

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__, url_prefix="/ui", template_folder="templates", static_folder="static",
               static_url_path="/static")


#: What a reviewer who still has the one-time password may open.
_BEFORE_OWN_PASSWORD = ("pages.password", "pages.sign_out", "pages.static")


@bp.before_request
def _language() -> Response | None:
    g.lang = choose_language(request)
    # The one-time password printed by `ovp raters add` is replaced before anything else.
    if (current_user.is_authenticated and getattr(current_user, "must_change_password", False)
            and request.endpoint not in _BEFORE_OWN_PASSWORD):
        return redirect(url_for("pages.password", next=request.full_path if request.method == "GET" else None))
    return None


@bp.after_request
def _remember_language(response: Response) -> Response:
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie(COOKIE, request.args["lang"], max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


def with_args(**changes: Any) -> str:
    """The current URL with some query arguments changed (None removes one)."""
    args = {k: v for k, v in request.args.items()}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return request.path + ("?" + urlencode(args) if args else "")


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    lang = g.get("lang", "en")
    return {
        "lang": lang,
        "t": lambda key: translate(key, lang),
        "ename": lambda entity: entity_label(entity, lang),
        "with_args": with_args,
        "reviewer": current_user if current_user and current_user.is_authenticated else None,
    }


@bp.get("/")
def home() -> Response:
    return redirect(url_for("pages.videos"))


@bp.errorhandler(HTTPException)
def _error_page(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    if isinstance(exc, CSRFError):
        message = translate("csrf_refused", g.get("lang", "en"))
    elif status == 429:
        message = translate("too_many", g.get("lang", "en"))
    else:
        message = exc.description or exc.name
    return render_template("error.html", status=status, message=message), status


@bp.errorhandler(OVPError)
def _domain_error_page(exc: OVPError) -> tuple[str, int]:
    # Neo4j or the broker down, a bad request parameter: the same message the JSON API gives, as a page.
    status = exc.http_status if exc.http_status < 500 or exc.http_status == 503 else 500
    message = str(exc) if status != 500 else translate("error", g.get("lang", "en"))
    if status == 500:
        log.error("error on a page", exc_info=exc)
    return render_template("error.html", status=status, message=message), status


# The site's root opens the pages (the JSON API has no document at /).
bp.record_once(lambda state: state.app.add_url_rule("/", "root", lambda: redirect(url_for("pages.videos"))))
