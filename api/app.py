"""The Flask app factory: the settings it is given, one blueprint per resource, JSON errors, the Neo4j connection
bound to the app context (:mod:`api.db`), the review pages and their extensions (:mod:`api.extensions`).

Blueprints import :mod:`api.db` and :mod:`api.context`, never this module, so the factory can import them all.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from flask import Flask

from api import context, db
from api.blueprints.batches import bp as batches
from api.blueprints.diseases import bp as diseases
from api.blueprints.entities import bp as entities
from api.blueprints.health import bp as health
from api.blueprints.linking import bp as linking
from api.blueprints.queries import bp as queries
from api.blueprints.ratings import bp as ratings
from api.blueprints.search import bp as search
from api.blueprints.videos import bp as videos
from api.errors import register_error_handlers
from api.extensions import csrf, init_extensions
from api.openapi import bp as openapi
from api.pages import bp as pages
from kg_builder.named_queries import QUERY_DIR, load_queries
from ovp.settings import Settings, check_service_credentials

log = logging.getLogger(__name__)


def create_app(settings: Settings, test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the API.

    Args:
        settings: the configuration, read once by the entry point (``api.wsgi``, ``ovp serve``, a test).
        test_config: Flask config overrides (``TESTING``, ``OVP_QUERY_DIR``, …).

    Returns:
        the Flask app, with ``MAX_CONTENT_LENGTH`` set from ``settings.api_max_body_bytes`` and the named queries loaded
        (a malformed or unsafe query file fails here, at start-up, not on first use).

    Raises:
        ConfigError: the development Neo4j password or secret key outside development (``OVP_DEV`` unset). The
            other public defaults in use are logged loudly.
    """
    if not isinstance(settings, Settings):
        raise TypeError(f"create_app needs an ovp.settings.Settings, got {type(settings).__name__}")
    for warning in check_service_credentials(settings, "API"):
        log.warning("!!! %s !!!", warning)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.api_max_body_bytes)
    # Keep non-ASCII (Chinese names) readable in responses.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(test_config or {})
    context.init_app(app, settings)
    db.init_app(app)
    app.extensions["ovp_named_queries"] = load_queries(app.config.get("OVP_QUERY_DIR") or QUERY_DIR)

    init_extensions(app, settings)
    register_error_handlers(app)
    # The JSON API authenticates with bearer tokens, never with the session cookie, so CSRF does not apply to it.
    for blueprint in (health, entities, linking, videos, search, ratings, diseases, batches, queries, openapi):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    app.register_blueprint(pages)
    log.debug("API created (neo4j %s, broker %s)", settings.neo4j_uri, _redact(settings.broker_url))
    return app


def _redact(url: str) -> str:
    """``url`` without a password, for logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
