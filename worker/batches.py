"""Starting a batch: validate the manifest, record the batch and every video, fan the videos out in chunks."""
from __future__ import annotations

import logging
import uuid
from typing import Any, Callable, Sequence

from fusion.manifest import VideoEntry, parse_manifest_objects
from kg_builder.graph import Graph
from worker.chunks import video_meta
from worker.writeback import create_batch

log = logging.getLogger(__name__)


def new_batch_id() -> str:
    return uuid.uuid4().hex


def parse_batch_manifest(manifest: Sequence[dict[str, Any]], batch_id: str) -> list[VideoEntry]:
    """Validate a manifest given as JSON objects (API body, task argument).

    Raises:
        ManifestError: every problem, by line (1-based position in the list).
    """
    return parse_manifest_objects(list(enumerate(manifest, start=1)), origin=f"batch {batch_id}")


def entry_objects(entries: Sequence[VideoEntry]) -> list[dict[str, Any]]:
    """Entries as JSON objects with absolute paths, for task arguments (JSON serialisation only)."""
    return [entry.to_json_dict(base_dir=None) for entry in entries]


def chunked(entries: Sequence[VideoEntry], size: int) -> list[list[VideoEntry]]:
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [list(entries[i : i + size]) for i in range(0, len(entries), size)]


def start_batch(
    graph: Graph,
    batch_id: str,
    entries: Sequence[VideoEntry],
    *,
    chunk_size: int,
    enqueue: Callable[[str, list[dict[str, Any]]], None],
) -> list[list[VideoEntry]]:
    """Record the batch and its videos (status 'queued'), then hand each chunk to ``enqueue``; returns the chunks.

    Recording comes first, so a submitted video is in the graph before any worker touches it.
    """
    create_batch(graph, batch_id, [video_meta(e) for e in entries])
    chunks = chunked(entries, chunk_size)
    for chunk in chunks:
        enqueue(batch_id, entry_objects(chunk))
    log.info("batch %s: %d videos in %d chunks of up to %d", batch_id, len(entries), len(chunks), chunk_size)
    return chunks
