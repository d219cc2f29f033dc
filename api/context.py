"""What a request takes from its app besides the graph: the app's settings and the objects built once per process
(the linker, the Celery client), each bound to the app so that tests can run several apps side by side."""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

from flask import Flask, current_app

from ovp.settings import Settings

T = TypeVar("T")

_LOCKS_KEY = "ovp_resource_locks"  # per-app: a lock per lazily built resource (app_resource), and one guarding them


def init_app(app: Flask, settings: Settings) -> None:
    """Give ``app`` its settings and the locks that build each resource once."""
    app.config["OVP_SETTINGS"] = settings
    app.extensions[_LOCKS_KEY] = (threading.Lock(), {})


def get_settings() -> Settings:
    """The settings of the current app."""
    return current_app.config["OVP_SETTINGS"]


def app_resource(key: str, build: Callable[[], T]) -> T:
    """The current app's object under ``key``, built by ``build()`` on first use in this process.

    Thread-safe: concurrent first requests build it once (gthread workers serve several requests at a time). Each
    key has its own lock, because one build may need another resource: the linker reads the knowledge base through
    the graph handle, and with one lock for all a process whose first request was ``POST /link`` waited for itself
    for ever.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    resource = app.extensions.get(key)
    if resource is None:
        guard, locks = app.extensions[_LOCKS_KEY]
        with guard:
            lock = locks.setdefault(key, threading.Lock())
        with lock:
            resource = app.extensions.get(key)
            if resource is None:
                resource = build()
                app.extensions[key] = resource
    return resource
