"""The Flask extensions, created once here and bound to each app in :func:`init_extensions` (the factory calls it).

- **Flask-Login** keeps a signed-in reviewer in the session cookie. The session's user id is ``name:token_id``, so
  revoking an account (which drops its token id) also ends its sessions.
- **Flask-WTF's CSRFProtect** checks a token on every state-changing request of the pages; the JSON API's blueprints,
  which authenticate with a bearer token and never with the cookie, are exempt.
- **Flask-Limiter** counts requests in Redis (``Settings.ratelimit_storage``); sign-in is limited now, and other
  endpoints can take ``@limiter.limit(...)`` from here. When Redis is down it falls back to counting in memory.
  There is one limiter per process: when a process builds several apps (tests do), the first app's storage and key
  prefix are the ones it keeps.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect

from ovp.settings import DEV_SECRET_KEY, Settings

log = logging.getLogger(__name__)

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, strategy="fixed-window")
login_manager = LoginManager()
login_manager.login_view = "pages.sign_in"
login_manager.login_message = ""
login_manager.session_protection = "basic"


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
    """Configure the session cookie, CSRF, sign-in and rate limiting for ``app``."""
    defaults = {
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
        log.warning("*** OVP_SECRET_KEY is not set: sessions and CSRF tokens are signed with the public development "
                    "key. Anyone can forge a reviewer's session. Set OVP_SECRET_KEY to a long random value. ***")
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
