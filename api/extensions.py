"""The Flask extensions, created once here and bound to each app in :func:`init_extensions` (the factory calls it).

- **Flask-Login** keeps a signed-in reviewer in the session cookie. The session's user id is ``name:token_id``, so
  revoking an account (which drops its token id) also ends its sessions.
- **Flask-WTF's CSRFProtect** checks a token on every state-changing request of the pages; the JSON API's blueprints,
  which authenticate with a bearer token and never with the cookie, are exempt.
- **Flask-Limiter** counts requests per client address in Redis (``Settings.ratelimit_storage``: the broker's Redis,
  database 2, unless ``OVP_RATELIMIT_STORAGE_URL`` says otherwise), so that every API process shares one count.
  Sign-in takes ``OVP_SIGNIN_RATE_LIMIT``; the endpoints that cost the server real work and need no token take
  :data:`expensive` (``OVP_API_RATE_LIMIT``, by default 60 a minute per address), and a request with the valid bearer
  token is not counted; the pages that search take :data:`expensive_page`, the same limit, which signed-in reviewers
  skip. When Redis is down the limiter counts in memory, per process, rather than refusing requests.
  There is one limiter per process: when a process builds several apps (tests do), the first app's storage and key
  prefix are the ones it keeps.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect

from api.auth import has_valid_token
from api.context import get_settings
from ovp.errors import ConfigError
from ovp.settings import DEV_SECRET_KEY, Settings

log = logging.getLogger(__name__)

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, strategy="fixed-window")
login_manager = LoginManager()
login_manager.login_view = "pages.sign_in"
login_manager.login_message = ""
login_manager.session_protection = "basic"

#: The limit on each expensive endpoint that anyone may call: a decorator for those views.
expensive = limiter.limit(lambda: get_settings().api_rate_limit, exempt_when=has_valid_token)


def _signed_in() -> bool:
    return bool(current_user.is_authenticated)


#: The same limit on the pages that anyone may open and that search (entity lookup, the video list's text filter,
#: search by meaning, similar videos); a signed-in reviewer is not counted.
expensive_page = limiter.limit(lambda: get_settings().api_rate_limit, exempt_when=_signed_in)


@dataclass(frozen=True)
class Reviewer(UserMixin):
    """A signed-in reviewer."""

    name: str
    token_id: str
    must_change_password: bool = False

    def get_id(self) -> str:
        return f"{self.name}:{self.token_id}"


@login_manager.user_loader
def load_reviewer(user_id: str) -> Reviewer | None:
    from api.db import get_graph
    from kg_builder.store.raters import rater_by_name

    name, _, token_id = user_id.partition(":")
    rater = rater_by_name(get_graph(), name) if name else None
    if rater is None or not rater.active or not token_id or rater.token_id != token_id:
        return None
    return Reviewer(name=rater.name, token_id=rater.token_id, must_change_password=rater.password_temporary)


def init_extensions(app: Flask, settings: Settings) -> None:
    """Configure the session cookie, CSRF, sign-in and rate limiting for ``app``.

    Raises:
        ConfigError: the public development secret key outside development (``OVP_DEV`` unset), except in tests.
    """
    defaults = {
        # Explicit: the limiter is one object for every app of the process and otherwise keeps the last app's choice.
        "RATELIMIT_ENABLED": True,
        "SECRET_KEY": settings.secret_key,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        "RATELIMIT_STORAGE_URI": settings.ratelimit_storage,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "ovp",
        "RATELIMIT_HEADERS_ENABLED": True,
    }
    for key, value in defaults.items():
        # Flask's own defaults are None for some of these: a test's or a deployment's explicit value wins.
        if app.config.get(key) is None:
            app.config[key] = value
    if app.config["SECRET_KEY"] == DEV_SECRET_KEY and not app.config.get("TESTING"):
        if not settings.dev:
            raise ConfigError("the API refuses to sign reviewers' sessions with the public development secret key "
                              "outside development",
                              hint="set OVP_SECRET_KEY to a long random value (or OVP_DEV=1 on a development machine)")
        log.warning("*** OVP_SECRET_KEY is not set: sessions and CSRF tokens are signed with the public development "
                    "key. Anyone can forge a reviewer's session. Set OVP_SECRET_KEY to a long random value. ***")
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
