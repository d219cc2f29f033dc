"""The app's graph handle, bound to the app context the way Flask's tutorial binds its database (flaskr ``db.py``):
:func:`get_graph` in a request, :func:`init_app` in the factory, released on teardown.

Lifetime: a :class:`kg_builder.graph.Graph` owns a neo4j driver, i.e. a pool of Bolt connections. Opening one per
request would pay the TCP connect and the Bolt/auth handshake on every call, so each app (one per gunicorn worker
process, created after the fork) keeps one Graph, created on first use. A request takes it through :func:`get_graph`,
which binds it to the app context (``g.graph``); teardown unbinds it and closes nothing, because the pool outlives
requests. :func:`close_graph` closes the pool (at interpreter exit, or by a test).
"""
from __future__ import annotations

import atexit

from flask import Flask, g

from api.context import app_resource, get_settings
from kg_builder.graph import Graph

#: How long a request's managed transaction keeps retrying a transient error. The driver's default (15 s in Graph)
#: suits batch jobs; an API caller is better served by a quick 503 when Neo4j is down.
API_RETRY_TIME_S = 2.0
_GRAPH_KEY = "ovp_graph"


def get_graph() -> Graph:
    """The current app's Graph, bound to this app context (created on first use in this process).

    Creating it opens no connection; the first query does, and raises GraphUnavailable (503) if Neo4j is down.
    """
    if "graph" not in g:
        g.graph = app_resource(_GRAPH_KEY, lambda: Graph(get_settings(), retry_time_s=API_RETRY_TIME_S))
    return g.graph


def release_graph(exc: BaseException | None = None) -> None:
    """Teardown: unbind the graph from the app context; the pool stays open for the next request."""
    g.pop("graph", None)


def close_graph(app: Flask) -> None:
    """Close the app's connection pool (idempotent); the next request opens a new one."""
    graph = app.extensions.pop(_GRAPH_KEY, None)
    if graph is not None:
        graph.close()


def init_app(app: Flask) -> None:
    """Release the graph after each request and close the pool when the process exits."""
    app.teardown_appcontext(release_graph)
    atexit.register(close_graph, app)
