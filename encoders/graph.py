"""GNN embeddings of the knowledge graph: export from Neo4j, train an R-GCN by link prediction, write the vectors back.

The pipeline :func:`kg_embed` runs, step by step (each step is a public function that tests call directly):

1. :func:`export_graph` — two graph reads (:mod:`kg_builder.store.knowledge`): every ``Entity`` (id, kind, name,
   definition) and every IS_A, HAS_PHENOTYPE and MAPS_TO edge between entities.
2. :func:`node_features` — the text encoder's pooled 384-d vector of ``"name. definition"`` per node, cached in
   ``<OVP_HOME>/cache/entity_vectors_<hash>.npy`` keyed by the texts and the encoder (:mod:`encoders.entity_vectors`).
3. :func:`split_triples` — a seeded hold-out of 10 % (test) and 5 % (validation) of each relation's edges; held-out
   edges, and their reverse duplicates, are removed from the message-passing graph and used only for evaluation.
4. :func:`compare_variants` — trains the R-GCN (:mod:`encoders.graph_model`) with negative sampling and a DistMult
   decoder, and evaluates three variants on the held-out test edges: the trained R-GCN, the same R-GCN before training
   (same initial weights and decoder), and an MLP without message passing trained the same way.
5. :func:`write_embeddings` — ``gnn_embedding`` (64 floats) and ``gnn_model_version`` on every ``Entity``, in
   batched ``UNWIND`` writes (:mod:`kg_builder.store.embeddings`); :func:`save_model` keeps weights and configuration under ``<OVP_HOME>/models/gnn/``.

Evaluation protocol (what every MRR / Hits@10 in this module means): *filtered* ranking over *all* entities, on both
sides — for each held-out triple (h, r, t), t is ranked among all N entities as the tail of (h, r, ?) and h among all N
as the head of (?, r, t); other entities known to complete the query in any split are removed before ranking; ties
count half. MRR and Hits@10 average the two sides over all test triples.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from encoders.device import torch_threads
from encoders.graph_model import GraphModelConfig, RGCNLinkPredictor
from kg_builder.schema import ENTITY_RELATIONS, relation_type
from kg_builder.store.embeddings import write_entity_embeddings
from kg_builder.store.knowledge import read_entity_edges, read_entity_nodes
from ovp.settings import Settings

if TYPE_CHECKING:
    from kg_builder.graph import Graph

log = logging.getLogger(__name__)

__all__ = [
    "KGExport",
    "LinkSplit",
    "TrainConfig",
    "TrainResult",
    "LinkMetrics",
    "VariantComparison",
    "EmbedReport",
    "EVALUATION_PROTOCOL",
    "export_graph",
    "node_texts",
    "node_features",
    "hashed_bow_features",
    "split_triples",
    "message_passing_graph",
    "train_link_predictor",
    "evaluate_link_prediction",
    "compare_variants",
    "train_on_triples",
    "torch_threads",
    "entity_embeddings",
    "model_version",
    "write_embeddings",
    "save_model",
    "kg_embed",
]

#: The relation types the GNN reads, in decoder order; message passing adds each one's inverse (index + 3).
RELATIONS: tuple[str, ...] = tuple(relation_type(name) for name in ENTITY_RELATIONS)
#: What the reported metrics mean; carried in every report so numbers never travel without it.
EVALUATION_PROTOCOL = "filtered MRR and Hits@10 over all entities, head and tail sides averaged, ties count half"
#: Width of the hashed bag-of-words inputs (same as all-MiniLM-L6-v2, so the model config does not change).
HASHED_DIM = 384


# --- records --------------------------------------------------------------------------------------------------------


@dataclass
class KGExport:
    """The entity graph as arrays, nodes in ``ids`` order.

    Attributes:
        ids: entity ids (CURIEs), sorted.
        kinds: per node, its kind label ('Disease', 'Phenotype', …; '' when it carries none).
        names / definitions: per node, as stored ('' when missing).
        triples: E × 3 int64 array of (head, relation, tail) node/relation indices, relation indexing
            :data:`RELATIONS`; duplicates and self-loops removed.
    """

    ids: list[str]
    kinds: list[str]
    names: list[str]
    definitions: list[str]
    triples: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.ids)

    def edge_counts(self) -> dict[str, int]:
        """Edges per relation type, by name."""
        counts = np.bincount(self.triples[:, 1], minlength=len(RELATIONS)) if len(self.triples) else np.zeros(len(RELATIONS), int)
        return {name: int(counts[i]) for i, name in enumerate(RELATIONS)}


@dataclass
class LinkSplit:
    """Triples (E × 3 int64 tensors of head, relation, tail) divided for link prediction.

    ``train`` builds the message-passing graph and the training signal; ``valid`` drives early stopping;
    ``test`` is touched only by the final evaluation.
    """

    train: Tensor
    valid: Tensor
    test: Tensor

    @property
    def all(self) -> Tensor:
        return torch.cat([self.train, self.valid, self.test])


@dataclass(frozen=True)
class TrainConfig:
    """How the link predictor is trained and evaluated.

    Attributes:
        epochs: most full-graph optimisation steps (one step per epoch).
        lr: Adam learning rate.
        negatives: corrupted triples per positive (head or tail replaced by a uniformly drawn entity, 50/50).
        supervision_fraction: share of the training edges scored each epoch; they are left out of that epoch's
            message passing (a fresh draw each epoch). 1.0 scores every edge with all edges passing messages.
        regularization: weight of the L2 penalty on embeddings and relation diagonals (as in Schlichtkrull et al.).
        eval_every: epochs between validation evaluations.
        patience: validation evaluations without improvement before stopping; 0 disables early stopping.
        test_fraction / valid_fraction: share of each relation's edges held out for test / validation.
        seed: fixes the split, the initial weights, the negatives and dropout.
        eval_batch_size: queries scored against all entities at once.
    """

    epochs: int = 200
    lr: float = 0.003
    negatives: int = 16
    supervision_fraction: float = 0.3
    regularization: float = 0.01
    eval_every: int = 10
    patience: int = 5
    test_fraction: float = 0.10
    valid_fraction: float = 0.05
    seed: int = 0
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be non-negative, got {self.epochs}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be at least 1, got {self.negatives}")
        if not 0 < self.supervision_fraction <= 1:
            raise ValueError(f"supervision_fraction must lie in (0, 1], got {self.supervision_fraction}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be at least 1, got {self.eval_every}")
        if not (0 < self.test_fraction < 1 and 0 <= self.valid_fraction < 1):
            raise ValueError(f"test_fraction={self.test_fraction} and valid_fraction={self.valid_fraction} must lie in (0, 1)")
        if self.test_fraction + self.valid_fraction >= 1:
            raise ValueError(
                f"test_fraction={self.test_fraction} and valid_fraction={self.valid_fraction} leave no training edges"
            )

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What one training run did: per-epoch losses, validation MRR per evaluation, the epoch kept, seconds."""

    losses: list[float]
    valid_mrr: list[tuple[int, float]]
    best_epoch: int
    epochs_run: int
    seconds: float


@dataclass(frozen=True)
class LinkMetrics:
    """Link-prediction quality on a set of held-out triples (see :data:`EVALUATION_PROTOCOL`)."""

    mrr: float
    hits_at_10: float
    hits_at_1: float
    queries: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mrr": round(self.mrr, 4), "hits_at_10": round(self.hits_at_10, 4), "hits_at_1": round(self.hits_at_1, 4), "queries": self.queries}


@dataclass
class VariantComparison:
    """The trained R-GCN and the three variants' test metrics (keys 'rgcn', 'rgcn_untrained', 'mlp')."""

    model: RGCNLinkPredictor
    metrics: dict[str, LinkMetrics]
    training: dict[str, TrainResult]


@dataclass(frozen=True)
class EmbedReport:
    """What :func:`kg_embed` did.

    Attributes:
        nodes: entities embedded.
        edges: edges per relation type in the exported graph.
        held_out: test edges per relation type.
        epochs: epochs the R-GCN ran; best_epoch: the one whose weights were kept.
        seconds: wall seconds per step ('export', 'features', 'train_rgcn', 'train_mlp', 'write', 'total').
        metrics: test metrics per variant ('rgcn', 'rgcn_untrained', 'mlp').
        evaluation: what the metrics mean.
        features: 'text' (sentence-encoder vectors) or 'hashed' (bag-of-words fallback).
        model_version: the value written to ``gnn_model_version``.
        model_dir: where weights and configuration were saved ('' when not saved).
        written: entities whose ``gnn_embedding`` was written (0 with ``write=False``).
    """

    nodes: int
    edges: dict[str, int]
    held_out: dict[str, int]
    epochs: int
    best_epoch: int
    seconds: dict[str, float]
    metrics: dict[str, LinkMetrics]
    evaluation: str
    features: str
    model_version: str
    model_dir: str
    written: int

    def to_dict(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["metrics"] = {name: m.to_dict() for name, m in self.metrics.items()}
        out["seconds"] = {name: round(s, 2) for name, s in self.seconds.items()}
        return out


# --- export ---------------------------------------------------------------------------------------------------------


def export_graph(graph: "Graph") -> KGExport:
    """Read every Entity and every IS_A / HAS_PHENOTYPE / MAPS_TO edge between entities (two queries).

    Edges whose ends are not both Entities are not matched; duplicate edges and self-loops are dropped.
    """
    nodes = read_entity_nodes(graph)
    edges = read_entity_edges(graph)
    ids = [node.id for node in nodes]
    index = {node_id: i for i, node_id in enumerate(ids)}
    rel_index = {name: i for i, name in enumerate(RELATIONS)}
    triples = np.array(
        [(index[e.start], rel_index[e.type], index[e.end]) for e in edges if e.start in index and e.end in index],
        dtype=np.int64,
    ).reshape(-1, 3)
    triples = _clean_triples(triples)
    export = KGExport(
        ids=ids,
        kinds=[node.kind for node in nodes],
        names=[node.name for node in nodes],
        definitions=[node.definition for node in nodes],
        triples=triples,
    )
    log.info("exported %d entities and %d edges %s", export.num_nodes, len(triples), export.edge_counts())
    return export


def _clean_triples(triples: np.ndarray) -> np.ndarray:
    triples = triples[triples[:, 0] != triples[:, 2]]
    return np.unique(triples, axis=0) if len(triples) else triples.reshape(0, 3)


# --- node inputs ----------------------------------------------------------------------------------------------------


def node_texts(export: KGExport) -> list[str]:
    """``"name. definition"`` per node (just the name when there is no definition; the id when there is no name)."""
    texts = []
    for node_id, name, definition in zip(export.ids, export.names, export.definitions):
        name = name.strip() or node_id
        definition = definition.strip()
        texts.append(f"{name.rstrip('.')}. {definition}" if definition else name)
    return texts


_TOKEN = re.compile(r"\w+", re.UNICODE)


def hashed_bow_features(texts: Sequence[str], dim: int = HASHED_DIM) -> np.ndarray:
    """Deterministic hashed bag-of-words vectors, L2-normalised: N × dim float32.

    Each lower-cased word adds ±1 at a position given by its BLAKE2 hash (the sign from another hash bit, so
    collisions cancel on average). A fallback input when no text model is available, and a cheap one for tests.
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for token in _TOKEN.findall(text.lower()):
            digest = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
            out[i, digest % dim] += 1.0 if (digest >> 63) & 1 else -1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def node_features(
    texts: Sequence[str],
    settings: Settings,
    *,
    features: str = "text",
    batch_size: int = 64,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Node inputs, N × 384 float32, one row per text, cached on disk.

    Args:
        texts: one per node.
        settings: ``cache_dir`` (``OVP_CACHE_DIR``) and ``device`` for the encoder (the linking model,
            :data:`encoders.text.LINKING_TEXT_MODEL`).
        features: 'text' — the text encoder's pooled, L2-normalised sentence vectors; 'hashed' — :func:`hashed_bow_features`.
        batch_size: texts per encoder forward pass.
        chunk_size: texts per ``encode`` call (bounds the memory its token states take).

    Returns:
        The matrix, read from ``<cache_dir>/entity_vectors_<hash>.npy`` (:mod:`encoders.entity_vectors`) when the
        same texts were encoded by the same encoder before.

    Raises:
        ValueError: unknown ``features``.
        ModelNotFound: ``features='text'`` and the text model cannot be loaded.
    """
    if features == "hashed":
        return hashed_bow_features(texts)
    if features != "text":
        raise ValueError(f"features must be 'text' or 'hashed', got {features!r}")
    from encoders.entity_vectors import entity_text_vectors

    # One cache of entity text vectors, shared with the linker's semantic fallback (same texts, same key).
    return entity_text_vectors(texts, settings, batch_size=batch_size, chunk_size=chunk_size)


# --- split and graph ------------------------------------------------------------------------------------------------


def split_triples(triples: np.ndarray, *, test_fraction: float, valid_fraction: float, seed: int) -> LinkSplit:
    """Hold out a seeded share of each relation's edges for test and validation.

    The split is by *unordered* pair within a relation, so an edge stored in both directions (a MAPS_TO b and
    b MAPS_TO a) lands wholly in one split and the held-out direction cannot leak through the other.
    """
    rng = np.random.default_rng(seed)
    assign = np.zeros(len(triples), dtype=np.int8)  # 0 train, 1 valid, 2 test
    for rel in np.unique(triples[:, 1]) if len(triples) else []:
        rows = np.flatnonzero(triples[:, 1] == rel)
        pairs = np.sort(triples[rows][:, [0, 2]], axis=1)
        unique_pairs, pair_of_row = np.unique(pairs, axis=0, return_inverse=True)
        perm = rng.permutation(len(unique_pairs))
        n_test = int(round(test_fraction * len(unique_pairs)))
        n_valid = int(round(valid_fraction * len(unique_pairs)))
        pair_split = np.zeros(len(unique_pairs), dtype=np.int8)
        pair_split[perm[:n_test]] = 2
        pair_split[perm[n_test : n_test + n_valid]] = 1
        assign[rows] = pair_split[pair_of_row.reshape(-1)]
    as_tensor = lambda part: torch.as_tensor(triples[assign == part], dtype=torch.long).reshape(-1, 3)  # noqa: E731
    return LinkSplit(train=as_tensor(0), valid=as_tensor(1), test=as_tensor(2))


def message_passing_graph(x: Tensor, triples: Tensor, num_relations: int = len(RELATIONS)) -> Data:
    """A PyG ``Data`` over ``x`` whose edges are ``triples`` plus their inverses.

    Edge (h, r, t) gives h→t with type r and t→h with type r + num_relations, so ``edge_type`` ranges over
    2 × num_relations types.
    """
    head, rel, tail = triples[:, 0], triples[:, 1], triples[:, 2]
    edge_index = torch.cat([torch.stack([head, tail]), torch.stack([tail, head])], dim=1)
    edge_type = torch.cat([rel, rel + num_relations])
    return Data(x=x, edge_index=edge_index, edge_type=edge_type, num_nodes=x.shape[0])


# --- training and evaluation ----------------------------------------------------------------------------------------


def _corrupt(positives: Tensor, num_nodes: int, negatives: int, generator: torch.Generator) -> Tensor:
    """``negatives`` corrupted copies of each positive: head or tail (50/50) replaced by a uniform random entity."""
    repeated = positives.repeat(negatives, 1)
    random_nodes = torch.randint(num_nodes, (len(repeated),), generator=generator)
    replace_head = torch.rand(len(repeated), generator=generator) < 0.5
    corrupted = repeated.clone()
    corrupted[replace_head, 0] = random_nodes[replace_head]
    corrupted[~replace_head, 2] = random_nodes[~replace_head]
    return corrupted


def _known_index(triples: Tensor) -> tuple[dict[tuple[int, int], list[int]], dict[tuple[int, int], list[int]]]:
    """(head, rel) → known tails and (tail, rel) → known heads, for filtered ranking."""
    tails: dict[tuple[int, int], list[int]] = {}
    heads: dict[tuple[int, int], list[int]] = {}
    for h, r, t in triples.tolist():
        tails.setdefault((h, r), []).append(t)
        heads.setdefault((t, r), []).append(h)
    return tails, heads


@torch.no_grad()
def _filtered_ranks(
    scores_fn: Callable[[Tensor, Tensor], Tensor],
    anchor: Tensor,
    relation: Tensor,
    target: Tensor,
    known: dict[tuple[int, int], list[int]],
    batch_size: int,
) -> Tensor:
    ranks = []
    for start in range(0, len(anchor), batch_size):
        a, r, t = anchor[start : start + batch_size], relation[start : start + batch_size], target[start : start + batch_size]
        scores = scores_fn(a, r)
        rows = torch.arange(len(a), device=scores.device)
        true = scores[rows, t].clone()
        # Remove every known answer, the target included (its score is kept in `true`).
        filter_rows, filter_cols = [], []
        for i, key in enumerate(zip(a.tolist(), r.tolist())):
            answers = known.get(key, ())
            filter_rows.extend([i] * len(answers))
            filter_cols.extend(answers)
        scores[torch.tensor(filter_rows, dtype=torch.long), torch.tensor(filter_cols, dtype=torch.long)] = float("-inf")
        scores[rows, t] = float("-inf")
        greater = (scores > true[:, None]).sum(dim=1).float()
        ties = (scores == true[:, None]).sum(dim=1).float()
        ranks.append(1.0 + greater + 0.5 * ties)
    return torch.cat(ranks) if ranks else torch.zeros(0)


@torch.no_grad()
def evaluate_link_prediction(
    model: RGCNLinkPredictor,
    data: Data,
    queries: Tensor,
    known: Tensor,
    *,
    batch_size: int = 1024,
) -> LinkMetrics:
    """Filtered MRR, Hits@10 and Hits@1 of ``queries`` (E × 3) ranked against all entities, head and tail sides.

    Args:
        model: evaluated in eval mode (no dropout); its training mode is restored afterwards.
        data: the message-passing graph the embeddings are computed on.
        queries: the held-out triples.
        known: every true triple (all splits) — removed from the candidates before ranking.
        batch_size: queries scored at once.
    """
    if len(queries) == 0:
        return LinkMetrics(mrr=0.0, hits_at_10=0.0, hits_at_1=0.0, queries=0)
    was_training = model.training
    model.eval()
    try:
        z = model(data.x, data.edge_index, data.edge_type)
        queries = queries.to(z.device)
        tails, heads = _known_index(known)
        h, r, t = queries[:, 0], queries[:, 1], queries[:, 2]
        tail_ranks = _filtered_ranks(lambda a, rel: model.score_all_tails(z, a, rel), h, r, t, tails, batch_size)
        head_ranks = _filtered_ranks(lambda a, rel: model.score_all_heads(z, rel, a), t, r, h, heads, batch_size)
    finally:
        model.train(was_training)
    ranks = torch.cat([tail_ranks, head_ranks]).cpu()
    return LinkMetrics(
        mrr=float((1.0 / ranks).mean()),
        hits_at_10=float((ranks <= 10).float().mean()),
        hits_at_1=float((ranks <= 1).float().mean()),
        queries=len(queries),
    )


def train_link_predictor(
    model: RGCNLinkPredictor,
    data: Data,
    split: LinkSplit,
    config: TrainConfig,
    *,
    desc: str = "gnn",
) -> TrainResult:
    """Train ``model`` in place by link prediction on ``split.train`` with negative sampling.

    Each epoch is one full-graph step: a fresh ``supervision_fraction`` of the training triples is scored and the
    rest pass messages; embeddings of all entities, DistMult logits of the scored triples and of
    ``config.negatives`` corruptions of each, binary cross-entropy plus an L2 penalty. Every ``eval_every`` epochs
    the filtered validation MRR is measured; the best weights are restored at the end, and training stops after
    ``patience`` evaluations without improvement. Deterministic for a seed on a given device.
    """
    device = data.x.device
    generator = torch.Generator().manual_seed(config.seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    known = split.all
    losses: list[float] = []
    valid_curve: list[tuple[int, float]] = []
    best_mrr, best_epoch, best_state = -1.0, 0, copy.deepcopy(model.state_dict())
    stale = 0
    started = time.perf_counter()
    epoch = 0
    bar = tqdm(range(1, config.epochs + 1), desc=desc, unit="epoch", disable=None)
    for epoch in bar:
        model.train()
        optimizer.zero_grad()
        # Disjoint supervision: the edges scored this epoch do not carry messages this epoch, so the encoder must
        # predict an edge from the rest of the graph — as it must for held-out edges — instead of echoing it.
        if config.supervision_fraction < 1.0:
            chosen = torch.rand(len(split.train), generator=generator) < config.supervision_fraction
            positives = split.train[chosen]
            step_graph = message_passing_graph(data.x, split.train[~chosen]).to(device)
        else:
            positives, step_graph = split.train, data
        z = model(step_graph.x, step_graph.edge_index, step_graph.edge_type)
        negatives = _corrupt(positives, data.num_nodes, config.negatives, generator).to(device)
        positives = positives.to(device)
        pos_logits = model.score(z, positives[:, 0], positives[:, 1], positives[:, 2])
        neg_logits = model.score(z, negatives[:, 0], negatives[:, 1], negatives[:, 2])
        logits = torch.cat([pos_logits, neg_logits])
        labels = torch.cat([torch.ones_like(pos_logits), torch.zeros_like(neg_logits)])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        loss = loss + config.regularization * (z.pow(2).mean() + model.relation_diag.pow(2).mean())
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().item())
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            if len(split.valid) == 0:
                best_epoch, best_state = epoch, copy.deepcopy(model.state_dict())
                continue
            mrr = evaluate_link_prediction(model, data, split.valid, known, batch_size=config.eval_batch_size).mrr
            valid_curve.append((epoch, mrr))
            bar.set_postfix(loss=f"{losses[-1]:.4f}", valid_mrr=f"{mrr:.4f}")
            if mrr > best_mrr:
                best_mrr, best_epoch, best_state, stale = mrr, epoch, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if config.patience and stale >= config.patience:
                    break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d epochs in %.1fs, loss %.4f → %.4f, best validation MRR %.4f at epoch %d",
        desc, epoch, seconds, losses[0] if losses else float("nan"), losses[-1] if losses else float("nan"), best_mrr, best_epoch,
    )
    return TrainResult(losses=losses, valid_mrr=valid_curve, best_epoch=best_epoch, epochs_run=epoch, seconds=seconds)


def compare_variants(
    x: Tensor,
    split: LinkSplit,
    model_config: GraphModelConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    baseline: bool = True,
    threads: int | None = None,
) -> VariantComparison:
    """Train the R-GCN and measure it against its untrained self and an MLP without message passing.

    All three share the inputs ``x``, the held-out edges of ``split``, the DistMult decoder and its initialisation
    (the seed fixes it), and — for the two trained ones — the training loop and its negatives.

    Args:
        x: N × in_channels node inputs.
        split: train / valid / test triples; only ``train`` edges pass messages.
        model_config: R-GCN hyperparameters (``in_channels`` is taken from ``x``); the MLP uses the same with
            ``message_passing=False``.
        train_config: training hyperparameters and the seed.
        device: where to train.
        baseline: False skips the MLP (its metrics are then absent).
        threads: CPU threads torch may use meanwhile (restored afterwards); None leaves torch's setting.

    Returns:
        The trained R-GCN (eval mode, on ``device``), test metrics per variant, and the training runs.
    """
    with torch_threads(threads):
        return _compare_variants(x, split, model_config, train_config, torch.device(device), baseline)


def train_on_triples(
    x: Tensor,
    triples: np.ndarray,
    model_config: GraphModelConfig,
    train_config: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    baseline: bool = True,
    threads: int | None = None,
) -> tuple[LinkSplit, VariantComparison]:
    """Hold out ``train_config``'s shares of ``triples`` (seeded) and :func:`compare_variants` on them: what
    :func:`kg_embed` trains, from node inputs and triples alone (no Neo4j), e.g. from ``bench/gnn.py --from-export``."""
    split = split_triples(triples, test_fraction=train_config.test_fraction, valid_fraction=train_config.valid_fraction,
                          seed=train_config.seed)
    return split, compare_variants(x, split, model_config, train_config, device=device, baseline=baseline, threads=threads)


def _compare_variants(
    x: Tensor,
    split: LinkSplit,
    model_config: GraphModelConfig | None,
    train_config: TrainConfig | None,
    device: torch.device,
    baseline: bool,
) -> VariantComparison:
    model_config = dataclasses.replace(model_config or GraphModelConfig(), in_channels=int(x.shape[1]), message_passing=True)
    train_config = train_config or TrainConfig()
    data = message_passing_graph(x.float(), split.train).to(device)
    known = split.all

    torch.manual_seed(train_config.seed)
    model = RGCNLinkPredictor(model_config).to(device)
    initial_diag = model.relation_diag.detach().clone()
    metrics = {"rgcn_untrained": evaluate_link_prediction(model, data, split.test, known, batch_size=train_config.eval_batch_size)}
    training = {"rgcn": train_link_predictor(model, data, split, train_config, desc="rgcn")}
    metrics["rgcn"] = evaluate_link_prediction(model, data, split.test, known, batch_size=train_config.eval_batch_size)

    if baseline:
        torch.manual_seed(train_config.seed)
        mlp = RGCNLinkPredictor(dataclasses.replace(model_config, message_passing=False)).to(device)
        # Same decoder start as the R-GCN: the seed alone would not do, the layers draw different amounts first.
        with torch.no_grad():
            mlp.relation_diag.copy_(initial_diag)
        training["mlp"] = train_link_predictor(mlp, data, split, train_config, desc="mlp")
        metrics["mlp"] = evaluate_link_prediction(mlp, data, split.test, known, batch_size=train_config.eval_batch_size)
    log.info(
        "link prediction (%s): %s",
        EVALUATION_PROTOCOL,
        ", ".join(f"{name} MRR {m.mrr:.4f} Hits@10 {m.hits_at_10:.4f}" for name, m in metrics.items()),
    )
    return VariantComparison(model=model, metrics=metrics, training=training)


@torch.no_grad()
def entity_embeddings(model: RGCNLinkPredictor, x: Tensor, triples: Tensor) -> np.ndarray:
    """N × D_g embeddings from ``model`` (eval mode) over the graph of ``triples`` (all edges, none held out)."""
    device = next(model.parameters()).device
    data = message_passing_graph(x.float(), triples).to(device)
    model.eval()
    return model(data.x, data.edge_index, data.edge_type).cpu().numpy().astype(np.float32)


# --- write-back and persistence -------------------------------------------------------------------------------------


def model_version(model_config: GraphModelConfig, train_config: TrainConfig, export: KGExport, features: str) -> str:
    """``'rgcn-<12 hex>'``: a hash of the configurations, the graph's node and edge counts and the input kind."""
    payload = {
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "nodes": export.num_nodes,
        "edges": export.edge_counts(),
        "features": features,
    }
    return "rgcn-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def write_embeddings(graph: "Graph", ids: Sequence[str], embeddings: np.ndarray, version: str, *, batch_size: int = 1000) -> int:
    """Set ``gnn_embedding`` (list of floats) and ``gnn_model_version`` on each Entity of ``ids``; return rows sent.

    Batched ``UNWIND`` writes, ids and vectors as parameters; an id no longer in the graph is skipped silently.
    """
    if len(ids) != len(embeddings):
        raise ValueError(f"{len(ids)} ids but {len(embeddings)} embeddings")
    with tqdm(total=len(ids), desc="write gnn_embedding", unit="node", disable=None) as bar:
        return write_entity_embeddings(graph, ids, embeddings, version, batch_size=batch_size, on_batch=bar.update)


def save_model(
    directory: Path,
    model: RGCNLinkPredictor,
    train_config: TrainConfig,
    version: str,
    ids: Sequence[str],
    embeddings: np.ndarray,
    extra: dict[str, object] | None = None,
) -> Path:
    """Save ``model.pt`` (weights and configs), ``config.json`` (readable), ``embeddings.npy`` and ``ids.json``.

    Returns the directory. Files are replaced, so the directory always holds the latest run.
    """
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"version": version, "model_config": model.config.to_dict(), "train_config": train_config.to_dict(), **(extra or {})}
    torch.save({"state_dict": model.state_dict(), **meta}, directory / "model.pt")
    (directory / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    np.save(directory / "embeddings.npy", embeddings)
    (directory / "ids.json").write_text(json.dumps(list(ids)), encoding="utf-8")
    return directory


# --- the pipeline ---------------------------------------------------------------------------------------------------


def kg_embed(
    settings: Settings,
    *,
    train_config: TrainConfig | None = None,
    model_config: GraphModelConfig | None = None,
    features: str = "text",
    write: bool = True,
    save: bool = True,
    baseline: bool = True,
    threads: int | None = None,
    graph: "Graph | None" = None,
) -> EmbedReport:
    """Export the entity graph, train and evaluate the R-GCN, write ``gnn_embedding`` on every Entity.

    Args:
        settings: Neo4j connection, ``home`` (cache and model directory) and ``device``.
        train_config: epochs, seed, hold-out shares …; defaults as in :class:`TrainConfig`.
        model_config: R-GCN hyperparameters; defaults as in :class:`GraphModelConfig`.
        features: 'text' (sentence-encoder inputs) or 'hashed' (bag-of-words fallback, no model needed).
        write, save: False leaves the graph untouched (metrics only), resp. does not write ``<home>/models/gnn/``.
        baseline: False skips training the MLP baseline (its metrics are then absent).
        threads: CPU threads torch may use while training (restored afterwards); None leaves torch's setting.
        graph: an open connection to use; one is opened (and closed) from ``settings`` when omitted.

    Returns:
        An :class:`EmbedReport` (metrics: :data:`EVALUATION_PROTOCOL` on the held-out test edges; the written
        embeddings are computed over all edges, held-out ones included, with the trained weights).

    Raises:
        GraphUnavailable: Neo4j cannot be reached.
        ValueError: the graph has no entities or no edges (build it first: ``ovp kg build``).
        ModelNotFound: ``features='text'`` and the text model cannot be loaded.
    """
    from encoders.device import resolve_device
    from kg_builder.graph import Graph

    train_config, model_config = train_config or TrainConfig(), model_config or GraphModelConfig()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    own_graph = graph is None
    graph = graph or Graph.connect(settings)
    try:
        mark = time.perf_counter()
        export = _nonempty_export(graph)
        seconds["export"] = time.perf_counter() - mark

        mark = time.perf_counter()
        x = torch.from_numpy(node_features(node_texts(export), settings, features=features))
        seconds["features"] = time.perf_counter() - mark

        model_config = dataclasses.replace(model_config, in_channels=int(x.shape[1]))
        split, comparison = train_on_triples(x, export.triples, model_config, train_config,
                                             device=resolve_device(settings.device), baseline=baseline, threads=threads)
        seconds.update({f"train_{name}": run.seconds for name, run in comparison.training.items()})

        with torch_threads(threads):
            embeddings = entity_embeddings(comparison.model, x, torch.as_tensor(export.triples))
        version = model_version(model_config, train_config, export, features)
        held_out = {name: int((split.test[:, 1] == i).sum()) for i, name in enumerate(RELATIONS)}
        model_dir = "" if not save else _save_trained(settings, comparison, train_config, version, export, embeddings,
                                                      held_out, features)

        written = 0
        if write:
            mark = time.perf_counter()
            written = write_embeddings(graph, export.ids, embeddings, version)
            seconds["write"] = time.perf_counter() - mark
    finally:
        if own_graph:
            graph.close()
    seconds["total"] = time.perf_counter() - started
    rgcn_train = comparison.training["rgcn"]
    report = EmbedReport(
        nodes=export.num_nodes, edges=export.edge_counts(), held_out=held_out, epochs=rgcn_train.epochs_run,
        best_epoch=rgcn_train.best_epoch, seconds=seconds, metrics=comparison.metrics, evaluation=EVALUATION_PROTOCOL,
        features=features, model_version=version, model_dir=model_dir, written=written,
    )
    _log_report(report, len(export.triples))
    return report


def _nonempty_export(graph: "Graph") -> KGExport:
    """The entity graph, refused when it has no entity or no edge (nothing to train on)."""
    export = export_graph(graph)
    if export.num_nodes == 0 or len(export.triples) == 0:
        raise ValueError(
            f"the graph has {export.num_nodes} entities and {len(export.triples)} edges; build it first with `ovp kg build`"
        )
    return export


def _save_trained(settings: Settings, comparison: VariantComparison, train_config: TrainConfig, version: str,
                  export: KGExport, embeddings: np.ndarray, held_out: dict[str, int], features: str) -> str:
    """Save the trained R-GCN and its embeddings under ``<home>/models/gnn/`` with what it was trained and scored on."""
    extra = {
        "nodes": export.num_nodes,
        "edges": export.edge_counts(),
        "held_out": held_out,
        "features": features,
        "evaluation": EVALUATION_PROTOCOL,
        "metrics": {name: m.to_dict() for name, m in comparison.metrics.items()},
    }
    return str(save_model(settings.home / "models" / "gnn", comparison.model, train_config, version, export.ids,
                          embeddings, extra))


def _log_report(report: EmbedReport, edges: int) -> None:
    m = report.metrics
    log.info(
        "kg embed: %d entities, %d edges, %d epochs in %.1fs; test MRR rgcn %.4f / untrained %.4f / mlp %s; wrote %d (%s)",
        report.nodes, edges, report.epochs, report.seconds["total"], m["rgcn"].mrr, m["rgcn_untrained"].mrr,
        f"{m['mlp'].mrr:.4f}" if "mlp" in m else "-", report.written, report.model_version,
    )
