"""Diseases inferred from described phenotypes, scored by information content over the graph's annotations.

The graph annotates its diseases with phenotypes (``HAS_PHENOTYPE``, HPO's annotations and the lexicon's). Under the
true-path rule a disease annotated with a term also has every ancestor of that term (Nuclear cataract → Cataract →
Abnormality of the lens). The information content of a term is how rare it is among the annotated diseases:

    IC(t) = −ln( |diseases that have t| / |annotated diseases| )

so Strabismus (held by about 1,100 of 6,300 diseases) carries 1.7 nats and Leukocoria (a few dozen) about 5. For a
text whose affirmed mentions describe the phenotypes Q (each mention's own phenotype, or the HPO phenotype it MAPS_TO:
the lexicon's "Cataract" is a disease and the phenotype Cataract too), each disease d is scored as in Resnik's
best-match similarity (Resnik 1995; Köhler et al. 2009, "Clinical diagnostics in human genetics with semantic
similarity searches in ontologies", the Phenomizer):

    support(q, d) = max { IC(t) : t is q or an ancestor of q, and d has t }      (the most informative common term)
    S(d)          = Σ_q support(q, d)                                            (summed IC, nats)
    matched(d)    = |{ q : d has q itself }|                                     (phenotypes d has exactly)
    score(d)      = S(d) / sqrt( Σ_q IC(q) · Σ_{a ∈ annotations(d)} IC(a) )      (in [0, 1])

``score`` is an IC-weighted cosine between the text's phenotypes and the disease's: it is high only when the text
describes much of what characterises the disease and the disease explains much of what the text describes, so a
syndrome with forty annotated features is not tagged because a caption names one of them. The gates of
:class:`PhenotypeThresholds` (at least ``min_matched`` phenotypes matched exactly, at least ``min_ic`` nats summed)
keep one vague symptom ("blurred vision", under 1 nat) from tagging anything at all.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from kg_builder.store.tags import PhenotypeGraph

log = logging.getLogger(__name__)

__all__ = ["PhenotypeThresholds", "PhenotypeMatch", "PhenotypeEvidence", "PhenotypeIndex", "PhenotypeScores"]


@dataclass(frozen=True)
class PhenotypeThresholds:
    """When a disease inferred from phenotypes becomes a tag. The defaults are the F1-best point of a 432-point grid
    on the development half of the MedQuAD eye set (``bench/open_tags_eval.py --split dev --sweep``: precision 0.178,
    recall 0.069, 0.35 tags per item): consumer text rarely names three HPO phenotypes of one condition, so this
    source tags seldom, and only where the text describes a condition closely.

    Attributes:
        min_matched: phenotypes of the text the disease has exactly (itself or a more specific term).
        min_ic: summed support ``S(d)``, in nats (10: three phenotypes each held by under about 4 % of the
            annotated diseases).
        min_score: the normalised score.
        max_tags: at most this many tags per text, best score first.
    """

    min_matched: int = 3
    min_ic: float = 10.0
    min_score: float = 0.5
    max_tags: int = 3

    def __post_init__(self) -> None:
        if self.min_matched < 1:
            raise ValueError(f"min_matched must be at least 1, got {self.min_matched}")
        if self.min_ic < 0 or not 0 <= self.min_score <= 1:
            raise ValueError(f"min_ic must be >= 0 and min_score in [0, 1], got {self.min_ic}, {self.min_score}")
        if self.max_tags < 1:
            raise ValueError(f"max_tags must be at least 1, got {self.max_tags}")


@dataclass(frozen=True)
class PhenotypeEvidence:
    """How one phenotype of the text supports a disease: the term through which the disease has it (``via``: the
    phenotype itself when matched exactly, else its most informative ancestor the disease has) and that term's IC."""

    phenotype_id: str
    ic: float
    via: str
    via_ic: float

    @property
    def exact(self) -> bool:
        return self.via == self.phenotype_id


@dataclass(frozen=True)
class PhenotypeMatch:
    """One disease inferred from the text's phenotypes."""

    disease_id: str
    score: float
    summed_ic: float
    matched: int
    evidence: tuple[PhenotypeEvidence, ...]


class PhenotypeIndex:
    """The annotations as matrices: which disease has which term (true-path closure) and each term's IC.

    Args:
        phenotypes: the graph's annotations, hierarchy and HPO equivalents (:func:`kg_builder.store.tags.phenotype_graph`).

    Raises:
        ValueError: the graph has no annotation at all (build it with ``ovp kg build``).
    """

    def __init__(self, phenotypes: PhenotypeGraph) -> None:
        if not phenotypes.annotations:
            raise ValueError("the graph has no HAS_PHENOTYPE annotation — build it with `ovp kg build`")
        self._equivalents: dict[str, list[str]] = {}
        for entity, hpo in phenotypes.equivalents:
            self._equivalents.setdefault(entity, []).append(hpo)
        parents: dict[str, set[str]] = {}
        for child, parent in phenotypes.parents:
            parents.setdefault(child, set()).add(parent)
        # Annotations with a lexicon phenotype count as its HPO equivalent, so both sources share one hierarchy.
        annotations: dict[str, set[str]] = {}
        for disease, phenotype in phenotypes.annotations:
            annotations.setdefault(disease, set()).update(self.canonical(phenotype))
        terms = sorted({t for ts in annotations.values() for t in ts} | set(parents) | {p for ps in parents.values() for p in ps})
        self.term_ids: list[str] = terms
        self._term_index = {t: i for i, t in enumerate(terms)}
        self._ancestors: list[np.ndarray] = [np.asarray(sorted(self._term_index[a] for a in _ancestors(t, parents)),
                                                        dtype=np.int64) for t in terms]
        self.disease_ids: list[str] = sorted(annotations)
        self._disease_index = {d: i for i, d in enumerate(self.disease_ids)}
        has = np.zeros((len(self.disease_ids), len(terms)), dtype=bool)
        for d, ts in annotations.items():
            row = self._disease_index[d]
            for t in ts:
                has[row, self._ancestors[self._term_index[t]]] = True
        self.has = has
        self._has_t = np.ascontiguousarray(has.T)  # term rows: the scoring reads one term's diseases at a time
        counts = has.sum(axis=0)
        with np.errstate(divide="ignore"):
            # A term no disease has carries no usable information: IC 0, so it supports nothing.
            self.ic = np.where(counts > 0, -np.log(np.maximum(counts, 1) / len(self.disease_ids)), 0.0)
        self.disease_ic = np.zeros(len(self.disease_ids))
        for d, ts in annotations.items():
            self.disease_ic[self._disease_index[d]] = sum(self.ic[self._term_index[t]] for t in ts)
        log.info("phenotype index: %d annotated diseases, %d terms", len(self.disease_ids), len(terms))

    def canonical(self, entity_id: str) -> list[str]:
        """The HPO phenotypes an entity id stands for: its MAPS_TO equivalents, or itself (an HPO term, or a lexicon
        phenotype without an equivalent)."""
        return list(self._equivalents.get(entity_id, [entity_id]))

    def term_ic(self, term_id: str) -> float:
        """IC of a term in nats (0 for a term no annotated disease has, or one the graph does not know)."""
        i = self._term_index.get(term_id)
        return 0.0 if i is None else float(self.ic[i])

    def query_terms(self, entity_ids: Iterable[str]) -> list[str]:
        """The text's phenotypes from its affirmed linked entity ids: each one's HPO terms that some disease has,
        without a term that is an ancestor of another (its information is in the specific one already), sorted."""
        found = {t for e in entity_ids for t in self.canonical(e) if self.term_ic(t) > 0}
        redundant = {int(a) for t in found for a in self._ancestors[self._term_index[t]] if self.term_ids[a] != t}
        return sorted(t for t in found if self._term_index[t] not in redundant)

    def scores(self, entity_ids: Sequence[str]) -> "PhenotypeScores":
        """Every disease's support from the text's phenotypes (before any threshold)."""
        terms = self.query_terms(entity_ids)
        support = np.zeros((len(terms), len(self.disease_ids)), dtype=np.float32)
        via = np.full((len(terms), len(self.disease_ids)), -1, dtype=np.int32)
        for row, term in enumerate(terms):
            # Most informative first: each disease takes the first (rarest) of q's ancestors it has; q itself first
            # among equals, so a disease that has q matches it exactly.
            q = self._term_index[term]
            for a in sorted(self._ancestors[q], key=lambda i: (-self.ic[i], i != q)):
                take = self._has_t[a] & (via[row] < 0)
                support[row, take] = self.ic[a]
                via[row, take] = a
        exact = via == np.asarray([self._term_index[t] for t in terms], dtype=np.int32)[:, None]
        summed = support.sum(axis=0, dtype=np.float64)
        query_ic = sum(self.term_ic(t) for t in terms)
        score = np.minimum(summed / np.sqrt(max(query_ic, 1e-9) * np.maximum(self.disease_ic, 1e-9)), 1.0)
        return PhenotypeScores(self, tuple(terms), support, via, summed, exact.sum(axis=0), score)

    def match(self, entity_ids: Sequence[str], thresholds: PhenotypeThresholds) -> list[PhenotypeMatch]:
        """Diseases the text's phenotypes point to, best first, passing ``thresholds`` (at most ``max_tags``)."""
        if len(self.query_terms(entity_ids)) < thresholds.min_matched:
            return []
        return self.scores(entity_ids).select(thresholds)


@dataclass(frozen=True)
class PhenotypeScores:
    """Every disease's support from one text's phenotypes: ``support`` and ``via`` are terms × diseases (the IC a
    phenotype lends the disease and the term it goes through, −1 for none), the rest one value per disease."""

    index: PhenotypeIndex
    terms: tuple[str, ...]
    support: np.ndarray
    via: np.ndarray
    summed: np.ndarray
    matched: np.ndarray
    score: np.ndarray

    def select(self, thresholds: PhenotypeThresholds) -> list[PhenotypeMatch]:
        """The diseases that pass the gates, best score first (then summed IC, then id), at most ``max_tags``."""
        keep = np.flatnonzero((self.matched >= thresholds.min_matched) & (self.summed >= thresholds.min_ic)
                              & (self.score >= thresholds.min_score))
        # disease_ids are sorted, so a disease's index breaks ties by id
        order = keep[np.lexsort((keep, -self.summed[keep], -self.score[keep]))][: thresholds.max_tags]
        return [self._match(int(i)) for i in order]

    def _match(self, i: int) -> PhenotypeMatch:
        index = self.index
        return PhenotypeMatch(
            disease_id=index.disease_ids[i], score=round(float(self.score[i]), 4),
            summed_ic=round(float(self.summed[i]), 4), matched=int(self.matched[i]),
            evidence=tuple(PhenotypeEvidence(term, round(index.term_ic(term), 4), index.term_ids[self.via[row, i]],
                                             round(float(self.support[row, i]), 4))
                           for row, term in enumerate(self.terms) if self.via[row, i] >= 0),
        )


def _ancestors(term: str, parents: dict[str, set[str]]) -> set[str]:
    """``term`` and every term above it."""
    seen = {term}
    stack = [term]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen
