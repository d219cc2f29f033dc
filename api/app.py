"""The Flask app factory: configuration from :class:`ovp.settings.Settings`, one blueprint per resource, JSON errors,
and the Neo4j connection bound to the app context.

Connection lifetime: a :class:`kg_builder.graph.Graph` owns a neo4j driver, i.e. a pool of Bolt connections. Opening
one per request would pay the TCP connect and Bolt/auth handshake on every call, so each app (one per gunicorn
worker process, created after the fork) keeps one Graph, created on first use. Each request takes it through
:func:`get_graph`, which binds it to the app context (``g.graph``); teardown unbinds it and returns nothing to close,
because the pool outlives requests. :func:`close_graph` closes the pool (at interpreter exit, or by a test).
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
from typing import Any, Callable, Mapping, TypeVar

from flask import Flask, current_app, g

from api.errors import register_error_handlers
from kg_builder.graph import Graph
from kg_builder.named_queries import load_queries
from ovp.settings import Settings

log = logging.getLogger(__name__)

#: How long a request's managed transaction keeps retrying a transient error. The driver's default (15 s in Graph)
#: suits batch jobs; an API caller is better served by a quick 503 when Neo4j is down.
API_RETRY_TIME_S = 2.0
_GRAPH_KEY = "ovp_graph"
_LOCK_KEY = "ovp_graph_lock"  # guards every lazily built per-app resource (app_resource)

T = TypeVar("T")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the API.

    Args:
        test_config: Flask config overrides. ``OVP_SETTINGS`` may hold a :class:`Settings` to use instead of
            ``Settings.from_env()`` (tests point it at another broker or an unreachable Neo4j).

    Returns:
        the Flask app, with ``MAX_CONTENT_LENGTH`` set from ``settings.api_max_body_bytes`` and the named queries loaded
        (a malformed or unsafe query file fails here, at start-up, not on first use).
    """
    app = Flask(__name__)
    overrides = dict(test_config or {})
    settings = overrides.pop("OVP_SETTINGS", None) or Settings.from_env()
    if not isinstance(settings, Settings):
        raise TypeError("OVP_SETTINGS must be an ovp.settings.Settings")
    app.config.update(
        OVP_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.api_max_body_bytes,
    )
    # Keep non-ASCII (Chinese names) readable in responses.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(overrides)
    app.extensions[_LOCK_KEY] = threading.Lock()
    app.extensions["ovp_named_queries"] = load_queries(app.config.get("OVP_QUERY_DIR") or _default_query_dir())

    from api.extensions import init_extensions

    init_extensions(app, settings)
    register_error_handlers(app)
    _register_blueprints(app)
    app.teardown_appcontext(_unbind_graph)
    atexit.register(close_graph, app)
    log.debug("API created (neo4j %s, broker %s)", settings.neo4j_uri, _redact(settings.broker_url))
    return app


def _default_query_dir() -> Any:
    from kg_builder.named_queries import QUERY_DIR

    return QUERY_DIR


def _register_blueprints(app: Flask) -> None:
    from api.blueprints.batches import bp as batches
    from api.blueprints.diseases import bp as diseases
    from api.blueprints.entities import bp as entities
    from api.blueprints.health import bp as health
    from api.blueprints.linking import bp as linking
    from api.blueprints.queries import bp as queries
    from api.blueprints.ratings import bp as ratings
    from api.blueprints.videos import bp as videos
    from api.extensions import csrf
    from api.openapi import bp as openapi
    from api.pages import bp as pages

    # The JSON API authenticates with bearer tokens, never with the session cookie, so CSRF does not apply to it.
    for blueprint in (health, entities, linking, videos, ratings, diseases, batches, queries, openapi):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    app.register_blueprint(pages)


def get_settings() -> Settings:
    """The settings of the current app."""
    return current_app.config["OVP_SETTINGS"]


def app_resource(key: str, build: Callable[[], T]) -> T:
    """The current app's object under ``key``, built by ``build()`` on first use in this process.

    Thread-safe: concurrent first requests build it once (gthread workers serve several requests at a time).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    resource = app.extensions.get(key)
    if resource is None:
        with app.extensions[_LOCK_KEY]:
            resource = app.extensions.get(key)
            if resource is None:
                resource = build()
                app.extensions[key] = resource
    return resource


def get_graph() -> Graph:
    """The current app's Graph, bound to this app context (created on first use in this process).

    Creating it opens no connection; the first query does, and raises GraphUnavailable (503) if Neo4j is down.
    """
    if "graph" not in g:
        g.graph = app_resource(_GRAPH_KEY, lambda: Graph(get_settings(), retry_time_s=API_RETRY_TIME_S))
    return g.graph


def _unbind_graph(exc: BaseException | None) -> None:
    # The pool is shared by every request of this process: unbind it from the context, keep it open.
    g.pop("graph", None)


def close_graph(app: Flask) -> None:
    """Close the app's connection pool (idempotent); the next request opens a new one."""
    graph = app.extensions.pop(_GRAPH_KEY, None)
    if graph is not None:
        graph.close()


def _redact(url: str) -> str:
    """``url`` without a password, for logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def settings_with(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields changed (a convenience for tests and the bench)."""
    return dataclasses.replace(settings, **changes)
