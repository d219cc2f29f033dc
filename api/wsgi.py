"""The WSGI entry point for gunicorn: ``gunicorn -c api/gunicorn.conf.py api.wsgi:app``.

The app is created at import, i.e. in each worker after the fork (``preload_app`` is off), so every worker opens its
own Neo4j connection pool and builds its own linker.
"""
from __future__ import annotations

from api.app import create_app

app = create_app()
