"""Small typed request validation: query-string and JSON-body values with limits on strings, integers and enums.

Every helper returns a typed value or raises :class:`RequestValidationError` (400, ``invalid_request``) with a message
that names the parameter and what it accepts. Nothing that fails here reaches Cypher.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from flask import Request

from fusion.manifest import MAX_JSON_DEPTH, json_depth
from ovp.errors import OVPError

#: Path ids (entity CURIEs, video and batch ids): what the manifest and the knowledge graph use.
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: Control characters other than tab/newline have no business in a search string or a caption.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class RequestValidationError(OVPError):
    """A request parameter or body field is missing, of the wrong type, or out of bounds."""

    code = "invalid_request"
    http_status = 400


class RequestTooLarge(OVPError):
    """A request asks for more work than one request may (e.g. too many characters to link)."""

    code = "payload_too_large"
    http_status = 413


def check_str(name: str, value: object, *, max_len: int, min_len: int = 0) -> str:
    """``value`` as a string of ``min_len``..``max_len`` characters without control characters."""
    if not isinstance(value, str):
        raise RequestValidationError(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise RequestValidationError(f"{name} must have at most {max_len} characters, got {len(value)}")
    if len(value) < min_len:
        raise RequestValidationError(f"{name} must have at least {min_len} character{'s' if min_len > 1 else ''}")
    if _CONTROL.search(value):
        raise RequestValidationError(f"{name} must not contain control characters")
    return value


def strip_control(value: str) -> str:
    """``value`` without the control characters :func:`check_str` refuses (to show a refused value back safely)."""
    return _CONTROL.sub("", value)


def check_id(name: str, value: object) -> str:
    """An id: 1-128 characters of ``[A-Za-z0-9_.:-]``."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise RequestValidationError(f"{name} must be an id of 1-128 characters from [A-Za-z0-9_.:-]")
    return value


def check_int(name: str, value: object, *, minimum: int, maximum: int) -> int:
    """An integer in ``[minimum, maximum]``; a decimal string (from a query string) is accepted."""
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d{1,12}", text):
            raise RequestValidationError(f"{name} must be an integer between {minimum} and {maximum}")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestValidationError(f"{name} must be an integer between {minimum} and {maximum}")
    if not minimum <= value <= maximum:
        raise RequestValidationError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def check_enum(name: str, value: object, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise RequestValidationError(f"{name} must be one of {', '.join(choices)}")
    return value


def arg_str(request: Request, name: str, *, max_len: int, min_len: int = 0, default: str | None = None) -> str:
    """Query-string parameter ``name`` as a bounded string; required when ``default`` is None."""
    value = request.args.get(name)
    if value is None:
        if default is None:
            raise RequestValidationError(f"query parameter {name} is required")
        return default
    return check_str(name, value, max_len=max_len, min_len=min_len)


def arg_int(request: Request, name: str, *, minimum: int, maximum: int, default: int) -> int:
    """Query-string parameter ``name`` as a bounded integer (``default`` when absent or empty)."""
    value = request.args.get(name)
    if value is None or value == "":
        return default
    return check_int(name, value, minimum=minimum, maximum=maximum)


def arg_enum(request: Request, name: str, choices: Sequence[str], *, default: str) -> str:
    """Query-string parameter ``name`` as one of ``choices`` (``default`` when absent or empty)."""
    value = request.args.get(name)
    if value is None or value == "":
        return default
    return check_enum(name, value, choices)


def json_body(request: Request) -> Any:
    """The request's JSON body (any JSON value).

    Raises:
        RequestValidationError: the body is missing, not declared as JSON, not valid JSON (UTF-8), or nested
            deeper than ``MAX_JSON_DEPTH``.
        RequestEntityTooLarge: the body exceeds MAX_CONTENT_LENGTH (413, raised by Werkzeug while reading).
    """
    if not request.is_json:
        raise RequestValidationError("the body must be JSON, sent with Content-Type: application/json")
    too_deep = RequestValidationError(f"the body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # the parser gave up on [[[[…]]]]: not a server error
        raise too_deep from None
    if data is None:
        # get_json(silent=True) reads the body first, so an oversized one has already raised 413 here.
        raise RequestValidationError("the body is not valid JSON")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise too_deep
    return data


def json_object(request: Request) -> Mapping[str, Any]:
    """The request's JSON body, which must be an object."""
    data = json_body(request)
    if not isinstance(data, dict):
        raise RequestValidationError(f"the body must be a JSON object, got {type(data).__name__}")
    return data
