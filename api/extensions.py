"""The Flask extensions, created once here and bound to each app in :func:`init_extensions` (the factory calls it).

- **Flask-Limiter** counts requests per client address in Redis (``Settings.ratelimit_storage``: the broker's Redis,
  database 2, unless ``OVP_RATELIMIT_STORAGE_URL`` says otherwise), so that every API process shares one count. The
  endpoints that cost the server real work and need no token take :data:`expensive` (``OVP_API_RATE_LIMIT``, by
  default 60 a minute per address); a request with the valid bearer token is not counted. When Redis is down the
  limiter counts in memory, per process, rather than refusing requests.
"""
from __future__ import annotations

import logging

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from api.auth import has_valid_token
from api.context import get_settings
from ovp.settings import Settings

log = logging.getLogger(__name__)

limiter = Limiter(key_func=get_remote_address, strategy="fixed-window")

#: The limit on each expensive endpoint that anyone may call: a decorator for those views.
expensive = limiter.limit(lambda: get_settings().api_rate_limit, exempt_when=has_valid_token)


def init_extensions(app: Flask, settings: Settings) -> None:
    """Configure rate limiting for ``app``."""
    defaults = {
        # Explicit: the limiter is one object for every app of the process and otherwise keeps the last app's choice.
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": settings.ratelimit_storage,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "ovp",
        "RATELIMIT_HEADERS_ENABLED": True,
    }
    for key, value in defaults.items():
        # A test's or a deployment's explicit value wins.
        if app.config.get(key) is None:
            app.config[key] = value
    limiter.init_app(app)
