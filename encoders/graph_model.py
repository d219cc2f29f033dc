"""R-GCN encoder with a DistMult decoder: entity embeddings of the knowledge graph learnt by link prediction.

Encoder — relational graph convolution (Schlichtkrull et al. 2018, "Modeling Relational Data with Graph Convolutional
Networks", ESWC), one layer::

    h_i^(l+1) = σ( W_0^(l) h_i^(l)  +  Σ_r Σ_{j ∈ N_i^r} (1 / |N_i^r|) W_r^(l) h_j^(l) )

with basis decomposition ``W_r^(l) = Σ_b a_rb^(l) V_b^(l)`` (B shared bases, per-relation coefficients a_rb), so the
parameter count grows with B, not with the number of relations R. The graph carries every relation type together with
its inverse (R = 2 × 3 here), so information flows both ways along IS_A, HAS_PHENOTYPE and MAPS_TO.

Decoder — DistMult (Yang et al. 2015, "Embedding Entities and Relations for Learning and Inference in Knowledge
Bases", ICLR), a diagonal bilinear score per relation::

    f(s, r, o) = e_s^T diag(w_r) e_o = Σ_k e_s,k · w_r,k · e_o,k

DistMult is symmetric in s and o, so it cannot tell IS_A's direction apart; that is acceptable here because the
embeddings serve as similarity features for profiling, not as a direction-aware reasoner.

With ``message_passing=False`` the graph convolutions become plain linear layers of the same widths (an MLP over the
node inputs, equivalent to keeping only the self-connection W_0): the ablation that shows what the graph adds.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv

log = logging.getLogger(__name__)

__all__ = ["GraphModelConfig", "RGCNLinkPredictor"]


@dataclass(frozen=True)
class GraphModelConfig:
    """Hyperparameters of :class:`RGCNLinkPredictor`.

    Attributes:
        in_channels: width of the node inputs (384 for all-MiniLM-L6-v2 sentence vectors).
        hidden_channels: width of the hidden layer.
        out_channels: width of the entity embedding D_g.
        num_layers: graph convolutions (≥ 1); all but the last output ``hidden_channels``.
        num_relations: relation types the encoder passes messages over (forward types and their inverses).
        num_decoder_relations: relation types the decoder scores (the forward types only; DistMult is symmetric,
            so scoring inverses too would duplicate them).
        num_bases: bases of the basis decomposition; None for a full weight per relation.
        num_blocks: blocks of the block-diagonal decomposition (the alternative to bases); None for none.
        dropout: dropout on hidden activations during training.
        message_passing: False swaps each graph convolution for a linear layer of the same widths (the MLP baseline).
    """

    in_channels: int = 384
    hidden_channels: int = 128
    out_channels: int = 64
    num_layers: int = 2
    num_relations: int = 6
    num_decoder_relations: int = 3
    num_bases: int | None = 4
    num_blocks: int | None = None
    dropout: float = 0.2
    message_passing: bool = True

    def __post_init__(self) -> None:
        if self.num_bases is not None and self.num_blocks is not None:
            raise ValueError(
                f"num_bases={self.num_bases} and num_blocks={self.num_blocks} are alternatives "
                "(basis or block-diagonal decomposition); set one of them to None"
            )
        if self.num_bases is not None and not 1 <= self.num_bases <= self.num_relations:
            raise ValueError(f"num_bases={self.num_bases} must lie between 1 and num_relations={self.num_relations}")
        if self.num_blocks is not None and (
            self.in_channels % self.num_blocks or self.hidden_channels % self.num_blocks or self.out_channels % self.num_blocks
        ):
            raise ValueError(
                f"num_blocks={self.num_blocks} must divide in_channels={self.in_channels}, "
                f"hidden_channels={self.hidden_channels} and out_channels={self.out_channels}"
            )
        if self.num_decoder_relations > self.num_relations:
            raise ValueError(
                f"num_decoder_relations={self.num_decoder_relations} exceeds num_relations={self.num_relations}"
            )
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class RGCNLinkPredictor(nn.Module):
    """Entity encoder (R-GCN, or an MLP when ``config.message_passing`` is False) plus a DistMult decoder.

    ``forward(x, edge_index, edge_type)`` returns the N × D_g entity embeddings; :meth:`score` scores triples
    against them. Construction initialises the parameters through :meth:`reset_parameters`, so seeding torch before
    construction fixes the initial model.

    Args:
        config: the hyperparameters.
    """

    def __init__(self, config: GraphModelConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.in_channels] + [config.hidden_channels] * (config.num_layers - 1) + [config.out_channels]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            if config.message_passing:
                layers.append(
                    RGCNConv(
                        width_in,
                        width_out,
                        config.num_relations,
                        num_bases=config.num_bases,
                        num_blocks=config.num_blocks,
                        aggr="mean",
                    )
                )
            else:
                layers.append(nn.Linear(width_in, width_out))
        self.layers = nn.ModuleList(layers)
        # One diagonal per scored relation: DistMult's w_r.
        self.relation_diag = nn.Parameter(torch.empty(config.num_decoder_relations, config.out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw every parameter from its initial distribution (the layers' own; w_r Xavier-uniform)."""
        for layer in self.layers:
            layer.reset_parameters()
        # As in PyG's R-GCN link-prediction example: small diagonals, so early scores sit near 0 and gradients flow.
        nn.init.xavier_uniform_(self.relation_diag)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Entity embeddings, N × out_channels (edge_index and edge_type are ignored without message passing)."""
        for i, layer in enumerate(self.layers):
            x = layer(x, edge_index, edge_type) if self.config.message_passing else layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
                x = nn.functional.dropout(x, p=self.config.dropout, training=self.training)
        return x

    def score(self, z: Tensor, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """DistMult logits f(head, relation, tail) for aligned index vectors (relation indexes the decoder types)."""
        return (z[head] * self.relation_diag[relation] * z[tail]).sum(dim=-1)

    def score_all_tails(self, z: Tensor, head: Tensor, relation: Tensor) -> Tensor:
        """Logits of every entity as the tail of each (head, relation) query: len(head) × N."""
        return (z[head] * self.relation_diag[relation]) @ z.t()

    def score_all_heads(self, z: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """Logits of every entity as the head of each (relation, tail) query: len(tail) × N.

        DistMult is symmetric, so this equals :meth:`score_all_tails` with head and tail swapped; it is its own method
        so that callers read the way they mean it and an asymmetric decoder could change it in one place.
        """
        return (z[tail] * self.relation_diag[relation]) @ z.t()

    def extra_repr(self) -> str:
        kind = "rgcn" if self.config.message_passing else "mlp"
        return f"{kind}, relations={self.config.num_relations}, bases={self.config.num_bases}, D_g={self.config.out_channels}"
