r"""Multi-task loss for the fusion model, with items' missing labels masked out.

Per task (each averaged over the items of the batch that carry that label):

- disease: binary cross-entropy with logits, averaged over the labels;
- popularity: Smooth-L1 on the standardised log1p engagement (robust to the heavy tail of viral videos);
- quality: ordinal — the CORAL loss, binary cross-entropy on the four "y > k" events.

Weighting (``config.task_weighting``):

- ``'uncertainty'`` (Kendall, Gal & Cipolla, CVPR 2018): one learned log-variance :math:`s_t` per task,
  :math:`\mathcal{L} = \sum_t e^{-s_t} w_t \mathcal{L}_t + s_t`. The :math:`s_t` term stops the trivial solution of
  infinite variance; the same form is used for every task (the regression-specific factor ½ is absorbed into :math:`s_t`).
- ``'equal'`` (default, see ``FusionConfig.task_weighting``): :math:`\mathcal{L} = \sum_t w_t \mathcal{L}_t`
  with fixed :math:`w_t` from ``config.task_weights`` (1 for a task it does not name).

A task with no labelled item in a batch contributes nothing (not even its :math:`s_t` term, which would otherwise drift).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusion.config import FusionConfig
from fusion.model import FusionOutput

logger = logging.getLogger(__name__)


@dataclass
class LossTargets:
    """Batch targets and which items carry each label (B items; masks are bool)."""

    diseases: Tensor  # B × n_diseases multi-hot float
    disease_mask: Tensor  # B
    popularity: Tensor  # B, standardised
    popularity_mask: Tensor  # B
    quality: Tensor  # B long, levels 1..5 (anything where quality_mask is False)
    quality_mask: Tensor  # B


def quality_ordinal_targets(levels: Tensor) -> Tensor:
    """B levels 1..5 → B × 4 float targets of the events y > 1, y > 2, y > 3, y > 4."""
    ks = torch.arange(1, 5, device=levels.device)
    return (levels[:, None] > ks[None, :]).to(torch.float32)


class MultiTaskLoss(nn.Module):
    """Combines the per-task losses of ``FusionOutput`` according to the config; holds the learned log-variances."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        self.tasks = tuple(config.tasks)
        learn = config.task_weighting == "uncertainty"
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)), requires_grad=learn)
        self.fixed = [float((config.task_weights or {}).get(task, 1.0)) for task in self.tasks]

    def task_losses(self, out: FusionOutput, y: LossTargets) -> dict[str, Tensor]:
        """Unweighted loss per enabled task that has at least one labelled item in the batch."""
        losses: dict[str, Tensor] = {}
        if "disease" in self.tasks and y.disease_mask.any():
            m = y.disease_mask
            bce = F.binary_cross_entropy_with_logits(out.disease_logits[m].float(), y.diseases[m], reduction="none")
            losses["disease"] = bce.mean(dim=1).mean()
        if "popularity" in self.tasks and y.popularity_mask.any():
            m = y.popularity_mask
            losses["popularity"] = F.smooth_l1_loss(out.popularity[m].float(), y.popularity[m])
        if "quality" in self.tasks and y.quality_mask.any():
            m = y.quality_mask
            losses["quality"] = F.binary_cross_entropy_with_logits(out.quality_logits[m].float(),
                                                                   quality_ordinal_targets(y.quality[m]))
        return losses

    def forward(self, out: FusionOutput, y: LossTargets) -> tuple[Tensor, dict[str, float]]:
        """(total loss to back-propagate, per-task unweighted loss values for logging). The total is the sum of each
        task's weighted term (under 'uncertainty' a term includes its task's :math:`s_t`)."""
        losses = self.task_losses(out, y)
        total = out.embedding.new_zeros((), dtype=torch.float32)
        for i, task in enumerate(self.tasks):
            if task not in losses:
                continue
            if self.config.task_weighting == "uncertainty":
                total = total + (torch.exp(-self.log_vars[i]) * self.fixed[i] * losses[task] + self.log_vars[i])
            else:
                total = total + self.fixed[i] * losses[task]
        return total, {k: float(v.detach()) for k, v in losses.items()}

    def weights(self) -> dict[str, float]:
        """Current effective weight per task: the fixed weight :math:`w_t`, times :math:`e^{-s_t}` under uncertainty."""
        learned = torch.exp(-self.log_vars.detach()) if self.config.task_weighting == "uncertainty" else None
        return {t: self.fixed[i] * (float(learned[i]) if learned is not None else 1.0) for i, t in enumerate(self.tasks)}
