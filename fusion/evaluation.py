"""Evaluation of a fusion model on labelled items: the task metrics, the plots that go with a trained model, and
``evaluate_on_manifest`` (what ``ovp evaluate`` calls)."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from encoders.device import torch_threads
from fusion import metrics as M
from fusion.features import FeatureSettings, manifest_features
from fusion.inference import FUSION_THREADS, load_model
from fusion.records import LabelMap, Prediction, VideoFeatures
from fusion.splits import DataSplit
from ovp.settings import Settings

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    """Anything that predicts profiles (``fusion.inference.LoadedModel``, ``TrainResult.predictor``)."""

    label_map: LabelMap

    def predict(self, items: Sequence[VideoFeatures]) -> list[Prediction]: ...


def score_predictions(
    items: Sequence[VideoFeatures], predictions: Sequence[Prediction], label_map: LabelMap, threshold: float = 0.5
) -> dict[str, Any]:
    """Task metrics of ``predictions`` against the labels of ``items`` (same order), each task over its labelled items.

    Returns ``{"disease": {...}, "popularity": {...}, "quality": {..., "confusion": 5×5 list}, "score": float}``;
    a task the predictions do not cover, or with no labelled item, is left out. ``score`` is
    ``metrics.validation_score`` (macro-F1 + Spearman + QWK). Plain floats and lists only: it is written as JSON.

    Raises:
        ValueError: the two sequences differ in length or in video ids.
    """
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions")
    for it, pr in zip(items, predictions):
        if it.video_id != pr.video_id:
            raise ValueError(f"item {it.video_id!r} is paired with the prediction for {pr.video_id!r}")
    result: dict[str, Any] = {}
    arrays = labelled_arrays(items, predictions, label_map)
    if "disease" in arrays:
        _, y_true, probs = arrays["disease"]
        rule = disease_rule(items, predictions)
        # rule_added: videos whose one predicted label is there by the at-least-one rule (below ``threshold``).
        result["disease"] = {**M.disease_metrics(y_true, probs, threshold, rule), "n": len(y_true),
                             "rule_added": int((rule & ~(probs >= threshold).any(axis=1)).sum())}
    if "popularity" in arrays:
        _, y_true, pred = arrays["popularity"]
        result["popularity"] = {**M.popularity_metrics(y_true, pred), "n": len(y_true)}
    if "quality" in arrays:
        _, y_true, pred = arrays["quality"]
        result["quality"] = {
            **M.quality_metrics(y_true, pred),
            "n": len(y_true),
            "confusion": M.quality_confusion(y_true, pred).tolist(),
        }
    result["score"] = M.validation_score(result)
    return result


def labelled_arrays(
    items: Sequence[VideoFeatures], predictions: Sequence[Prediction], label_map: LabelMap
) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """Per task, ``(video ids, truth, prediction)`` over the items labelled for it whose prediction covers it (same
    order as ``items``): disease N × C 0/1 labels and probabilities in label-map order, popularity targets and
    predictions, quality levels and predicted levels. A task with no such item is left out. What
    ``score_predictions`` scores and the ablation's bootstrap resamples."""
    out: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    pairs = _disease_pairs(items, predictions)
    if pairs and len(label_map):
        out["disease"] = ([it.video_id for it, _ in pairs],
                          np.stack([label_map.encode(it.diseases or [])[0] for it, _ in pairs]),
                          np.array([[pr.disease_probs[d] for d in label_map.disease_ids] for _, pr in pairs]))
    for task, dtype in (("popularity", float), ("quality", int)):
        pairs = [(it, pr) for it, pr in zip(items, predictions)
                 if getattr(it, task) is not None and getattr(pr, task) is not None]
        if pairs:
            out[task] = ([it.video_id for it, _ in pairs], np.array([getattr(it, task) for it, _ in pairs], dtype),
                         np.array([getattr(pr, task) for _, pr in pairs], dtype))
    return out


def disease_rule(items: Sequence[VideoFeatures], predictions: Sequence[Prediction]) -> np.ndarray:
    """Per row of ``labelled_arrays``' disease arrays (same pairs, same order), whether the prediction's model applies
    the at-least-one rule (``Prediction.at_least_one``)."""
    return np.array([pr.at_least_one for _, pr in _disease_pairs(items, predictions)], dtype=bool)


def _disease_pairs(items: Sequence[VideoFeatures],
                   predictions: Sequence[Prediction]) -> list[tuple[VideoFeatures, Prediction]]:
    """The (item, prediction) pairs disease metrics cover: the item is disease-labelled and the prediction has disease
    probabilities."""
    return [(it, pr) for it, pr in zip(items, predictions) if it.diseases is not None and pr.disease_probs]


def evaluate(model: Predictor, items: Sequence[VideoFeatures], threshold: float = 0.5) -> dict[str, Any]:
    """Predict ``items`` with ``model`` and score the predictions (see ``score_predictions`` for the returned dict)."""
    predictions = model.predict(items)
    result = score_predictions(items, predictions, model.label_map, threshold)
    logger.info("evaluated %d items: score %.3f", len(items), result["score"])
    return result


def write_plots(
    out_dir: Path,
    *,
    history: Sequence[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    title_note: str = "",
) -> list[Path]:
    """Write ``learning_curves.png`` (from per-epoch ``history`` records) and ``quality_confusion.png`` (from
    ``metrics["quality"]["confusion"]``) into ``out_dir``; either is skipped when its input is missing.

    ``title_note`` (e.g. "SYNTHETIC data") is appended to each title. Returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    suffix = f" ({title_note})" if title_note else ""

    if history:
        epochs = [h["epoch"] for h in history]
        fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
        ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train total")
        for task in sorted({t for h in history for t in h.get("task_losses", {})}):
            ax_loss.plot(epochs, [h.get("task_losses", {}).get(task, np.nan) for h in history], "--", label=task)
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss")
        ax_loss.set_title("training loss" + suffix)
        ax_loss.legend()
        ax_val.plot(epochs, [h.get("val_score", np.nan) for h in history], label="score", linewidth=2)
        for task, key in (("disease", "macro_f1"), ("popularity", "spearman"), ("quality", "qwk")):
            values = [h.get("val_metrics", {}).get(task, {}).get(key, np.nan) for h in history]
            if not all(v is None or np.isnan(v) for v in values):
                ax_val.plot(epochs, [np.nan if v is None else v for v in values], "--", label=f"{task} {key}")
        ax_val.set_xlabel("epoch")
        ax_val.set_title("validation" + suffix)
        ax_val.legend()
        fig.tight_layout()
        path = out_dir / "learning_curves.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    confusion = (metrics or {}).get("quality", {}).get("confusion")
    if confusion is not None:
        matrix = np.asarray(confusion)
        fig, ax = plt.subplots(figsize=(5, 4.5))
        im = ax.imshow(matrix, cmap="Blues")
        ticks = range(5)
        ax.set_xticks(ticks, [str(k) for k in M.QUALITY_LABELS])
        ax.set_yticks(ticks, [str(k) for k in M.QUALITY_LABELS])
        for i in ticks:
            for j in ticks:
                colour = "white" if matrix[i, j] > matrix.max() / 2 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
        ax.set_xlabel("predicted GQS")
        ax.set_ylabel("true GQS")
        ax.set_title("quality confusion" + suffix)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        path = out_dir / "quality_confusion.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: JSON has no NaN, and metrics that are undefined on a
    split are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON to ``path`` (its folder created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def evaluate_on_manifest(
    manifest: Path,
    model_dir: Path,
    settings: Settings,
    *,
    split: str = "test",
    out_dir: Path | None = None,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a trained model on a manifest's videos: the test split recorded at training (``split="test"``), or every
    readable video (``"all"``). Writes ``metrics.json`` and the plots into ``out_dir`` (default
    ``<model_dir>/evaluation/<split>``) and returns the metrics dict (``score_predictions``' keys plus ``synthetic``,
    ``split``, ``n_videos``, ``n_failed``, ``model_version``, ``headline``, ``metrics_file``).

    Raises:
        ModelNotFound: the model directory is incomplete.
        ValueError: ``split="test"`` but the model has no ``split.json`` or none of its test ids is in the manifest.
    """
    if split not in ("test", "all"):
        raise ValueError(f"split must be 'test' or 'all', got {split!r}")
    settings = dataclasses.replace(settings, device=device) if device else settings
    model = load_model(model_dir, device=settings.device, precision=settings.fusion_precision)
    model_dir = Path(model_dir)
    fs = FeatureSettings.for_model(model_dir, settings)
    feats = manifest_features(manifest, settings, fs, progress=progress)
    items = feats.items
    if split == "test":
        split_file = model_dir / "split.json"
        if not split_file.is_file():
            raise ValueError(f"{model_dir} has no split.json (not trained by `ovp train`): evaluate with --split all")
        items = DataSplit.from_dict(json.loads(split_file.read_text(encoding="utf-8"))).select(items, "test")
        if not items:
            raise ValueError(f"none of the model's test videos is in {manifest}: evaluate with --split all")
    with torch_threads(FUSION_THREADS):
        metrics = evaluate(model, items)
    synthetic = any(it.synthetic for it in items)
    out = {
        "data": "SYNTHETIC (ovp demo-data): says nothing about real videos" if synthetic else "operator-supplied",
        "synthetic": synthetic,
        "split": split,
        "n_videos": len(items),
        "n_failed": len(feats.failures),
        "model_version": model.model_version,
        "headline": M.headline(metrics),
        **metrics,
    }
    out_dir = Path(out_dir) if out_dir is not None else model_dir / "evaluation" / split
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = out_dir / "metrics.json"
    out["metrics_file"] = str(metrics_file)
    out = json_safe(out)
    write_json(metrics_file, out)
    write_plots(out_dir, metrics=metrics, title_note="SYNTHETIC data" if synthetic else "")
    return out
