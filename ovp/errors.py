"""Domain exceptions. Each one says what went wrong, where, and what to do about it.

The CLI prints ``str(error)`` as one line; the API turns ``error.code`` and the message into JSON.
"""
from __future__ import annotations


class OVPError(Exception):
    """Base class: a message that names the problem and, where there is one, the fix."""

    code = "ovp_error"
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} — {hint}" if hint else message)


class ConfigError(OVPError):
    """An OVP_* setting has a value that cannot be used."""

    code = "config_error"


class GraphUnavailable(OVPError):
    """Neo4j cannot be reached or refuses the credentials."""

    code = "graph_unavailable"
    http_status = 503


class QueryTimeout(OVPError):
    """A read query ran longer than it may (``OVP_QUERY_TIMEOUT_S``); Neo4j ended its transaction."""

    code = "query_timeout"
    http_status = 503


class BrokerUnavailable(OVPError):
    """The Celery broker refused or timed out when a batch was being enqueued."""

    code = "broker_unavailable"
    http_status = 503


class ServiceError(OVPError):
    """A local service (Neo4j, Redis) could not be installed, started or stopped."""

    code = "service_error"


class SourceValidationError(OVPError):
    """A terminology source failed validation; nothing was written."""

    code = "source_invalid"
    http_status = 422


class ManifestError(OVPError):
    """A batch manifest is malformed; carries every problem found, by line."""

    code = "manifest_invalid"
    http_status = 422

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None) -> None:
        self.problems = list(problems or [])
        super().__init__(message, hint=hint)


class VideoDecodeError(OVPError):
    """A video file cannot be decoded (corrupt, truncated, not a video, no video stream)."""

    code = "video_decode_error"
    http_status = 422


class MediaRefused(VideoDecodeError):
    """A video file that is not opened at all: outside the allowed folders, not a regular file, or too large."""

    code = "media_refused"


class BatchExists(OVPError):
    """A submission names a batch id that is already in the graph."""

    code = "batch_exists"
    http_status = 409


class ModelNotFound(OVPError):
    """A model directory or weights file is missing or incomplete."""

    code = "model_not_found"
    http_status = 503
