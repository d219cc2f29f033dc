"""Knowledge enrichment: a caption plus what the graph knows about the entities linked in it.

For a batch of captions and their :class:`encoders.linking.Mention` lists, :class:`KnowledgeEnricher` makes ONE graph
round trip (:func:`kg_builder.store.knowledge.read_entity_knowledge`) for the distinct linked entity ids and gets, per
entity: the canonical English name, the definition, the names of its IS_A parents, for phenotypes the diseases that have
it (HAS_PHENOTYPE) and, among them, the ids of the profile-label diseases, the names of its MAPS_TO neighbours and its
``gnn_embedding`` when the R-GCN has written one.

The enriched text is the caption followed by a bounded, deterministic list of annotations, one per distinct entity in
order of first mention::

    #青光眼 眼压高怎么办 [SEP] Glaucoma: A group of eye diseases that damage the optic nerve…; is a: Abnormal eye physiology; also: Glaucoma

A denied entity ("不是青光眼", "not pink eye") is annotated ``not: Glaucoma`` only: its definition would push the text
towards the very thing the caption rules out. This is how an English text encoder understands a Chinese caption: the
English names and definitions come from the graph.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from encoders.linking import Mention
from kg_builder.store.knowledge import EntityKnowledge, GraphReader, read_entity_knowledge

log = logging.getLogger(__name__)

__all__ = [
    "GNN_DIM",
    "EnrichmentConfig",
    "EntityKnowledge",
    "EnrichedText",
    "KnowledgeEnricher",
    "fetch_knowledge",
    "annotate",
    "enrich_text",
    "shorten",
]

#: Width of the ``gnn_embedding`` the R-GCN (``encoders.graph``) writes on every Entity.
GNN_DIM = 64


@dataclass(frozen=True)
class EnrichmentConfig:
    """Bounds of the enriched text (all in characters, counted on the annotations after the separator).

    Attributes:
        separator: between the caption and the annotations (``" [SEP] "`` — BERT's own separator token).
        definition_chars: a definition is cut to this many characters, at a word boundary, with "…" (default 140).
        budget_chars: all annotations together stay within this (default 360: with a 60-character Chinese caption the
            text stays under the text encoder's 256 tokens).
        max_entities: annotations per text (default 5).
        max_parents, max_diseases, max_maps_to: names listed per annotation (defaults 2, 3, 2).
    """

    separator: str = " [SEP] "
    definition_chars: int = 140
    budget_chars: int = 360
    max_entities: int = 5
    max_parents: int = 2
    max_diseases: int = 3
    max_maps_to: int = 2

    def __post_init__(self) -> None:
        for name in ("definition_chars", "budget_chars", "max_entities"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("max_parents", "max_diseases", "max_maps_to"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must not be negative")


@dataclass
class EnrichedText:
    """One caption with its annotations.

    Attributes:
        caption: the text as given.
        text: ``caption`` + separator + annotations joined by " | " (just ``caption`` when nothing was linked).
        annotations: the annotation strings in ``text``, in order of first mention.
        entity_ids: affirmed (not negated) linked entities with a GNN embedding, in order of first mention.
        gnn_embeddings: ``len(entity_ids) × GNN_DIM`` float32 (0 rows until the R-GCN has written embeddings).
        linked_ids: every distinct linked id in order of first mention (affirmed or not, with or without embedding).
        negated_ids: the linked ids every mention of which is negated.
        mentions: the mentions the caption was enriched from (what the worker writes as MENTIONS).
        related_via: the profile-label diseases that have an affirmed linked phenotype (HAS_PHENOTYPE), in order of
            first mention, each with the linked phenotypes that relate it (for explanations); its keys are
            ``related_labels``, what a caption that describes symptoms without naming a disease points to.
    """

    caption: str
    text: str
    annotations: list[str]
    entity_ids: list[str]
    gnn_embeddings: np.ndarray
    linked_ids: list[str] = field(default_factory=list)
    negated_ids: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    related_via: dict[str, list[str]] = field(default_factory=dict)

    @property
    def related_labels(self) -> list[str]:
        return list(self.related_via)


def fetch_knowledge(graph: GraphReader, ids: Sequence[str], config: EnrichmentConfig | None = None) -> dict[str, EntityKnowledge]:
    """Read :class:`EntityKnowledge` for the distinct ``ids`` in one query; ids not in the graph are absent.

    A ``gnn_embedding`` that is not :data:`GNN_DIM` finite floats is treated as missing, with a warning.

    Raises:
        GraphUnavailable: from the graph, when Neo4j cannot be reached.
    """
    config = config or EnrichmentConfig()
    knowledge = read_entity_knowledge(graph, ids, max_parents=config.max_parents, max_diseases=config.max_diseases)
    bad_embeddings = 0
    for entity_id, known in knowledge.items():
        if known.gnn_embedding is None:
            continue
        vec = np.asarray(known.gnn_embedding, dtype=np.float32).reshape(-1)
        if vec.shape != (GNN_DIM,) or not np.isfinite(vec).all():
            bad_embeddings += 1
            embedding = None
        else:
            embedding = tuple(float(x) for x in vec)
        knowledge[entity_id] = replace(known, gnn_embedding=embedding)
    if bad_embeddings:
        log.warning("%d entities have a gnn_embedding that is not %d finite floats; treated as missing", bad_embeddings, GNN_DIM)
    return knowledge


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary (CJK text anywhere), ending in "…" when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def _distinct_names(names: Sequence[str], exclude: set[str], limit: int) -> list[str]:
    kept: list[str] = []
    seen = set(exclude)
    for name in names:
        key = name.casefold()
        if key in seen:
            continue
        seen.add(key)
        kept.append(name)
        if len(kept) == limit:
            break
    return kept


def annotate(knowledge: EntityKnowledge, config: EnrichmentConfig | None = None, *, negated: bool = False) -> str:
    """One entity's annotation: ``"Name: definition; is a: …; has it: …; also: …"``, or ``"not: Name"`` when negated.

    Pure and deterministic: the same knowledge and config give the same string.
    """
    config = config or EnrichmentConfig()
    if negated:
        return f"not: {knowledge.name}"
    parts = [f"{knowledge.name}: {shorten(knowledge.definition, config.definition_chars)}" if knowledge.definition
             else knowledge.name]
    own = {knowledge.name.casefold()}
    parents = _distinct_names(knowledge.parents, own, config.max_parents)
    if parents:
        parts.append("is a: " + ", ".join(parents))
    diseases = _distinct_names(knowledge.diseases, own, config.max_diseases)
    if diseases:
        parts.append("seen in: " + ", ".join(diseases))
    also = _distinct_names(knowledge.maps_to, own | {p.casefold() for p in parents}, config.max_maps_to)
    if also:
        parts.append("also: " + ", ".join(also))
    return "; ".join(parts)


def enrich_text(
    caption: str,
    mentions: Sequence[Mention],
    knowledge: dict[str, EntityKnowledge],
    config: EnrichmentConfig | None = None,
) -> EnrichedText:
    """Enrich one caption from already-fetched ``knowledge`` (pure: no graph access).

    Distinct entities are taken in order of first mention (at most ``config.max_entities``; ids missing from
    ``knowledge`` are skipped); an entity is negated when every mention of it is. The annotations share
    ``config.budget_chars``: each in turn gets an equal share of what is left, so a long definition cannot crowd out
    the entities after it, and a short one leaves more for them.
    """
    config = config or EnrichmentConfig()
    order: list[str] = []
    affirmed: set[str] = set()
    for m in sorted(mentions, key=lambda m: (m.start, m.end)):
        if m.id not in order:
            order.append(m.id)
        if not m.negated:
            affirmed.add(m.id)
    negated_ids = [i for i in order if i not in affirmed]
    known = [i for i in order if i in knowledge][: config.max_entities]
    joiner = " | "
    annotations: list[str] = []
    left = config.budget_chars - len(joiner) * max(len(known) - 1, 0)
    for n, entity_id in enumerate(known):
        share = left // (len(known) - n)
        note = shorten(annotate(knowledge[entity_id], config, negated=entity_id not in affirmed), max(share, 1))
        annotations.append(note)
        left -= len(note)
    text = caption + config.separator + joiner.join(annotations) if annotations else caption
    entity_ids = [i for i in order if i in affirmed and i in knowledge and knowledge[i].gnn_embedding is not None]
    embeddings = (
        np.asarray([knowledge[i].gnn_embedding for i in entity_ids], dtype=np.float32)
        if entity_ids
        else np.zeros((0, GNN_DIM), dtype=np.float32)
    )
    via: dict[str, list[str]] = {}
    for i in order:
        if i in affirmed and i in knowledge:
            for d in knowledge[i].labels:
                via.setdefault(d, []).append(i)
    return EnrichedText(
        caption=caption,
        text=text,
        annotations=annotations,
        entity_ids=entity_ids,
        gnn_embeddings=embeddings,
        linked_ids=order,
        negated_ids=negated_ids,
        mentions=list(mentions),
        related_via=via,
    )


class KnowledgeEnricher:
    """Enriches batches of linked captions with one graph round trip per batch.

    Args:
        graph: anything with ``read(query, params) -> list[dict]`` (``kg_builder.graph.Graph``).
        config: the text bounds (defaults of :class:`EnrichmentConfig`).
    """

    def __init__(self, graph: GraphReader, config: EnrichmentConfig | None = None) -> None:
        self.graph = graph
        self.config = config or EnrichmentConfig()

    def run(self, captions: Sequence[str], mentions: Sequence[Sequence[Mention]]) -> list[EnrichedText]:
        """One :class:`EnrichedText` per caption, in order.

        Raises:
            ValueError: ``captions`` and ``mentions`` differ in length.
            GraphUnavailable: Neo4j cannot be reached.
        """
        if len(captions) != len(mentions):
            raise ValueError(f"{len(captions)} captions but {len(mentions)} mention lists")
        ids = {m.id for ms in mentions for m in ms}
        knowledge = fetch_knowledge(self.graph, sorted(ids), self.config)
        missing = ids - set(knowledge)
        if missing:
            log.warning("%d linked ids are not in the graph (e.g. %s); not annotated", len(missing), sorted(missing)[0])
        with_embedding = sum(1 for k in knowledge.values() if k.gnn_embedding is not None)
        log.debug("enrichment: %d distinct entities, %d with a GNN embedding", len(knowledge), with_embedding)
        return [enrich_text(c, ms, knowledge, self.config) for c, ms in zip(captions, mentions)]
