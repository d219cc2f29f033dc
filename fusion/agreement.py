"""Agreement between reviewers, and between the model and the reviewers' consensus, per rating scale.

Statistics (each with the number of pairs it rests on):

- **GQS** (ordinal 1–5): Cohen's kappa with quadratic weights (Cohen 1968), the statistic ophthalmic video studies
  report for GQS; also exact agreement.
- **DISCERN** (5 yes/no items) and **JAMA** (4 yes/no criteria): Cohen's kappa and percent agreement over every item
  of every pair (items pooled, so a pair of ratings gives 5 or 4 paired answers).
- **Diseases**: for each pair, every disease either rating listed (or the model predicted) is one yes/no decision per
  side; kappa and percent agreement over those decisions. A pair where either side gave no disease labels is left out.

Between reviewers, every pair of reviewers who rated the same video (their latest ratings) is one pair: with more
than two reviewers per video the kappa is a pooled pairwise kappa. Between the model and the consensus, each rated
video with a profile is one pair (the model has no DISCERN or JAMA, so those rows say n/a).

Kappa is undefined (None) when the expected agreement is 1 (every answer the same on both sides); percent agreement
is still given.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from fusion.consensus import consensus
from kg_builder.store.ratings import VideoRatings

GQS_LEVELS = (1, 2, 3, 4, 5)
SCALES = ("gqs", "discern", "jama", "diseases")


def weighted_kappa(a: Sequence[int], b: Sequence[int], levels: Sequence[int] = GQS_LEVELS,
                   weights: str = "quadratic") -> float | None:
    """Cohen's weighted kappa of two equally long sequences of ordinal grades (None when undefined).

    ``weights``: ``"quadratic"``, ``"linear"`` or ``"none"`` (unweighted Cohen's kappa).

    Raises:
        ValueError: different lengths, a grade outside ``levels``, or an unknown weighting.
    """
    if len(a) != len(b):
        raise ValueError(f"the two raters have {len(a)} and {len(b)} grades; they must be paired")
    if not a:
        return None
    index = {level: i for i, level in enumerate(levels)}
    unknown = sorted({x for x in list(a) + list(b) if x not in index}, key=str)
    if unknown:
        raise ValueError(f"grades {unknown} are not among the levels {list(levels)}")
    k = len(levels)
    observed = np.zeros((k, k))
    for x, y in zip(a, b):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    i, j = np.indices((k, k))
    if weights == "quadratic":
        w = (i - j) ** 2 / (k - 1) ** 2
    elif weights == "linear":
        w = np.abs(i - j) / (k - 1)
    elif weights == "none":
        w = (i != j).astype(float)
    else:
        raise ValueError(f"weights must be quadratic, linear or none, got {weights!r}")
    disagreement_expected = float((w * expected).sum())
    if disagreement_expected <= 1e-12:
        return None
    return 1.0 - float((w * observed).sum()) / disagreement_expected


def binary_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two paired yes/no sequences (None when undefined)."""
    return weighted_kappa([int(x) for x in a], [int(y) for y in b], levels=(0, 1), weights="none")


def percent_agreement(a: Sequence[object], b: Sequence[object]) -> float | None:
    """The share of pairs that agree exactly (None for no pairs)."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} and {len(b)} answers; they must be paired")
    if not a:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)


@dataclass(frozen=True)
class ScaleAgreement:
    """Agreement on one scale: the statistic's name and value (None = undefined or no data), percent agreement, the
    number of pairs (rating pairs, or videos for model vs consensus) and of paired answers."""

    scale: str
    statistic: str
    value: float | None
    percent: float | None
    pairs: int
    answers: int


@dataclass(frozen=True)
class AgreementReport:
    """Between reviewers and between the model and the consensus, one row per scale; ``videos`` rated videos."""

    reviewers: tuple[ScaleAgreement, ...]
    model: tuple[ScaleAgreement, ...]
    videos: int
    double_rated: int


def _disease_decisions(x: Sequence[str], y: Sequence[str]) -> tuple[list[bool], list[bool]]:
    union = sorted(set(x) | set(y))
    return [d in x for d in union], [d in y for d in union]


def _gqs_row(a: list[int], b: list[int], pairs: int) -> ScaleAgreement:
    return ScaleAgreement("gqs", "quadratic-weighted kappa", weighted_kappa(a, b), percent_agreement(a, b), pairs, len(a))


def _binary_row(scale: str, a: list[bool], b: list[bool], pairs: int) -> ScaleAgreement:
    return ScaleAgreement(scale, "Cohen's kappa", binary_kappa(a, b), percent_agreement(a, b), pairs, len(a))


def _none_row(scale: str) -> ScaleAgreement:
    return ScaleAgreement(scale, "n/a (the model does not rate it)", None, None, 0, 0)


def between_reviewers(rated: Sequence[VideoRatings]) -> tuple[ScaleAgreement, ...]:
    """Every scale's agreement over every pair of reviewers who rated the same video."""
    gqs_a: list[int] = []
    gqs_b: list[int] = []
    answers: dict[str, tuple[list[bool], list[bool]]] = {s: ([], []) for s in ("discern", "jama", "diseases")}
    pairs = {s: 0 for s in SCALES}
    for video in rated:
        for x, y in combinations(video.ratings, 2):
            gqs_a.append(x.gqs)
            gqs_b.append(y.gqs)
            pairs["gqs"] += 1
            for scale in ("discern", "jama"):
                left, right = getattr(x, scale), getattr(y, scale)
                if left is not None and right is not None:
                    answers[scale][0].extend(left)
                    answers[scale][1].extend(right)
                    pairs[scale] += 1
            if x.diseases is not None and y.diseases is not None:
                left_d, right_d = _disease_decisions(x.diseases, y.diseases)
                answers["diseases"][0].extend(left_d)
                answers["diseases"][1].extend(right_d)
                pairs["diseases"] += 1
    return (
        _gqs_row(gqs_a, gqs_b, pairs["gqs"]),
        *(_binary_row(s, *answers[s], pairs[s]) for s in ("discern", "jama", "diseases")),
    )


def model_vs_consensus(rated: Sequence[VideoRatings]) -> tuple[ScaleAgreement, ...]:
    """GQS and diseases of each rated, profiled video's latest profile against the reviewers' consensus."""
    model_q: list[int] = []
    agreed_q: list[int] = []
    model_d: list[bool] = []
    agreed_d: list[bool] = []
    disease_pairs = 0
    for video in rated:
        if video.model_quality is None or not video.ratings:
            continue
        agreed = consensus(video.ratings)
        model_q.append(int(video.model_quality))
        agreed_q.append(agreed.gqs)
        if agreed.diseases is not None:
            left, right = _disease_decisions(video.model_diseases, agreed.diseases)
            model_d.extend(left)
            agreed_d.extend(right)
            disease_pairs += 1
    return (
        _gqs_row(model_q, agreed_q, len(model_q)),
        _none_row("discern"),
        _none_row("jama"),
        _binary_row("diseases", model_d, agreed_d, disease_pairs),
    )


def agreement_report(rated: Sequence[VideoRatings]) -> AgreementReport:
    """Both tables for the videos' latest ratings per reviewer."""
    return AgreementReport(
        reviewers=between_reviewers(rated),
        model=model_vs_consensus(rated),
        videos=len(rated),
        double_rated=sum(1 for v in rated if len(v.ratings) >= 2),
    )

