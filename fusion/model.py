r"""The OVP fusion model: keyframes × knowledge-enriched text × graph entities → disease, popularity and quality.

Approach (the OVP paper): ResNet keyframe features and knowledge-graph-enriched BERT token states are fused by
cross-modal attention, and three heads are trained jointly; the GNN embeddings of the linked entities join the text side.
Task losses are summed with equal weights by default, or combined with learned homoscedastic uncertainty (Kendall, Gal &
Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018), which on
the demo set's validation split did worse — see ``fusion.losses`` and ``FusionConfig.task_weighting``.

The math, for one video with frames :math:`F \in \mathbb{R}^{K\times D_v}`, tokens :math:`T \in \mathbb{R}^{L\times D_t}`,
entities :math:`G \in \mathbb{R}^{E\times D_g}` and metadata :math:`m`; :math:`d` is ``config.width``:

1. Projections: :math:`V = \mathrm{LN}(F W_v)`, :math:`C = [\mathrm{LN}(T W_t) + e_t ;\ \mathrm{LN}(G W_g) + e_g]`
   (:math:`e_t, e_g` learned type embeddings: the text-and-entity context, length :math:`L+E`).
2. Cross-modal attention, both directions, from the same inputs (co-attention):
   :math:`C' = \mathrm{LN}(C + \mathrm{MHA}(Q{=}C, K{=}V, V{=}V))`, :math:`V' = \mathrm{LN}(V + \mathrm{MHA}(Q{=}V, K{=}C, V{=}C))`,
   each followed by a residual feed-forward block. Padding and switched-off modalities are key-padding masks.
3. Gated pooling: per sequence (frames, tokens, entities) an attention pool
   :math:`\alpha = \mathrm{softmax}_{valid}(w^\top \tanh(W h_i))`, :math:`s = \sum_i \alpha_i h_i`; metadata gives
   :math:`s_m = \mathrm{MLP}(m)`. Each summary gets a learned gate :math:`g = \sigma(W_g s)` and the fused embedding is
   :math:`z = \mathrm{LN}(\sum_{present} g \odot s)` (:math:`d`-dimensional; stored in the Neo4j vector index).
   With ``task_readout`` each task has its own pools, gates and LayerNorm over the same cross-attended sequences and
   its head reads its own :math:`z_t`; the stored embedding and the reported weights are the means over tasks.
4. Heads on :math:`z`: disease logits (multi-label, sigmoid; with ``disease_mentions`` plus :math:`a_j` for each label
   :math:`j` the caption's linked entities include and :math:`b_j` for every label, both starting at the training set's
   log-odds and the head on :math:`z` at zero), popularity (standardised log1p engagement; with
   ``popularity_skip`` plus a linear function of the standardised metadata :math:`\tilde m`; with
   ``popularity_cascade`` plus :math:`a\,[\tilde m; \hat p]^\top w + c`, :math:`\hat p` the disease head's probabilities
   (gradient stopped) and :math:`w` a ridge of engagement on the metadata and the disease *labels*, fitted in closed form
   before training and then fixed),
   quality: ordinal — cumulative logits :math:`P(y > k) = \sigma(f(z) - \theta_k)`, :math:`k=1..4`, thresholds kept
   ordered by construction (:math:`\theta_{k+1} = \theta_k + \mathrm{softplus}(\delta_k)`) — or softmax over 5 levels;
   with ``quality_skip`` the ordinal score is :math:`f(z) + a\,\tilde x^\top w + c`, :math:`\tilde x` the standardised
   mean keyframe and mean token features, :math:`w` a ridge fitted in closed form before training and then fixed.

``fusion='concat'`` (the ablation baseline) replaces 2–3 by masked mean pooling of each projection, concatenated and
projected to :math:`d`. With ``concat_base`` (the default) cross-attention fusion keeps that baseline underneath: task
:math:`t`'s embedding is :math:`z_t = z_{concat} + \tanh(\alpha_t)\,z^{att}_t`, :math:`\alpha_t` learned from 0.
With ``disease_related`` the mention prior also adds :math:`c_j` for a label the graph links (HAS_PHENOTYPE) to a
phenotype the caption describes without naming :math:`j`. With ``disease_visual='mil'`` the disease logits also get
:math:`\log \frac{1}{K}\sum_k \exp(u_j^\top \mathrm{GELU}(\mathrm{LN}(F_k W)))`, a smooth maximum over the keyframes
of per-frame label scores, from a projection of the raw keyframes only the disease loss trains (:math:`u` starts at 0).
With ``disease_context`` they also get :math:`U\,\mathrm{GELU}(\mathrm{LN}(W[\bar t; \bar e]))`, from the mean raw
token feature and mean raw entity embedding, likewise the disease loss's alone (:math:`U` starts at 0). With
``quality_caption_readout`` the quality readout's text pool covers the caption's own tokens only. Attention weights over keyframes, tokens and entities come back for explanations; an empty or
switched-off sequence gets all-zero weights and a zero summary, never NaN.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusion.config import FusionConfig

logger = logging.getLogger(__name__)

MODALITIES = ("visual", "text", "graph", "metadata")


@dataclass
class FusionOutput:
    """What one forward pass returns (batch size B; K, L, E are the padded lengths of the batch).

    Attention weights sum to 1 over the valid positions of an item's sequence, and are 0 on padding and on
    sequences that are empty or switched off.
    """

    disease_logits: Tensor | None  # B × n_diseases
    popularity: Tensor | None  # B, standardised log1p engagement (``FusionModel.popularity_value`` undoes it)
    quality_logits: Tensor | None  # B × 4 cumulative logits (ordinal) or B × 5 class logits (softmax)
    quality_probs: Tensor | None  # B × 5, over GQS 1..5
    embedding: Tensor  # B × width, the fused representation
    frame_attention: Tensor  # B × K
    token_attention: Tensor  # B × L
    entity_attention: Tensor  # B × E
    gates: Tensor  # B × 4, mean gate value per modality (visual, text, graph, metadata); 0 when absent
    # B × n_diseases: the part of ``disease_logits`` that the mention prior gives (``disease_mentions``), else None;
    # the rest is the head on the fused embedding. Explanations report both.
    disease_prior: Tensor | None = None
    # B × n_diseases: the part of ``disease_logits`` the keyframes' own path gives (``disease_visual``), else None; and
    # B × K × n_diseases, per label, each keyframe's share of it (sums to 1 over an item's valid keyframes).
    disease_frames: Tensor | None = None
    disease_frame_weights: Tensor | None = None

    @property
    def disease_probs(self) -> Tensor | None:
        return None if self.disease_logits is None else torch.sigmoid(self.disease_logits)

    @property
    def quality_pred(self) -> Tensor | None:
        """B predicted GQS levels 1..5 (the most probable level)."""
        return None if self.quality_probs is None else self.quality_probs.argmax(dim=-1) + 1


def masked_softmax(scores: Tensor, valid: Tensor) -> Tensor:
    """Softmax over the last dim restricted to ``valid``; rows with no valid position give all zeros (not NaN)."""
    scores = scores.masked_fill(~valid, float("-inf"))
    any_valid = valid.any(dim=-1, keepdim=True)
    scores = torch.where(any_valid, scores, torch.zeros_like(scores))
    return torch.softmax(scores, dim=-1) * valid.to(scores.dtype)


def uniform_weights(valid: Tensor, dtype: torch.dtype) -> Tensor:
    """Equal weights over each row's ``valid`` positions (all zeros for a row with none): mean pooling as attention."""
    return masked_softmax(torch.zeros_like(valid, dtype=dtype), valid)


def masked_mean(x: Tensor, valid: Tensor) -> Tensor:
    """B × N × D → B × D: the mean over each row's ``valid`` positions (zeros for a row with none)."""
    return torch.einsum("bn,bnd->bd", uniform_weights(valid, x.dtype), x)


class CrossModalBlock(nn.Module):
    """Queries from one modality attend over keys/values of the other; residual + LayerNorm + feed-forward."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * width, width))
        self.norm2 = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, query: Tensor, query_valid: Tensor, keys: Tensor, key_valid: Tensor) -> Tensor:
        # nn.MultiheadAttention returns NaN for a row whose keys are all masked. Unmask position 0 for those rows so the
        # softmax is defined, then drop their attended values: a query with nothing to look at keeps its own state.
        has_keys = key_valid.any(dim=-1)
        safe_valid = key_valid.clone()
        safe_valid[~has_keys, 0] = True
        attended, _ = self.attn(query, keys, keys, key_padding_mask=~safe_valid, need_weights=False)
        attended = attended * has_keys[:, None, None].to(attended.dtype)
        h = self.norm1(query + self.drop(attended))
        h = self.norm2(h + self.drop(self.ff(h)))
        # Padding positions carry no information; zero them so nothing downstream can depend on padding content.
        return h * query_valid[..., None].to(h.dtype)


class AttentionPool(nn.Module):
    """Additive attention pooling over the valid positions of one sequence: weights and the weighted sum."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)
        self.score = nn.Linear(width, 1, bias=False)

    def forward(self, h: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        weights = masked_softmax(self.score(torch.tanh(self.proj(h))).squeeze(-1), valid)
        return torch.einsum("bn,bnd->bd", weights, h), weights


class Readout(nn.Module):
    """Gated pooling of the cross-attended sequences into one embedding: an attention pool per sequence, a sigmoid gate
    per modality summary (metadata included), their gated sum, LayerNorm."""

    def __init__(self, width: int, mean_pool: bool = False) -> None:
        super().__init__()
        self.pools = nn.ModuleDict({m: AttentionPool(width) for m in ("visual", "text", "graph")})
        self.gates = nn.ModuleDict({m: nn.Linear(width, width) for m in MODALITIES})
        self.norm = nn.LayerNorm(width)
        self.mean_pool = mean_pool

    def _pool(self, name: str, h: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        summary, weights = self.pools[name](h, valid)
        if self.mean_pool:
            summary = summary + masked_mean(h, valid)
        return summary, weights

    def forward(
        self, v: Tensor, v_valid: Tensor, t: Tensor, t_valid: Tensor, g: Tensor, g_valid: Tensor, meta: Tensor,
        present: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(embedding B×d, frame weights B×K, token weights B×L, entity weights B×E, mean gate per modality B×4)."""
        s_v, frame_att = self._pool("visual", v, v_valid)
        s_t, token_att = self._pool("text", t, t_valid)
        s_g, entity_att = self._pool("graph", g, g_valid)
        summaries = {"visual": s_v, "text": s_t, "graph": s_g, "metadata": meta}
        fused = torch.zeros_like(s_v)
        gate_means = []
        for i, name in enumerate(MODALITIES):
            gate = torch.sigmoid(self.gates[name](summaries[name])) * present[:, i : i + 1]
            fused = fused + gate * summaries[name]
            gate_means.append(gate.mean(dim=-1))
        return self.norm(fused), frame_att, token_att, entity_att, torch.stack(gate_means, dim=1)


class OrdinalHead(nn.Module):
    """Cumulative-logit (CORAL-style) head: one score f(z), four ordered thresholds, P(y > k) = σ(f(z) − θ_k)."""

    def __init__(self, width: int, levels: int = 5) -> None:
        super().__init__()
        self.score = nn.Linear(width, 1)
        self.first = nn.Parameter(torch.zeros(1))
        self.gaps = nn.Parameter(torch.zeros(levels - 2))

    def reset_parameters(self) -> None:
        self.score.reset_parameters()
        # Start with thresholds spread over [-1.5, 1.5] so the initial prediction is the middle level, not level 1.
        nn.init.constant_(self.first, -1.5)
        nn.init.constant_(self.gaps, math.log(math.expm1(1.0)))  # softplus(gap) = 1

    def thresholds(self) -> Tensor:
        return torch.cat([self.first, self.first + torch.cumsum(F.softplus(self.gaps), dim=0)])

    def forward(self, z: Tensor, offset: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``offset`` (B, optional) is added to the score f(z) (the quality skip)."""
        score = self.score(z) if offset is None else self.score(z) + offset[:, None]
        logits = score - self.thresholds()  # B × 4: logit P(y > k)
        above = torch.sigmoid(logits)
        ones = torch.ones_like(above[:, :1])
        zeros = torch.zeros_like(above[:, :1])
        # P(y = k) = P(y > k-1) − P(y > k); ordered thresholds make every difference non-negative.
        probs = torch.cat([ones, above], dim=1) - torch.cat([above, zeros], dim=1)
        return logits, probs.clamp_min(0.0)


class RidgeSkip(nn.Module):
    """A fixed ridge prediction (``fit``) mapped onto a head's output by a learned scale and shift: a·(x̃·w) + c, x̃ the
    input standardised with the training statistics. Until fitted, w = 0. The quality skip (mean inputs → GQS) and the
    popularity cascade (metadata and diseases → standardised engagement) are both one."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("weight", torch.zeros(width))
        self.scale = nn.Parameter(torch.ones(()))
        self.shift = nn.Parameter(torch.zeros(()))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.scale)
        nn.init.zeros_(self.shift)

    def ridge(self, x: Tensor) -> Tensor:
        """B: the ridge's prediction minus the training target's mean (no learned part)."""
        return ((x - self.mean) / self.std) @ self.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.ridge(x) + self.shift

    @torch.no_grad()
    def fit(self, x: Tensor, y: Tensor, penalty: float) -> None:
        """Solve min ‖ỹ − x̃w‖² + penalty·‖w‖² (ỹ centred, x̃ standardised) in float64 and store w and the statistics."""
        x64, y64 = x.double(), y.double()
        mean, std = x64.mean(dim=0), x64.std(dim=0, unbiased=False)
        std = torch.where(std < 1e-6, torch.ones_like(std), std)
        xs = (x64 - mean) / std
        gram = xs.T @ xs + penalty * torch.eye(xs.shape[1], dtype=torch.float64, device=xs.device)
        w = torch.linalg.solve(gram, xs.T @ (y64 - y64.mean()))
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))
        self.weight.copy_(w.to(self.weight.dtype))


class MentionPrior(nn.Module):
    """Per label disease j, learned log-odds b_j + a_j·m_j (+ c_j·r_j·(1 − m_j) with ``related``): m_j = 1 when the
    caption's linked entities include j (``FusionConfig.disease_mentions``), r_j = 1 when the graph links j to an
    affirmed linked phenotype (``FusionConfig.disease_related``). ``fit`` starts them at the training set's own odds —
    b_j of the label among videos that neither name nor relate it, b_j + a_j among those that name it, b_j + c_j among
    those that relate it without naming it — and ``reset_parameters`` returns to those values."""

    def __init__(self, n_diseases: int, related: bool = False) -> None:
        super().__init__()
        self.register_buffer("fitted_weight", torch.full((n_diseases,), 4.0))
        self.register_buffer("fitted_bias", torch.full((n_diseases,), -4.0))
        self.weight = nn.Parameter(self.fitted_weight.clone())
        self.bias = nn.Parameter(self.fitted_bias.clone())
        self.related = related
        if related:
            self.register_buffer("fitted_related_weight", torch.zeros(n_diseases))
            self.related_weight = nn.Parameter(self.fitted_related_weight.clone())

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.copy_(self.fitted_weight)
            self.bias.copy_(self.fitted_bias)
            if self.related:
                self.related_weight.copy_(self.fitted_related_weight)

    def forward(self, mentions: Tensor, related: Tensor | None = None) -> Tensor:
        logits = mentions * self.weight + self.bias
        if self.related:
            if related is None:
                raise ValueError("this prior reads graph-related labels (disease_related=True) but got none")
            logits = logits + related * (1 - mentions) * self.related_weight
        return logits

    @torch.no_grad()
    def fit(self, mentions: Tensor, labels: Tensor, related: Tensor | None = None) -> None:
        """Per label, the smoothed log-odds (counts + ½ over totals + 1) of the label in each cell, from
        B × n_diseases 0/1 ``mentions``, ``labels`` and (with ``related``) ``related``."""
        m, y = mentions.double(), labels.double()
        r = related.double() * (1 - m) if self.related and related is not None else torch.zeros_like(m)

        def log_odds(positives: Tensor, total: Tensor) -> Tensor:
            rate = (positives + 0.5) / (total + 1.0)
            return torch.log(rate) - torch.log1p(-rate)

        rest = (1 - m) * (1 - r)
        bias = log_odds((rest * y).sum(0), rest.sum(0))
        weight = log_odds((m * y).sum(0), m.sum(0)) - bias
        self.fitted_weight.copy_(weight.to(self.fitted_weight.dtype))
        self.fitted_bias.copy_(bias.to(self.fitted_bias.dtype))
        if self.related:
            self.fitted_related_weight.copy_((log_odds((r * y).sum(0), r.sum(0)) - bias).to(self.fitted_bias.dtype))
        self.reset_parameters()


class _DiseasePath(nn.Module):
    """A path to the disease logits beside the fused head; its output layer ``out`` starts at zero (silent)."""

    out: nn.Linear

    def zero_output(self) -> None:
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)


class VisualDiseasePath(_DiseasePath):
    """Keyframes → disease logits, trained by the disease loss alone (``FusionConfig.disease_visual``): the raw keyframe
    features get their own projection (Linear, LayerNorm, GELU); 'attention' pools the frames with an ``AttentionPool``
    and maps the summary to the labels, 'mil' maps every frame to the labels and pools each label over the frames with a
    smooth maximum, log-mean-exp (between the mean, for flat scores, and the maximum, for one frame that stands out).
    The output layer starts at zero, so the path starts silent; an item with no valid frame gets 0."""

    def __init__(self, d_visual: int, width: int, n_diseases: int, dropout: float, pooling: str) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(d_visual, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout))
        self.pool = AttentionPool(width) if pooling == "attention" else None
        self.out = nn.Linear(width, n_diseases)

    def forward(self, frames: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """(B × n_diseases logits, B × K × n_diseases frame weights: per label, each valid keyframe's share — the
        attention pool's weights, the same for every label, or for 'mil' the softmax over the frames of the label's
        scores, which is the log-mean-exp's gradient: the frames that raise it most)."""
        h = self.proj(frames)
        has = valid.any(dim=-1, keepdim=True)
        if self.pool is not None:
            summary, weights = self.pool(h, valid)
            logits = self.out(summary) * has.to(h.dtype)
            return logits, weights[..., None].expand(-1, -1, logits.shape[-1])
        # A large finite fill, not -inf: an item with no valid frame would otherwise send NaN gradients back.
        scores = self.out(h).masked_fill(~valid[..., None], -1e4)  # B × K × n
        count = valid.sum(dim=-1, keepdim=True).clamp_min(1).to(h.dtype)
        pooled = torch.logsumexp(scores, dim=1) - torch.log(count)
        pooled = torch.where(has, pooled, torch.zeros_like(pooled))
        weights = torch.softmax(scores, dim=1) * valid[..., None].to(h.dtype)
        return pooled, weights


class ContextDiseasePath(_DiseasePath):
    """Text and entities → disease logits, trained by the disease loss alone (``FusionConfig.disease_context``): the
    mean raw token feature and the mean raw entity embedding, concatenated, through their own projection (Linear,
    LayerNorm, GELU) to the labels — the concatenation baseline's view of the caption and its entities, kept beside
    the jointly trained trunk. The output layer starts at zero, so the path starts silent."""

    def __init__(self, d_text: int, d_graph: int, width: int, n_diseases: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(d_text + d_graph, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout))
        self.out = nn.Linear(width, n_diseases)

    def forward(self, tokens: Tensor, token_valid: Tensor, entities: Tensor, entity_valid: Tensor) -> Tensor:
        """B × n_diseases logits (an item with neither tokens nor entities reads zeros)."""
        return self.out(self.proj(torch.cat([masked_mean(tokens, token_valid), masked_mean(entities, entity_valid)], dim=-1)))


def _block_pairs(config: FusionConfig) -> nn.ModuleDict:
    """One pair of cross-modal blocks (context over frames, frames over context) per task of ``config``."""
    return nn.ModuleDict({
        task: nn.ModuleDict({
            "context_over_frames": CrossModalBlock(config.width, config.heads, config.dropout),
            "frames_over_context": CrossModalBlock(config.width, config.heads, config.dropout),
        })
        for task in config.tasks
    })


def _initialise(modules: list[nn.Module]) -> None:
    """The initial values of ``modules``' own parameters: Xavier-uniform linear weights with zero biases, default
    LayerNorm and attention, ordinal thresholds spread over the levels, and readout gates at zero — half-open
    (σ(0)=0.5) for every modality instead of at a random preference."""
    for module in modules:
        if isinstance(module, (OrdinalHead, RidgeSkip, MentionPrior)):
            module.reset_parameters()
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            module._reset_parameters()
        elif isinstance(module, nn.LayerNorm):
            module.reset_parameters()
    for module in modules:
        if isinstance(module, Readout):
            for gate in module.gates.values():
                nn.init.zeros_(gate.weight)
                nn.init.zeros_(gate.bias)


def _fit_length(weights: Tensor, length: int) -> Tensor:
    """B×N weights cut or zero-padded on the right to B×``length``."""
    if weights.shape[1] >= length:
        return weights[:, :length]
    return F.pad(weights, (0, length - weights.shape[1]))


class FusionModel(nn.Module):
    """Cross-modal attention fusion with gated pooling and three task heads; see the module docstring for the math.

    ``forward`` takes padded batches with boolean validity masks (True = a real position) and returns ``FusionOutput``.
    Modalities switched off in the config are masked out, so a model trained without them never sees them.
    """

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        # 1. Projections into the shared width.
        self.visual_proj = nn.Sequential(nn.Linear(config.d_visual, d), nn.LayerNorm(d))
        self.text_proj = nn.Sequential(nn.Linear(config.d_text, d), nn.LayerNorm(d))
        self.graph_proj = nn.Sequential(nn.Linear(config.d_graph, d), nn.LayerNorm(d))
        self.type_embedding = nn.Parameter(torch.zeros(2, d))  # 0: token, 1: entity (they share one context sequence)
        self.meta_mlp = (
            nn.Sequential(nn.Linear(config.d_meta, d), nn.GELU(), nn.Linear(d, d)) if config.use_metadata else None
        )
        self.input_drop = nn.Dropout(config.dropout)
        # 2.–3. Fusion.
        if config.fusion == "cross_attention":
            if config.task_attention:  # FusionConfig has checked task_readout is on
                # One pair of blocks per task (``config.task_attention``); the projections below them stay shared.
                self.task_blocks = _block_pairs(config)
            else:
                self.context_over_frames = CrossModalBlock(d, config.heads, config.dropout)
                self.frames_over_context = CrossModalBlock(d, config.heads, config.dropout)
            readouts = config.tasks if config.task_readout else ("shared",)
            self.readouts = nn.ModuleDict({name: Readout(d, config.mean_pool) for name in readouts})
            if config.concat_base:
                # ``config.concat_base``: the concatenation baseline under the attention readouts, whose tanh gates
                # (one per readout) start at 0.
                self.concat_proj = nn.Sequential(nn.Linear(len(MODALITIES) * d, d), nn.LayerNorm(d))
                self.attention_gate = nn.Parameter(torch.zeros(len(readouts)))
        else:
            self.concat_proj = nn.Sequential(nn.Linear(len(MODALITIES) * d, d), nn.LayerNorm(d))
        # 4. Heads.
        self.disease_head = nn.Linear(d, config.n_diseases) if config.has("disease") else None
        # ``config.disease_mentions``: the linked-label path beside the head on the fused embedding.
        self.mention_prior = (MentionPrior(config.n_diseases, related=config.disease_related)
                              if config.disease_mentions and config.has("disease") else None)
        # ``config.disease_visual``: the frames' own path to the disease logits.
        self.disease_visual = (VisualDiseasePath(config.d_visual, d, config.n_diseases, config.dropout, config.disease_visual)
                               if config.disease_visual != "none" and config.has("disease") else None)
        # ``config.disease_context``: the caption's and entities' own path to the disease logits.
        self.disease_context = (ContextDiseasePath(config.d_text, config.d_graph, d, config.n_diseases, config.dropout)
                                if config.disease_context and config.has("disease") else None)
        if not config.has("popularity"):
            self.popularity_head: nn.Module | None = None
        elif config.popularity_head == "linear":
            self.popularity_head = nn.Sequential(nn.Linear(d, 1))
        else:
            self.popularity_head = nn.Sequential(nn.Linear(d, d // 2), nn.GELU(), nn.Linear(d // 2, 1))
        # Popularity's linear path from the standardised metadata (``config.popularity_skip``).
        self.popularity_skip = (
            nn.Linear(config.d_meta, 1) if config.popularity_skip and config.use_metadata and config.has("popularity") else None
        )
        # ``config.popularity_cascade``: a fixed ridge of standardised engagement on the metadata and the disease labels,
        # read at prediction time with the disease head's probabilities (``fusion.training.fit_popularity_cascade``).
        self.popularity_cascade = (
            RidgeSkip(config.d_meta + (config.n_diseases if config.has("disease") else 0))
            if config.popularity_cascade and config.has("popularity") else None
        )
        if config.has("quality"):
            self.quality_head: nn.Module | None = OrdinalHead(d) if config.quality_head == "ordinal" else nn.Linear(d, 5)
        else:
            self.quality_head = None
        # ``config.quality_skip``: a fixed ridge on the mean keyframe and mean token features (buffers, fitted by
        # ``fusion.training.fit_quality_skip``) and the learned scale and shift that put its prediction on the ordinal score's scale.
        self.quality_skip = RidgeSkip(config.d_visual + config.d_text) if config.has_quality_skip else None
        # ``config.refit_attention``: per-task copies of the shared blocks, filled by ``untie_attention`` when the head
        # refit starts. Built under a forked RNG and left out of ``reset_parameters``, so the joint phase draws the same
        # random numbers as a model without them; ``attention_untied`` (saved) says whether the copies are in use.
        if config.refit_attention and config.fusion == "cross_attention":
            with torch.random.fork_rng(devices=[]):
                self.refit_blocks = _block_pairs(config)
            self.register_buffer("attention_untied", torch.zeros((), dtype=torch.bool))
        # Popularity standardisation and the training distribution's percentiles, set by training and saved in the
        # state dict, so a loaded model un-standardises and ranks exactly as it did when trained.
        self.register_buffer("pop_mean", torch.zeros(()))
        self.register_buffer("pop_std", torch.ones(()))
        self.register_buffer("pop_quantiles", torch.zeros(101))
        # ``config.disease_at_least_one`` as training resolved it ('auto': from the training labels); saved. Absent
        # when the option is 'off', so checkpoints from before it load unchanged.
        if config.disease_at_least_one != "off" and config.has("disease"):
            self.register_buffer("at_least_one", torch.tensor(config.disease_at_least_one == "on"))
        # Metadata standardisation (training-set mean and standard deviation per slot; identity until training sets it).
        self.register_buffer("meta_mean", torch.zeros(config.d_meta))
        self.register_buffer("meta_std", torch.ones(config.d_meta))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re)initialise every learned parameter; buffers (popularity statistics) are left alone."""
        copies = self._refit_copies()
        _initialise([m for m in self.modules() if m is not self and id(m) not in copies])
        nn.init.normal_(self.type_embedding, std=0.02)
        if hasattr(self, "attention_gate"):
            nn.init.zeros_(self.attention_gate)
        for task in self.config.tasks:
            self._zero_residual_head(task)

    def reset_task(self, task: str) -> None:
        """Initialise ``task``'s own modules (``task_modules``) afresh, exactly as a new model's; the rest is untouched.
        Its copy of the attention blocks (``refit_attention``) is taken again from the shared blocks instead."""
        copies = self._refit_copies()
        _initialise([sub for m in self.task_modules(task) for sub in m.modules() if id(sub) not in copies])
        self._zero_residual_head(task)
        if hasattr(self, "refit_blocks") and task in self.refit_blocks:
            self._copy_shared_blocks(task)

    def _zero_residual_head(self, task: str) -> None:
        """Start ``task``'s head on the fused embedding at 0 when a fitted path stands beside it (disease: the mention
        prior; popularity: the cascade, whose head's last layer is zeroed), so the model starts from the fitted path's
        prediction and the head learns what it can add to it."""
        layer = {"disease": self.disease_head if self.mention_prior is not None else None,
                 "popularity": self.popularity_head[-1] if self.popularity_cascade is not None else None}.get(task)
        if layer is not None:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        if task == "disease":
            for path in (self.disease_visual, self.disease_context):
                if path is not None:
                    path.zero_output()

    def _refit_copies(self) -> set[int]:
        """Ids of the modules inside ``refit_attention``'s block copies (initialised by copying, never at random)."""
        return {id(m) for m in self.refit_blocks.modules()} if hasattr(self, "refit_blocks") else set()

    def untie_attention(self) -> None:
        """``refit_attention``: give every task its own copy of the shared cross-modal blocks (their current weights)
        and read them from now on. No-op for a model without the option."""
        if not hasattr(self, "refit_blocks"):
            return
        for task in self.refit_blocks:
            self._copy_shared_blocks(task)
        self.attention_untied.fill_(True)

    def _copy_shared_blocks(self, task: str) -> None:
        blocks = self.refit_blocks[task]
        blocks["context_over_frames"].load_state_dict(self.context_over_frames.state_dict())
        blocks["frames_over_context"].load_state_dict(self.frames_over_context.state_dict())

    def forward(
        self,
        frames: Tensor,
        frame_valid: Tensor,
        tokens: Tensor,
        token_valid: Tensor,
        entities: Tensor,
        entity_valid: Tensor,
        metadata: Tensor,
        mentions: Tensor | None = None,
        caption_valid: Tensor | None = None,
        related: Tensor | None = None,
        caption_tokens: Tensor | None = None,
        caption_token_valid: Tensor | None = None,
    ) -> FusionOutput:
        """Shapes: frames B×K×D_v, tokens B×L×D_t, entities B×E×D_g, metadata B×D_meta; ``*_valid`` B×K, B×L, B×E bool;
        ``mentions`` B×n_diseases, 1 where the linked entities include the label (needed with ``disease_mentions``);
        ``caption_valid`` B×L, True on the caption's own tokens (needed with ``quality_skip_caption_only``);
        ``related`` B×n_diseases, 1 where the graph links the label to a linked phenotype (needed with ``disease_related``);
        ``caption_tokens`` B×C×D_t with ``caption_token_valid`` B×C, the caption encoded on its own (needed with
        ``quality_skip_caption_alone``)."""
        cfg = self.config
        # Ablation switches act through the masks, so the rest of the model needs no special cases.
        # The quality skip reads every valid frame and token, before modality dropout hides any.
        skip_inputs = (self.quality_skip_inputs(frames, frame_valid, tokens, token_valid, caption_valid,
                                                caption_tokens, caption_token_valid)
                       if self.quality_skip is not None else None)
        frame_valid = frame_valid & cfg.use_visual
        token_valid = token_valid & cfg.use_text
        entity_valid = entity_valid & cfg.use_graph
        batch = frames.shape[0]
        if self.training and cfg.modality_dropout > 0:
            frame_valid, token_valid, entity_valid = self._drop_modalities(frame_valid, token_valid, entity_valid)

        # 1. Projections.
        v = self.input_drop(self.visual_proj(frames)) * frame_valid[..., None]

        def text_states(states: Tensor, valid: Tensor) -> Tensor:
            return self.input_drop(self.text_proj(states) + self.type_embedding[0]) * valid[..., None]

        t = text_states(tokens, token_valid)
        alone = None  # ``quality_readout_caption_alone``: the caption encoded on its own (states, valid)
        if cfg.quality_readout_reads_caption_alone:
            if caption_tokens is None or caption_token_valid is None:
                raise ValueError("this model's quality readout reads the caption encoded on its own "
                                 "(quality_readout_caption_alone=True) but got no caption_tokens")
            # Hidden exactly when the joint text is (switched off, or dropped for this item): the joint text holds
            # the caption, so an item with caption states has joint tokens.
            alone_valid = caption_token_valid & token_valid.any(-1, keepdim=True)
            alone = (text_states(caption_tokens, alone_valid), alone_valid)
        g = self.input_drop(self.graph_proj(entities) + self.type_embedding[1]) * entity_valid[..., None]
        raw_metadata = metadata
        metadata = (metadata - self.meta_mean) / self.meta_std
        meta = self.meta_mlp(metadata) if self.meta_mlp is not None else frames.new_zeros(batch, cfg.width)
        meta_present = frames.new_full((batch,), 1.0 if self.meta_mlp is not None else 0.0)

        present = torch.stack(
            [frame_valid.any(-1).to(v.dtype), token_valid.any(-1).to(v.dtype), entity_valid.any(-1).to(v.dtype), meta_present],
            dim=1,
        )  # B × 4

        if cfg.fusion == "cross_attention":
            # 2. Cross-modal attention in both directions, from the same (pre-update) inputs: one pair of blocks, or
            # one per task (``task_attention``).
            def attend(context_over_frames: nn.Module, frames_over_context: nn.Module,
                       text: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, ...]:
                """The blocks' pass over the frames and the context: ``text`` (states, valid; the joint tokens unless
                given) followed by the entities."""
                states, valid = text if text is not None else (t, token_valid)
                context = torch.cat([states, g], dim=1)
                context_valid = torch.cat([valid, entity_valid], dim=1)
                context_new = context_over_frames(context, context_valid, v, frame_valid)
                v_new = frames_over_context(v, frame_valid, context, context_valid)
                n = states.shape[1]
                return v_new, frame_valid, context_new[:, :n], valid, context_new[:, n:], entity_valid, meta, present

            per_task_blocks = getattr(self, "task_blocks", None)
            if per_task_blocks is None and hasattr(self, "refit_blocks") and bool(self.attention_untied):
                per_task_blocks = self.refit_blocks
            if per_task_blocks is not None:
                attended = {task: attend(b["context_over_frames"], b["frames_over_context"],
                                         alone if task == "quality" else None)
                            for task, b in per_task_blocks.items()}
            else:
                shared = attend(self.context_over_frames, self.frames_over_context)
                attended = {name: shared for name in self.readouts}
                if alone is not None:
                    attended["quality"] = attend(self.context_over_frames, self.frames_over_context, alone)

            # 3. Gated pooling, once, or once per task (``task_readout``): then each head reads its own embedding,
            # and the embedding, attention weights and gates reported are the means over the tasks' readouts.
            if cfg.quality_caption_readout and "quality" in attended and alone is None:
                # ``quality_caption_readout``: the quality readout pools the caption's own tokens, not the knowledge.
                if caption_valid is None:
                    raise ValueError("this model's quality readout reads the caption's own tokens "
                                     "(quality_caption_readout=True) but got no caption_valid mask")
                q = attended["quality"]
                attended["quality"] = (*q[:3], q[3] & caption_valid, *q[4:])
            reads = {name: readout(*attended[name]) for name, readout in self.readouts.items()}
            if alone is not None:
                # The quality readout's token weights are over the caption encoded alone, whose positions are the
                # joint text's first ones ([CLS], the caption's tokens, [SEP]): reported on those positions.
                r = reads["quality"]
                reads["quality"] = (*r[:2], _fit_length(r[2], t.shape[1]), *r[3:])
            if cfg.concat_base:
                base = self._concat_embedding(v, frame_valid, t, token_valid, g, entity_valid, meta)
                bases = {name: base for name in reads}
                if alone is not None:
                    bases["quality"] = self._concat_embedding(v, frame_valid, alone[0], alone[1], g, entity_valid, meta)
                reads = {name: (bases[name] + torch.tanh(self.attention_gate[k]) * r[0], *r[1:])
                         for k, (name, r) in enumerate(reads.items())}
            per_task = {task: reads[task][0] for task in cfg.tasks} if cfg.task_readout else None
            embedding, frame_att, token_att, entity_att, gates = (
                torch.stack([r[j] for r in reads.values()]).mean(dim=0) for j in range(5)
            )
        else:
            # Ablation baseline: mean pooling is attention with uniform weights over the valid positions.
            frame_att = uniform_weights(frame_valid, v.dtype)
            token_att = uniform_weights(token_valid, v.dtype)
            entity_att = uniform_weights(entity_valid, v.dtype)
            embedding = self._concat_embedding(v, frame_valid, t, token_valid, g, entity_valid, meta)
            gates = present
            per_task = None

        def z(task: str) -> Tensor:
            return per_task[task] if per_task is not None else embedding

        # 4. Heads.
        disease_logits = self.disease_head(z("disease")) if self.disease_head is not None else None
        disease_frames = disease_frame_weights = None
        if self.disease_visual is not None:
            disease_frames, disease_frame_weights = self.disease_visual(frames, frame_valid)
            disease_logits = disease_logits + disease_frames
        if self.disease_context is not None:
            disease_logits = disease_logits + self.disease_context(tokens, token_valid, entities, entity_valid)
        disease_prior = None
        if self.mention_prior is not None:
            if mentions is None:
                raise ValueError("this model reads linked-label mentions (disease_mentions=True) but got none")
            disease_prior = self.mention_prior(
                mentions.to(disease_logits.dtype), related.to(disease_logits.dtype) if related is not None else None)
            disease_logits = disease_logits + disease_prior
        popularity = None
        if self.popularity_head is not None:
            # Optionally a stop-gradient: the popularity head reads the embedding without training the trunk.
            detach = cfg.detach_popularity and len(cfg.tasks) > 1
            popularity = self.popularity_head(z("popularity").detach() if detach else z("popularity")).squeeze(-1)
            if self.popularity_skip is not None:
                popularity = popularity + self.popularity_skip(metadata).squeeze(-1)
            if self.popularity_cascade is not None:
                # The disease probabilities are read, not trained, by the popularity loss.
                diseases = torch.sigmoid(disease_logits).detach() if disease_logits is not None else None
                popularity = popularity + self.popularity_cascade(self.popularity_cascade_inputs(raw_metadata, diseases))
        quality_logits = quality_probs = None
        if isinstance(self.quality_head, OrdinalHead):
            skip = self.quality_skip(skip_inputs) if skip_inputs is not None else None
            quality_logits, quality_probs = self.quality_head(z("quality"), skip)
        elif self.quality_head is not None:
            quality_logits = self.quality_head(z("quality"))
            quality_probs = torch.softmax(quality_logits, dim=-1)
        return FusionOutput(
            disease_logits=disease_logits,
            popularity=popularity,
            quality_logits=quality_logits,
            quality_probs=quality_probs,
            embedding=embedding,
            frame_attention=frame_att,
            token_attention=token_att,
            entity_attention=entity_att,
            gates=gates,
            disease_prior=disease_prior,
            disease_frames=disease_frames,
            disease_frame_weights=disease_frame_weights,
        )

    def _concat_embedding(self, v: Tensor, v_valid: Tensor, t: Tensor, t_valid: Tensor, g: Tensor, g_valid: Tensor,
                          meta: Tensor) -> Tensor:
        """The 'concat' fusion: masked means of the projected sequences and the metadata summary, concatenated and
        projected to the model width."""
        pooled = [masked_mean(v, v_valid), masked_mean(t, t_valid), masked_mean(g, g_valid), meta]
        return self.concat_proj(torch.cat(pooled, dim=-1))

    def quality_skip_inputs(self, frames: Tensor, frame_valid: Tensor, tokens: Tensor, token_valid: Tensor,
                            caption_valid: Tensor | None = None, caption_tokens: Tensor | None = None,
                            caption_token_valid: Tensor | None = None) -> Tensor:
        """B × (D_v + D_t): each item's mean keyframe and mean token feature over its valid positions (zeros for an
        empty or switched-off sequence) — what the quality skip's ridge reads. With ``quality_skip_caption_only`` the
        token mean covers only ``caption_valid``, the caption's own tokens, not the knowledge appended after them; with
        ``quality_skip_caption_alone`` it is the mean of ``caption_tokens``, the caption encoded without the knowledge.

        Raises:
            ValueError: ``quality_skip_caption_only`` without ``caption_valid``, or ``quality_skip_caption_alone``
                without ``caption_tokens``.
        """
        cfg = self.config
        if cfg.quality_skip_caption_alone:
            if caption_tokens is None or caption_token_valid is None:
                raise ValueError("this model's quality skip reads the caption encoded on its own "
                                 "(quality_skip_caption_alone=True) but got no caption_tokens")
            tokens, token_valid = caption_tokens, caption_token_valid
        elif cfg.quality_skip_caption_only:
            if caption_valid is None:
                raise ValueError("this model's quality skip reads the caption's own tokens (quality_skip_caption_only=True) "
                                 "but got no caption_valid mask")
            token_valid = token_valid & caption_valid
        return torch.cat([masked_mean(frames, frame_valid & cfg.use_visual),
                          masked_mean(tokens, token_valid & cfg.use_text)], dim=1)

    def popularity_cascade_inputs(self, metadata: Tensor, diseases: Tensor | None) -> Tensor:
        """B × (D_meta [+ n_diseases]): the raw metadata (zeros when the model is configured without it) and, when the
        model classifies diseases, ``diseases`` — the labels when the cascade is fitted, the disease head's
        probabilities when it predicts. A linear ridge read with probabilities gives the mean of its predictions over
        the disease head's label distribution."""
        parts = [metadata if self.config.use_metadata else torch.zeros_like(metadata)]
        if self.config.has("disease"):
            assert diseases is not None
            parts.append(diseases.to(metadata.dtype))
        return torch.cat(parts, dim=1)

    def task_modules(self, task: str) -> list[nn.Module]:
        """The modules only ``task`` reads: its head (popularity: with its metadata path), its readout when each task
        has its own (``task_readout`` under cross-attention) and its cross-modal blocks when each task has its own
        (``task_attention``, or ``refit_attention``'s copies, which only the refit reads). Empty for a task the model
        does not predict."""
        if not self.config.has(task):
            return []
        heads = {"disease": [self.disease_head, self.mention_prior, self.disease_visual, self.disease_context],
                 "popularity": [self.popularity_head, self.popularity_skip, self.popularity_cascade],
                 "quality": [self.quality_head, self.quality_skip]}[task]
        modules = [m for m in heads if m is not None]
        if self.config.fusion == "cross_attention" and self.config.task_readout:
            modules.append(self.readouts[task])
        if hasattr(self, "task_blocks"):
            modules.append(self.task_blocks[task])
        if hasattr(self, "refit_blocks"):
            modules.append(self.refit_blocks[task])
        return modules

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters more than one task's loss reaches: everything outside every ``task_modules``."""
        own = {id(p) for task in self.config.tasks for m in self.task_modules(task) for p in m.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in own]

    def _drop_modalities(self, *valid: Tensor) -> tuple[Tensor, ...]:
        """Hide each item's sequences with probability ``modality_dropout``; an item keeps all of them when every
        sequence it has would be hidden (metadata alone is not a video)."""
        has = torch.stack([v.any(dim=-1) for v in valid], dim=1)  # B × 3
        keep = torch.rand(has.shape, device=has.device) >= self.config.modality_dropout
        keep = torch.where((keep & has).any(dim=1, keepdim=True), keep, torch.ones_like(keep))
        return tuple(v & keep[:, i : i + 1] for i, v in enumerate(valid))

    def popularity_value(self, standardised: Tensor) -> Tensor:
        """Standardised head output → log1p engagement, with the statistics of the training set."""
        return standardised * self.pop_std + self.pop_mean

    def popularity_percentile(self, value: Tensor) -> Tensor:
        """Percentile (0–100) of log1p-engagement ``value`` within the training distribution (linear between quantiles)."""
        q = self.pop_quantiles
        pos = torch.searchsorted(q.contiguous(), value.contiguous().to(q.dtype), right=False).clamp(1, 100)
        lo, hi = q[pos - 1], q[pos]
        frac = torch.where(hi > lo, (value - lo) / (hi - lo), torch.ones_like(value)).clamp(0.0, 1.0)
        pct = (pos - 1).to(value.dtype) + frac
        return torch.where(value <= q[0], torch.zeros_like(pct), torch.where(value >= q[-1], torch.full_like(pct, 100.0), pct))
