"""Search by meaning: a query's cross-lingual sentence vector and the graph entities it names, matched against the
videos' text vectors, mentions and open-vocabulary tags (the ranking is :mod:`kg_builder.store.search`).

A Chinese query finds English videos and the reverse twice over: the sentence vectors (multilingual USE) put 青光眼 and
"glaucoma" close together, and the dictionary linker links both to the same entity. Each hit says why it was found:
its cosine to the query and the query's concepts it mentions or is tagged with.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from encoders.linking import EntityLinker, link_mentions
from encoders.sentence_vectors import SentenceVectorEncoder
from kg_builder.graph import Graph
from kg_builder.store.search import Concept, concepts, search_videos, video_meaning

log = logging.getLogger(__name__)

__all__ = ["SearchConfig", "SharedConcept", "SearchHit", "SearchResult", "VideoSearch", "hit_reason"]


@dataclass(frozen=True)
class SearchConfig:
    """How search ranks and what it accepts.

    Attributes:
        entity_weight: what sharing every query concept adds to the cosine (sharing half adds half). Chosen on the
            development half of the MedQuAD eye set (``bench/search_eval.py --split dev --sweep``: recall@10 of the
            condition-name queries 0.586 with the vectors alone, 0.773 at 0.2, 0.826 at 0.5 and at 1.0) and frozen
            before its test half ran.
        candidates: nearest videos the vector index is asked for (at least ``k``).
        entity_candidates: videos taken per branch (mentions, tags) of those that share a query concept.
        max_k: the most hits one query may ask for.
        max_query_chars: the longest query accepted.
    """

    entity_weight: float = 0.5
    candidates: int = 100
    entity_candidates: int = 500
    max_k: int = 100
    max_query_chars: int = 500

    def __post_init__(self) -> None:
        if self.entity_weight < 0 or self.candidates < 1 or self.entity_candidates < 1 or self.max_k < 1:
            raise ValueError("entity_weight must be >= 0 and candidates, entity_candidates, max_k >= 1")


@dataclass(frozen=True)
class SharedConcept:
    """A query concept a hit shares, and how (``mention``: its text names it; ``tag``: its profile is tagged with it)."""

    concept: Concept
    via: tuple[str, ...]


@dataclass(frozen=True)
class SearchHit:
    """One video found, with why: the cosine of its text to the query and the query concepts it shares."""

    video_id: str
    title: str
    platform: str
    synthetic: bool
    score: float
    similarity: float
    shared: tuple[SharedConcept, ...]
    quality: int | None
    popularity_pct: float | None

    @property
    def reason(self) -> str:
        return hit_reason(self.similarity, self.shared)

    def to_json(self) -> dict[str, Any]:
        return {"video_id": self.video_id, "title": self.title, "platform": self.platform, "synthetic": self.synthetic,
                "score": round(self.score, 4), "similarity": round(self.similarity, 4),
                "shared": [{"id": s.concept.id, "name": s.concept.name, "name_zh": s.concept.name_zh, "via": list(s.via)}
                           for s in self.shared],
                "reason": self.reason, "quality": self.quality, "popularity_pct": self.popularity_pct}


@dataclass(frozen=True)
class SearchResult:
    """The query as understood (the concepts it names) and the hits, best first."""

    query: str
    concepts: tuple[Concept, ...]
    hits: tuple[SearchHit, ...]

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query,
                "concepts": [{"id": c.id, "name": c.name, "name_zh": c.name_zh, "equivalents": list(c.ids[1:])}
                             for c in self.concepts],
                "count": len(self.hits), "hits": [h.to_json() for h in self.hits]}


def hit_reason(similarity: float, shared: Sequence[SharedConcept]) -> str:
    """One line a person reads: the text's cosine to the query, then each shared concept and how it is shared."""
    parts = [f"text similarity {similarity:.2f}"]
    for s in shared:
        how = " and ".join("mentions" if v == "mention" else "tagged" for v in s.via)
        parts.append(f"{how} {s.concept.name or s.concept.id}")
    return "; ".join(parts)


class VideoSearch:
    """Search over the graph's videos.

    Args:
        graph: the knowledge graph with the videos.
        linker: links the query (the API's and the CLI's dictionary linker: fast, no BERT).
        encoder: the sentence encoder the videos' text vectors were made with.
        config: ranking and limits.
    """

    def __init__(self, graph: Graph, linker: EntityLinker, encoder: SentenceVectorEncoder,
                 config: SearchConfig | None = None) -> None:
        self.graph = graph
        self.linker = linker
        self.encoder = encoder
        self.config = config or SearchConfig()

    def check(self, k: int) -> None:
        if not 1 <= k <= self.config.max_k:
            raise ValueError(f"k must be between 1 and {self.config.max_k}, got {k}")

    def search(self, text: str, k: int = 10) -> SearchResult:
        """The ``k`` videos that best match ``text``.

        Raises:
            ValueError: ``text`` is blank or longer than ``max_query_chars``, or ``k`` is out of range.
            GraphUnavailable: Neo4j cannot be reached.
        """
        self.check(k)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the query is empty: give a few words (Chinese or English)")
        if len(text) > self.config.max_query_chars:
            raise ValueError(f"the query has {len(text)} characters; at most {self.config.max_query_chars} are accepted")
        mentions = link_mentions([text], self.linker)[0]
        found = concepts(self.graph, [m.id for m in mentions if not m.negated])
        vector = self.encoder.encode([text])[0]
        return SearchResult(text, tuple(found), tuple(self._rank(vector.tolist(), found, k, exclude=())))

    def similar(self, video_id: str, k: int = 10) -> SearchResult | None:
        """The ``k`` videos closest in meaning to a video (its text vector, its mentions and tags); None when there is
        no such video, no hits when it has no text vector (profiled without open tags).

        Raises:
            ValueError: ``k`` is out of range.
        """
        self.check(k)
        meaning = video_meaning(self.graph, video_id)
        if meaning is None:
            return None
        vector, entity_ids = meaning
        found = concepts(self.graph, entity_ids)
        if vector is None:
            return SearchResult(video_id, tuple(found), ())
        return SearchResult(video_id, tuple(found), tuple(self._rank(vector, found, k, exclude=(video_id,))))

    def _rank(self, vector: Sequence[float], found: Sequence[Concept], k: int, exclude: Sequence[str]) -> list[SearchHit]:
        c = self.config
        rows = search_videos(self.graph, vector, found, k=k, candidates=max(c.candidates, k),
                             entity_candidates=c.entity_candidates, entity_weight=c.entity_weight, exclude=exclude)
        by_id = {x.id: x for x in found}
        hits = []
        for row in rows:
            mentioned, tagged = set(row["mentioned"]), set(row["tagged"])
            shared = tuple(SharedConcept(x, tuple(v for v, s in (("mention", mentioned), ("tag", tagged)) if x.id in s))
                           for x in by_id.values() if x.id in mentioned or x.id in tagged)
            hits.append(SearchHit(row["video_id"], row["title"] or "", row["platform"] or "", bool(row["synthetic"]),
                                  float(row["score"]), float(row["similarity"]), shared, row["quality"],
                                  row["popularity_pct"]))
        return hits
