r"""The OVP fusion model: keyframes × knowledge-enriched text × graph entities → disease, popularity and quality.

Approach (the OVP paper): ResNet keyframe features and knowledge-graph-enriched BERT token states are fused by
cross-modal attention, and three heads are trained jointly; the GNN embeddings of the linked entities join the text side.
Task losses are summed with fixed weights by default, or combined with learned homoscedastic uncertainty (Kendall, Gal &
Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018) — see
``fusion.losses`` and ``FusionConfig.task_weighting``.

``FusionModel.forward`` reads top to bottom in the four steps below. For one video with frames
:math:`F \in \mathbb{R}^{K\times D_v}`, tokens :math:`T \in \mathbb{R}^{L\times D_t}`, entities
:math:`G \in \mathbb{R}^{E\times D_g}` and metadata :math:`m`; :math:`d` is ``config.width``:

1. Embeddings (``embed``): :math:`V = \mathrm{LN}(F W_v)`,
   :math:`C = [\mathrm{LN}(T W_t) + e_t ;\ \mathrm{LN}(G W_g) + e_g]` (:math:`e_t, e_g` learned type embeddings: the
   text-and-entity context, length :math:`L+E`), :math:`s_m = \mathrm{MLP}(\tilde m)` (:math:`\tilde m` the metadata
   standardised with the training statistics).
2. Cross-modal attention (``attend``), both directions, from the same inputs (co-attention):
   :math:`C' = \mathrm{LN}(C + \mathrm{MHA}(Q{=}C, K{=}V, V{=}V))`, :math:`V' = \mathrm{LN}(V + \mathrm{MHA}(Q{=}V, K{=}C, V{=}C))`,
   each followed by a residual feed-forward block. Padding and switched-off modalities are key-padding masks.
3. Gated pooling (``fuse``): per sequence (frames, tokens, entities) an attention pool
   :math:`\alpha = \mathrm{softmax}_{valid}(w^\top \tanh(W h_i))`, :math:`s = \sum_i \alpha_i h_i`. Each summary and
   :math:`s_m` gets a learned gate :math:`g = \sigma(W_g s)` and the readout is
   :math:`r = \mathrm{LN}(\sum_{present} g \odot s)`. With ``task_readout`` each task has its own pools, gates and
   LayerNorm over the same cross-attended sequences (with ``quality_caption_readout`` the quality readout's text pool
   covers the caption's own tokens only). With ``concat_base`` task :math:`t`'s embedding is
   :math:`z_t = z_{concat} + \tanh(\alpha_t)\,r_t`, :math:`\alpha_t` learned from 0, where :math:`z_{concat}` is the
   'concat' fusion's: masked means of :math:`V, T W_t, G W_g` and :math:`s_m`, concatenated and projected to :math:`d`.
   The stored embedding (the Neo4j vector index's), the attention weights and the gates reported are the means over
   the tasks' readouts. ``fusion='concat'`` (the ablation baseline) skips step 2 and uses :math:`z_{concat}` alone.
4. Heads on :math:`z_t`:

   - disease logits (multi-label, sigmoid): a linear head, plus with ``disease_mentions`` the mention prior
     :math:`b_j + a_j m_j` (:math:`m_j = 1` when the caption's linked entities include label :math:`j`; with
     ``disease_related`` also :math:`c_j r_j (1 - m_j)`, :math:`r_j = 1` when the graph links :math:`j` to a phenotype
     the caption describes), starting at the training set's log-odds while the head starts at zero; with
     ``disease_visual='mil'`` :math:`\log \frac{1}{K}\sum_k \exp(u_j^\top \mathrm{GELU}(\mathrm{LN}(F_k W)))`, a smooth
     maximum over the keyframes of per-frame label scores; with ``disease_context``
     :math:`U\,\mathrm{GELU}(\mathrm{LN}(W[\bar t; \bar e]))` from the mean raw token feature and entity embedding. The
     last two only the disease loss trains, and their output layers start at 0.
   - popularity (standardised log1p engagement): an MLP, plus with ``popularity_cascade``
     :math:`a\,[\tilde m; \hat p]^\top w + c`, :math:`\hat p` the disease head's probabilities (gradient stopped) and
     :math:`w` a ridge of engagement on the metadata and the disease *labels*, fitted in closed form before training.
   - quality: ordinal — cumulative logits :math:`P(y > k) = \sigma(f(z) - \theta_k)`, :math:`k=1..4`, thresholds kept
     ordered by construction (:math:`\theta_{k+1} = \theta_k + \mathrm{softplus}(\delta_k)`); with ``quality_skip``
     the score is :math:`f(z) + a\,\tilde x^\top w + c`, :math:`\tilde x` the standardised mean keyframe and mean token
     features, :math:`w` a ridge fitted in closed form before training and then fixed.

Attention weights over keyframes, tokens and entities come back for explanations; an empty or switched-off sequence
gets all-zero weights and a zero summary, never NaN.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

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
    quality_logits: Tensor | None  # B × 4 cumulative logits, logit P(GQS > k) for k = 1..4
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


@dataclass
class Sequences:
    """The inputs at one step of the forward pass, in the model width: B×K×d frames, B×L×d tokens, B×E×d entities
    with their validity masks, the B×d metadata summary and B×4 presence per modality (1 where it has a position)."""

    frames: Tensor
    frame_valid: Tensor
    tokens: Tensor
    token_valid: Tensor
    entities: Tensor
    entity_valid: Tensor
    metadata: Tensor
    present: Tensor

    def as_args(self) -> tuple[Tensor, ...]:
        """The fields in order: what ``Readout`` takes."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))


class Pooled(NamedTuple):
    """One readout's result: B×d embedding, B×K frame, B×L token and B×E entity weights, B×4 mean gate per modality."""

    embedding: Tensor
    frame_attention: Tensor
    token_attention: Tensor
    entity_attention: Tensor
    gates: Tensor


@dataclass
class Fused:
    """Step 3's result: the reported (mean) readout, and each task's own embedding with per-task readouts."""

    pooled: Pooled
    per_task: dict[str, Tensor] | None = None

    def embedding_for(self, task: str) -> Tensor:
        return self.per_task[task] if self.per_task is not None else self.pooled.embedding


class DiseaseParts(NamedTuple):
    """The disease logits and, for explanations, the mention prior's and the keyframes' parts of them."""

    logits: Tensor | None = None
    prior: Tensor | None = None
    frames: Tensor | None = None
    frame_weights: Tensor | None = None

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

    def __init__(self, width: int) -> None:
        super().__init__()
        self.pools = nn.ModuleDict({m: AttentionPool(width) for m in ("visual", "text", "graph")})
        self.gates = nn.ModuleDict({m: nn.Linear(width, width) for m in MODALITIES})
        self.norm = nn.LayerNorm(width)

    def forward(
        self, v: Tensor, v_valid: Tensor, t: Tensor, t_valid: Tensor, g: Tensor, g_valid: Tensor, meta: Tensor,
        present: Tensor,
    ) -> Pooled:
        s_v, frame_att = self.pools["visual"](v, v_valid)
        s_t, token_att = self.pools["text"](t, t_valid)
        s_g, entity_att = self.pools["graph"](g, g_valid)
        summaries = {"visual": s_v, "text": s_t, "graph": s_g, "metadata": meta}
        fused = torch.zeros_like(s_v)
        gate_means = []
        for i, name in enumerate(MODALITIES):
            gate = torch.sigmoid(self.gates[name](summaries[name])) * present[:, i : i + 1]
            fused = fused + gate * summaries[name]
            gate_means.append(gate.mean(dim=-1))
        return Pooled(self.norm(fused), frame_att, token_att, entity_att, torch.stack(gate_means, dim=1))


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
    """Keyframes → disease logits, trained by the disease loss alone (``FusionConfig.disease_visual='mil'``): the raw
    keyframe features get their own projection (Linear, LayerNorm, GELU), every frame is mapped to the labels, and each
    label is pooled over the frames with a smooth maximum, log-mean-exp (between the mean, for flat scores, and the
    maximum, for one frame that stands out). The output layer starts at zero, so the path starts silent; an item with
    no valid frame gets 0."""

    def __init__(self, d_visual: int, width: int, n_diseases: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(d_visual, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout))
        self.out = nn.Linear(width, n_diseases)

    def forward(self, frames: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """(B × n_diseases logits, B × K × n_diseases frame weights: per label, the softmax over the frames of the
        label's scores, which is the log-mean-exp's gradient: the frames that raise it most)."""
        h = self.proj(frames)
        has = valid.any(dim=-1, keepdim=True)
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
        # 2.–3. Fusion: one pair of cross-modal blocks, a readout per task (or one shared), and the concatenation
        # baseline under them with a tanh gate per readout starting at 0 (``concat_base``); 'concat' is the baseline.
        if config.fusion == "cross_attention":
            self.context_over_frames = CrossModalBlock(d, config.heads, config.dropout)
            self.frames_over_context = CrossModalBlock(d, config.heads, config.dropout)
            readouts = config.tasks if config.task_readout else ("shared",)
            self.readouts = nn.ModuleDict({name: Readout(d) for name in readouts})
            if config.concat_base:
                self.concat_proj = nn.Sequential(nn.Linear(len(MODALITIES) * d, d), nn.LayerNorm(d))
                self.attention_gate = nn.Parameter(torch.zeros(len(readouts)))
        else:
            self.concat_proj = nn.Sequential(nn.Linear(len(MODALITIES) * d, d), nn.LayerNorm(d))
        # 4. Heads, each with the paths beside it (see FusionConfig for why each exists).
        self._build_heads(config)
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

    def _build_heads(self, config: FusionConfig) -> None:
        """The task heads and the paths beside them; a task the config does not train gets None. Built after the trunk
        and in this order, since construction draws the initial weights from torch's random stream."""
        d = config.width
        disease = config.has("disease")
        self.disease_head = nn.Linear(d, config.n_diseases) if disease else None
        self.mention_prior = (MentionPrior(config.n_diseases, related=config.disease_related)
                              if config.disease_mentions and disease else None)
        self.disease_visual = (VisualDiseasePath(config.d_visual, d, config.n_diseases, config.dropout)
                               if config.disease_visual == "mil" and disease else None)
        self.disease_context = (ContextDiseasePath(config.d_text, config.d_graph, d, config.n_diseases, config.dropout)
                                if config.disease_context and disease else None)
        self.popularity_head = (nn.Sequential(nn.Linear(d, d // 2), nn.GELU(), nn.Linear(d // 2, 1))
                                if config.has("popularity") else None)
        # The cascade's ridge (buffers) is fitted by ``fusion.training.fit_popularity_cascade``.
        self.popularity_cascade = (
            RidgeSkip(config.d_meta + (config.n_diseases if disease else 0))
            if config.popularity_cascade and config.has("popularity") else None
        )
        self.quality_head = OrdinalHead(d) if config.has("quality") else None
        # The skip's ridge (buffers) is fitted by ``fusion.training.fit_quality_skip``; the learned scale and shift put
        # its prediction on the ordinal score's scale.
        self.quality_skip = RidgeSkip(config.d_visual + config.d_text) if config.has_quality_skip else None

    def reset_parameters(self) -> None:
        """(Re)initialise every learned parameter; buffers (popularity statistics) are left alone."""
        _initialise([m for m in self.modules() if m is not self])
        nn.init.normal_(self.type_embedding, std=0.02)
        if hasattr(self, "attention_gate"):
            nn.init.zeros_(self.attention_gate)
        for task in self.config.tasks:
            self._zero_residual_head(task)

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
        ``caption_valid`` B×L, True on the caption's own tokens (needed with ``quality_caption_readout`` and
        ``quality_skip_caption_only``); ``related`` B×n_diseases, 1 where the graph links the label to a linked
        phenotype (needed with ``disease_related``); ``caption_tokens`` B×C×D_t with ``caption_token_valid`` B×C, the
        caption encoded on its own (needed with ``quality_skip_caption_alone``)."""
        # The quality skip reads every valid frame and token, before the switches and modality dropout hide any.
        skip_inputs = (self.quality_skip_inputs(frames, frame_valid, tokens, token_valid, caption_valid,
                                                caption_tokens, caption_token_valid)
                       if self.quality_skip is not None else None)
        frame_valid, token_valid, entity_valid = self._visible(frame_valid, token_valid, entity_valid)
        x = self.embed(frames, frame_valid, tokens, token_valid, entities, entity_valid, metadata)  # 1.
        fused = self.fuse(x, caption_valid)  # 2.–3.
        # 4. Heads.
        disease = self.predict_disease(fused, frames, frame_valid, tokens, token_valid, entities, entity_valid,
                                       mentions, related)
        popularity = self.predict_popularity(fused, metadata, disease.logits)
        quality_logits, quality_probs = self.predict_quality(fused, skip_inputs)
        return FusionOutput(
            disease_logits=disease.logits,
            popularity=popularity,
            quality_logits=quality_logits,
            quality_probs=quality_probs,
            embedding=fused.pooled.embedding,
            frame_attention=fused.pooled.frame_attention,
            token_attention=fused.pooled.token_attention,
            entity_attention=fused.pooled.entity_attention,
            gates=fused.pooled.gates,
            disease_prior=disease.prior,
            disease_frames=disease.frames,
            disease_frame_weights=disease.frame_weights,
        )

    def _visible(self, frame_valid: Tensor, token_valid: Tensor, entity_valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The masks the model reads: the ablation switches act through them (so the rest of the model needs no
        special cases), and in training modality dropout hides whole sequences."""
        cfg = self.config
        valid = (frame_valid & cfg.use_visual, token_valid & cfg.use_text, entity_valid & cfg.use_graph)
        if self.training and cfg.modality_dropout > 0:
            valid = self._drop_modalities(*valid)
        return valid  # type: ignore[return-value]

    def embed(self, frames: Tensor, frame_valid: Tensor, tokens: Tensor, token_valid: Tensor, entities: Tensor,
              entity_valid: Tensor, metadata: Tensor) -> Sequences:
        """1. Each modality projected into the model width; padding zeroed; the metadata standardised and summarised."""
        v = self.input_drop(self.visual_proj(frames)) * frame_valid[..., None]
        t = self.input_drop(self.text_proj(tokens) + self.type_embedding[0]) * token_valid[..., None]
        g = self.input_drop(self.graph_proj(entities) + self.type_embedding[1]) * entity_valid[..., None]
        batch = frames.shape[0]
        if self.meta_mlp is not None:
            meta = self.meta_mlp((metadata - self.meta_mean) / self.meta_std)
        else:
            meta = frames.new_zeros(batch, self.config.width)
        meta_present = frames.new_full((batch,), 1.0 if self.meta_mlp is not None else 0.0)
        present = torch.stack([frame_valid.any(-1).to(v.dtype), token_valid.any(-1).to(v.dtype),
                               entity_valid.any(-1).to(v.dtype), meta_present], dim=1)
        return Sequences(v, frame_valid, t, token_valid, g, entity_valid, meta, present)

    def attend(self, x: Sequences) -> Sequences:
        """2. Cross-modal attention in both directions from the same inputs: the text-and-entity context over the
        frames, and the frames over the context."""
        context = torch.cat([x.tokens, x.entities], dim=1)
        context_valid = torch.cat([x.token_valid, x.entity_valid], dim=1)
        context_new = self.context_over_frames(context, context_valid, x.frames, x.frame_valid)
        frames_new = self.frames_over_context(x.frames, x.frame_valid, context, context_valid)
        n = x.tokens.shape[1]
        return dataclasses.replace(x, frames=frames_new, tokens=context_new[:, :n], entities=context_new[:, n:])

    def fuse(self, x: Sequences, caption_valid: Tensor | None = None) -> Fused:
        """2.–3. The fused embedding: attention and gated pooling per readout, on the concatenation baseline
        (``concat_base``); or the baseline alone (``fusion='concat'``), whose weights are uniform over the valid
        positions (mean pooling as attention)."""
        if self.config.fusion == "concat":
            pooled = Pooled(self._concat_embedding(x), uniform_weights(x.frame_valid, x.frames.dtype),
                            uniform_weights(x.token_valid, x.frames.dtype),
                            uniform_weights(x.entity_valid, x.frames.dtype), x.present)
            return Fused(pooled)
        attended = self.attend(x)
        reads = {name: readout(*self._readout_view(name, attended, caption_valid).as_args())
                 for name, readout in self.readouts.items()}
        if self.config.concat_base:
            base = self._concat_embedding(x)
            reads = {name: r._replace(embedding=base + torch.tanh(self.attention_gate[k]) * r.embedding)
                     for k, (name, r) in enumerate(reads.items())}
        per_task = {task: reads[task].embedding for task in self.config.tasks} if self.config.task_readout else None
        return Fused(Pooled(*(torch.stack([r[j] for r in reads.values()]).mean(dim=0) for j in range(5))), per_task)

    def _readout_view(self, name: str, attended: Sequences, caption_valid: Tensor | None) -> Sequences:
        """What readout ``name`` pools: the cross-attended sequences, with the quality readout's text pool restricted
        to the caption's own tokens (``quality_caption_readout``)."""
        if name != "quality" or not self.config.quality_caption_readout:
            return attended
        if caption_valid is None:
            raise ValueError("this model's quality readout reads the caption's own tokens "
                             "(quality_caption_readout=True) but got no caption_valid mask")
        return dataclasses.replace(attended, token_valid=attended.token_valid & caption_valid)

    def _concat_embedding(self, x: Sequences) -> Tensor:
        """The 'concat' fusion: masked means of the projected sequences and the metadata summary, concatenated and
        projected to the model width."""
        pooled = [masked_mean(x.frames, x.frame_valid), masked_mean(x.tokens, x.token_valid),
                  masked_mean(x.entities, x.entity_valid), x.metadata]
        return self.concat_proj(torch.cat(pooled, dim=-1))

    def predict_disease(self, fused: Fused, frames: Tensor, frame_valid: Tensor, tokens: Tensor, token_valid: Tensor,
                        entities: Tensor, entity_valid: Tensor, mentions: Tensor | None,
                        related: Tensor | None) -> DiseaseParts:
        """4. Disease logits: the head on the task's embedding plus the paths beside it, which read the raw inputs (the
        keyframes', the caption's and entities', the mention prior)."""
        if self.disease_head is None:
            return DiseaseParts()
        logits = self.disease_head(fused.embedding_for("disease"))
        frames_part = frame_weights = None
        if self.disease_visual is not None:
            frames_part, frame_weights = self.disease_visual(frames, frame_valid)
            logits = logits + frames_part
        if self.disease_context is not None:
            logits = logits + self.disease_context(tokens, token_valid, entities, entity_valid)
        prior = None
        if self.mention_prior is not None:
            if mentions is None:
                raise ValueError("this model reads linked-label mentions (disease_mentions=True) but got none")
            related = related.to(logits.dtype) if related is not None else None
            prior = self.mention_prior(mentions.to(logits.dtype), related)
            logits = logits + prior
        return DiseaseParts(logits, prior, frames_part, frame_weights)

    def predict_popularity(self, fused: Fused, metadata: Tensor, disease_logits: Tensor | None) -> Tensor | None:
        """4. Standardised popularity: the head, plus the cascade read with the disease probabilities."""
        if self.popularity_head is None:
            return None
        popularity = self.popularity_head(fused.embedding_for("popularity")).squeeze(-1)
        if self.popularity_cascade is not None:
            # The disease probabilities are read, not trained, by the popularity loss.
            diseases = torch.sigmoid(disease_logits).detach() if disease_logits is not None else None
            popularity = popularity + self.popularity_cascade(self.popularity_cascade_inputs(metadata, diseases))
        return popularity

    def predict_quality(self, fused: Fused, skip_inputs: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """4. Quality (cumulative logits, level probabilities): the ordinal head, its score moved by the quality skip."""
        if self.quality_head is None:
            return None, None
        skip = self.quality_skip(skip_inputs) if skip_inputs is not None else None
        return self.quality_head(fused.embedding_for("quality"), skip)

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
        """The modules only ``task`` reads: its head with the paths beside it, and its readout when each task has its
        own (``task_readout`` under cross-attention). Empty for a task the model does not predict."""
        if not self.config.has(task):
            return []
        heads = {"disease": [self.disease_head, self.mention_prior, self.disease_visual, self.disease_context],
                 "popularity": [self.popularity_head, self.popularity_cascade],
                 "quality": [self.quality_head, self.quality_skip]}[task]
        modules = [m for m in heads if m is not None]
        if self.config.fusion == "cross_attention" and self.config.task_readout:
            modules.append(self.readouts[task])
        return modules

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
