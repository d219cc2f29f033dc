"""The OpenAPI 3.0 document of the API, served at ``GET /openapi.json``.

Kept as data next to the code it describes; the bounds here are the ones :mod:`api.validation` enforces (the
schemathesis test generates requests from this document, so a bound that drifts shows up as a test failure).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api.blueprints.batches import MAX_VIDEOS
from api.blueprints.diseases import MAX_LIMIT as DISEASE_MAX_LIMIT
from api.blueprints.entities import MAX_LIMIT as ENTITY_MAX_LIMIT
from api.blueprints.entities import MAX_QUERY_CHARS
from api.blueprints.linking import MAX_TEXTS
from api.blueprints.search import LIMITS as SEARCH_LIMITS
from api.blueprints.search import SIMILAR_BY
from api.ratings import MAX_DISEASES, MAX_NOTE_CHARS
from fusion.manifest import MAX_CAPTION_CHARS, MAX_TITLE_CHARS, MAX_TRANSCRIPT_CHARS
from kg_builder.store.ratings import DISCERN_ITEMS, JAMA_ITEMS
from kg_builder.store.diseases import SORT_KEYS, VIA

bp = Blueprint("openapi", __name__)

API_VERSION = "1.0.0"
ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$", "minLength": 1, "maxLength": 128}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _path_id(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": ID_SCHEMA}


def _query_int(name: str, minimum: int, maximum: int, default: int, description: str) -> dict[str, Any]:
    return {
        "name": name, "in": "query", "required": False, "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default},
    }


COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "description": "OVP_API_TOKEN"},
        "reviewer": {"type": "http", "scheme": "bearer", "description": "a reviewer's token from `ovp raters add NAME`"},
    },
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "not_found"},
                "message": {"type": "string"},
                "problems": {"type": "array", "items": {"type": "string"}, "description": "manifest problems, one per line"},
            },
        },
        "LookupHit": {
            "type": "object",
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "name_zh": {"type": "string", "nullable": True},
                "kind": {"type": "string"}, "score": {"type": "number"},
                "xrefs": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Mention": {
            "type": "object",
            "required": ["id", "name", "kind", "surface", "start", "end", "score", "negated", "xrefs"],
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
                "surface": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"},
                "score": {"type": "number"}, "negated": {"type": "boolean"},
                "xrefs": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ManifestVideo": {
            "type": "object",
            "description": "One manifest line (see fusion/manifest.py); unknown fields are rejected.",
            "required": ["id", "path", "platform", "title", "caption", "hashtags", "published_at", "duration_s"],
            "properties": {
                "id": ID_SCHEMA,
                "path": {"type": "string", "minLength": 1, "maxLength": 4096},
                "platform": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},  # PLATFORM_PATTERN, any case
                "title": {"type": "string", "maxLength": MAX_TITLE_CHARS},
                "caption": {"type": "string", "maxLength": MAX_CAPTION_CHARS},
                "hashtags": {"type": "array", "items": {"type": "string"}},
                "published_at": {"type": "string", "format": "date-time"},
                "duration_s": {"type": "number", "minimum": 0},
                "author_followers": {"type": "integer", "minimum": 0, "nullable": True},
                "url": {"type": "string"},
                "transcript": {"type": "string", "maxLength": MAX_TRANSCRIPT_CHARS},
                "diseases": {"type": "array", "items": {"type": "string"}},
                "diseases_weak": {"type": "boolean"},
                "views": {"type": "integer", "minimum": 0}, "likes": {"type": "integer", "minimum": 0},
                "comments": {"type": "integer", "minimum": 0}, "shares": {"type": "integer", "minimum": 0},
                "engagement_read_at": {"type": "string", "format": "date-time"},
                "quality": {"type": "integer", "minimum": 1, "maximum": 5},
                "synthetic": {"type": "boolean"},
            },
        },
        "Batch": {
            "type": "object",
            "properties": {
                "id": {"type": "string"}, "submitted_at": {"type": "string"}, "status": {"type": "string"},
                "total": {"type": "integer"}, "done": {"type": "integer"}, "failed": {"type": "integer"},
                "failures": {"type": "array", "items": {"type": "object", "properties": {
                    "video_id": {"type": "string"}, "reason": {"type": "string"}}}},
                "pending": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Tag": {
            "type": "object",
            "description": "An open-vocabulary disease tag of the latest profile (any disease of the graph), apart from "
                           "the trained head's predictions. evidence: per source, what made it (named: the mentions; "
                           "phenotypes: each phenotype with its IC and the term the disease has it through; "
                           "similarity: the cosine and the span of the text).",
            "properties": {
                "disease_id": {"type": "string"}, "name": {"type": "string", "nullable": True},
                "name_zh": {"type": "string", "nullable": True}, "score": {"type": "number"},
                "source": {"type": "string", "enum": ["named", "phenotypes", "similarity"]},
                "sources": {"type": "array", "items": {"type": "string"}}, "rank": {"type": "integer"},
                "evidence": {"type": "object", "nullable": True},
            },
        },
        "SearchHit": {
            "type": "object",
            "properties": {
                "video_id": {"type": "string"}, "title": {"type": "string"}, "platform": {"type": "string"},
                "synthetic": {"type": "boolean"}, "score": {"type": "number"}, "similarity": {"type": "number"},
                "shared": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "name_zh": {"type": "string"},
                    "via": {"type": "array", "items": {"type": "string", "enum": ["mention", "tag"]}}}}},
                "reason": {"type": "string"}, "quality": {"type": "integer", "nullable": True},
                "popularity_pct": {"type": "number", "nullable": True},
            },
        },
        "NewRating": {
            "type": "object",
            "required": ["gqs"],
            "additionalProperties": False,
            "properties": {
                "gqs": {"type": "integer", "minimum": 1, "maximum": 5, "description": "Global Quality Score"},
                "discern": {"type": "array", "items": {"type": "boolean"}, "minItems": DISCERN_ITEMS,
                            "maxItems": DISCERN_ITEMS, "description": "the modified DISCERN items, yes/no"},
                "jama": {"type": "object", "required": list(JAMA_ITEMS), "additionalProperties": False,
                         "properties": {item: {"type": "boolean"} for item in JAMA_ITEMS}},
                "diseases": {"type": "array", "maxItems": MAX_DISEASES, "items": ID_SCHEMA,
                             "description": "the diseases the video is about (confirms or corrects the prediction); [] = none"},
                "note": {"type": "string", "maxLength": MAX_NOTE_CHARS},
            },
        },
        "Rating": {
            "type": "object",
            "properties": {
                "id": {"type": "string"}, "rater": {"type": "string"}, "video_id": {"type": "string"},
                "gqs": {"type": "integer"}, "discern": {"type": "array", "nullable": True, "items": {"type": "boolean"}},
                "jama": {"type": "object", "nullable": True, "additionalProperties": {"type": "boolean"}},
                "diseases": {"type": "array", "nullable": True, "items": {"type": "string"}},
                "note": {"type": "string"}, "created_at": {"type": "string"},
                "model_version": {"type": "string", "nullable": True},
            },
        },
        "QueryParam": {
            "type": "object",
            "properties": {
                "name": {"type": "string"}, "type": {"type": "string", "enum": ["int", "float", "string", "id"]},
                "required": {"type": "boolean"}, "default": {}, "min": {"type": "number", "nullable": True},
                "max": {"type": "number", "nullable": True}, "description": {"type": "string"},
            },
        },
    },
}

_COMMON_ERRORS = {"503": _error("Neo4j is not reachable (the message says how to start it)")}
#: The endpoints anyone may call that cost the server real work (api.extensions.expensive).
_RATE_LIMITED = {"429": _error("more than OVP_API_RATE_LIMIT requests from this client address (a request with the "
                                "API token is not counted); Retry-After says when to try again")}

PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Reachability and versions of Neo4j and the broker",
            "responses": {
                "200": _json({"type": "object"}, "both reachable"),
                "503": _json({"type": "object"}, "Neo4j or the broker is down (which one is in the body)"),
            },
        }
    },
    "/entities": {
        "get": {
            "operationId": "searchEntities",
            "summary": "Full-text lookup of entities by name, Chinese name or synonym",
            "parameters": [
                {"name": "q", "in": "query", "required": True, "description": "text to look up (Chinese or English)",
                 "schema": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}},
                _query_int("limit", 1, ENTITY_MAX_LIMIT, 10, "hits to return"),
            ],
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "query": {"type": "string"}, "count": {"type": "integer"},
                    "results": {"type": "array", "items": _ref("LookupHit")}}}, "hits, best first"),
                "400": _error("q missing or too long, limit out of range"),
                **_RATE_LIMITED, **_COMMON_ERRORS,
            },
        }
    },
    "/entities/{entity_id}": {
        "get": {
            "operationId": "getEntity",
            "summary": "An entity with synonyms, definition, parents, children, MAPS_TO, diseases/phenotypes, video count",
            "parameters": [_path_id("entity_id", "CURIE, e.g. OVP:glaucoma or HP:0000501")],
            "responses": {"200": _json({"type": "object"}, "the entity"), "400": _error("malformed id"),
                          "404": _error("no such entity"), **_COMMON_ERRORS},
        }
    },
    "/link": {
        "post": {
            "operationId": "linkMentions",
            "summary": "Entity mentions in one text or a list of texts (the JSON of `ovp link`)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [
                    {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "maxLength": 20000}}, "additionalProperties": False},
                    {"type": "object", "required": ["texts"], "additionalProperties": False, "properties": {"texts": {
                        "type": "array", "minItems": 1, "maxItems": MAX_TEXTS, "items": {"type": "string", "maxLength": 20000}}}},
                ]}}}},
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "text": {"type": "string"},
                    "mentions": {"type": "array", "items": _ref("Mention")},
                    "results": {"type": "array", "items": {"type": "object", "properties": {
                        "text": {"type": "string"}, "mentions": {"type": "array", "items": _ref("Mention")}}}}}},
                    "{text, mentions} for text, or results (one {text, mentions} per text) for texts"),
                "400": _error("body is not {text} or {texts}"),
                "413": _error("body larger than OVP_API_MAX_BODY_BYTES, or texts longer than OVP_API_LINK_MAX_CHARS in all"),
                **_RATE_LIMITED, **_COMMON_ERRORS,
            },
        }
    },
    "/videos/{video_id}": {
        "get": {
            "operationId": "getVideo",
            "summary": "Video metadata, mentions, latest profile (explanation parsed), its open-vocabulary tags and "
                       "profile history",
            "parameters": [_path_id("video_id", "the manifest's video id")],
            "responses": {"200": _json({"type": "object", "properties": {
                "tags": {"type": "array", "items": _ref("Tag")}}}, "the video"), "400": _error("malformed id"),
                          "404": _error("no such video"), **_COMMON_ERRORS},
        }
    },
    "/videos/{video_id}/similar": {
        "get": {
            "operationId": "similarVideos",
            "summary": "Videos like this one: by meaning (text vector and shared concepts) or by=profile (the "
                       "similar_videos named query: fused profile embedding)",
            "parameters": [
                _path_id("video_id", "the manifest's video id"),
                _query_int("k", 1, SEARCH_LIMITS.max_k, 10, "videos to return"),
                {"name": "by", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(SIMILAR_BY), "default": "meaning"}},
            ],
            "responses": {"200": _json({"type": "object"}, "the similar videos, best first"),
                          "400": _error("malformed id, k or by"), "404": _error("no such video"), **_RATE_LIMITED, **_COMMON_ERRORS},
        }
    },
    "/search": {
        "get": {
            "operationId": "searchVideos",
            "summary": "Videos by the meaning of a Chinese or English query, with the reason for each hit",
            "parameters": [
                {"name": "q", "in": "query", "required": True, "description": "the query (Chinese or English)",
                 "schema": {"type": "string", "minLength": 1, "maxLength": SEARCH_LIMITS.max_query_chars}},
                _query_int("k", 1, SEARCH_LIMITS.max_k, 10, "videos to return"),
            ],
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "query": {"type": "string"}, "count": {"type": "integer"},
                    "concepts": {"type": "array", "items": {"type": "object"}},
                    "hits": {"type": "array", "items": _ref("SearchHit")}}}, "hits, best first"),
                "400": _error("q missing, blank or too long; k out of range"),
                **_RATE_LIMITED, **_COMMON_ERRORS,
            },
        }
    },
    "/videos/{video_id}/ratings": {
        "post": {
            "operationId": "rateVideo",
            "summary": "Record a reviewer's rating (a new node; the reviewer's latest rating counts)",
            "security": [{"reviewer": []}],
            "parameters": [_path_id("video_id", "the manifest's video id")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewRating")}}},
            "responses": {
                "201": _json(_ref("Rating"), "the rating as stored, with the model version of the latest profile"),
                "400": _error("malformed id or body, or a listed disease that the graph does not have"),
                "401": _error("missing, wrong or revoked reviewer token"),
                "404": _error("no such video"),
                "413": _error("body larger than OVP_API_MAX_BODY_BYTES"),
                **_COMMON_ERRORS,
            },
        },
        "get": {
            "operationId": "videoRatings",
            "summary": "Every rating of a video, newest first; current lists the one of each reviewer that counts",
            "security": [{"reviewer": []}],
            "parameters": [_path_id("video_id", "the manifest's video id")],
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "video_id": {"type": "string"}, "count": {"type": "integer"},
                    "current": {"type": "array", "items": {"type": "string"}},
                    "ratings": {"type": "array", "items": _ref("Rating")}}}, "the ratings"),
                "400": _error("malformed id"),
                "401": _error("missing, wrong or revoked reviewer token"),
                "404": _error("no such video"),
                **_COMMON_ERRORS,
            },
        },
    },
    "/diseases/{disease_id}/videos": {
        "get": {
            "operationId": "diseaseVideos",
            "summary": "Videos whose latest profile predicts the disease, or (via=tagged) is tagged with it",
            "parameters": [
                _path_id("disease_id", "disease CURIE, e.g. OVP:glaucoma"),
                {"name": "sort", "in": "query", "required": False, "schema": {"type": "string", "enum": list(SORT_KEYS), "default": "popularity"}},
                {"name": "via", "in": "query", "required": False, "description": "predicted (the trained head) or tagged (open-vocabulary tags)",
                 "schema": {"type": "string", "enum": list(VIA), "default": "predicted"}},
                _query_int("min_quality", 1, 5, 1, "lowest predicted GQS (1-5)"),
                _query_int("limit", 1, DISEASE_MAX_LIMIT, 20, "videos to return"),
            ],
            "responses": {"200": _json({"type": "object"}, "the videos"), "400": _error("bad parameter"),
                          "404": _error("no such disease"), **_COMMON_ERRORS},
        }
    },
    "/batches": {
        "post": {
            "operationId": "submitBatch",
            "summary": "Submit a manifest for profiling (enqueues the Celery task ovp.profile_batch)",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                {"type": "array", "minItems": 1, "maxItems": MAX_VIDEOS, "items": _ref("ManifestVideo")},
                {"type": "object", "required": ["videos"], "additionalProperties": False, "properties": {
                    "videos": {"type": "array", "minItems": 1, "maxItems": MAX_VIDEOS, "items": _ref("ManifestVideo")}}},
            ]}}}},
            "responses": {
                "202": _json({"type": "object", "required": ["batch_id", "status_url"], "properties": {
                    "batch_id": {"type": "string"}, "status_url": {"type": "string"}, "total": {"type": "integer"}}}, "accepted"),
                "400": _error("body is not a list of objects or {videos: [...]}"),
                "401": _error("missing or wrong bearer token"),
                "413": _error("body larger than OVP_API_MAX_BODY_BYTES"),
                "422": _error("manifest invalid; problems lists each, by line"),
                "503": _error("Neo4j or the broker is not reachable"),
            },
        }
    },
    "/batches/{batch_id}": {
        "get": {
            "operationId": "getBatch",
            "summary": "Status, counts and per-video failures of a batch",
            "parameters": [_path_id("batch_id", "the id POST /batches returned")],
            "responses": {"200": _json(_ref("Batch"), "the batch"), "400": _error("malformed id"),
                          "404": _error("no such batch"), **_COMMON_ERRORS},
        }
    },
    "/queries": {
        "get": {
            "operationId": "listQueries",
            "summary": "The named read-only Cypher queries and their parameters",
            "responses": {"200": _json({"type": "object", "properties": {"queries": {"type": "array", "items": {
                "type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                                                 "params": {"type": "array", "items": _ref("QueryParam")}}}}}}, "the queries")},
        }
    },
    "/queries/{name}": {
        "post": {
            "operationId": "runQuery",
            "summary": "Run a named query with JSON parameters (validated against its declaration)",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}}],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": {"oneOf": [{"type": "string", "maxLength": 1000}, {"type": "number"}]}}}}},
            "responses": {
                "200": _json({"type": "object", "properties": {"name": {"type": "string"}, "params": {"type": "object"},
                                                               "count": {"type": "integer"}, "rows": {"type": "array", "items": {"type": "object"}}}}, "rows"),
                "400": _error("unknown, missing or invalid parameter"),
                "404": _error("no such query"),
                **_RATE_LIMITED, **_COMMON_ERRORS,
            },
        }
    },
}


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.0.3 document."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "OVP — Ophthalmic Video Profiling API",
            "version": API_VERSION,
            "description": "Knowledge-graph lookups, entity linking, video profiles and batch submission. "
                           "Errors are JSON {code, message}.",
        },
        "paths": PATHS,
        "components": COMPONENTS,
    }


@bp.get("/openapi.json")
def openapi_json() -> Any:
    """The OpenAPI document."""
    return jsonify(openapi_document())
