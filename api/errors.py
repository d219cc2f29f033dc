"""JSON errors for every failure the API can return: ``{"code": ..., "message": ...}`` (plus ``problems`` for a bad
manifest). HTTP errors (400, 401, 404, 405, 413, ...) keep their status; domain errors (:class:`ovp.errors.OVPError`)
use their ``http_status`` and ``code``; anything else is a 500 whose body says nothing about the internals (the
traceback goes to the log only).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from ovp.errors import ManifestError, OVPError

log = logging.getLogger(__name__)

#: Machine-readable codes of the HTTP errors the API raises, by status.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "too_many_requests",
    431: "request_header_fields_too_large",
    503: "service_unavailable",
}
INTERNAL_MESSAGE = "internal server error; the cause is in the server log"


def error_response(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    """The JSON body and status of an error."""
    return jsonify({"code": code, "message": message, **extra}), status


def handle_http_error(exc: HTTPException) -> tuple[Response, int]:
    """Werkzeug's HTTP errors (abort(404), a wrong method, a body over MAX_CONTENT_LENGTH) as JSON."""
    status = exc.code or 500
    if status >= 500:
        return handle_unexpected(exc)
    message = exc.description or exc.name
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"the request body is larger than the {limit:,} bytes accepted (OVP_API_MAX_BODY_BYTES)" if limit else message
    response, status = error_response(status, HTTP_CODES.get(status, "http_error"), message)
    # 405 must say which methods are allowed; 401 how to authenticate.
    headers = dict(exc.get_headers())
    for header in ("Allow", "WWW-Authenticate"):
        if header in headers:
            response.headers[header] = headers[header]
    return response, status


def handle_domain_error(exc: OVPError) -> tuple[Response, int]:
    """A domain error: its own status and code; its message (which says what to do) for 4xx and 503."""
    status = exc.http_status
    if status >= 500 and status != 503:
        return handle_unexpected(exc)
    if status == 503:
        log.warning("%s: %s", exc.code, exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, ManifestError):
        extra["problems"] = exc.problems
    return error_response(status, exc.code, str(exc), **extra)


def handle_unexpected(exc: BaseException) -> tuple[Response, int]:
    """Anything not anticipated: logged with its traceback, answered with a message that leaks nothing."""
    log.error("unhandled error answering a request", exc_info=exc)
    return error_response(500, "internal_error", INTERNAL_MESSAGE)


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(OVPError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected)
