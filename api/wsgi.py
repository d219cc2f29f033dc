"""The WSGI entry point for gunicorn: ``gunicorn -c api/gunicorn.conf.py api.wsgi:app``.

The app is created at import, i.e. in each worker after the fork (``preload_app`` is off), so every worker opens its
own Neo4j connection pool, builds its own linker and loads its own entity dictionary (in the background, at start).
Like the CLI, this entry point configures logging: the level comes from ``OVP_LOG_LEVEL``; the driver's per-query
notifications (e.g. "label Video does not exist" on an empty database) are kept out of the log.
"""
from __future__ import annotations

import logging
import sys
import threading

from api.app import create_app
from api.blueprints.entities import load_entity_lookup
from ovp.settings import Settings

settings = Settings.from_env()
logging.basicConfig(
    level=getattr(logging, settings.log_level.upper(), logging.INFO),
    format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    stream=sys.stderr,
)
logging.getLogger("neo4j").setLevel(logging.ERROR)

app = create_app(settings)
# Each worker loads its entity dictionary while it starts serving, instead of on its first lookup.
threading.Thread(target=load_entity_lookup, args=(app,), name="entity-dictionary", daemon=True).start()
