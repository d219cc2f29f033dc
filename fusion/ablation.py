"""The ablation study: the full model against variants that each remove one part, trained and scored alike.

Ablation variants (:data:`VARIANTS`), each trained on the same training split with the same seed and scored on the same
test split (or cross-fitted over K folds):

=================  =====================================================================================================
``full``           cross-modal attention over keyframes, enriched-caption tokens, entity GNN embeddings and metadata
``no_enrichment``  the same model, text = caption only (no graph annotations)
``no_gnn``         the same model without the linked entities' GNN embeddings (``use_graph=False``)
``no_visual``      no keyframes (cross-attention needs frames, so this one fuses by concatenation)
``no_text``        no token states
``concat``         concatenation of pooled modalities instead of cross-attention
``single_task``    one model per task instead of the three jointly trained heads
=================  =====================================================================================================

The target is non-inferiority (:meth:`AblationReport.non_inferiority`): the full model is never clearly worse than an
ablation, i.e. no full − variant difference of a headline metric lies more than :data:`NOISE_MARGIN_SE` standard
errors of the seed mean below zero. Every report leads with that reading.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from encoders.device import torch_threads
from fusion import metrics as M
from fusion.config import TASKS, FusionConfig
from fusion.evaluation import labelled_arrays, score_predictions
from fusion.features import ManifestFeatures, feature_settings_for, manifest_features
from fusion.inference import FUSION_THREADS
from fusion.metrics import HEADLINE_METRICS, headline, validation_score
from fusion.records import LabelMap, VideoFeatures
from fusion.splits import SPLITS, DataSplit, fold_splits, split_ids
from fusion.training import train
from ovp.settings import Settings

logger = logging.getLogger(__name__)

#: The one metric per task every table reports: (task, metric key in ``score_predictions``' output).
HEADLINE: tuple[tuple[str, str], ...] = tuple(HEADLINE_METRICS.items())
#: How many standard errors of the seed mean a full − variant difference must clear to count as a win or a loss in
#: ``AblationReport.verdicts`` (about a 95 % two-sided band for a normal mean).
NOISE_MARGIN_SE = 2.0

VARIANTS: dict[str, str] = {
    "full": "cross-attention over visual + enriched text + GNN entities + metadata, three joint heads",
    "no_enrichment": "text = caption only, no graph annotations",
    "no_gnn": "no GNN embeddings of the linked entities",
    "no_visual": "no keyframes (concat fusion: cross-attention needs frames)",
    "no_text": "no token states",
    "concat": "concatenation of pooled modalities instead of cross-attention",
    "single_task": "one model per task instead of joint heads",
}


@dataclass
class VariantResult:
    """One variant's test metrics (``score_predictions`` output, averaged over ``seeds``), headline numbers and seconds.

    ``headline`` is the mean over seeds; ``seed_headlines`` holds each seed's headline numbers (same order as
    ``seeds``), from which :meth:`spread` is computed. ``train_s`` and ``eval_s`` are summed over seeds.
    """

    name: str
    description: str
    metrics: dict[str, Any]
    headline: dict[str, float | None]
    train_s: float
    eval_s: float
    best_epochs: list[int]
    seeds: list[int]
    seed_headlines: list[dict[str, float | None]] = field(default_factory=list)
    # Per trained model (same order as ``best_epochs``), the head-refit epoch kept per task ({} without a refit stage).
    refit_kept: list[dict[str, int]] = field(default_factory=list)
    # Per seed, every scored video's labels and predictions ({task: (video ids, truth, prediction)}, see
    # ``fusion.evaluation.labelled_arrays``): what :func:`paired_bootstrap` resamples. In JSON only on request.
    scored: list[dict[str, tuple[list[str], Any, Any]]] = field(default_factory=list, repr=False)
    # Whether its disease models applied the at-least-one rule (``FusionConfig.disease_at_least_one``): the bootstrap
    # decides as ``score_predictions`` did. A variant's models share the rule (they train on the same labels).
    disease_at_least_one: bool = False

    def spread(self) -> dict[str, float | None]:
        """Per headline metric, the sample standard deviation over seeds (None with fewer than two seeds or values)."""
        out: dict[str, float | None] = {}
        for key in self.headline:
            values = [h[key] for h in self.seed_headlines if h.get(key) is not None]
            out[key] = float(statistics.stdev(values)) if len(values) > 1 else None
        return out

    def to_dict(self, predictions: bool = False) -> dict[str, Any]:
        """Plain JSON data; with ``predictions`` also ``scored`` (per seed and task: ids, truth, prediction lists),
        which :meth:`from_dict` reads back so reports of several processes can be merged and bootstrapped."""
        out = copy.deepcopy({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "scored"})
        if predictions:
            out["scored"] = [{task: {"ids": list(ids), "truth": np.asarray(truth).tolist(),
                                     "prediction": np.asarray(guess).tolist()}
                              for task, (ids, truth, guess) in seed.items()} for seed in self.scored]
        return {**out, "spread": self.spread()}

    @classmethod
    def combined(cls, parts: Sequence["VariantResult"]) -> "VariantResult":
        """One result from runs of the same variant over disjoint seeds (processes that shared the seeds of one
        ablation), in seed order: the per-seed and per-model lists joined, the metrics averaged over every seed, the
        seconds summed.

        Raises:
            ValueError: no part, parts of different variants, or a seed in more than one part.
        """
        if not parts:
            raise ValueError("nothing to combine")
        names = {part.name for part in parts}
        if len(names) > 1:
            raise ValueError(f"cannot combine different variants: {', '.join(sorted(names))}")
        seeds = [seed for part in parts for seed in part.seeds]
        twice = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if twice:
            raise ValueError(f"variant {parts[0].name} appears with seed(s) {', '.join(map(str, twice))} in more than "
                             "one report")
        if len(parts) == 1:
            return parts[0]
        per_seed: dict[int, dict[str, Any]] = {}
        for part in parts:
            models = len(part.best_epochs) // len(part.seeds)  # per seed: one per fold (and per task, single-task)
            for k, seed in enumerate(part.seeds):
                chunk = slice(k * models, (k + 1) * models)
                per_seed[seed] = {
                    "headline": part.seed_headlines[k] if part.seed_headlines else None,
                    "scored": part.scored[k] if part.scored else None,
                    "best_epochs": part.best_epochs[chunk],
                    "refit_kept": part.refit_kept[chunk] if part.refit_kept else [],
                }
        order = sorted(per_seed)
        # Each part's metrics are its seeds' mean: repeating them once per seed makes the average every seed's mean.
        metrics = _mean_metrics([part.metrics for part in parts for _ in part.seeds])
        return cls(
            name=parts[0].name, description=parts[0].description, metrics=metrics, headline=headline(metrics),
            train_s=sum(part.train_s for part in parts), eval_s=sum(part.eval_s for part in parts),
            best_epochs=[e for seed in order for e in per_seed[seed]["best_epochs"]], seeds=order,
            seed_headlines=[per_seed[seed]["headline"] for seed in order if per_seed[seed]["headline"] is not None],
            refit_kept=[r for seed in order for r in per_seed[seed]["refit_kept"]],
            scored=[per_seed[seed]["scored"] for seed in order if per_seed[seed]["scored"] is not None],
            disease_at_least_one=all(part.disease_at_least_one for part in parts),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VariantResult":
        names = {f.name for f in dataclasses.fields(cls)} - {"scored"}
        scored = [{task: (list(d["ids"]), np.asarray(d["truth"]), np.asarray(d["prediction"]))
                   for task, d in seed.items()} for seed in data.get("scored", [])]
        return cls(**{k: v for k, v in data.items() if k in names}, scored=scored)


@dataclass
class AblationReport:
    """Every variant on one split; ``synthetic`` is True when any item is synthetic (every rendering then says so)."""

    seed: int
    seeds: list[int]
    synthetic: bool
    sizes: dict[str, int]
    variants: list[VariantResult] = field(default_factory=list)
    eval_split: str = "test"  # "val" while choosing training options (see ``run_ablation``)
    split_per_seed: bool = False  # each seed its own train/val/test split (``sizes`` are seed ``seeds[0]``'s)
    folds: int | None = None  # K-fold cross-fitting: each seed's metrics are over all K test folds pooled
    _bootstrap_memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self, predictions: bool = False) -> dict[str, Any]:
        """Plain JSON data, the target's reading first (``predictions``: each variant's pooled predictions too, see
        ``VariantResult.to_dict``)."""
        return {
            "non_inferiority": self.target(),
            "data": "SYNTHETIC (ovp demo-data): says nothing about real videos" if self.synthetic else "operator-supplied",
            "synthetic": self.synthetic,
            "seed": self.seed,
            "seeds": self.seeds,
            "sizes": self.sizes,
            "eval_split": self.eval_split,
            "split_per_seed": self.split_per_seed,
            "variants": {v.name: v.to_dict(predictions) for v in self.variants},
            "folds": self.folds,
            "full_wins": self.full_wins(),
            "full_minus_variant_per_seed": self.paired(),
            "full_minus_variant_verdicts": self.verdicts(),
            **({"full_minus_variant_bootstrap": self.bootstrap()} if self.folds else {}),
        }

    @classmethod
    def merged(cls, parts: Sequence[dict[str, Any]]) -> "AblationReport":
        """One report from the ``to_dict(predictions=True)`` data of reports that trained parts of the same ablation
        (the same split or folds and features): processes that shared the variants, the training seeds, or both. A
        variant run over several parts' seeds becomes one result (:meth:`VariantResult.combined`). Variants in the
        order of :data:`VARIANTS`.

        Raises:
            ValueError: no part, the parts differ in folds, split or sizes, a variant appears twice with one seed, or
                the variants end up with different seeds (a table compares them seed by seed).
        """
        if not parts:
            raise ValueError("nothing to merge")
        keys = ("seed", "sizes", "eval_split", "split_per_seed", "folds", "synthetic")
        first = parts[0]
        for part in parts[1:]:
            differ = [k for k in keys if part.get(k) != first.get(k)]
            if differ:
                raise ValueError(f"the reports were not made on the same ablation: they differ in {', '.join(differ)}")
        found: dict[str, list[VariantResult]] = {}
        for part in parts:
            for name, data in part["variants"].items():
                found.setdefault(name, []).append(VariantResult.from_dict(data))
        variants = [VariantResult.combined(found[name]) for name in VARIANTS if name in found]
        seeds = sorted({seed for v in variants for seed in v.seeds})
        short = [f"{v.name} lacks seed(s) {', '.join(str(s) for s in seeds if s not in v.seeds)}"
                 for v in variants if v.seeds != seeds]
        if short:
            raise ValueError(f"the variants were not all run with the same seeds: {'; '.join(short)}")
        report = cls(**{k: first[k] for k in keys}, seeds=seeds)
        report.variants = variants
        return report

    def bootstrap(self, resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, dict[str, float | None]]]:
        """Per other variant, :func:`paired_bootstrap` of ``full`` against it (empty without a ``full`` variant)."""
        full = next((v for v in self.variants if v.name == "full"), None)
        if full is None or not full.scored:
            return {}
        key = (resamples, seed, tuple(id(v) for v in self.variants))  # the table and the JSON ask for the same one
        if key not in self._bootstrap_memo:
            self._bootstrap_memo[key] = {v.name: paired_bootstrap(full, v, resamples, seed)
                                         for v in self.variants if v is not full and v.scored}
        return self._bootstrap_memo[key]

    def full_wins(self) -> dict[str, bool | None]:
        """Per headline metric: whether ``full`` is at least as good as every other variant (None when not comparable).

        With several seeds the comparison is between the means over seeds (``VariantResult.headline``); the spread is
        reported beside them by :meth:`table` and ``to_dict`` so a win or loss smaller than it can be read as noise.
        """
        full = next((v for v in self.variants if v.name == "full"), None)
        out: dict[str, bool | None] = {}
        for task, key in HEADLINE:
            name = f"{task}_{key}"
            mine = full.headline.get(name) if full else None
            others = [v.headline.get(name) for v in self.variants if v.name != "full"]
            others = [o for o in others if o is not None]
            out[name] = None if mine is None or not others else all(mine >= o for o in others)
        return out

    def paired(self) -> dict[str, dict[str, dict[str, float | int | None]]]:
        """Per other variant and headline metric, ``full`` minus that variant seed by seed (each seed is one split both
        were trained and scored on, so the difference is paired): ``{"mean", "sd", "full_ahead", "seeds"}`` —
        ``full_ahead`` counts the seeds where ``full`` is at least as good. Empty without a ``full`` variant or
        per-seed numbers; a metric missing on either side for a seed leaves that seed out."""
        full = next((v for v in self.variants if v.name == "full"), None)
        if full is None or not full.seed_headlines:
            return {}
        out: dict[str, dict[str, dict[str, float | int | None]]] = {}
        for v in self.variants:
            if v is full or len(v.seed_headlines) != len(full.seed_headlines):
                continue
            out[v.name] = {}
            for task, key in HEADLINE:
                name = f"{task}_{key}"
                diffs = [a[name] - b[name] for a, b in zip(full.seed_headlines, v.seed_headlines)
                         if a.get(name) is not None and b.get(name) is not None]
                out[v.name][name] = {
                    "mean": float(statistics.fmean(diffs)) if diffs else None,
                    "sd": float(statistics.stdev(diffs)) if len(diffs) > 1 else None,
                    "full_ahead": sum(d >= 0 for d in diffs),
                    "seeds": len(diffs),
                }
        return out

    def verdicts(self, margin_se: float = NOISE_MARGIN_SE) -> dict[str, Any]:
        """Each comparison of :meth:`paired` read against the noise between training seeds.

        A difference is a ``"win"`` when its mean over seeds is more than ``margin_se`` standard errors (sd over seeds
        / √seeds) above 0, a ``"loss"`` when that far below, else ``"within noise"``. Returns
        ``{"margin_se", "comparisons": {variant: {metric: {"mean", "se", "verdict"}}}, "at_least_as_good",
        "clear_wins", "clear_losses", "within_noise", "total"}``; empty with fewer than two seeds, where there is no
        spread to read the differences against.

        The target (:meth:`non_inferiority`) is read from these. :meth:`full_wins` (the mean at least as good, however
        small the gap) is reported beside it but decides nothing: on a task where a removed part carries nothing, the
        two variants tie and that plain reading depends on which side of the tie the seeds land.
        """
        comparisons: dict[str, dict[str, dict[str, Any]]] = {}
        counts = {"at_least_as_good": 0, "clear_wins": 0, "clear_losses": 0, "within_noise": 0, "total": 0}
        for name, metrics in self.paired().items():
            comparisons[name] = {}
            for metric, d in metrics.items():
                if d["mean"] is None or d["sd"] is None:
                    continue
                se = d["sd"] / math.sqrt(d["seeds"])
                verdict = ("win" if d["mean"] > margin_se * se else
                           "loss" if d["mean"] < -margin_se * se else "within noise")
                comparisons[name][metric] = {"mean": d["mean"], "se": se, "verdict": verdict}
                counts["total"] += 1
                counts["at_least_as_good"] += d["mean"] >= 0
                counts[{"win": "clear_wins", "loss": "clear_losses", "within noise": "within_noise"}[verdict]] += 1
        if not counts["total"]:
            return {}
        return {"margin_se": margin_se, "comparisons": comparisons, **counts}

    def non_inferiority(self, margin_se: float = NOISE_MARGIN_SE) -> dict[str, Any]:
        """The ablation's target, read against the noise between training seeds: the full model is never clearly worse
        than an ablation — no full − variant difference of a headline metric more than ``margin_se`` standard errors
        of the seed mean below zero (:meth:`verdicts`).

        Returns ``{"met", "margin_se", "comparisons", "clear_losses": [{"variant", "metric", "mean", "se"}]}``;
        ``met`` is None with fewer than two seeds (there is no spread to read a gap against), else whether there is
        no clear loss.
        """
        read = self.verdicts(margin_se)
        losses = [{"variant": name, "metric": metric, "mean": c["mean"], "se": c["se"]}
                  for name, metrics in read.get("comparisons", {}).items() for metric, c in metrics.items()
                  if c["verdict"] == "loss"]
        return {"met": (not losses) if read else None, "margin_se": margin_se,
                "comparisons": read.get("total", 0), "clear_losses": losses}

    def target_line(self) -> str:
        """One line: the non-inferiority target and whether this report meets it (what ``table`` starts with)."""
        read = self.non_inferiority()
        target = (f"target: the full model is never clearly worse than an ablation (by more than {read['margin_se']:g} "
                  "standard errors of the seed mean)")
        if read["met"] is None:
            verdict = "not judged: it needs two or more training seeds (--seeds)"
        elif read["met"]:
            verdict = f"MET: no clear loss in {read['comparisons']} comparisons"
        else:
            verdict = (f"NOT MET: {len(read['clear_losses'])} clear loss(es) in {read['comparisons']} comparisons: "
                       + "; ".join(f"{c['variant']} {c['metric']} {c['mean']:+.3f} (se {c['se']:.3f})"
                                   for c in read["clear_losses"]))
        return ("SYNTHETIC data — " if self.synthetic else "") + f"{target} — {verdict}"

    def target(self) -> dict[str, Any]:
        """:meth:`non_inferiority` with its one-line reading (``"reading"``, SYNTHETIC-labelled where it applies): what
        every report leads with."""
        return {"reading": self.target_line(), **self.non_inferiority()}

    def table(self) -> str:
        """The target's reading (:meth:`target_line`), then a plain-text table: one row per variant, the headline
        metrics on the test split (mean ± standard deviation over seeds when there are several), disease mAP and
        popularity MAE, and seconds; then the paired differences and their readings."""
        where = (f"{self.folds}-fold cross-fitting ({self.sizes.get('all', 0)} videos, each tested once per seed, pooled; "
                 f"each fold trained on about {self.sizes.get('train', 0)} and validated on {self.sizes.get('val', 0)}"
                 if self.folds else
                 f"the {self.eval_split} split ({self.sizes.get(self.eval_split, 0)} videos; trained on "
                 f"{self.sizes.get('train', 0)}, validated on {self.sizes.get('val', 0)}")
        title = ("SYNTHETIC data — " if self.synthetic else "") + (
            f"ablation on {where}; seeds {','.join(map(str, self.seeds))}"
            + ("; each seed its own split" if self.split_per_seed and not self.folds else "")
            + ("; mean ± sd over seeds" if len(self.seeds) > 1 else "") + ")"
        )
        header = (f"{'variant':<15} {'disease macro-F1':>17} {'popularity Spearman':>20} {'quality QWK':>14} "
                  f"{'mAP':>6} {'pop MAE':>8} {'train s':>8}")
        lines = [self.target_line(), "", title, header, "-" * len(header)]

        def cell(value: float | None, sd: float | None) -> str:
            if value is None:
                return "n/a"
            return f"{value:.3f}" + (f"±{sd:.3f}" if sd is not None else "")

        def extra(v: VariantResult, task: str, key: str) -> str:
            value = v.metrics.get(task, {}).get(key)
            return f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else "n/a"

        for v in self.variants:
            sd = v.spread()
            cells = [cell(v.headline.get(f"{t}_{k}"), sd.get(f"{t}_{k}")) for t, k in HEADLINE]
            lines.append(f"{v.name:<15} {cells[0]:>17} {cells[1]:>20} {cells[2]:>14} {extra(v, 'disease', 'mAP'):>6} "
                         f"{extra(v, 'popularity', 'mae'):>8} {v.train_s:>8.1f}")
        paired = self.paired() if len(self.seeds) > 1 else {}
        if paired:
            lines += ["", "full − variant, seed by seed (mean ± sd; seeds where full is at least as good)"]

            def diff(d: dict[str, Any]) -> str:
                if d["mean"] is None:
                    return "n/a"
                return f"{d['mean']:+.3f}" + (f"±{d['sd']:.3f}" if d["sd"] is not None else "") + f" ({d['full_ahead']}/{d['seeds']})"

            for name, metrics in paired.items():
                cells = [diff(metrics[f"{t}_{k}"]) for t, k in HEADLINE]
                lines.append(f"{name:<15} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
            read = self.verdicts()
            if read:
                lines.append(
                    f"full at least as good in {read['at_least_as_good']} of {read['total']} comparisons; against the "
                    f"seeds' noise (±{read['margin_se']:g} standard errors of the mean): {read['clear_wins']} clear "
                    f"wins, {read['clear_losses']} clear losses, {read['within_noise']} within noise"
                    + "".join(f"\n  clear loss: {name} {metric} {c['mean']:+.3f} (se {c['se']:.3f})"
                              for name, ms in read["comparisons"].items() for metric, c in ms.items()
                              if c["verdict"] == "loss"))
        boot = self.bootstrap() if self.folds else {}
        if boot:
            lines += ["", "full − variant on the pooled predictions, paired bootstrap over videos (difference [95 % "
                          "interval]; share of resamples where full is at least as good). It covers the draw of "
                          "videos, not training randomness, which alone can move a metric by more: read one seed's "
                          "interval as a lower bound on the noise"]

            def interval(d: dict[str, Any]) -> str:
                if d["diff"] is None:
                    return "n/a"
                return f"{d['diff']:+.3f} [{d['lo']:+.3f},{d['hi']:+.3f}] {d['p_full_ahead']:.2f}"

            for name, metrics in boot.items():
                cells = [interval(metrics[f"{t}_{k}"]) for t, k in HEADLINE]
                lines.append(f"{name:<15} {cells[0]:>28} {cells[1]:>28} {cells[2]:>28}")
        return "\n".join(lines)


def variant_config(name: str, base: FusionConfig) -> list[FusionConfig]:
    """The config(s) variant ``name`` trains (one per task for ``single_task``), derived from ``base``.

    Raises:
        ValueError: unknown variant.
    """
    if name in ("full", "no_enrichment"):
        return [base]
    if name == "no_gnn":
        # Masking the entity sequence is the same to the model as emptying it; the linked ids stay (what a
        # ``disease_mentions`` config reads is the linking, not the GNN).
        return [base.replace(use_graph=False)]
    if name == "no_visual":
        return [base.replace(use_visual=False, fusion="concat")]
    if name == "no_text":
        return [base.replace(use_text=False)]
    if name == "concat":
        return [base.replace(fusion="concat")]
    if name == "single_task":
        return [base.single_task(task) for task in TASKS if base.has(task)]
    raise ValueError(f"unknown ablation variant {name!r}; expected one of {', '.join(VARIANTS)}")


def _split_data(
    split: DataSplit, items: Sequence[VideoFeatures], caption_only_items: Sequence[VideoFeatures]
) -> dict[str, dict[str, list[VideoFeatures]]]:
    """Per feature kind ("enriched", "caption"), the items of each split part.

    Raises:
        ValueError: the split leaves no training or no test item.
    """
    data = {
        "enriched": {s: split.select(items, s) for s in SPLITS},
        "caption": {s: split.select(caption_only_items, s) for s in SPLITS},
    }
    if not data["enriched"]["train"] or not data["enriched"]["test"]:
        raise ValueError(f"the split leaves {len(data['enriched']['train'])} training and "
                         f"{len(data['enriched']['test'])} test videos; both must be non-empty")
    return data


def _mean_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Average the numeric leaves of several ``score_predictions`` dicts (same structure); lists come from the first."""
    if len(runs) == 1:
        return runs[0]
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = _mean_metrics([r.get(key, {}) for r in runs])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            vals = [float(r[key]) for r in runs if isinstance(r.get(key), (int, float))]
            out[key] = float(sum(vals) / len(vals)) if vals else value
        else:
            out[key] = value
    return out


def _headline_value(task: str, truth: np.ndarray, guess: np.ndarray, at_least_one: bool = False) -> float:
    """The task's headline metric, computed as ``score_predictions`` does (disease: macro-F1 of
    ``metrics.disease_decisions`` at 0.5 over the labels with a positive item, no division by zero since each such
    label has one); nan where undefined."""
    if task == "disease":
        pred = M.disease_decisions(guess, 0.5, at_least_one)
        scored = truth.sum(axis=0) > 0
        if not scored.any():
            return math.nan
        tp = (pred & (truth == 1)).sum(axis=0)[scored]
        wrong = (pred != (truth == 1)).sum(axis=0)[scored]
        return float(np.mean(2 * tp / (2 * tp + wrong)))
    if task == "popularity":
        return float(M.popularity_metrics(truth, guess)["spearman"])
    return float(M.quality_metrics(truth, guess)["qwk"])


def paired_bootstrap(full: VariantResult, other: VariantResult, resamples: int = 1000,
                     seed: int = 0) -> dict[str, dict[str, float | None]]:
    """``full`` minus ``other`` on each headline metric of their pooled predictions, with a paired bootstrap over
    videos: each resample draws the videos both variants predicted (with replacement; the same draw for every seed,
    since with cross-fitting every seed predicts every video) and recomputes both metrics on them.

    Returns per headline metric ``{"diff", "lo", "hi", "p_full_ahead"}``: the difference on the videos as they are
    (averaged over seeds), the 2.5 and 97.5 percentiles of the resampled differences, and the share of resamples where
    ``full`` is at least as good. None where a task is missing on either side.

    The interval covers which videos were drawn, **not training randomness**: on the development set the same
    configuration trained with another seed on the same folds moved disease macro-F1 by 0.041, and this bootstrap
    called that difference certain. Compare configurations over several seeds (``paired``), not on one interval.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float | None]] = {}
    for task, key in HEADLINE:
        name = f"{task}_{key}"
        seeds = [(a[task], b[task]) for a, b in zip(full.scored, other.scored) if task in a and task in b]
        if not seeds:
            out[name] = {"diff": None, "lo": None, "hi": None, "p_full_ahead": None}
            continue
        common = sorted(set.intersection(*(set(a[0]) & set(b[0]) for a, b in seeds)))
        aligned = []
        for (ids_a, truth, guess_a), (ids_b, _, guess_b) in seeds:
            ia, ib = {v: i for i, v in enumerate(ids_a)}, {v: i for i, v in enumerate(ids_b)}
            rows_a, rows_b = [ia[v] for v in common], [ib[v] for v in common]
            aligned.append((truth[rows_a], guess_a[rows_a], guess_b[rows_b]))

        def diff(rows: np.ndarray) -> float:
            return float(np.nanmean([_headline_value(task, t[rows], a[rows], full.disease_at_least_one)
                                     - _headline_value(task, t[rows], b[rows], other.disease_at_least_one)
                                     for t, a, b in aligned]))

        draws = np.array([diff(rng.integers(0, len(common), len(common))) for _ in range(resamples)])
        draws = draws[np.isfinite(draws)]
        out[name] = {"diff": diff(np.arange(len(common))),
                     "lo": float(np.percentile(draws, 2.5)) if len(draws) else None,
                     "hi": float(np.percentile(draws, 97.5)) if len(draws) else None,
                     "p_full_ahead": float(np.mean(draws >= 0)) if len(draws) else None}
    return out


def run_ablation(
    items: Sequence[VideoFeatures],
    caption_only_items: Sequence[VideoFeatures],
    label_map: LabelMap,
    split: DataSplit,
    base: FusionConfig,
    *,
    variants: Sequence[str] = tuple(VARIANTS),
    seeds: Sequence[int] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    progress: bool = True,
    on_variant: Callable[[VariantResult], None] | None = None,
    eval_split: str = "test",
    split_per_seed: bool = False,
    folds: int | None = None,
) -> AblationReport:
    """Train every variant on ``split``'s train part (early stopping on val) and score it on its test part.

    Args:
        items: features with enriched text; ``caption_only_items``: the same videos with caption-only text (used by
            ``no_enrichment`` only).
        base: the ``full`` model's config (widths matching ``items``); variants are derived from it.
        seeds: training seeds; each variant's metrics are averaged over them (default ``[base.seed]``).
        device, precision: where and in which precision the models train (``Settings.device``,
            ``Settings.fusion_precision``).
        on_variant: called with each variant's result as soon as it is done (progress lines).
        eval_split: the split scored, ``"test"`` (the report) or ``"val"`` (for choosing training options without
            looking at the test split; the numbers are then the validation set's, the one early stopping also used).
        split_per_seed: each training seed also draws its own split (``split_ids(ids, seed, split.fractions)``), so
            the means over seeds average over several test sets instead of one: with ~80 test videos per split, which
            videos land in test moves disease macro-F1 and popularity Spearman by as much as the variants differ.
            Every variant of a seed still sees the same split. ``split`` then only gives the fractions.
        folds: K-fold cross-fitting instead (``fold_splits(ids, seed, folds)`` for each seed; ``split`` is then not
            used): every variant trains K models per seed, each scored on its own test fold, and a seed's metrics are
            computed once over the K test folds' predictions pooled — every video is scored once per seed, so a
            metric rests on all the videos instead of one test split's (on 600 videos, 5 positives of a rare disease
            become 30). The report then also carries :meth:`AblationReport.bootstrap`. ``eval_split`` must be "test".

    Returns:
        An :class:`AblationReport` with the variants in the order given (``report.eval_split`` says which split).

    Raises:
        ValueError: an unknown variant or ``eval_split``, ``folds`` with ``eval_split="val"``, or an empty train or
            test split.
    """
    if eval_split not in ("test", "val"):
        raise ValueError(f"eval_split must be 'test' or 'val', got {eval_split!r}")
    if folds is not None and eval_split != "test":
        raise ValueError("cross-fitting scores the test folds: eval_split must be 'test' with folds")
    seeds = list(seeds) if seeds else [base.seed]
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"unknown ablation variant {name!r}; expected one of {', '.join(VARIANTS)}")
    datasets = _datasets(items, caption_only_items, split, seeds, split_per_seed, folds)
    first = datasets[seeds[0]][0]["enriched"]
    report = AblationReport(
        seed=base.seed, seeds=seeds, synthetic=any(it.synthetic for it in items),
        sizes={**{s: len(first[s]) for s in SPLITS}, **({"all": len(items)} if folds else {})},
        eval_split=eval_split, split_per_seed=split_per_seed or folds is not None, folds=folds,
    )
    for name in variants:
        variant = _run_variant(name, base, seeds, datasets, label_map, eval_split,
                               dict(progress=progress, device=device, precision=precision))
        report.variants.append(variant)
        logger.info("ablation %s: %s (train %.1f s)", name, variant.headline, variant.train_s)
        if on_variant is not None:
            on_variant(variant)
    return report


#: Per seed, the data its models are trained and scored on: one split (or one per fold), each as
#: {"enriched" | "caption": {"train" | "val" | "test": items}}.
_Datasets = dict[int, list[dict[str, dict[str, list[VideoFeatures]]]]]


def _datasets(items: Sequence[VideoFeatures], caption_only_items: Sequence[VideoFeatures], split: DataSplit,
              seeds: list[int], split_per_seed: bool, folds: int | None) -> _Datasets:
    """Per seed, the splits its models are trained and scored on: the one ``split``, its own split, or its folds."""
    ids = [it.video_id for it in items]
    if folds is not None:
        return {seed: [_split_data(s, items, caption_only_items) for s in fold_splits(ids, seed, folds)]
                for seed in seeds}
    if split_per_seed:
        return {seed: [_split_data(split_ids(ids, seed, split.fractions), items, caption_only_items)]
                for seed in seeds}
    shared = _split_data(split, items, caption_only_items)
    return {seed: [shared] for seed in seeds}


def _run_variant(name: str, base: FusionConfig, seeds: list[int], datasets: _Datasets, label_map: LabelMap,
                 eval_split: str, training: dict[str, Any]) -> VariantResult:
    """Variant ``name`` trained on every seed's data (``training``: ``train``'s progress, device and precision) and
    scored per seed on its ``eval_split`` predictions, pooled over the seed's folds."""
    kind = "caption" if name == "no_enrichment" else "enriched"
    runs: list[dict[str, Any]] = []
    scored: list[dict[str, tuple[list[str], Any, Any]]] = []
    train_s = eval_s = 0.0
    best_epochs: list[int] = []
    refit_kept: list[dict[str, int]] = []
    rules: set[bool] = set()
    for seed in seeds:
        merged: dict[str, Any] = {}
        arrays: dict[str, tuple[list[str], Any, Any]] = {}
        for config in variant_config(name, base.replace(seed=seed)):
            # Each fold's model predicts its own test part; the metrics are computed once over all of them.
            pooled_items: list[VideoFeatures] = []
            pooled: list[Any] = []
            for data in datasets[seed]:
                source = data[kind]
                started = time.perf_counter()
                result = train(source["train"], source["val"], config, label_map, **training)
                train_s += time.perf_counter() - started
                started = time.perf_counter()
                pooled += result.predictor.predict(source[eval_split])
                eval_s += time.perf_counter() - started
                pooled_items += source[eval_split]
                best_epochs.append(result.best_epoch)
                refit_kept.append(dict(result.refit.get("kept", {})))
            metrics = score_predictions(pooled_items, pooled, label_map)
            rules |= {pr.at_least_one for pr in pooled if pr.disease_probs}
            merged.update({task: metrics[task] for task in config.tasks if task in metrics})
            arrays.update(labelled_arrays(pooled_items, pooled, label_map))
        merged["score"] = validation_score(merged)
        runs.append(merged)
        scored.append(arrays)
    if len(rules) > 1:
        logger.warning("ablation %s: some of its models apply the at-least-one rule and some do not (their training"
                       " folds differ in whether a video is labelled []); the bootstrap treats it as off", name)
    metrics = _mean_metrics(runs)
    return VariantResult(name, VARIANTS[name], metrics, headline(metrics), train_s, eval_s, best_epochs, seeds,
                         [headline(run) for run in runs], refit_kept, scored, rules == {True})


# --- manifest → ablation (what `ovp ablate` calls) -------------------------------------------------------------------


def ablate_on_manifest(
    manifest: Path,
    settings: Settings,
    *,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    variants: Sequence[str] = tuple(VARIANTS),
    device: str | None = None,
    progress: bool = True,
    on_variant: Callable[[VariantResult], None] | None = None,
    eval_split: str = "test",
    split_per_seed: bool = False,
    folds: int | None = None,
    **overrides: Any,
) -> tuple[AblationReport, ManifestFeatures]:
    """Extract features (enriched and caption-only), split by ``seed`` (or cross-fit ``folds`` folds per seed) and run
    :func:`run_ablation` on ``settings.device`` (``device`` overrides it) in ``settings.fusion_precision``.

    Raises:
        ManifestError, GraphUnavailable, ModelNotFound, ValueError: as ``fusion.training.train_on_manifest``.
    """
    settings = dataclasses.replace(settings, device=device) if device else settings
    feats = manifest_features(manifest, settings, feature_settings_for(settings, overrides),
                              caption_only="no_enrichment" in variants, progress=progress)
    caption = feats.caption_only or feats.items
    common = {it.video_id for it in feats.items} & {it.video_id for it in caption}
    items = [it for it in feats.items if it.video_id in common]
    caption = [it for it in caption if it.video_id in common]
    split = split_ids(sorted(common), seed)
    if epochs is not None:
        overrides["epochs"] = epochs
    base = FusionConfig.from_items(items, feats.label_map, seed=seed, **overrides)
    with torch_threads(FUSION_THREADS):
        report = run_ablation(items, caption, feats.label_map, split, base, variants=variants, seeds=seeds,
                              device=settings.device, precision=settings.fusion_precision, progress=progress,
                              on_variant=on_variant, eval_split=eval_split, split_per_seed=split_per_seed, folds=folds)
    return report, feats
