"""The video file and its keyframe thumbnails, served only from under the configured media roots
(``OVP_MEDIA_ROOTS``).

A stored path is resolved (``..`` collapsed, every symlink followed) and served only when the result is a regular file
inside one of the resolved roots; a path that names ``..`` or leaves the roots through a symlink is refused (403), so
neither a hostile manifest nor a link placed in a media folder exposes other files. Both routes are for signed-in
reviewers: anonymous visitors see what the JSON API shows (the path and URL), not the file. The player gets HTTP range
requests (seeking) from Werkzeug's conditional responses.
"""
from __future__ import annotations

import logging
from pathlib import Path, PurePath
from typing import Any

from flask import Response, abort, current_app, send_file
from flask_login import login_required

from api.context import get_settings
from api.db import get_graph
from api.pages.blueprint import bp
from api.validation import check_id
from encoders.thumbnails import DEFAULT_WIDTH, thumbnail
from kg_builder.store.reviews import video_path
from ovp.errors import VideoDecodeError
from ovp.settings import Settings

log = logging.getLogger(__name__)

#: Media types the player may be handed (anything else is served as a download-only octet stream).
VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime",
               ".mkv": "video/x-matroska", ".ogv": "video/ogg"}
#: The longest a keyframe time may be (a day): the time comes from the URL.
MAX_TIME_MS = 86_400_000


class MediaRefused(Exception):
    """The stored path is not a file under the media roots (the message says why; it is logged, not shown)."""


def media_file(settings: Settings, stored_path: str) -> Path:
    """The file ``stored_path`` names, if it is a regular file under one of the media roots.

    Raises:
        MediaRefused: no roots configured, a ``..`` component, a path outside the roots (also through a symlink),
            or not a regular file.
    """
    roots = settings.media_root_paths
    if not roots:
        raise MediaRefused("no media roots are configured (OVP_MEDIA_ROOTS)")
    if not stored_path or "\x00" in stored_path:
        raise MediaRefused("empty or malformed path")
    if ".." in PurePath(stored_path).parts:
        raise MediaRefused(f"{stored_path!r} names a parent folder ('..')")
    resolved = Path(stored_path).resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise MediaRefused(f"{stored_path!r} resolves to {resolved}, outside the media roots")
    if not resolved.is_file():
        raise MediaRefused(f"{resolved} is not a regular file")
    return resolved


def _video_file(video_id: str) -> Path:
    check_id("video id", video_id)
    stored = video_path(get_graph(), video_id)
    if stored is None:
        abort(404, description=f"no video {video_id}")
    try:
        return media_file(get_settings(), stored)
    except MediaRefused as exc:
        log.warning("media of %s refused: %s", video_id, exc)
        abort(403, description="this video's file is not under the configured media roots (OVP_MEDIA_ROOTS)")


@bp.get("/media/<video_id>")
@login_required
def media(video_id: str) -> Response:
    """The video file, with range requests (206) for seeking."""
    path = _video_file(video_id)
    mimetype = VIDEO_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return send_file(path, mimetype=mimetype, conditional=True, etag=True, max_age=3600)


@bp.get("/thumbnails/<video_id>/<int:time_ms>.jpg")
@login_required
def keyframe_thumbnail(video_id: str, time_ms: int) -> Any:
    """A JPEG of the frame at ``time_ms`` milliseconds, made on demand and cached."""
    if time_ms > MAX_TIME_MS:
        abort(404)
    path = _video_file(video_id)
    settings = get_settings()
    try:
        data = thumbnail(path, time_ms / 1000.0, cache_dir=settings.cache_dir / "thumbnails",
                         max_cache_bytes=settings.thumbnail_cache_mb * 1024 * 1024, width=DEFAULT_WIDTH,
                         timeout_s=settings.decode_timeout_s)
    except VideoDecodeError as exc:
        log.warning("thumbnail of %s at %d ms: %s", video_id, time_ms, exc)
        abort(404, description="no frame could be decoded at that time")
    response = current_app.response_class(data, mimetype="image/jpeg")
    response.cache_control.max_age = 86_400
    response.cache_control.public = True
    return response
