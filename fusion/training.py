"""Training the fusion model on precomputed ``VideoFeatures``, and saving it.

``train`` → ``TrainResult`` (its ``predictor`` holds the best epoch's weights) → ``save_model`` → a model directory:
``model.pt`` (state dict, including the popularity standardisation and training percentiles), ``config.json``,
``label_map.json``, ``metrics.json``, ``model_card.md`` and the plots; ``fusion.inference.load_model`` reads it back.
``train_on_manifest`` is ``ovp train``: a manifest's features, the split, training, and the files beside the model.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from encoders.device import resolve_device
from encoders.device import torch_threads
from fusion.batches import FeatureBatch, collate
from fusion.config import TASKS, FusionConfig, check_compatible
from fusion.evaluation import json_safe, score_predictions, write_json, write_plots
from fusion.features import MODEL_FEATURES_FILE, ManifestFeatures, feature_settings_for, manifest_features
from fusion.inference import FUSION_THREADS, LoadedModel, autocast, check_precision
from fusion.losses import MultiTaskLoss
from fusion.metrics import task_score
from fusion.model import FusionModel
from fusion.records import LabelMap, VideoFeatures
from fusion.splits import DataSplit, split_ids
from ovp.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What ``train`` returns. ``history`` has one JSON-ready record per epoch:
    ``{epoch, train_loss, task_losses, task_weights, val_score, val_metrics, seconds, smoothed_score}``."""

    predictor: LoadedModel
    history: list[dict[str, Any]]
    best_epoch: int
    val_metrics: dict[str, Any]
    task_weights: dict[str, float]
    n_train: int
    n_val: int
    synthetic: bool
    stopped_early: bool
    # The head-refit stage (``refit_heads``; empty when it did not run): per task the refit epoch kept (0 = the joint
    # checkpoint's head), and one record per refit epoch with each task's validation metric.
    refit: dict[str, Any] = field(default_factory=dict)
    # Heads left out because no training video had their label (task → why): the model does not predict them.
    untrained: dict[str, str] = field(default_factory=dict)
    # Training and validation videos whose disease labels are weak (``diseases_weak``: proposed from linked mentions).
    weak_diseases: int = 0
    # Training and validation videos whose labels are the reviewers' consensus (``ovp ratings export``).
    n_rated: int = 0

    @property
    def config(self) -> FusionConfig:
        return self.predictor.config

    @property
    def label_map(self) -> LabelMap:
        return self.predictor.label_map


def _popularity_stats(items: Sequence[VideoFeatures]) -> tuple[float, float, np.ndarray]:
    values = np.array([it.popularity for it in items if it.popularity is not None], dtype=np.float64)
    if len(values) == 0:
        return 0.0, 1.0, np.zeros(101)
    std = float(values.std())
    return float(values.mean()), std if std > 1e-6 else 1.0, np.quantile(values, np.linspace(0.0, 1.0, 101))


def _metadata_stats(items: Sequence[VideoFeatures], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Per-slot mean and standard deviation of the training metadata; a constant slot (std 0) keeps std 1.
    if width == 0:
        return torch.zeros(0), torch.ones(0)
    values = np.stack([np.asarray(it.metadata, dtype=np.float64).reshape(-1) for it in items])
    std = values.std(axis=0)
    std[std < 1e-6] = 1.0
    return torch.as_tensor(values.mean(axis=0), dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)


def at_least_one_rule(config: FusionConfig, train_items: Sequence[VideoFeatures]) -> bool:
    """Whether a model trained on ``train_items`` predicts at least one disease (``FusionConfig.disease_at_least_one``):
    'on' / 'off' as given; 'auto' when some training video is disease-labelled and none of them is labelled ``[]``."""
    if config.disease_at_least_one != "auto":
        return config.disease_at_least_one == "on"
    labelled = [it.diseases for it in train_items if it.diseases is not None]
    return bool(labelled) and all(labelled)


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    # A process-wide switch: restore the caller's setting so training does not change behaviour elsewhere.
    previous, previous_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def train(
    train_items: Sequence[VideoFeatures],
    val_items: Sequence[VideoFeatures],
    config: FusionConfig,
    label_map: LabelMap,
    out_dir: Path | None = None,
    progress: bool = True,
    device: str = "auto",
    precision: str = "fp32",
) -> TrainResult:
    """Train a fusion model with AdamW and early stopping on the validation score (macro-F1 + Spearman + QWK), then
    refit each task's own parameters on the frozen trunk (``refit_heads``, ``config.head_refit_epochs``).

    The checkpoint kept is the epoch whose validation score averaged over the last ``config.score_window`` epochs is
    highest; training stops once that average has not improved for ``config.patience`` epochs, but not before
    ``config.min_epochs``. Same ``config.seed``, data and device → the same weights and metrics on CPU; on CUDA
    cuDNN's attention backward is non-deterministic, so GPU runs differ slightly. Without ``val_items`` every epoch
    runs, the one with the lowest (window-averaged) training loss is kept, and there is no refit. When ``out_dir`` is
    given the model is saved there (``save_model``) with its plots. ``device`` is a device setting
    (``Settings.device``: auto, cpu, cuda, cuda:N) and ``precision`` a fusion precision (``Settings.fusion_precision``).

    Raises:
        ValueError: no training items, or items whose feature widths or label map disagree with ``config``.
        ConfigError: ``device`` or ``precision`` cannot be used.
    """
    _check_items(train_items, val_items, config, label_map)
    torch_device = resolve_device(device)
    precision = check_precision(precision)
    show = progress and sys.stderr.isatty()
    pop_mean, pop_std, pop_quantiles = _popularity_stats(train_items)
    with _deterministic():
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        model = _initial_model(config, train_items, label_map, torch_device, pop_mean, pop_std, pop_quantiles)
        loss_fn = MultiTaskLoss(config).to(torch_device)
        predictor = LoadedModel(model, config, label_map, torch_device, precision=precision)
        batches = _Batcher(config, label_map, pop_mean, pop_std, torch_device, precision)
        joint = _train_jointly(model, loss_fn, train_items, val_items, predictor, rng, batches, show)
        refit: dict[str, Any] = {}
        val_metrics = joint.val_metrics
        if config.head_refit_epochs > 0 and val_items:
            refit = refit_heads(model, loss_fn, train_items, val_items, config, label_map, rng, batches, predictor, show)
            val_metrics = refit.pop("val_metrics")
        model.eval()

    history = joint.history
    stopped_early = len(history) < config.epochs
    logger.info(
        "trained %d epochs on %d items (best epoch %d, validation score %.3f averaged over %d epochs%s)",
        len(history), len(train_items), joint.best_epoch, joint.best_score, config.score_window,
        ", stopped early" if stopped_early else "",
    )
    result = TrainResult(
        predictor=predictor,
        history=history,
        best_epoch=joint.best_epoch,
        val_metrics=val_metrics,
        task_weights=history[joint.best_epoch - 1]["task_weights"],
        n_train=len(train_items),
        n_val=len(val_items),
        n_rated=sum(1 for it in list(train_items) + list(val_items) if it.raters > 0),
        synthetic=any(it.synthetic for it in list(train_items) + list(val_items)),
        stopped_early=stopped_early,
        refit=refit,
        untrained={task: f"no training video has a {task} label" for task in TASKS
                   if task not in config.tasks and task not in labelled_tasks(train_items)},
        weak_diseases=sum(1 for it in list(train_items) + list(val_items) if it.diseases is not None and it.diseases_weak),
    )
    if out_dir is not None:
        save_model(result, out_dir)
    return result


def labelled_tasks(items: Sequence[VideoFeatures]) -> tuple[str, ...]:
    """The tasks (in ``TASKS`` order) at least one of ``items`` has a label for: the heads there is something to train."""
    has = {"disease": any(it.diseases is not None for it in items),
           "popularity": any(it.popularity is not None for it in items),
           "quality": any(it.quality is not None for it in items)}
    return tuple(task for task in TASKS if has[task])


def _check_items(train_items: Sequence[VideoFeatures], val_items: Sequence[VideoFeatures], config: FusionConfig,
                 label_map: LabelMap) -> None:
    """Raise ValueError for no training item or items that do not fit ``config``; warn once about unknown labels."""
    if not train_items:
        raise ValueError("train() needs at least one training item")
    check_compatible(config, list(train_items) + list(val_items), label_map)
    unknown = sorted({d for it in train_items for d in (it.diseases or []) if d not in label_map.disease_ids})
    if unknown:
        logger.warning("%d disease ids in the training labels are not in the label map and are ignored: %s",
                       len(unknown), ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else ""))


def _initial_model(config: FusionConfig, train_items: Sequence[VideoFeatures], label_map: LabelMap,
                   device: torch.device, pop_mean: float, pop_std: float, pop_quantiles: np.ndarray) -> FusionModel:
    """A new model on ``device`` with the training set's statistics and its closed-form paths fitted (the quality skip,
    the popularity cascade, the mention prior): what joint training starts from."""
    model = FusionModel(config)
    model.pop_mean.fill_(pop_mean)
    model.pop_std.fill_(pop_std)
    model.pop_quantiles.copy_(torch.as_tensor(pop_quantiles, dtype=torch.float32))
    meta_mean, meta_std = _metadata_stats(train_items, config.d_meta)
    model.meta_mean.copy_(meta_mean)
    model.meta_std.copy_(meta_std)
    if hasattr(model, "at_least_one"):
        model.at_least_one.fill_(at_least_one_rule(config, train_items))
    model.to(device)
    fit_quality_skip(model, train_items, label_map, device)
    fit_popularity_cascade(model, train_items, label_map, device)
    fit_mention_prior(model, train_items, label_map, device)
    return model


@dataclass
class _JointFit:
    """What joint training kept: every epoch's record, the kept epoch, its smoothed score and validation metrics."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_score: float
    val_metrics: dict[str, Any]


def _train_jointly(model: FusionModel, loss_fn: MultiTaskLoss, train_items: Sequence[VideoFeatures],
                   val_items: Sequence[VideoFeatures], predictor: LoadedModel, rng: np.random.Generator,
                   batches: "_Batcher", show: bool) -> _JointFit:
    """Every task's loss on every parameter, epoch by epoch, with the early stopping ``train`` describes. On return
    ``model`` holds the kept epoch's weights."""
    config, label_map = predictor.config, predictor.label_map
    groups = decay_groups(model, [p for p in model.parameters() if p.requires_grad], config)
    if loss_fn.log_vars.requires_grad:
        groups.append({"params": [loss_fn.log_vars], "weight_decay": 0.0})  # decaying log-variances biases the weights
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state, best_val, stale = -math.inf, 0, None, {}, 0
    epochs = tqdm(range(1, config.epochs + 1), desc="epochs", disable=not show, leave=False)
    for epoch in epochs:
        started = time.perf_counter()
        record: dict[str, Any] = {
            "epoch": epoch,
            **_train_epoch(model, loss_fn, optimizer, [list(model.parameters())], train_items, rng, batches,
                           f"epoch {epoch}", show),
            "task_weights": loss_fn.weights(),
        }
        if val_items:
            val = score_predictions(val_items, predictor.predict(val_items), label_map)
            score = (val["score"] if config.selection_tasks is None
                     else sum(task_score(val, task) for task in config.selection_tasks))
            record.update(val_score=score, val_metrics=val)
        else:
            val, score = {}, -record["train_loss"]
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        epochs.set_postfix(loss=f"{record['train_loss']:.3f}", score=f"{score:.3f}")
        logger.debug("epoch %d: loss %.4f score %.4f", epoch, record["train_loss"], score)
        # Select on the trailing mean of the last ``score_window`` scores (fewer in the first epochs), so one lucky
        # epoch of a noisy metric does not win; the weights kept are those of the window's last epoch.
        recent = [h.get("val_score", -h["train_loss"]) for h in history[-config.score_window :]]
        record["smoothed_score"] = smoothed = float(np.mean(recent))
        if smoothed > best_score:
            best_score, best_epoch, best_val, stale = smoothed, epoch, val, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if val_items and stale >= config.patience and epoch >= config.min_epochs:
                break
    epochs.close()
    assert best_state is not None  # at least one epoch ran (config.epochs > 0)
    model.load_state_dict(best_state)
    return _JointFit(history, best_epoch, best_score, best_val)


def fit_quality_skip(model: FusionModel, items: Sequence[VideoFeatures], label_map: LabelMap,
                     device: torch.device) -> None:
    """Fit ``model.quality_skip``'s ridge (``FusionConfig.quality_skip``) on the quality-labelled ``items``; a no-op
    for a model without one or when no item has a quality label."""
    if model.quality_skip is None:
        return
    labelled = [it for it in items if it.quality is not None]
    if not labelled:
        logger.warning("quality_skip: no training video has a quality label; the skip stays at zero")
        return
    with torch.no_grad():
        pooled = [model.quality_skip_inputs(b.frames, b.frame_valid, b.tokens, b.token_valid, b.caption_valid,
                                            b.caption_tokens, b.caption_token_valid)
                  for b in _fit_batches(model, labelled, label_map, device)]
    y = torch.tensor([float(it.quality) for it in labelled], device=device)
    model.quality_skip.fit(torch.cat(pooled), y, model.config.quality_skip_ridge)


def _fit_batches(model: FusionModel, items: Sequence[VideoFeatures], label_map: LabelMap, device: torch.device,
                 pop_mean: float = 0.0, pop_std: float = 1.0, size: int = 64) -> Iterator[FeatureBatch]:
    """``items`` collated ``size`` at a time on ``device``: what the closed-form fits below read their inputs from."""
    for start in range(0, len(items), size):
        yield collate(items[start : start + size], model.config, label_map, pop_mean, pop_std).to(device)


def fit_mention_prior(model: FusionModel, items: Sequence[VideoFeatures], label_map: LabelMap,
                      device: torch.device) -> None:
    """Start ``model.mention_prior`` (``FusionConfig.disease_mentions``) at the disease-labelled ``items``' log-odds of
    each label with a mention, with a graph-related label only (``disease_related``) and with neither; a no-op for a model without one or when no item has disease labels."""
    if model.mention_prior is None:
        return
    labelled = [it for it in items if it.diseases is not None]
    if not labelled:
        logger.warning("disease_mentions: no training video has disease labels; the prior keeps its initial values")
        return
    batches = list(_fit_batches(model, labelled, label_map, device))
    model.mention_prior.fit(torch.cat([b.mentions for b in batches]), torch.cat([b.targets.diseases for b in batches]),
                            torch.cat([b.related for b in batches]))


def fit_popularity_cascade(model: FusionModel, items: Sequence[VideoFeatures], label_map: LabelMap,
                           device: torch.device) -> None:
    """Fit ``model.popularity_cascade``'s ridge (``FusionConfig.popularity_cascade``) on the ``items`` labelled with
    popularity (and with diseases, when the model classifies them): the standardised engagement on the metadata and
    the disease labels. Call it after ``model.pop_mean``/``pop_std`` are set. A no-op for a model without the cascade
    or when no item is labelled."""
    if model.popularity_cascade is None:
        return
    needs_diseases = model.config.has("disease")
    labelled = [it for it in items if it.popularity is not None and (it.diseases is not None or not needs_diseases)]
    if not labelled:
        logger.warning("popularity_cascade: no training video has the labels it is fitted on; the cascade stays at zero")
        return
    batches = list(_fit_batches(model, labelled, label_map, device, float(model.pop_mean), float(model.pop_std)))
    inputs = [model.popularity_cascade_inputs(b.metadata, b.targets.diseases if needs_diseases else None) for b in batches]
    model.popularity_cascade.fit(torch.cat(inputs), torch.cat([b.targets.popularity for b in batches]),
                                 model.config.popularity_cascade_ridge)


class _Batcher:
    """Collates training chunks on the training device, with the training set's popularity standardisation; the
    forward pass runs in ``precision``."""

    def __init__(self, config: FusionConfig, label_map: LabelMap, pop_mean: float, pop_std: float,
                 device: torch.device, precision: str = "fp32") -> None:
        self.config, self.label_map, self.pop_mean, self.pop_std = config, label_map, pop_mean, pop_std
        self.device, self.precision = device, precision

    def __call__(self, chunk: Sequence[VideoFeatures]) -> FeatureBatch:
        return collate(chunk, self.config, self.label_map, self.pop_mean, self.pop_std).to(self.device)


def decay_groups(model: FusionModel, params: Sequence[torch.nn.Parameter], config: FusionConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups for ``params``: the disease head's own with ``config.disease_head_decay`` when that is
    set, and the rest with the optimiser's default decay."""
    head = model.disease_head
    own = ({id(p) for p in head.parameters()} if head is not None and config.disease_head_decay is not None
           else set())
    groups: list[dict[str, Any]] = [{"params": [p for p in params if id(p) not in own]}]
    mine = [p for p in params if id(p) in own]
    if mine:
        groups.append({"params": mine, "weight_decay": config.disease_head_decay})
    return groups


def _train_epoch(
    model: FusionModel,
    loss_fn: MultiTaskLoss,
    optimizer: torch.optim.Optimizer,
    clip_groups: list[list[torch.nn.Parameter]],
    items: Sequence[VideoFeatures],
    rng: np.random.Generator,
    batches: _Batcher,
    desc: str,
    show: bool,
) -> dict[str, Any]:
    """One pass over ``items`` in a fresh random order; each of ``clip_groups`` has its gradient norm clipped on its
    own (``config.grad_clip``). Returns ``{train_loss, task_losses}``, means over items."""
    config = batches.config
    model.train()
    order = rng.permutation(len(items))
    total, task_sums, task_counts = 0.0, {}, {}
    for b in tqdm(range(math.ceil(len(items) / config.batch_size)), desc=desc, disable=not show, leave=False):
        chunk = [items[i] for i in order[b * config.batch_size : (b + 1) * config.batch_size]]
        batch = batches(chunk)
        with autocast(batches.device, batches.precision):
            out = model(*batch.inputs())
        loss, parts = loss_fn(out, batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            for group in clip_groups:
                torch.nn.utils.clip_grad_norm_(group, config.grad_clip)
        optimizer.step()
        total += float(loss.detach()) * len(chunk)
        for task, value in parts.items():
            task_sums[task] = task_sums.get(task, 0.0) + value * len(chunk)
            task_counts[task] = task_counts.get(task, 0) + len(chunk)
    return {"train_loss": total / len(items), "task_losses": {t: task_sums[t] / task_counts[t] for t in task_sums}}


def refit_heads(
    model: FusionModel,
    loss_fn: MultiTaskLoss,
    train_items: Sequence[VideoFeatures],
    val_items: Sequence[VideoFeatures],
    config: FusionConfig,
    label_map: LabelMap,
    rng: np.random.Generator,
    batches: _Batcher,
    predictor: LoadedModel,
    show: bool = False,
) -> dict[str, Any]:
    """Train each task's own parameters (``FusionModel.task_modules``) with everything else frozen, for at most
    ``config.head_refit_epochs`` epochs from the joint checkpoint's values, keeping per task the epoch of its best
    validation headline metric.

    The shared trunk (projections, cross-modal attention, metadata MLP) stays as joint training left it, so the model
    keeps one trunk and one fused embedding. The task groups share no parameter and a task's loss reaches only its own
    group, so the refits are independent; each group's gradient norm is clipped on its own. Epoch 0 — the joint
    checkpoint — is a candidate, so no task's validation metric ends below where joint training left it. Stops when no
    task has improved for ``config.patience`` epochs. On return ``model`` holds every task's chosen parameters.

    Returns:
        ``{"epochs": [...], "kept": {task: epoch}, "val_metrics": the final model's validation metrics}``.
    """
    groups = {task: [p for m in model.task_modules(task) for p in m.parameters()] for task in config.tasks}
    groups = {task: params for task, params in groups.items() if params}
    trainable = {id(p) for params in groups.values() for p in params}
    frozen = [p for p in model.parameters() if id(p) not in trainable and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)

    def snapshot(task: str) -> list[dict[str, torch.Tensor]]:
        return [copy.deepcopy(m.state_dict()) for m in model.task_modules(task)]

    val = score_predictions(val_items, predictor.predict(val_items), label_map)
    best = {task: (task_score(val, task), 0, snapshot(task)) for task in groups}
    records: list[dict[str, Any]] = []
    try:
        refitting = [p for params in groups.values() for p in params]
        optimizer = torch.optim.AdamW(decay_groups(model, refitting, config), lr=config.lr,
                                      weight_decay=config.weight_decay)
        stale = 0
        for epoch in range(1, config.head_refit_epochs + 1):
            started = time.perf_counter()
            record = {"epoch": epoch, **_train_epoch(model, loss_fn, optimizer, list(groups.values()), train_items,
                                                     rng, batches, f"refit {epoch}", show)}
            val = score_predictions(val_items, predictor.predict(val_items), label_map)
            record["val_metrics"] = {task: task_score(val, task) for task in groups}
            improved = False
            for task in groups:
                if record["val_metrics"][task] > best[task][0]:
                    best[task] = (record["val_metrics"][task], epoch, snapshot(task))
                    improved = True
            record["seconds"] = time.perf_counter() - started
            records.append(record)
            stale = 0 if improved else stale + 1
            if stale >= config.patience:
                break
        for task, (_, _, states) in best.items():
            for module, state in zip(model.task_modules(task), states):
                module.load_state_dict(state)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    kept = {task: epoch for task, (_, epoch, _) in best.items()}
    logger.info("head refit: %d epochs; kept per task %s", len(records), kept)
    final = score_predictions(val_items, predictor.predict(val_items), label_map)
    return {"epochs": records, "kept": kept, "val_metrics": final}


# --- saving ----------------------------------------------------------------------------------------------------------


def _model_card(result: TrainResult, version: str) -> str:
    cfg = result.config
    data_line = (
        "**SYNTHETIC** data (generated by `ovp demo-data`): these numbers say the pipeline learns planted patterns, "
        "nothing about real videos."
        if result.synthetic
        else "Labelled videos supplied by the operator (see the training manifest)."
    )
    rows = []
    for task, keys in (("disease", ("macro_f1", "micro_f1", "mAP")), ("popularity", ("spearman", "mae")),
                       ("quality", ("accuracy", "qwk", "mae"))):
        for key in keys:
            value = result.val_metrics.get(task, {}).get(key)
            if value is not None:
                rows.append(f"| {task} | {key} | {value:.3f} |" if math.isfinite(value) else f"| {task} | {key} | n/a |")
    metrics_table = "\n".join(["| task | metric | validation |", "|---|---|---|", *rows]) if rows else "No validation set."
    modalities = ", ".join(m for m in ("visual", "text", "graph", "metadata") if getattr(cfg, f"use_{m}"))
    refit_line = ""
    if result.refit:
        kept = ", ".join(f"{task} {epoch}" for task, epoch in result.refit["kept"].items())
        refit_line = (f"\nPer-task head refit on the frozen trunk: {len(result.refit['epochs'])} epochs; refit epoch kept per task "
                      f"(0 = the joint head): {kept}.")
    rule = getattr(result.predictor.model, "at_least_one", None)
    decision_line = ""
    if rule is not None:
        decision_line = ("\nDecision rule: a disease is predicted at probability ≥ the threshold (0.5 by default)"
                         + ("; when none is, the most probable one is predicted anyway, because every disease-labelled "
                            "training video had a label (`disease_at_least_one`)." if bool(rule) else
                            "; a video may be predicted to be about none (`disease_at_least_one`: off, or a training "
                            "video was labelled with no disease)."))
    untrained_line = "".join(f"\nNot trained: the {task} head ({why}); the model does not predict {task}."
                             for task, why in result.untrained.items())
    if result.weak_diseases:
        data_line += (f"\n**WEAK disease labels** on {result.weak_diseases} of these videos: proposed from the diseases "
                      "their own title, caption, hashtags and transcript name (`ovp import ytdlp --weak-diseases`), not "
                      "given by a person; the disease metrics measure agreement with the linker, not with a clinician.")
    return f"""# OVP fusion model {version}

## Model
Fusion `{cfg.fusion}` over {modalities}; width {cfg.width}; tasks: {", ".join(cfg.tasks)}
(weighting: {cfg.task_weighting}; ordinal quality head); {len(result.label_map)} disease labels.
Best epoch {result.best_epoch} of {len(result.history)}.{refit_line}{decision_line}{untrained_line}

## Data
{data_line}
{result.n_train} training and {result.n_val} validation videos; {result.n_rated} of them labelled by reviewers' ratings
(the consensus of `ovp ratings export`).
Visual features: `{cfg.visual_features or "not recorded"}` ({cfg.d_visual}-d per keyframe); text token states:
`{cfg.text_features or "not recorded"}` ({cfg.d_text}-d). The model refuses features of other encoders.

## Metrics
{metrics_table}

## Intended use
Profiling eye-health videos for research and content triage: which eye diseases a video is about, its expected
engagement (log1p scale, and percentile among the training videos) and the quality of its medical content (GQS 1–5).
Predictions are evidence for a human reviewer, with the attended keyframes and entities as the explanation.

## Limitations
Not a medical device and not medical advice. Quality and disease predictions inherit the biases of the labels and of
the platforms sampled; popularity depends on platform dynamics that drift over time. Diseases outside the label map are
never predicted, and a model whose training videos all had a label predicts at least one disease for every video,
even one about none of them. Author followers are an input: the model favours established authors as the data did.
"""


def save_model(result: TrainResult, out_dir: Path) -> Path:
    """Write ``model.pt``, ``config.json``, ``label_map.json``, ``metrics.json``, ``model_card.md`` and the plots
    (``learning_curves.png``, ``quality_confusion.png``) into ``out_dir`` (created if needed); returns ``out_dir``.

    Sets ``result.predictor.model_version`` to the first 12 hex digits of the SHA-256 of ``model.pt``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.pt"
    torch.save({k: v.detach().cpu() for k, v in result.predictor.model.state_dict().items()}, model_path)
    version = hashlib.sha256(model_path.read_bytes()).hexdigest()[:12]
    result.predictor.model_version = version
    (out_dir / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2) + "\n", encoding="utf-8")
    result.label_map.save(out_dir / "label_map.json")
    metrics = {
        "model_version": version,
        "synthetic": result.synthetic,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "n_rated": result.n_rated,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "validation": result.val_metrics,
        "task_weights": result.task_weights,
        "history": result.history,
        "head_refit": result.refit,
        "untrained_heads": result.untrained,
        "weak_disease_labels": result.weak_diseases,
    }
    (out_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n", encoding="utf-8")
    (out_dir / "model_card.md").write_text(_model_card(result, version), encoding="utf-8")
    result.predictor.metrics = json_safe(metrics)
    write_plots(out_dir, history=result.history, metrics=result.val_metrics,
                title_note="SYNTHETIC data" if result.synthetic else "")
    logger.info("saved fusion model %s to %s", version, out_dir)
    return out_dir


# --- manifest → model (what `ovp train` calls) -----------------------------------------------------------------------


@dataclass
class TrainOutcome:
    """What :func:`train_on_manifest` did: the model directory, the split, the training result and the features' story."""

    model_dir: Path
    split: DataSplit
    result: TrainResult
    features: ManifestFeatures
    train_s: float


def train_on_manifest(
    manifest: Path,
    out_dir: Path,
    settings: Settings,
    *,
    seed: int = 0,
    epochs: int | None = None,
    device: str | None = None,
    progress: bool = True,
    **overrides: Any,
) -> TrainOutcome:
    """Extract features, split by id hash (70/15/15, ``seed``), train with early stopping on val, save to ``out_dir``.

    Besides ``save_model``'s files, ``out_dir`` gets ``split.json`` (the ids of each split and how they were drawn),
    ``features.json`` (the feature settings, so evaluation extracts the same) and ``failures.json`` (videos without
    features and why). ``overrides`` are ``FusionConfig`` fields (``width``, ``lr`` …). Training runs on
    ``settings.device`` (``device`` overrides it) in ``settings.fusion_precision``.

    Raises:
        ManifestError, GraphUnavailable, ModelNotFound: from the steps above.
        ValueError: no video could be read, or the training split is empty.
    """
    settings = dataclasses.replace(settings, device=device) if device else settings
    fs = feature_settings_for(settings, overrides)
    feats = manifest_features(manifest, settings, fs, progress=progress)
    split = split_ids([it.video_id for it in feats.items], seed)
    train_items, val_items = split.select(feats.items, "train"), split.select(feats.items, "val")
    if not train_items:
        raise ValueError(f"the split of {len(feats.items)} videos leaves none for training; add videos")
    if epochs is not None:
        overrides["epochs"] = epochs
    if "tasks" not in overrides:
        # Each head trains on the videos that have its label; a head no training video has a label for is left out
        # (and said so in the model card) instead of being trained on nothing and predicting noise.
        overrides["tasks"] = labelled_tasks(train_items)
        if not overrides["tasks"]:
            raise ValueError(f"no training video of {manifest} has a label (diseases, engagement counts or quality); "
                             "nothing to train — add labels, or import with --weak-diseases")
        missing = [t for t in TASKS if t not in overrides["tasks"]]
        if missing:
            logger.warning("not training the %s head%s: no training video has %s label", " and ".join(missing),
                           "s" if len(missing) > 1 else "", "that" if len(missing) == 1 else "their")
    config = FusionConfig.from_items(feats.items, feats.label_map, seed=seed, **overrides)
    started = time.perf_counter()
    with torch_threads(FUSION_THREADS):
        result = train(train_items, val_items, config, feats.label_map, out_dir=out_dir, progress=progress,
                       device=settings.device, precision=settings.fusion_precision)
    train_s = time.perf_counter() - started
    out_dir = Path(out_dir)
    write_json(out_dir / "split.json", split.to_dict())
    write_json(out_dir / MODEL_FEATURES_FILE, fs.to_dict())
    write_json(out_dir / "failures.json", [dataclasses.asdict(f) for f in feats.failures])
    return TrainOutcome(out_dir, split, result, feats, train_s)
