"""A submitted rating, checked and stored: the JSON twin's body and the rating form both become a :class:`RatingInput`
here, with the same limits and the same messages, and are stored by :func:`store_rating`.

Body: ``{"gqs": 4, "discern": [true, true, false, true, false],
"jama": {"authorship": true, "attribution": false, "disclosure": false, "currency": true},
"diseases": ["OVP:glaucoma"], "note": "…"}``; every field but ``gqs`` is optional; unknown fields are refused.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from werkzeug.exceptions import NotFound

from api.validation import RequestValidationError, check_id, check_str
from kg_builder.graph import Graph
from kg_builder.store.ratings import DISCERN_ITEMS, JAMA_ITEMS, RatingRecord, create_rating
from kg_builder.store.reviews import entity_names

MAX_NOTE_CHARS = 4000
MAX_DISEASES = 50
FIELDS = ("gqs", "discern", "jama", "diseases", "note")


@dataclass(frozen=True)
class RatingInput:
    gqs: int
    discern: tuple[bool, ...] | None = None
    jama: tuple[bool, ...] | None = None
    diseases: tuple[str, ...] | None = None
    note: str = ""


def parse_rating(body: Mapping[str, Any]) -> RatingInput:
    """``body`` as a rating.

    Raises:
        RequestValidationError: an unknown field, or a field of the wrong type or out of range (400).
    """
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestValidationError(f"unknown field(s) {', '.join(map(repr, unknown[:5]))}; a rating has {', '.join(FIELDS)}")
    gqs = body.get("gqs")
    if isinstance(gqs, bool) or not isinstance(gqs, int) or not 1 <= gqs <= 5:
        raise RequestValidationError("gqs is required: an integer 1-5 (Global Quality Score)")
    discern = body.get("discern")
    if discern is not None:
        if not isinstance(discern, list) or len(discern) != DISCERN_ITEMS or not all(isinstance(x, bool) for x in discern):
            raise RequestValidationError(f"discern must be a list of {DISCERN_ITEMS} booleans (the modified DISCERN items)")
        discern = tuple(discern)
    jama = body.get("jama")
    if jama is not None:
        if (not isinstance(jama, dict) or set(jama) != set(JAMA_ITEMS)
                or not all(isinstance(jama[k], bool) for k in JAMA_ITEMS)):
            raise RequestValidationError(f"jama must be an object with the booleans {', '.join(JAMA_ITEMS)}")
        jama = tuple(jama[k] for k in JAMA_ITEMS)
    diseases = body.get("diseases")
    if diseases is not None:
        if not isinstance(diseases, list) or len(diseases) > MAX_DISEASES:
            raise RequestValidationError(f"diseases must be a list of at most {MAX_DISEASES} entity ids")
        diseases = tuple(sorted({check_id("diseases[]", d) for d in diseases}))
    note = body.get("note")
    note = "" if note is None else check_str("note", note, max_len=MAX_NOTE_CHARS).strip()
    return RatingInput(gqs=gqs, discern=discern, jama=jama, diseases=diseases, note=note)


def store_rating(graph: Graph, rater: str, video_id: str, rating: RatingInput) -> RatingRecord:
    """Store ``rating`` by ``rater`` of ``video_id`` as a new Rating node (with the model version of the video's latest
    profile); returns it as stored.

    Raises:
        RequestValidationError: a listed disease is not a Disease of the graph (400).
        NotFound: no such video (404), or the rater was revoked in the meantime.
    """
    if rating.diseases:
        known = entity_names(graph, list(rating.diseases))
        unknown = [d for d in rating.diseases if known.get(d, {}).get("kind") != "Disease"]
        if unknown:
            raise RequestValidationError(f"diseases: not diseases of the graph: {', '.join(unknown[:5])}; "
                                         "find ids with GET /entities?q=")
    record = RatingRecord(
        id=uuid.uuid4().hex, rater=rater, video_id=video_id, gqs=rating.gqs,
        created_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        discern=rating.discern, jama=rating.jama, diseases=rating.diseases, note=rating.note,
    )
    stored = create_rating(graph, record)
    if stored is None:
        raise NotFound(description=f"no video {video_id} (or the reviewer {rater} was revoked)")
    return stored
