"""GNN embeddings: the R-GCN config and model, the split, training on a synthetic graph, and the real graph end to end.

The synthetic graph is built here (pure PyG, no Neo4j). The real-graph tests need `ovp neo4j start`; they build the
knowledge graph through ``kg_builder.build`` when it is missing, and put back whatever ``gnn_embedding`` values the
graph held before, so a test run does not replace the embeddings other components read.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from encoders.graph import (
    LinkSplit,
    TrainConfig,
    compare_variants,
    entity_embeddings,
    hashed_bow_features,
    kg_embed,
    message_passing_graph,
    split_triples,
)
from encoders.graph_model import GraphModelConfig, RGCNLinkPredictor
from kg_builder.store.embeddings import WRITE_EMBEDDINGS_QUERY
from kg_builder.store.knowledge import EXPORT_EDGES_QUERY

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]

# --- model and config -----------------------------------------------------------------------------------------------


def test_config_rejects_bases_and_blocks_together_naming_both() -> None:
    with pytest.raises(ValueError, match="num_bases=2.*num_blocks=4"):
        GraphModelConfig(num_bases=2, num_blocks=4)


def test_config_rejects_more_bases_than_relations() -> None:
    with pytest.raises(ValueError, match="num_bases=7.*num_relations=6"):
        GraphModelConfig(num_bases=7)


def test_reset_parameters_redraws_and_seed_fixes_the_initial_model() -> None:
    config = GraphModelConfig(in_channels=8, hidden_channels=8, out_channels=4)
    torch.manual_seed(3)
    first = RGCNLinkPredictor(config)
    torch.manual_seed(3)
    second = RGCNLinkPredictor(config)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    before = first.relation_diag.detach().clone()
    first.reset_parameters()
    assert not torch.equal(before, first.relation_diag)


@pytest.mark.parametrize("message_passing", [True, False])
def test_forward_gives_one_out_channels_vector_per_node(message_passing: bool) -> None:
    config = GraphModelConfig(in_channels=16, hidden_channels=8, out_channels=4, message_passing=message_passing)
    model = RGCNLinkPredictor(config)
    triples = torch.tensor([[0, 0, 1], [1, 1, 2], [2, 2, 3]])
    data = message_passing_graph(torch.randn(5, 16), triples, num_relations=3)
    z = model(data.x, data.edge_index, data.edge_type)
    assert z.shape == (5, 4)
    assert model.score_all_tails(z, torch.tensor([0]), torch.tensor([1])).shape == (1, 5)


# --- pure functions -------------------------------------------------------------------------------------------------


def test_edge_query_names_only_the_schema_relations() -> None:
    assert EXPORT_EDGES_QUERY == (
        "MATCH (a:Entity)-[r:IS_A|HAS_PHENOTYPE|MAPS_TO]->(b:Entity) RETURN a.id AS start, type(r) AS type, b.id AS end"
    )
    assert "$rows" in WRITE_EMBEDDINGS_QUERY


def test_message_passing_graph_adds_inverse_types() -> None:
    data = message_passing_graph(torch.zeros(3, 2), torch.tensor([[0, 2, 1]]))
    assert data.edge_index.tolist() == [[0, 1], [1, 0]]
    assert data.edge_type.tolist() == [2, 5]


def test_split_is_seeded_and_keeps_both_directions_of_a_pair_together() -> None:
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 200, size=(400, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    forward = np.column_stack([pairs[:, 0], np.full(len(pairs), 2), pairs[:, 1]])
    backward = forward[:, [2, 1, 0]]
    triples = np.unique(np.concatenate([forward, backward]), axis=0)
    a = split_triples(triples, test_fraction=0.1, valid_fraction=0.05, seed=1)
    b = split_triples(triples, test_fraction=0.1, valid_fraction=0.05, seed=1)
    assert torch.equal(a.test, b.test) and torch.equal(a.valid, b.valid)
    assert len(a.train) + len(a.valid) + len(a.test) == len(triples)
    train_pairs = {tuple(sorted((h, t))) for h, _, t in a.train.tolist()}
    assert not any(tuple(sorted((h, t))) in train_pairs for h, _, t in a.test.tolist())


def test_hashed_features_are_deterministic_unit_rows() -> None:
    texts = ["Glaucoma. Raised intraocular pressure", "glaucoma raised intraocular pressure", "Myopia"]
    x = hashed_bow_features(texts)
    assert x.shape == (3, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.allclose(x[0], x[1])
    assert np.array_equal(x, hashed_bow_features(texts))


# --- training on a synthetic graph ----------------------------------------------------------------------------------


def synthetic_graph(groups: int = 12, per_group: int = 25, dim: int = 32, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Communities whose structure only the edges reveal: random inputs; relation 0 links within a community,
    relation 1 from a community to the next, relation 2 pairs member i with member i of the next community."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), per_group)
    x = torch.from_numpy(rng.normal(size=(groups * per_group, dim)).astype(np.float32))
    triples = []
    for g in range(groups):
        members, following = np.flatnonzero(group == g), np.flatnonzero(group == (g + 1) % groups)
        for _ in range(per_group * 3):
            a, b = rng.choice(members, 2, replace=False)
            triples.append((a, 0, b))
        for _ in range(per_group * 2):
            triples.append((rng.choice(members), 1, rng.choice(following)))
        triples.extend((a, 2, b) for a, b in zip(members, following))
    return x, np.unique(np.array(triples, dtype=np.int64), axis=0)


SMALL = GraphModelConfig(hidden_channels=32, out_channels=16)
# Every edge supervises every epoch here: with ~6 edges per node and random inputs, holding a share of them out of
# message passing (the default 0.3) leaves too little graph to learn from in 120 epochs.
SHORT = TrainConfig(epochs=120, lr=0.01, negatives=4, supervision_fraction=1.0, eval_every=10, patience=0, seed=0)


@pytest.fixture(scope="module")
def synthetic() -> tuple[torch.Tensor, LinkSplit]:
    x, triples = synthetic_graph()
    return x, split_triples(triples, test_fraction=0.1, valid_fraction=0.05, seed=0)


@pytest.mark.parametrize("device", DEVICES)
def test_training_lowers_the_loss_and_beats_the_untrained_model(synthetic: tuple[torch.Tensor, LinkSplit], device: str) -> None:
    x, split = synthetic
    result = compare_variants(x, split, SMALL, SHORT, device=device, threads=1)
    losses = result.training["rgcn"].losses
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert result.metrics["rgcn"].mrr > 1.5 * result.metrics["rgcn_untrained"].mrr
    assert result.metrics["rgcn"].hits_at_10 > result.metrics["rgcn_untrained"].hits_at_10
    assert set(result.metrics) == {"rgcn", "rgcn_untrained", "mlp"}
    # The MLP starts from the R-GCN's decoder, so the comparison is about message passing alone.
    assert result.metrics["rgcn"].mrr > result.metrics["mlp"].mrr


def test_training_is_deterministic_for_a_seed(synthetic: tuple[torch.Tensor, LinkSplit]) -> None:
    x, split = synthetic
    config = dataclasses.replace(SHORT, epochs=30)
    first = compare_variants(x, split, SMALL, config, baseline=False, threads=1)
    second = compare_variants(x, split, SMALL, config, baseline=False, threads=1)
    assert first.metrics == second.metrics
    assert np.array_equal(entity_embeddings(first.model, x, split.all), entity_embeddings(second.model, x, split.all))


# --- the real graph -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_graph():
    """A connection to the local Neo4j holding the built knowledge graph (built here when missing)."""
    from kg_builder.build import build, stats
    from kg_builder.graph import Graph
    from ovp.settings import Settings

    settings = Settings.from_env()
    # No skip: if Neo4j is down this fails with GraphUnavailable, whose message says how to start it.
    with Graph.connect(settings) as graph:
        if not stats(graph)["up_to_date"]:
            build(graph)
        yield settings, graph


@pytest.fixture
def embeddings_restored(real_graph):
    """Put back every Entity's gnn_embedding and gnn_model_version (or their absence) after the test."""
    _, graph = real_graph
    before = graph.read(
        "MATCH (n:Entity) RETURN n.id AS id, n.gnn_embedding AS embedding, n.gnn_model_version AS version"
    )
    yield
    graph.write_batches(WRITE_EMBEDDINGS_QUERY, before, batch_size=1000)


@pytest.mark.neo4j
@pytest.mark.slow
def test_short_embed_run_on_the_real_graph_beats_untrained_and_embeds_every_entity(real_graph, embeddings_restored) -> None:
    settings, graph = real_graph
    # Hashed inputs keep this under a minute without the text-encoder cache; the text path is the same code after.
    report = kg_embed(
        settings,
        train_config=TrainConfig(epochs=30, lr=0.01, eval_every=10, patience=0, seed=0),
        features="hashed",
        save=False,
        baseline=False,
        threads=1,
        graph=graph,
    )
    assert report.metrics["rgcn"].mrr > 2 * report.metrics["rgcn_untrained"].mrr
    assert report.nodes > 1000 and report.edges["HAS_PHENOTYPE"] > 1000
    assert report.written == report.nodes
    rows = graph.read(
        "MATCH (n:Entity) RETURN count(n) AS nodes, "
        "count(CASE WHEN size(n.gnn_embedding) = 64 AND n.gnn_model_version = $version THEN 1 END) AS embedded",
        {"version": report.model_version},
    )
    assert rows[0]["embedded"] == rows[0]["nodes"] == report.nodes
