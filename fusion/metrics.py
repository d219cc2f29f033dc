"""Evaluation metrics for the three tasks: pure functions of numpy arrays, no model and no I/O.

Undefined values (e.g. Spearman of a constant prediction, mAP with no positive label) are ``nan``, never an exception;
``validation_score`` counts them as 0.
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, cohen_kappa_score, f1_score

from fusion.records import disease_decisions  # the decision rule lives with Prediction; metrics use it

logger = logging.getLogger(__name__)

QUALITY_LABELS = [1, 2, 3, 4, 5]


def disease_metrics(y_true: np.ndarray, probs: np.ndarray, threshold: float = 0.5,
                    at_least_one: bool | np.ndarray = False) -> dict[str, float]:
    """Multi-label disease metrics for N items × C labels, with the labels predicted by :func:`disease_decisions`.

    Returns ``micro_f1`` (over all labels), ``macro_f1`` and ``mAP`` (both averaged over the labels that have at least
    one positive item: a label absent from the evaluation set says nothing about the model), and ``n_labels_scored``.
    mAP ranks the probabilities and ignores the decision rule.
    """
    y_true = np.asarray(y_true, dtype=int)
    probs = np.asarray(probs, dtype=float)
    if y_true.shape != probs.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and probs {probs.shape} must both be N × C")
    pred = disease_decisions(probs, threshold, at_least_one).astype(int)
    scored = np.flatnonzero(y_true.sum(axis=0) > 0)
    if len(y_true) == 0 or len(scored) == 0:
        return {"micro_f1": math.nan, "macro_f1": math.nan, "mAP": math.nan, "n_labels_scored": 0}
    micro = f1_score(y_true, pred, average="micro", zero_division=0)
    per_label_f1 = f1_score(y_true[:, scored], pred[:, scored], average=None, zero_division=0)
    aps = [average_precision_score(y_true[:, j], probs[:, j]) for j in scored]
    return {
        "micro_f1": float(micro),
        "macro_f1": float(np.mean(per_label_f1)),
        "mAP": float(np.mean(aps)),
        "n_labels_scored": int(len(scored)),
    }


def popularity_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Spearman rank correlation and mean absolute error between log1p-engagement targets and predictions."""
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    pred = np.asarray(pred, dtype=float).reshape(-1)
    if len(y_true) != len(pred):
        raise ValueError(f"{len(y_true)} targets but {len(pred)} predictions")
    if len(y_true) == 0:
        return {"spearman": math.nan, "mae": math.nan}
    rho = math.nan
    if len(y_true) > 1 and np.ptp(y_true) > 0 and np.ptp(pred) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = float(spearmanr(y_true, pred).statistic)
    return {"spearman": rho, "mae": float(np.mean(np.abs(y_true - pred)))}


def popularity_percentile(value: float, reference: np.ndarray) -> float:
    """Percentile (0–100) of ``value`` among ``reference`` values (the training targets): the share at or below it."""
    reference = np.asarray(reference, dtype=float).reshape(-1)
    if len(reference) == 0:
        return math.nan
    return float(100.0 * np.mean(reference <= value))


def quality_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy, quadratic weighted kappa (over GQS 1..5) and mean absolute error in levels."""
    y_true = np.asarray(y_true, dtype=int).reshape(-1)
    pred = np.asarray(pred, dtype=int).reshape(-1)
    if len(y_true) != len(pred):
        raise ValueError(f"{len(y_true)} targets but {len(pred)} predictions")
    if len(y_true) == 0:
        return {"accuracy": math.nan, "qwk": math.nan, "mae": math.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kappa of a single-class set divides by zero; nan is the honest answer
        qwk = cohen_kappa_score(y_true, pred, labels=QUALITY_LABELS, weights="quadratic")
    return {
        "accuracy": float(np.mean(y_true == pred)),
        "qwk": float(qwk) if np.isfinite(qwk) else math.nan,
        "mae": float(np.mean(np.abs(y_true - pred))),
    }


def quality_confusion(y_true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """5 × 5 counts, rows = true GQS level, columns = predicted level."""
    matrix = np.zeros((5, 5), dtype=int)
    for t, p in zip(np.asarray(y_true, dtype=int), np.asarray(pred, dtype=int)):
        matrix[t - 1, p - 1] += 1
    return matrix


#: Each task's headline metric (the key in ``evaluate``'s output): what early stopping, head refits and tables use.
HEADLINE_METRICS: dict[str, str] = {"disease": "macro_f1", "popularity": "spearman", "quality": "qwk"}


def task_score(metrics: dict[str, dict[str, float]], task: str) -> float:
    """``task``'s headline metric from ``metrics`` (keyed by task, as ``evaluate`` returns); nan or absent counts as 0."""
    value = metrics.get(task, {}).get(HEADLINE_METRICS[task], math.nan)
    return 0.0 if value is None or not math.isfinite(value) else float(value)


def validation_score(metrics: dict[str, dict[str, float]]) -> float:
    """The early-stopping score: disease macro-F1 + popularity Spearman + quality QWK, for the tasks present.

    ``metrics`` is keyed by task ("disease", "popularity", "quality") as ``evaluate`` returns; nan counts as 0.
    """
    return sum(task_score(metrics, task) for task in HEADLINE_METRICS)


def headline(metrics: dict[str, Any]) -> dict[str, float | None]:
    """``{"disease_macro_f1", "popularity_spearman", "quality_qwk"}`` from a ``score_predictions`` dict (None = n/a):
    the numbers every table and report leads with."""
    out: dict[str, float | None] = {}
    for task, key in HEADLINE_METRICS.items():
        value = metrics.get(task, {}).get(key)
        out[f"{task}_{key}"] = float(value) if value is not None and math.isfinite(value) else None
    return out
