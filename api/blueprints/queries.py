"""``GET /queries`` (the named read-only Cypher queries and their parameters) and ``POST /queries/{name}`` (run one
with JSON parameters, validated against its declaration). Anyone may run one, so each run is bounded: Neo4j ends its
transaction after ``OVP_QUERY_TIMEOUT_S`` (503 ``query_timeout``), and a client address may run ``OVP_API_RATE_LIMIT``
of them."""
from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Any, Mapping

from flask import Blueprint, current_app, jsonify, request

from api.context import get_settings
from api.db import get_graph
from api.extensions import expensive
from api.validation import json_object
from kg_builder.named_queries import NamedQuery, get_query

log = logging.getLogger(__name__)

bp = Blueprint("queries", __name__)


def named_queries() -> Mapping[str, NamedQuery]:
    """The queries loaded when the app was created."""
    return current_app.extensions["ovp_named_queries"]


@bp.get("/queries")
def list_queries() -> Any:
    """Every named query with its description and parameters."""
    return jsonify({"queries": [query.to_json() for query in named_queries().values()]})


@bp.post("/queries/<name>")
@expensive
def run_query(name: str) -> Any:
    """Body: a JSON object of parameters (``{}`` for all defaults) → ``{"name", "params", "rows"}``."""
    query = get_query(named_queries(), name)  # 404 before looking at the body
    params = query.bind(json_object(request) if request.content_length else {})
    rows = get_graph().read(query.text, params, timeout_s=get_settings().query_timeout_s)
    return jsonify({"name": query.name, "params": params, "count": len(rows), "rows": [to_json(row) for row in rows]})


def to_json(value: Any) -> Any:
    """Neo4j values as JSON: temporal values as ISO 8601 strings, the rest as they are (recursively)."""
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, (datetime, date, time)) or hasattr(value, "iso_format"):
        return value.iso_format() if hasattr(value, "iso_format") else value.isoformat()
    return value
