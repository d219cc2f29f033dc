"""Who a request is: the holder of the API token (``Authorization: Bearer <OVP_API_TOKEN>``), or anyone.

The token is compared in constant time. An empty ``OVP_API_TOKEN`` (set, but empty) turns submission off; the
development token (the default) is accepted only where ``OVP_DEV=1`` says this is a development machine.
"""
from __future__ import annotations

import hmac

from flask import request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from api.context import get_settings
from ovp.settings import DEV_API_TOKEN


def _presented() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def token_refusal() -> str | None:
    """Why no request can hold the token on this server (submission is off), or None when one can."""
    settings = get_settings()
    if not settings.api_token:
        return "submission is turned off on this server (OVP_API_TOKEN is empty)"
    if settings.api_token == DEV_API_TOKEN and not settings.dev:
        return ("submission is turned off: this server runs with the public development token, which is refused "
                "outside development (set OVP_API_TOKEN, or OVP_DEV=1 on a development machine)")
    return None


def token_matches(token: str) -> bool:
    """Whether ``token`` is the server's token (constant time; False whenever submission is off). The batches page
    asks it of the token typed into its form."""
    if token_refusal() is not None:
        return False
    return hmac.compare_digest(token.strip().encode(), get_settings().api_token.encode())


def has_valid_token() -> bool:
    """Whether the request carries the server's token (False whenever submission is off)."""
    presented = _presented()
    return presented is not None and token_matches(presented)


def require_token(action: str = "POST /batches") -> None:
    """403 when submission is off on this server; 401 without the right token."""
    refusal = token_refusal()
    if refusal is not None:
        raise Forbidden(description=refusal)
    if not has_valid_token():
        raise Unauthorized(
            description=f"{action} needs the header Authorization: Bearer <OVP_API_TOKEN>",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "ovp"}),
        )
