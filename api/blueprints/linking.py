"""``POST /link``: entity mentions in one text (``{"text": ...}``) or several (``{"texts": [...]}``), in the JSON
that ``ovp link --json`` prints: ``{"text": ..., "mentions": [...]}`` per text
(:meth:`encoders.linking.Mention.to_json`).

The knowledge base is read from the graph once per process, on the first request, and kept: building the dictionary
over ~8,000 entities takes seconds, linking a caption takes milliseconds. The API links with the dictionary and the
negation detector only; the semantic fallback needs the BERT encoder, which belongs in the GPU workers, not in
every web worker. Restart the API after rebuilding the knowledge graph to see new names.

Anyone may call it, so it is bounded: at most ``MAX_TEXTS`` texts of ``OVP_MAX_TEXT_CHARS`` characters each,
``OVP_API_LINK_MAX_CHARS`` characters in all (413 beyond), and ``OVP_API_RATE_LIMIT`` requests per client address.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request

from api.context import app_resource, get_settings
from api.db import get_graph
from api.extensions import expensive
from api.validation import RequestTooLarge, RequestValidationError, check_str, json_object
from encoders.linking import EntityLinker, link_mentions

log = logging.getLogger(__name__)

bp = Blueprint("linking", __name__)

#: Texts per request: a batch of captions, not a corpus.
MAX_TEXTS = 100
_LINKER_KEY = "ovp_linker"


def get_linker() -> EntityLinker:
    """This app's linker, built from the graph on first use (thread-safe: concurrent first requests build it once)."""
    return app_resource(_LINKER_KEY, build_linker)


def build_linker() -> EntityLinker:
    """A dictionary-only linker over the graph, built the way every part of OVP builds it (``load_linker``)."""
    from encoders.linking import load_linker

    linker = load_linker(get_settings(), get_graph(), semantic=False)
    log.info("entity linker ready: %d entities", len(linker.kb))
    return linker


def check_total(texts: list[str]) -> None:
    """413 when the texts hold more characters together than one request may carry."""
    total, limit = sum(len(t) for t in texts), get_settings().api_link_max_chars
    if total > limit:
        raise RequestTooLarge(f"the texts hold {total:,} characters in all, more than the {limit:,} one request may "
                              "carry (OVP_API_LINK_MAX_CHARS)", hint="send them in several requests")


@bp.post("/link")
@expensive
def link() -> Any:
    """``{"text": str}`` → ``{"text", "mentions": [...]}``; ``{"texts": [...]}`` → ``{"results": [{"text", "mentions"}, ...]}``."""
    body = json_object(request)
    max_chars = get_settings().max_text_chars
    if ("text" in body) == ("texts" in body):
        raise RequestValidationError('give exactly one of "text" (a string) or "texts" (a list of strings)')
    if "text" in body:
        text = check_str("text", body["text"], max_len=max_chars)
        check_total([text])
        mentions = link_mentions([text], get_linker())[0]
        return jsonify({"text": text, "mentions": [m.to_json() for m in mentions]})
    texts = body["texts"]
    if not isinstance(texts, list) or not 1 <= len(texts) <= MAX_TEXTS:
        raise RequestValidationError(f"texts must be a list of 1 to {MAX_TEXTS} strings")
    checked = [check_str(f"texts[{i}]", t, max_len=max_chars) for i, t in enumerate(texts)]
    check_total(checked)
    results = link_mentions(checked, get_linker())
    return jsonify({"results": [{"text": t, "mentions": [m.to_json() for m in ms]} for t, ms in zip(checked, results)]})
