"""``GET /health``: whether Neo4j and the Celery broker answer, and their versions (200 when both do, else 503)."""
from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify

from api.context import get_settings
from api.db import get_graph
from ovp.errors import OVPError

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

#: The server's product version and edition (dbms.components is a read-only system procedure).
NEO4J_VERSION = """
CALL dbms.components() YIELD name, versions, edition
RETURN name, versions[0] AS version, edition
"""
#: Seconds a broker check may take: /health must answer fast even when the broker hangs.
BROKER_TIMEOUT_S = 2.0


def neo4j_status() -> dict[str, Any]:
    """``{"ok": True, "version", "edition", "uri"}`` or ``{"ok": False, "error"}``."""
    started = time.perf_counter()
    try:
        graph = get_graph()
        # verify() fails at once when the server is down; a read would first retry for API_RETRY_TIME_S.
        graph.verify()
        rows = graph.read(NEO4J_VERSION)
    except OVPError as exc:
        return {"ok": False, "error": str(exc)}
    row = rows[0] if rows else {}
    return {
        "ok": True,
        "uri": graph.settings.neo4j_uri,
        "version": row.get("version"),
        "edition": row.get("edition"),
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def broker_status(broker_url: str) -> dict[str, Any]:
    """Ping the broker: Redis through redis-py (with its version), anything else through a kombu connection."""
    started = time.perf_counter()
    scheme = urlsplit(broker_url).scheme
    try:
        if scheme in ("redis", "rediss"):
            import redis

            client = redis.Redis.from_url(broker_url, socket_timeout=BROKER_TIMEOUT_S, socket_connect_timeout=BROKER_TIMEOUT_S)
            try:
                info = client.info("server")
            finally:
                client.close()
            version = info.get("redis_version")
        else:
            from kombu import Connection

            with Connection(broker_url, connect_timeout=BROKER_TIMEOUT_S) as connection:
                connection.ensure_connection(max_retries=1)
            version = None
    except Exception as exc:  # noqa: BLE001 - any failure to reach the broker is "down"; the kind goes in the reply
        log.warning("broker check failed: %s", exc)
        return {"ok": False, "transport": scheme, "error": f"broker not reachable ({type(exc).__name__}); start it with `ovp redis start` or set OVP_BROKER_URL"}
    return {"ok": True, "transport": scheme, "version": version, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


@bp.get("/health")
def health() -> Any:
    """Reachability and versions of Neo4j and the broker; 503 when either is down."""
    neo4j = neo4j_status()
    broker = broker_status(get_settings().broker_url)
    ok = neo4j["ok"] and broker["ok"]
    return jsonify({"status": "ok" if ok else "degraded", "neo4j": neo4j, "broker": broker}), 200 if ok else 503
