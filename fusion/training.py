"""Training, saving and loading of the fusion model on precomputed ``VideoFeatures``.

``train`` → ``TrainResult`` (its ``predictor`` holds the best epoch's weights) → ``save_model`` → a model directory:
``model.pt`` (state dict, including the popularity standardisation and training percentiles), ``config.json``,
``label_map.json``, ``metrics.json``, ``model_card.md``. ``load_model`` reads it back into a ``LoadedModel`` whose
``predict`` gives one ``Prediction`` per video.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from encoders.device import resolve_device
from fusion.config import FusionConfig, check_compatible
from fusion.evaluation import score_predictions, write_plots
from fusion.metrics import task_score
from fusion.losses import LossTargets, MultiTaskLoss, quality_ordinal_targets
from fusion.model import MODALITIES, FusionModel, FusionOutput
from fusion.records import LabelMap, Prediction, VideoFeatures
from ovp.errors import ModelNotFound

logger = logging.getLogger(__name__)

MODEL_FILES = ("model.pt", "config.json", "label_map.json")


# --- batches ---------------------------------------------------------------------------------------------------------


@dataclass
class FeatureBatch:
    """Padded tensors for B items; ``*_valid`` masks are True on real positions. Every padded length is at least 1."""

    video_ids: list[str]
    frames: torch.Tensor
    frame_valid: torch.Tensor
    tokens: torch.Tensor
    token_valid: torch.Tensor
    entities: torch.Tensor
    entity_valid: torch.Tensor
    metadata: torch.Tensor
    targets: LossTargets
    # B × n_diseases: 1 where the item's linked entities include that label disease (``FusionConfig.disease_mentions``).
    mentions: torch.Tensor | None = None
    # B × L: True on the caption's own tokens, up to and including the first [SEP] (the knowledge enrichment follows it).
    caption_valid: torch.Tensor | None = None
    # B × n_diseases: 1 where the graph links that label disease to one of the item's linked phenotypes (``related_ids``).
    related: torch.Tensor | None = None
    # B × C × D_t and B × C: the caption's token states encoded on their own (``VideoFeatures.caption_tokens``), for
    # ``FusionConfig.quality_skip_caption_alone``; None when the config does not read them.
    caption_tokens: torch.Tensor | None = None
    caption_token_valid: torch.Tensor | None = None

    def to(self, device: torch.device) -> "FeatureBatch":
        moved = {
            f.name: getattr(self, f.name).to(device, non_blocking=True)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        targets = LossTargets(**{k: v if v is None else v.to(device, non_blocking=True)
                                 for k, v in vars(self.targets).items()})
        return dataclasses.replace(self, **moved, targets=targets)

    def inputs(self) -> tuple[torch.Tensor, ...]:
        return (self.frames, self.frame_valid, self.tokens, self.token_valid, self.entities, self.entity_valid, self.metadata,
                self.mentions, self.caption_valid, self.related, self.caption_tokens, self.caption_token_valid)


def _pad(arrays: list[np.ndarray], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Length ≥ 1 even when every item is empty: attention and pooling then see one masked position, not a 0-size dim.
    length = max([len(a) for a in arrays] + [1])
    out = np.zeros((len(arrays), length, width), dtype=np.float32)
    valid = np.zeros((len(arrays), length), dtype=bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
        valid[i, : len(a)] = True
    return torch.from_numpy(out), torch.from_numpy(valid)


def collate(
    items: Sequence[VideoFeatures], config: FusionConfig, label_map: LabelMap, pop_mean: float = 0.0, pop_std: float = 1.0
) -> FeatureBatch:
    """Pad ``items`` into one ``FeatureBatch``; popularity targets are standardised with ``pop_mean``/``pop_std``.

    Disease ids outside ``label_map`` are ignored here (``train`` reports them once).
    """
    frames, frame_valid = _pad([it.frames for it in items], config.d_visual)
    tokens, token_valid = _pad([it.tokens for it in items], config.d_text)
    entities, entity_valid = _pad([it.entities for it in items], config.d_graph)
    metadata = torch.from_numpy(np.stack([it.metadata for it in items]).astype(np.float32).reshape(len(items), -1))
    n = len(items)
    diseases = np.zeros((n, len(label_map)), dtype=np.float32)
    for i, it in enumerate(items):
        if it.diseases is not None:
            diseases[i] = label_map.encode(it.diseases)[0]
    targets = LossTargets(
        diseases=torch.from_numpy(diseases),
        disease_mask=torch.tensor([it.diseases is not None for it in items]),
        popularity=torch.tensor(
            [((it.popularity - pop_mean) / pop_std) if it.popularity is not None else 0.0 for it in items], dtype=torch.float32
        ),
        popularity_mask=torch.tensor([it.popularity is not None for it in items]),
        quality=torch.tensor([it.quality or 1 for it in items], dtype=torch.long),
        quality_mask=torch.tensor([it.quality is not None for it in items]),
    )
    mentions = np.stack([label_map.encode(it.entity_ids)[0] for it in items]) if len(label_map) else np.zeros((n, 0))
    related = np.stack([label_map.encode(it.related_ids)[0] for it in items]) if len(label_map) else np.zeros((n, 0))
    caption_tokens = caption_token_valid = None
    if config.reads_caption_alone:
        missing = [it.video_id for it in items if it.caption_tokens is None]
        if missing:
            raise ValueError(f"video {missing[0]!r} has no caption-alone token states, which this model reads "
                             "(FusionConfig.reads_caption_alone: quality_skip_caption_alone or "
                             "quality_readout_caption_alone): extract with FeatureSettings.caption_states=True")
        caption_tokens, caption_token_valid = _pad([it.caption_tokens for it in items], config.d_text)
    caption_valid = token_valid.clone()
    for i, it in enumerate(items):
        if "[SEP]" in it.token_text:
            caption_valid[i, it.token_text.index("[SEP]") + 1 :] = False
    return FeatureBatch(
        video_ids=[it.video_id for it in items],
        frames=frames,
        frame_valid=frame_valid,
        tokens=tokens,
        token_valid=token_valid,
        entities=entities,
        entity_valid=entity_valid,
        metadata=metadata,
        targets=targets,
        mentions=torch.from_numpy(mentions.astype(np.float32)),
        caption_valid=caption_valid,
        related=torch.from_numpy(related.astype(np.float32)),
        caption_tokens=caption_tokens,
        caption_token_valid=caption_token_valid,
    )


#: Fusion training and prediction precision on CUDA (``OVP_FUSION_PRECISION``): 'fp32' (default) or 'bf16' autocast.
#: fp32 because the fusion model is small enough that autocast's casts cost more than they save: on an H100, width 128,
#: 600 videos, an epoch took 0.96 s in fp32 against 1.45 s under bf16 autocast at batch 32, and 0.39 s against 0.56 s at
#: batch 128 (``bench/fusion_gpu.py``, eleventh round). The ResNet encoder keeps its own autocast, where it pays.
PRECISIONS = ("fp32", "bf16")


def fusion_precision() -> str:
    """``OVP_FUSION_PRECISION`` (default 'fp32'), checked.

    Raises:
        ValueError: the variable names no precision in :data:`PRECISIONS`.
    """
    value = os.environ.get("OVP_FUSION_PRECISION", "fp32").strip().lower() or "fp32"
    if value not in PRECISIONS:
        raise ValueError(f"OVP_FUSION_PRECISION={value!r} is not one of {PRECISIONS}")
    return value


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    # CPU always runs in float32 (exact reproducibility); bfloat16 on CUDA needs no loss scaler.
    if device.type == "cuda" and fusion_precision() == "bf16" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _show_progress(progress: bool) -> bool:
    return progress and sys.stderr.isatty()


# --- prediction ------------------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A fusion model ready to predict: weights in eval mode on ``device``, with its config and label map.

    ``model_version`` identifies the weights (a hash of ``model.pt``; empty before saving) for ``Profile.model_version``.
    """

    model: FusionModel
    config: FusionConfig
    label_map: LabelMap
    device: torch.device
    metrics: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""

    def predict(self, items: Sequence[VideoFeatures], batch_size: int = 64) -> list[Prediction]:
        """One ``Prediction`` per item, in order.

        Raises:
            ValueError: an item's feature widths differ from the model's (naming the video).
        """
        check_compatible(self.config, items, self.label_map)
        predictions: list[Prediction] = []
        for chunk, out in _forward(self.model, items, self.config, self.label_map, self.device, batch_size):
            predictions.extend(_to_predictions(self.model, chunk, out, self.label_map))
        return predictions


def _forward(
    model: FusionModel,
    items: Sequence[VideoFeatures],
    config: FusionConfig,
    label_map: LabelMap,
    device: torch.device,
    batch_size: int,
) -> Iterator[tuple[Sequence[VideoFeatures], FusionOutput]]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                batch = collate(chunk, config, label_map).to(device)
                with _autocast(device):
                    out = model(*batch.inputs())
                yield chunk, out
    finally:
        model.train(was_training)


def at_least_one_rule(config: FusionConfig, train_items: Sequence[VideoFeatures]) -> bool:
    """Whether a model trained on ``train_items`` predicts at least one disease (``FusionConfig.disease_at_least_one``):
    'on' / 'off' as given; 'auto' when some training video is disease-labelled and none of them is labelled ``[]``."""
    if config.disease_at_least_one != "auto":
        return config.disease_at_least_one == "on"
    labelled = [it.diseases for it in train_items if it.diseases is not None]
    return bool(labelled) and all(labelled)


def _to_predictions(
    model: FusionModel, items: Sequence[VideoFeatures], out: FusionOutput, label_map: LabelMap
) -> list[Prediction]:
    def cpu(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().float().cpu().numpy()

    def per_label(values: np.ndarray | None, i: int) -> dict[str, float]:
        """Item ``i``'s row of a B × n_diseases output by disease id (empty when the model has no such output)."""
        return {} if values is None else {d: float(values[i, j]) for j, d in enumerate(label_map.disease_ids)}

    disease = cpu(out.disease_probs)
    pop_value = pop_pct = None
    if out.popularity is not None:
        value = model.popularity_value(out.popularity.float())
        pop_value, pop_pct = cpu(value), cpu(model.popularity_percentile(value))
    q_probs = cpu(out.quality_probs)
    frame_att, token_att, entity_att = cpu(out.frame_attention), cpu(out.token_attention), cpu(out.entity_attention)
    gates, embedding = cpu(out.gates), cpu(out.embedding)
    prior = cpu(out.disease_prior)
    frames_part, frame_weights = cpu(out.disease_frames), cpu(out.disease_frame_weights)
    rule = bool(getattr(model, "at_least_one", False))
    result = []
    for i, it in enumerate(items):
        k, n_tok, e = len(it.frames), len(it.tokens), len(it.entities)
        keyframes = {}
        if frame_weights is not None and k:
            top = frame_weights[i, :k].argmax(axis=0)
            keyframes = {d: (float(it.frame_times[top[j]]), float(frame_weights[i, top[j], j]))
                         for j, d in enumerate(label_map.disease_ids)}
        result.append(
            Prediction(
                video_id=it.video_id,
                disease_probs=per_label(disease, i),
                popularity=float(pop_value[i]) if pop_value is not None else None,
                popularity_pct=float(pop_pct[i]) if pop_pct is not None else None,
                quality=int(q_probs[i].argmax()) + 1 if q_probs is not None else None,
                quality_probs=[float(p) for p in q_probs[i]] if q_probs is not None else None,
                frame_attention=[(float(t), float(w)) for t, w in zip(it.frame_times, frame_att[i, :k])],
                token_attention=[(s, float(w)) for s, w in zip(it.token_text, token_att[i, :n_tok])],
                entity_attention=[(s, float(w)) for s, w in zip(it.entity_ids, entity_att[i, :e])],
                modality_gates={m: float(gates[i, j]) for j, m in enumerate(MODALITIES)},
                embedding=[float(x) for x in embedding[i]],
                disease_prior_logits=per_label(prior, i),
                disease_frame_logits=per_label(frames_part, i),
                disease_keyframes=keyframes,
                at_least_one=rule,
            )
        )
    return result


# --- training --------------------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What ``train`` returns. ``history`` has one JSON-ready record per epoch:
    ``{epoch, train_loss, task_losses, task_weights, val_score, val_metrics, seconds}``."""

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
    # ``FusionConfig.distill``: each single-task teacher's validation headline metric on its own task (empty otherwise).
    teachers: dict[str, float] = field(default_factory=dict)

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
    teachers: dict[str, TrainResult] | None = None,
) -> TrainResult:
    """Train a fusion model with AdamW and early stopping on the validation score (macro-F1 + Spearman + QWK).

    The checkpoint kept is the epoch whose validation score averaged over the last ``config.score_window`` epochs is
    highest; training stops once that average has not improved for ``config.patience`` epochs, but not before
    ``config.min_epochs``. Same ``config.seed``, data and device → the same weights and metrics on CPU; on CUDA
    cuDNN's attention backward is non-deterministic, so GPU runs differ slightly. Without ``val_items``
    every epoch runs and the one with the lowest (window-averaged) training loss is kept. When ``out_dir`` is given the
    model is saved there (``save_model``) with its plots.
    ``device`` is a device setting (``Settings.device``: auto, cpu, cuda, cuda:N). With ``config.distill`` (and more
    than one task) the joint model learns from single-task ``teachers`` ({task: its single-task ``TrainResult``}, each
    trained on these ``train_items``); without them ``train_teachers`` trains them first. Each epoch's record then
    carries the teachers' share of the targets (``teacher_share``).

    Raises:
        ValueError: no training items, or items whose feature widths or label map disagree with ``config``.
    """
    if not train_items:
        raise ValueError("train() needs at least one training item")
    check_compatible(config, list(train_items) + list(val_items), label_map)
    unknown = sorted({d for it in train_items for d in (it.diseases or []) if d not in label_map.disease_ids})
    if unknown:
        logger.warning("%d disease ids in the training labels are not in the label map and are ignored: %s",
                       len(unknown), ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else ""))
    distilling = config.distill and len(config.tasks) > 1
    if distilling and teachers is None:
        teachers = train_teachers(train_items, val_items, config, label_map, progress, device)
    torch_device = resolve_device(device)
    pop_mean, pop_std, pop_quantiles = _popularity_stats(train_items)

    with _deterministic():
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        model = FusionModel(config)
        model.pop_mean.fill_(pop_mean)
        model.pop_std.fill_(pop_std)
        model.pop_quantiles.copy_(torch.as_tensor(pop_quantiles, dtype=torch.float32))
        meta_mean, meta_std = _metadata_stats(train_items, config.d_meta)
        model.meta_mean.copy_(meta_mean)
        model.meta_std.copy_(meta_std)
        if hasattr(model, "at_least_one"):
            model.at_least_one.fill_(at_least_one_rule(config, train_items))
        model.to(torch_device)
        fit_quality_skip(model, train_items, label_map, torch_device)
        fit_popularity_cascade(model, train_items, label_map, torch_device)
        fit_mention_prior(model, train_items, label_map, torch_device)
        loss_fn = MultiTaskLoss(config).to(torch_device)
        groups = decay_groups(model, [p for p in model.parameters() if p.requires_grad], config)
        if loss_fn.log_vars.requires_grad:
            groups.append({"params": [loss_fn.log_vars], "weight_decay": 0.0})  # decaying log-variances biases the weights
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        predictor = LoadedModel(model, config, label_map, torch_device)

        history: list[dict[str, Any]] = []
        best_score, best_epoch, best_state, best_val = -math.inf, 0, None, {}
        stale = 0
        show = _show_progress(progress)
        soft = None
        if distilling:
            soft = soft_targets(teachers, train_items, config, pop_mean, pop_std)
        batches = _Batcher(config, label_map, pop_mean, pop_std, torch_device, soft)
        average = _averaging(config, [p for p in model.parameters() if p.requires_grad], len(train_items))
        averaged = average.applied if average is not None else contextlib.nullcontext
        horizon = config.distill_anneal_epochs or config.epochs
        epochs = tqdm(range(1, config.epochs + 1), desc="epochs", disable=not show, leave=False)
        for epoch in epochs:
            started = time.perf_counter()
            # Teacher annealing: all teacher at the first epoch, all label from ``horizon`` on.
            batches.teacher_share = max(0.0, 1.0 - (epoch - 1) / max(1, horizon - 1)) if distilling else 0.0
            record: dict[str, Any] = {
                "epoch": epoch,
                **_train_epoch(model, loss_fn, optimizer, [list(model.parameters())], train_items, rng, batches,
                               f"epoch {epoch}", show, surgery=config.gradient_surgery == "pcgrad", average=average),
                "task_weights": loss_fn.weights(),
                **({"teacher_share": batches.teacher_share} if distilling else {}),
            }
            if val_items:
                with averaged():
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
            smoothed = float(np.mean(recent))
            record["smoothed_score"] = smoothed
            if smoothed > best_score:
                best_score, best_epoch, best_val, stale = smoothed, epoch, val, 0
                with averaged():
                    best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if val_items and stale >= config.patience and epoch >= config.min_epochs:
                    break
        epochs.close()
        assert best_state is not None  # at least one epoch ran (config.epochs > 0)
        model.load_state_dict(best_state)
        refit: dict[str, Any] = {}
        batches.teacher_share = 0.0  # the refit learns from the labels
        if config.head_refit_epochs > 0 and val_items:
            refit = refit_heads(model, loss_fn, train_items, val_items, config, label_map, rng, batches, predictor, show)
            best_val = refit.pop("val_metrics")
        model.eval()

    stopped_early = len(history) < config.epochs
    logger.info(
        "trained %d epochs on %d items (best epoch %d, validation score %.3f averaged over %d epochs%s)",
        len(history), len(train_items), best_epoch, best_score, config.score_window, ", stopped early" if stopped_early else "",
    )
    result = TrainResult(
        predictor=predictor,
        history=history,
        best_epoch=best_epoch,
        val_metrics=best_val,
        task_weights=history[best_epoch - 1]["task_weights"],
        n_train=len(train_items),
        n_val=len(val_items),
        synthetic=any(it.synthetic for it in list(train_items) + list(val_items)),
        stopped_early=stopped_early,
        refit=refit,
        teachers={task: task_score(t.val_metrics, task) for task, t in teachers.items()} if distilling else {},
    )
    if out_dir is not None:
        save_model(result, out_dir)
    return result



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


@dataclass
class SoftTargets:
    """Teachers' predictions on training videos, in the loss's target units (``FusionConfig.distill``): per video id
    the disease probabilities, the standardised popularity, and the quality targets (P(GQS > k) for the ordinal head,
    level probabilities for softmax). A task no teacher predicts is absent."""

    disease: dict[str, np.ndarray] = field(default_factory=dict)
    popularity: dict[str, float] = field(default_factory=dict)
    quality: dict[str, np.ndarray] = field(default_factory=dict)


def train_teachers(
    train_items: Sequence[VideoFeatures],
    val_items: Sequence[VideoFeatures],
    config: FusionConfig,
    label_map: LabelMap,
    progress: bool = False,
    device: str = "auto",
) -> dict[str, TrainResult]:
    """One single-task model per task of ``config`` (its checkpoint chosen on its own task's metric), trained as the
    single-task ablation trains them: the teachers of ``FusionConfig.distill``."""
    return {
        task: train(train_items, val_items, config.single_task(task), label_map, progress=progress, device=device)
        for task in config.tasks
    }


def soft_targets(teachers: dict[str, TrainResult], items: Sequence[VideoFeatures], config: FusionConfig,
                 pop_mean: float, pop_std: float) -> SoftTargets:
    """The teachers' predictions on ``items`` as ``SoftTargets`` for a student with ``config`` whose popularity is
    standardised with ``pop_mean``/``pop_std``; a teacher for a task ``config`` does not train is ignored.

    Raises:
        ValueError: a teacher does not predict the task it is given for.
    """
    soft = SoftTargets()
    for task, teacher in teachers.items():
        if not config.has(task):
            continue
        if not teacher.config.has(task):
            raise ValueError(f"the {task!r} teacher was trained for {teacher.config.tasks}, not {task!r}")
        for it, p in zip(items, teacher.predictor.predict(items)):
            if task == "disease":
                soft.disease[it.video_id] = np.array([p.disease_probs[d] for d in teacher.label_map.disease_ids],
                                                     dtype=np.float32)
            elif task == "popularity":
                soft.popularity[it.video_id] = (p.popularity - pop_mean) / pop_std
            else:
                probs = np.asarray(p.quality_probs, dtype=np.float32)
                # P(y > k) for k = 1..4 is the mass above level k.
                soft.quality[it.video_id] = (probs[::-1].cumsum()[::-1][1:].copy() if config.quality_head == "ordinal"
                                             else probs)
    return soft


class _Batcher:
    """Collates training chunks on the training device, with the training set's popularity standardisation. With
    ``soft`` targets and ``teacher_share`` s > 0 each labelled target becomes (1 − s)·label + s·teacher."""

    def __init__(self, config: FusionConfig, label_map: LabelMap, pop_mean: float, pop_std: float,
                 device: torch.device, soft: SoftTargets | None = None) -> None:
        self.config, self.label_map, self.pop_mean, self.pop_std, self.device = config, label_map, pop_mean, pop_std, device
        self.soft = soft
        self.teacher_share = 0.0

    def __call__(self, chunk: Sequence[VideoFeatures]) -> FeatureBatch:
        batch = collate(chunk, self.config, self.label_map, self.pop_mean, self.pop_std)
        if self.soft is not None and self.teacher_share > 0:
            batch = dataclasses.replace(batch, targets=self._mixed(batch.video_ids, batch.targets))
        return batch.to(self.device)

    def _mixed(self, ids: list[str], y: LossTargets) -> LossTargets:
        s, soft = self.teacher_share, self.soft
        diseases, popularity = y.diseases, y.popularity
        if soft.disease:
            teacher = torch.from_numpy(np.stack([soft.disease[i] for i in ids]))
            diseases = (1 - s) * y.diseases + s * teacher
        if soft.popularity:
            teacher = torch.tensor([soft.popularity[i] for i in ids], dtype=torch.float32)
            popularity = (1 - s) * y.popularity + s * teacher
        quality_soft = None
        if soft.quality:
            teacher = torch.from_numpy(np.stack([soft.quality[i] for i in ids]))
            gold = (quality_ordinal_targets(y.quality) if self.config.quality_head == "ordinal"
                    else F.one_hot(y.quality.clamp(1, 5) - 1, 5).to(torch.float32))
            quality_soft = (1 - s) * gold + s * teacher
        return dataclasses.replace(y, diseases=diseases, popularity=popularity, quality_soft=quality_soft)


def decay_groups(model: FusionModel, params: Sequence[torch.nn.Parameter], config: FusionConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups for ``params``: the disease head's own with ``config.disease_head_decay`` and the
    popularity head's own with ``config.popularity_head_decay`` when those are set, and the rest with the optimiser's
    default decay."""
    heads = [(model.disease_head, config.disease_head_decay), (model.popularity_head, config.popularity_head_decay)]
    own = [({id(p) for p in head.parameters()}, decay) for head, decay in heads if head is not None and decay is not None]
    taken = set().union(*(ids for ids, _ in own))
    groups = [{"params": [p for p in params if id(p) not in taken]}]
    for ids, decay in own:
        mine = [p for p in params if id(p) in ids]
        if mine:
            groups.append({"params": mine, "weight_decay": decay})
    return groups


class WeightAverage:
    """An exponential moving average of ``params`` (Polyak averaging), updated after each optimiser step with the
    decay that gives a time constant of ``epochs`` epochs of ``steps_per_epoch`` steps. ``applied()`` puts the averaged
    values into the parameters for as long as it is open and the live ones back afterwards."""

    def __init__(self, params: Sequence[torch.nn.Parameter], epochs: float, steps_per_epoch: int) -> None:
        self.params = list(params)
        self.decay = math.exp(-1.0 / (epochs * max(1, steps_per_epoch)))
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        for average, p in zip(self.average, self.params):
            average.lerp_(p.detach(), 1.0 - self.decay)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, average in zip(self.params, self.average):
                p.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.params, live):
                    p.copy_(value)


def _averaging(config: FusionConfig, params: Sequence[torch.nn.Parameter], n_items: int) -> WeightAverage | None:
    """The weight average ``config.weight_ema_epochs`` asks for over ``params`` (None when off)."""
    if config.weight_ema_epochs is None:
        return None
    return WeightAverage(params, config.weight_ema_epochs, math.ceil(n_items / config.batch_size))


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
    surgery: bool = False,
    average: WeightAverage | None = None,
) -> dict[str, Any]:
    """One pass over ``items`` in a fresh random order; each of ``clip_groups`` has its gradient norm clipped on its
    own (``config.grad_clip``). With ``surgery`` the shared trunk's gradient is combined by ``config.gradient_surgery``
    (``pcgrad_backward``) instead of summed; ``average`` is updated after every step. Returns
    ``{train_loss, task_losses}``, means over items."""
    config = batches.config
    model.train()
    order = rng.permutation(len(items))
    total, task_sums, task_counts = 0.0, {}, {}
    for b in tqdm(range(math.ceil(len(items) / config.batch_size)), desc=desc, disable=not show, leave=False):
        chunk = [items[i] for i in order[b * config.batch_size : (b + 1) * config.batch_size]]
        batch = batches(chunk)
        with _autocast(batches.device):
            out = model(*batch.inputs())
        terms, parts = loss_fn.weighted_terms(out, batch.targets)
        loss = sum(terms.values(), out.embedding.new_zeros((), dtype=torch.float32))
        optimizer.zero_grad(set_to_none=True)
        if surgery and len(terms) > 1:
            pcgrad_backward(terms, model.shared_parameters(), _trainable(model, loss_fn), rng)
        else:
            loss.backward()
        if config.grad_clip > 0:
            for group in clip_groups:
                torch.nn.utils.clip_grad_norm_(group, config.grad_clip)
        optimizer.step()
        if average is not None:
            average.update()
        total += float(loss.detach()) * len(chunk)
        for task, value in parts.items():
            task_sums[task] = task_sums.get(task, 0.0) + value * len(chunk)
            task_counts[task] = task_counts.get(task, 0) + len(chunk)
    return {"train_loss": total / len(items), "task_losses": {t: task_sums[t] / task_counts[t] for t in task_sums}}


def _trainable(model: FusionModel, loss_fn: MultiTaskLoss) -> list[torch.nn.Parameter]:
    return [p for p in list(model.parameters()) + list(loss_fn.parameters()) if p.requires_grad]


def pcgrad_backward(terms: dict[str, torch.Tensor], shared: Sequence[torch.nn.Parameter],
                    params: Sequence[torch.nn.Parameter], rng: np.random.Generator) -> None:
    """Set ``.grad`` of ``params`` from the task loss ``terms`` by PCGrad (Yu et al., NeurIPS 2020).

    On the ``shared`` parameters (flattened into one vector per task) each task's gradient g_i, visiting the other tasks
    in a random order, loses its projection on every original g_j it conflicts with: if g_i·g_j < 0,
    g_i ← g_i − (g_i·g_j / ‖g_j‖²) g_j; the projected gradients are then summed. Every other parameter gets the plain sum
    of the tasks' gradients (a task-specific one receives only its own task's). One backward pass per task.
    """
    shared_ids = {id(p) for p in shared}
    params = list(params)
    grads = []
    names = list(terms)
    for i, task in enumerate(names):
        g = torch.autograd.grad(terms[task], params, retain_graph=i < len(names) - 1, allow_unused=True)
        grads.append([torch.zeros_like(p) if gi is None else gi for p, gi in zip(params, g)])
    on_trunk = [k for k, p in enumerate(params) if id(p) in shared_ids]
    flat = [torch.cat([g[k].reshape(-1) for k in on_trunk]) if on_trunk else None for g in grads]
    if on_trunk:
        projected = []
        for i, g_i in enumerate(flat):
            g = g_i.clone()
            for j in rng.permutation(len(flat)):
                if j == i:
                    continue
                dot = torch.dot(g, flat[j])
                norm2 = torch.dot(flat[j], flat[j])
                if dot < 0 and norm2 > 0:
                    g = g - dot / norm2 * flat[j]
            projected.append(g)
        combined = torch.stack(projected).sum(dim=0)
    offset = 0
    for k, p in enumerate(params):
        if id(p) in shared_ids:
            n = p.numel()
            p.grad = combined[offset : offset + n].view_as(p).clone()
            offset += n
        else:
            p.grad = torch.stack([g[k] for g in grads]).sum(dim=0)


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
    ``config.head_refit_epochs`` epochs, keeping per task the epoch of its best validation headline metric. They start
    from the joint checkpoint's values or, with ``config.head_refit_init='fresh'``, from a new initialisation.

    The shared trunk (projections, cross-modal attention, metadata MLP) stays as joint training left it, so the model
    keeps one trunk and one fused embedding; with ``config.task_attention`` each task's cross-modal blocks are its own
    and refit with its readout and head, and only the projections and metadata MLP stay frozen; with
    ``config.refit_attention`` each task first gets its own copy of the joint blocks (``FusionModel.untie_attention``),
    which then refits likewise. The task groups share
    no parameter and a task's loss reaches only its own group, so the refits are independent; each group's gradient
    norm is clipped on its own. Epoch 0 — the joint
    checkpoint — is a candidate, so no task's validation metric ends below where joint training left it. Stops when no
    task has improved for ``config.patience`` epochs. On return ``model`` holds every task's chosen parameters.

    Returns:
        ``{"epochs": [...], "kept": {task: epoch}, "val_metrics": the final model's validation metrics}``.
    """
    model.untie_attention()  # ``refit_attention``: each task refits its own copy of the joint blocks
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
    if config.head_refit_init == "fresh":
        for task in groups:
            model.reset_task(task)
    records: list[dict[str, Any]] = []
    try:
        refitting = [p for params in groups.values() for p in params]
        optimizer = torch.optim.AdamW(decay_groups(model, refitting, config), lr=config.lr,
                                      weight_decay=config.weight_decay)
        average = _averaging(config, refitting, len(train_items))
        averaged = average.applied if average is not None else contextlib.nullcontext
        stale = 0
        for epoch in range(1, config.head_refit_epochs + 1):
            started = time.perf_counter()
            record = {"epoch": epoch, **_train_epoch(model, loss_fn, optimizer, list(groups.values()), train_items,
                                                     rng, batches, f"refit {epoch}", show, average=average)}
            improved = False
            with averaged():
                val = score_predictions(val_items, predictor.predict(val_items), label_map)
                record["val_metrics"] = {task: task_score(val, task) for task in groups}
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


# --- saving and loading ----------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    # JSON has no NaN; metrics that are undefined on a split are written as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


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
    if result.teachers:
        scores = ", ".join(f"{task} {value:.3f}" for task, value in result.teachers.items())
        refit_line += (f"\nDistilled from single-task teachers with teacher annealing (BAM); their validation headline "
                       f"metrics: {scores}.")
    rule = getattr(result.predictor.model, "at_least_one", None)
    decision_line = ""
    if rule is not None:
        decision_line = ("\nDecision rule: a disease is predicted at probability ≥ the threshold (0.5 by default)"
                         + ("; when none is, the most probable one is predicted anyway, because every disease-labelled "
                            "training video had a label (`disease_at_least_one`)." if bool(rule) else
                            "; a video may be predicted to be about none (`disease_at_least_one`: off, or a training "
                            "video was labelled with no disease)."))
    return f"""# OVP fusion model {version}

## Model
Fusion `{cfg.fusion}` over {modalities}; width {cfg.width}; tasks: {", ".join(cfg.tasks)}
(weighting: {cfg.task_weighting}; quality head: {cfg.quality_head}); {len(result.label_map)} disease labels.
Best epoch {result.best_epoch} of {len(result.history)}.{refit_line}{decision_line}

## Data
{data_line}
{result.n_train} training and {result.n_val} validation videos.
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
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "validation": result.val_metrics,
        "task_weights": result.task_weights,
        "history": result.history,
        "head_refit": result.refit,
        "teachers": result.teachers,
    }
    (out_dir / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2) + "\n", encoding="utf-8")
    (out_dir / "model_card.md").write_text(_model_card(result, version), encoding="utf-8")
    result.predictor.metrics = _json_safe(metrics)
    write_plots(out_dir, history=result.history, metrics=result.val_metrics,
                title_note="SYNTHETIC data" if result.synthetic else "")
    logger.info("saved fusion model %s to %s", version, out_dir)
    return out_dir


#: Parameter names of the one shared readout before ``task_readout`` existed → their names now.
_OLD_READOUT = (("pools.", "readouts.shared.pools."), ("gates.", "readouts.shared.gates."),
                ("fuse_norm.", "readouts.shared.norm."))


def _renamed_readout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for old, new in _OLD_READOUT:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        renamed[key] = value
    return renamed


def load_model(model_dir: Path, device: str = "auto") -> LoadedModel:
    """Load a model directory written by ``save_model`` onto ``device`` (a device setting), ready to predict.

    Raises:
        ModelNotFound: the directory or one of ``model.pt``, ``config.json``, ``label_map.json`` is missing or unreadable.
    """
    model_dir = Path(model_dir)
    missing = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelNotFound(
            f"model directory {model_dir} lacks {', '.join(missing)}",
            hint="train one with `ovp train` (or `ovp demo-data` then `ovp train`), or point OVP_MODEL_DIR at a trained model",
        )
    try:
        config = FusionConfig.from_dict(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))
        label_map = LabelMap.load(model_dir / "label_map.json")
        state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
        model = FusionModel(config)
        # Models saved before metadata standardisation existed ran on raw metadata: the identity buffers reproduce that.
        for name in ("meta_mean", "meta_std"):
            state.setdefault(name, getattr(model, name))
        state = _renamed_readout(state)
        model.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise ModelNotFound(f"model directory {model_dir} cannot be loaded: {exc}", hint="retrain the model") from exc
    metrics_path = model_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    version = metrics.get("model_version") or hashlib.sha256((model_dir / "model.pt").read_bytes()).hexdigest()[:12]
    torch_device = resolve_device(device)
    model.to(torch_device).eval()
    return LoadedModel(model, config, label_map, torch_device, metrics, version)
