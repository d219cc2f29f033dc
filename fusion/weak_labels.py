"""Weak disease labels: the profile-label diseases a video's own text names (``ovp import ytdlp --weak-diseases``).

A video whose title, caption, hashtags or transcript link to a profile-label disease, not negated ("this is not
glaucoma" proposes nothing), is proposed as about that disease; the entry is marked ``diseases_weak`` so training
and its model card say the labels came from the linker, not from a person. The dictionary linker alone is used (no
semantic fallback): a weak label should be one a reader can see in the text. A video whose text names no label
disease stays unlabelled (``diseases`` absent), not "about none": not naming a disease is no evidence against it.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Sequence

from fusion.features import compose_text, profile_label_map
from fusion.manifest import VideoEntry
from ovp.settings import Settings

logger = logging.getLogger(__name__)


def proposed_diseases(mentions: Sequence[object], label_ids: set[str]) -> tuple[str, ...]:
    """The label diseases among ``mentions`` (objects with ``id`` and ``negated``), affirmed, in first-mention order."""
    out: list[str] = []
    for mention in mentions:
        entity = getattr(mention, "id")
        if entity in label_ids and not getattr(mention, "negated", False) and entity not in out:
            out.append(entity)
    return tuple(out)


def propose_diseases(entries: Sequence[VideoEntry], settings: Settings) -> tuple[list[VideoEntry], int]:
    """Entries with weak disease labels where their text names a label disease; returns them and how many got labels.

    Entries that already carry diseases (given by a person) are left as they are.

    Raises:
        GraphUnavailable: Neo4j cannot be reached (the linker and the label map are read from the graph).
        ValueError: the graph has no profile-label disease (build it with ``ovp kg build``).
    """
    from encoders.linking import link_mentions, load_linker
    from kg_builder.graph import Graph

    with Graph.connect(settings) as graph:
        label_ids = set(profile_label_map(graph).disease_ids)
        linker = load_linker(settings, graph, semantic=False)
    todo = [i for i, e in enumerate(entries) if e.diseases is None]
    linked = link_mentions([compose_text(entries[i]) for i in todo], linker)
    out = list(entries)
    proposed = 0
    for i, mentions in zip(todo, linked):
        diseases = proposed_diseases(mentions, label_ids)
        if diseases:
            out[i] = replace(entries[i], diseases=diseases, diseases_weak=True)
            proposed += 1
    logger.info("weak disease labels for %d of %d videos", proposed, len(entries))
    return out, proposed
