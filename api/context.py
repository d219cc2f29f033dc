"""What a request takes from its app besides the graph: the app's settings and the objects built once per process
(the linker, the Celery client), each bound to the app so that tests can run several apps side by side."""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

from flask import Flask, current_app

from ovp.settings import Settings

T = TypeVar("T")

_LOCK_KEY = "ovp_resource_lock"  # guards every lazily built per-app resource (app_resource)


def init_app(app: Flask, settings: Settings) -> None:
    """Give ``app`` its settings and the lock that builds each resource once."""
    app.config["OVP_SETTINGS"] = settings
    # Re-entrant: building one resource may need another (the linker reads the graph through get_graph), and a plain
    # lock made the first request of a fresh app, when it was POST /link, wait for itself for ever.
    app.extensions[_LOCK_KEY] = threading.RLock()


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
