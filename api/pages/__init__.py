"""The review pages: server-rendered HTML under ``/ui`` for the people who review eye-health videos.

One blueprint, its routes in one module per page family (videos, entities, batches, reviewing, media); templates in
``templates/``, the stylesheet in ``static/`` (no JavaScript library, nothing loaded from elsewhere, so the pages work
offline). Every page speaks English and Chinese (:mod:`api.pages.i18n`). Errors under ``/ui`` are pages, not JSON.
"""
from __future__ import annotations

from api.pages import batches, entities, media, review, search, videos  # noqa: F401  (their routes on bp)
from api.pages.blueprint import bp

__all__ = ["bp"]
