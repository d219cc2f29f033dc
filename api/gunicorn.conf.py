"""Gunicorn settings for the OVP API (``gunicorn -c api/gunicorn.conf.py api.wsgi:app``); flags on the command line
override these (e.g. ``-b 0.0.0.0:8000 -w 4``)."""
from __future__ import annotations

import multiprocessing

# Behind a reverse proxy on the same host by default; bind 0.0.0.0 explicitly in a container.
bind = "127.0.0.1:8000"
# Requests spend most of their time waiting on Neo4j, so a few processes with threads each cover the CPU; each process
# holds its own driver pool and its own linker (about 100 MB of dictionary), which caps how many are worth having.
workers = min(2 * multiprocessing.cpu_count() + 1, 8)
worker_class = "gthread"
threads = 4
# No preloading: each worker creates the app (and its Neo4j driver) after the fork; drivers must not cross a fork.
preload_app = False
# A request that takes longer than this is stuck (the slowest, the first /link, builds the linker in a few seconds).
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound; the jitter keeps them from restarting together.
max_requests = 10_000
max_requests_jitter = 1_000
# Same limits as the app checks, enforced before Flask sees the request.
limit_request_line = 8190
limit_request_fields = 100
accesslog = "-"
errorlog = "-"
loglevel = "info"
proc_name = "ovp-api"
