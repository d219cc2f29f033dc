"""Inference: load a trained fusion model and predict profiles with it.

``load_model`` reads a model directory written by ``fusion.training.save_model`` (``model.pt``: the state dict,
including the popularity standardisation and training percentiles; ``config.json``; ``label_map.json``;
``metrics.json``) into a ``LoadedModel``, whose ``predict`` gives one ``Prediction`` per video. The worker imports this
module, never the training code.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from encoders.device import resolve_device
from fusion.batches import collate
from fusion.config import FusionConfig, check_compatible
from fusion.model import MODALITIES, FusionModel, FusionOutput
from fusion.records import LabelMap, Prediction, VideoFeatures
from ovp.errors import ConfigError, ModelNotFound

logger = logging.getLogger(__name__)

MODEL_FILES = ("model.pt", "config.json", "label_map.json")

#: Fusion precisions on CUDA (``Settings.fusion_precision``): 'fp32' (default) or 'bf16' autocast. fp32 because the
#: fusion model is small enough that autocast's casts cost more than they save (``bench/fusion_gpu.py``). The ResNet
#: encoder keeps its own autocast, where it pays.
PRECISIONS = ("fp32", "bf16")

#: Intra-op threads for the fusion model on CPU: it is small, so on a shared CPU one thread trains and predicts it
#: faster than two (thread hand-offs cost more than the matrix products they split), and results stay bit-identical
#: across machines with different cores.
FUSION_THREADS = 1


def check_precision(precision: str) -> str:
    """``precision`` normalised (case, blanks; empty means 'fp32') and checked.

    Raises:
        ConfigError: it names no precision in :data:`PRECISIONS`.
    """
    value = (precision or "fp32").strip().lower() or "fp32"
    if value not in PRECISIONS:
        raise ConfigError(f"OVP_FUSION_PRECISION={precision!r} is not one of {PRECISIONS}", hint="use fp32 or bf16")
    return value


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on a CUDA ``device`` that supports it when ``precision`` is 'bf16'; otherwise nothing: CPU always
    runs in float32 (exact reproducibility), and bfloat16 needs no loss scaler."""
    if device.type == "cuda" and precision == "bf16" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
    precision: str = "fp32"  # on CUDA: fp32, or bf16 autocast (``Settings.fusion_precision``)

    def predict(self, items: Sequence[VideoFeatures], batch_size: int = 64) -> list[Prediction]:
        """One ``Prediction`` per item, in order.

        Raises:
            ValueError: an item's feature widths differ from the model's (naming the video).
        """
        check_compatible(self.config, items, self.label_map)
        predictions: list[Prediction] = []
        for chunk, out in self._forward(items, batch_size):
            predictions.extend(_to_predictions(self.model, chunk, out, self.label_map))
        return predictions

    def _forward(self, items: Sequence[VideoFeatures],
                 batch_size: int) -> Iterator[tuple[Sequence[VideoFeatures], FusionOutput]]:
        """``items`` in chunks of ``batch_size`` through the model in eval mode, without gradients (the model's mode
        is restored afterwards: training validates through this between epochs)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(items), batch_size):
                    chunk = items[start : start + batch_size]
                    batch = collate(chunk, self.config, self.label_map).to(self.device)
                    with autocast(self.device, self.precision):
                        out = self.model(*batch.inputs())
                    yield chunk, out
        finally:
            self.model.train(was_training)


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


def load_model(model_dir: Path, device: str = "auto", precision: str = "fp32") -> LoadedModel:
    """Load a model directory written by ``fusion.training.save_model`` onto ``device`` (a device setting), ready to
    predict in ``precision`` (``Settings.fusion_precision``).

    Raises:
        ModelNotFound: the directory or one of ``model.pt``, ``config.json``, ``label_map.json`` is missing or unreadable,
            or the model was trained with an option this version no longer has (the message names it).
        ConfigError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    precision = check_precision(precision)
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
    return LoadedModel(model, config, label_map, torch_device, metrics, version, precision)
