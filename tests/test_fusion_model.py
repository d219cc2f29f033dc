"""The fusion model's shapes, masks and options; the loss, metrics and records it relies on. CPU only, a few seconds."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from fusion import metrics as M
from fusion.config import FusionConfig
from fusion.losses import MultiTaskLoss
from fusion.model import FusionModel
from fusion.records import METADATA_DIM, LabelMap, VideoFeatures, metadata_vector
from fusion.batches import collate

DV, DT, DG = 12, 10, 6
LABELS = LabelMap(("ICD10:H10", "ICD10:H40", "ICD10:H52.4"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Two shared cores: a second intra-op thread makes tiny models tens of times slower under load.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def item(video_id: str, k: int, l: int, e: int, seed: int = 0, **labels) -> VideoFeatures:
    rng = np.random.default_rng(seed)
    return VideoFeatures(
        video_id=video_id,
        frames=rng.normal(size=(k, DV)),
        frame_times=np.arange(k) * 1.5,
        tokens=(tokens := rng.normal(size=(l, DT))),
        token_text=[f"tok{i}" for i in range(l)],
        caption_tokens=tokens,  # no knowledge appended: the caption encoded on its own is the whole text
        entities=rng.normal(size=(e, DG)),
        entity_ids=[f"HP:{i:07d}" for i in range(e)],
        metadata=metadata_vector(duration_s=60, platform="bilibili", published_hour=20, author_followers=1000),
        **labels,
    )


def config(**overrides) -> FusionConfig:
    # The mechanics here are the fused embedding's and its heads'; the fitted paths beside the heads (the mention prior,
    # the popularity cascade, the quality skip), which start those heads at zero, have their own tests in
    # test_fusion_training.py, where they are fitted. The attention mechanics are pinned without ``concat_base`` (whose
    # gates start closed, so attention changes nothing at first); that option has its own test at the end.
    values = dict(d_visual=DV, d_text=DT, d_graph=DG, n_diseases=len(LABELS), width=16, heads=2, dropout=0.0,
                  disease_mentions=False, popularity_cascade=False, quality_skip=False, concat_base=False)
    values.update(overrides)
    return FusionConfig(**values)


def run(cfg: FusionConfig, items: list[VideoFeatures]):
    torch.manual_seed(0)
    model = FusionModel(cfg).eval()
    batch = collate(items, cfg, LABELS)
    with torch.no_grad():
        return model(*batch.inputs()), batch


# Edge cases together in one batch: no entities, one keyframe, no text, nothing but metadata, and a full item.
EDGE_ITEMS = [
    item("no-entities", k=3, l=5, e=0, seed=1),
    item("one-frame", k=1, l=4, e=2, seed=2),
    item("no-text", k=4, l=0, e=1, seed=3),
    item("no-frames", k=0, l=6, e=3, seed=4),
    item("metadata-only", k=0, l=0, e=0, seed=5),
    item("full", k=8, l=9, e=4, seed=6),
]


@pytest.mark.parametrize("fusion", ["cross_attention", "concat"])
def test_outputs_are_finite_with_shapes_for_every_edge_case(fusion: str) -> None:
    out, batch = run(config(fusion=fusion), EDGE_ITEMS)
    b = len(EDGE_ITEMS)
    assert out.disease_logits.shape == (b, len(LABELS))
    assert out.popularity.shape == (b,)
    assert out.quality_probs.shape == (b, 5)
    assert out.quality_logits.shape == (b, 4)
    assert out.embedding.shape == (b, 16)
    for tensor in (out.disease_logits, out.popularity, out.quality_probs, out.embedding, out.frame_attention,
                   out.token_attention, out.entity_attention, out.gates):
        assert torch.isfinite(tensor).all()
    assert torch.all(out.quality_probs >= 0)
    assert torch.allclose(out.quality_probs.sum(-1), torch.ones(b), atol=1e-5)
    assert set(out.quality_pred.tolist()) <= {1, 2, 3, 4, 5}


@pytest.mark.parametrize("fusion", ["cross_attention", "concat"])
def test_attention_sums_to_one_over_valid_positions_and_is_zero_elsewhere(fusion: str) -> None:
    out, batch = run(config(fusion=fusion), EDGE_ITEMS)
    for weights, valid in ((out.frame_attention, batch.frame_valid), (out.token_attention, batch.token_valid),
                           (out.entity_attention, batch.entity_valid)):
        assert torch.all(weights[~valid] == 0)
        sums = weights.sum(-1)
        has_any = valid.any(-1)
        assert torch.allclose(sums[has_any], torch.ones(int(has_any.sum())), atol=1e-5)
        assert torch.all(sums[~has_any] == 0)


def test_padding_does_not_change_an_items_output() -> None:
    alone, _ = run(config(), [EDGE_ITEMS[1]])
    batched, _ = run(config(), EDGE_ITEMS)
    assert torch.allclose(alone.embedding[0], batched.embedding[1], atol=1e-5)
    assert torch.allclose(alone.disease_logits[0], batched.disease_logits[1], atol=1e-5)


def test_switched_off_modality_is_ignored_entirely() -> None:
    cfg = config(use_graph=False)
    base = item("x", k=3, l=4, e=2, seed=7)
    other = item("x", k=3, l=4, e=2, seed=7)
    other.entities = other.entities + 5.0
    out_a, _ = run(cfg, [base])
    out_b, _ = run(cfg, [other])
    assert torch.equal(out_a.embedding, out_b.embedding)
    assert torch.all(out_a.entity_attention == 0)
    assert out_a.gates[0, 2] == 0  # graph gate closed


def test_reset_parameters_reinitialises_but_keeps_popularity_statistics() -> None:
    model = FusionModel(config())
    model.pop_mean.fill_(3.0)
    before = model.disease_head.weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(before, model.disease_head.weight)
    assert float(model.pop_mean) == 3.0


@pytest.mark.parametrize("task_readout", [True, False])
def test_task_modules_are_each_task_s_own_and_share_no_parameter(task_readout: bool) -> None:
    # What the head refit trains per task, with the rest frozen: the groups must not overlap.
    model = FusionModel(config(task_readout=task_readout, disease_mentions=True, popularity_cascade=True,
                               quality_skip=True))
    own = {task: [type(m).__name__ for m in model.task_modules(task)] for task in ("disease", "popularity", "quality")}
    readout = ["Readout"] if task_readout else []
    assert own == {"disease": ["Linear", "MentionPrior", "VisualDiseasePath", "ContextDiseasePath", *readout],
                   "popularity": ["Sequential", "RidgeSkip", *readout], "quality": ["OrdinalHead", "RidgeSkip", *readout]}
    ids = [id(p) for task in own for m in model.task_modules(task) for p in m.parameters()]
    assert len(ids) == len(set(ids))
    shared = {id(p) for p in model.visual_proj.parameters()} | {id(p) for p in model.context_over_frames.parameters()}
    assert not shared & set(ids)  # the trunk is no task's own
    # A new model's disease paths start silent and its readout gates half-open.
    assert torch.count_nonzero(model.disease_visual.out.weight) == 0
    assert torch.count_nonzero(model.disease_context.out.weight) == 0
    assert all(torch.count_nonzero(g.weight) == 0 for r in model.readouts.values() for g in r.gates.values())
    assert FusionModel(config(tasks=("disease",))).task_modules("quality") == []


def test_disabled_tasks_have_no_heads_and_no_outputs() -> None:
    out, _ = run(config(tasks=("quality",), n_diseases=0), EDGE_ITEMS[:2])
    assert out.disease_logits is None and out.popularity is None
    assert out.quality_probs.shape == (2, 5)


@pytest.mark.parametrize(
    "overrides, names",
    [
        (dict(use_visual=False, use_text=False, use_graph=False, use_metadata=False), ("use_visual", "use_metadata")),
        (dict(width=30, heads=4), ("width", "heads")),
        (dict(use_visual=False), ("cross_attention", "use_visual")),
        (dict(n_diseases=0), ("disease", "n_diseases")),
        (dict(d_meta=0), ("use_metadata", "d_meta")),
        (dict(fusion="sum"), ("fusion",)),
        (dict(tasks=("disease", "views")), ("tasks",)),
        (dict(disease_visual="max"), ("disease_visual",)),
    ],
)
def test_conflicting_config_is_rejected_naming_both_options(overrides: dict, names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as err:
        config(**overrides)
    for name in names:
        assert name in str(err.value)


def test_concat_accepts_what_cross_attention_rejects() -> None:
    config(fusion="concat", use_visual=False)  # the text-only ablation is a concat model


def test_config_json_round_trip() -> None:
    cfg = config(tasks=("disease", "quality"), task_weighting="equal")
    again = FusionConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown"):
        FusionConfig.from_dict({**cfg.to_dict(), "colour": "red"})


def test_loss_masks_missing_labels_and_weights_by_uncertainty() -> None:
    cfg = config(task_weighting="uncertainty", task_weights=None)
    items = [
        item("a", 2, 3, 1, seed=1, diseases=["ICD10:H10"], popularity=2.0),
        item("b", 2, 3, 0, seed=2, diseases=[], popularity=1.0),
    ]
    out, batch = run(cfg, items)
    loss_fn = MultiTaskLoss(cfg)
    total, parts = loss_fn(out, batch.targets)
    assert set(parts) == {"disease", "popularity"}  # nobody has a quality label
    assert torch.isfinite(total)
    with torch.no_grad():
        loss_fn.log_vars.fill_(1.0)
    weighted, _ = loss_fn(out, batch.targets)
    expected = math.exp(-1.0) * (parts["disease"] + parts["popularity"]) + 2.0
    assert float(weighted.detach()) == pytest.approx(expected, rel=1e-5)
    equal = MultiTaskLoss(config(task_weighting="equal", task_weights=None))
    assert not equal.log_vars.requires_grad
    assert float(equal(out, batch.targets)[0].detach()) == pytest.approx(parts["disease"] + parts["popularity"], rel=1e-5)


def test_modality_dropout_hides_whole_modalities_in_training_only_and_never_all_of_an_item() -> None:
    cfg = config(modality_dropout=0.6)
    model = FusionModel(cfg)
    items = [item(f"v{i}", k=3, l=4, e=2, seed=i) for i in range(64)] + [item("text-only", k=0, l=4, e=0, seed=99)]
    batch = collate(items, cfg, LABELS)
    torch.manual_seed(0)
    frame, token, entity = model._drop_modalities(batch.frame_valid, batch.token_valid, batch.entity_valid)
    kept = torch.stack([frame.any(-1), token.any(-1), entity.any(-1)], dim=1)
    assert kept.any(dim=1).all()  # every item keeps at least one modality …
    assert not kept[:64].all(dim=1).all() and (~kept[:64]).any(dim=0).all()  # … but each modality is hidden sometimes
    assert token[-1].all()  # an item whose only sequence would be hidden keeps it
    # A hidden modality is hidden entirely (all its positions), a kept one keeps its mask unchanged.
    for new, old in ((frame, batch.frame_valid), (token, batch.token_valid), (entity, batch.entity_valid)):
        assert all(bool((row == old[i]).all()) or not row.any() for i, row in enumerate(new))
    model.eval()
    with torch.no_grad():
        first = model(*batch.inputs()).embedding
        assert torch.equal(first, model(*batch.inputs()).embedding)  # no dropout at inference
    with pytest.raises(ValueError, match="modality_dropout"):
        config(modality_dropout=1.0)


def test_fixed_task_weights_scale_their_task_losses() -> None:
    items = [item("a", 2, 3, 1, seed=1, diseases=["ICD10:H10"], popularity=2.0, quality=4)]
    out, batch = run(config(), items)
    parts = MultiTaskLoss(config()).task_losses(out, batch.targets)
    weighted = MultiTaskLoss(config(task_weights={"disease": 4.0}))
    total, _ = weighted(out, batch.targets)
    assert float(total) == pytest.approx(4 * float(parts["disease"]) + float(parts["popularity"] + parts["quality"]), rel=1e-5)
    assert weighted.weights() == {"disease": 4.0, "popularity": 1.0, "quality": 1.0}
    for bad in ({"virality": 2.0}, {"disease": 0.0}):
        with pytest.raises(ValueError, match="task_weights"):
            config(task_weights=bad)
    # Under uncertainty weighting the learned factor multiplies the fixed one.
    uncertain = MultiTaskLoss(config(task_weights={"disease": 2.0}, task_weighting="uncertainty"))
    with torch.no_grad():
        uncertain.log_vars.fill_(1.0)
    assert uncertain.weights()["disease"] == pytest.approx(2.0 * math.exp(-1.0))
    assert config().task_weights == {"disease": 4.0, "popularity": 0.25}  # the default (see FusionConfig.task_weights)
    # A config saved before these options existed loads with the behaviour it was trained with.
    legacy = {k: v for k, v in config().to_dict().items() if k not in ("task_weights", "task_readout", "modality_dropout")}
    old = FusionConfig.from_dict(legacy)
    assert old.task_weights is None and old.task_readout is False and old.modality_dropout == 0.0
    assert FusionConfig.from_dict(json.loads(json.dumps(config(task_weights={"disease": 4}).to_dict()))).task_weights == {
        "disease": 4.0
    }


def test_task_readouts_give_each_head_its_own_pooling_and_report_their_mean() -> None:
    cfg = config(task_readout=True)
    torch.manual_seed(0)
    model = FusionModel(cfg)
    assert set(model.readouts) == {"disease", "popularity", "quality"}
    with torch.no_grad():
        # Make the quality readout's frame pool prefer other frames than the other readouts.
        model.readouts["quality"].pools["visual"].score.weight.mul_(-25.0)
    model.eval()
    batch = collate(EDGE_ITEMS, cfg, LABELS)
    with torch.no_grad():
        out = model(*batch.inputs())
        reads = {t: r(*_readout_inputs(model, batch)) for t, r in model.readouts.items()}
    valid = batch.frame_valid
    assert torch.allclose(out.frame_attention.sum(-1), valid.any(-1).float(), atol=1e-5)
    assert not torch.allclose(reads["quality"][1], reads["disease"][1])  # different frames attended
    assert torch.allclose(out.frame_attention, torch.stack([r[1] for r in reads.values()]).mean(0), atol=1e-6)
    assert torch.allclose(out.embedding, torch.stack([r[0] for r in reads.values()]).mean(0), atol=1e-6)
    assert torch.allclose(out.disease_logits, model.disease_head(reads["disease"][0]), atol=1e-6)
    assert FusionModel(config(task_readout=True, fusion="concat")).concat_proj is not None  # ignored by concat
    assert set(FusionModel(config(task_readout=True, tasks=("quality",))).readouts) == {"quality"}


def _readout_inputs(model: FusionModel, batch):
    # The cross-attended sequences the readouts pool, recomputed as in FusionModel.forward (eval mode, no dropout).
    v = model.visual_proj(batch.frames) * batch.frame_valid[..., None]
    t = (model.text_proj(batch.tokens) + model.type_embedding[0]) * batch.token_valid[..., None]
    g = (model.graph_proj(batch.entities) + model.type_embedding[1]) * batch.entity_valid[..., None]
    meta = model.meta_mlp((batch.metadata - model.meta_mean) / model.meta_std)
    present = torch.stack([batch.frame_valid.any(-1).float(), batch.token_valid.any(-1).float(),
                           batch.entity_valid.any(-1).float(), torch.ones(len(v))], dim=1)
    context, context_valid = torch.cat([t, g], 1), torch.cat([batch.token_valid, batch.entity_valid], 1)
    context_new = model.context_over_frames(context, context_valid, v, batch.frame_valid)
    v_new = model.frames_over_context(v, batch.frame_valid, context, context_valid)
    n = t.shape[1]
    return (v_new, batch.frame_valid, context_new[:, :n], batch.token_valid, context_new[:, n:], batch.entity_valid,
            meta, present)


def test_metrics_on_perfect_and_undefined_inputs() -> None:
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    perfect = M.disease_metrics(y, y.astype(float))
    assert perfect["macro_f1"] == 1.0 and perfect["micro_f1"] == 1.0 and perfect["mAP"] == 1.0
    assert perfect["n_labels_scored"] == 2  # the label with no positive is not averaged in
    assert M.quality_metrics([1, 2, 3, 5], [1, 2, 3, 5]) == {"accuracy": 1.0, "qwk": 1.0, "mae": 0.0}
    assert M.quality_metrics([1, 3], [3, 1])["qwk"] < 0
    pop = M.popularity_metrics([1.0, 2.0, 3.0], [0.5, 0.7, 9.0])
    assert pop["spearman"] == pytest.approx(1.0)
    assert math.isnan(M.popularity_metrics([1.0, 2.0], [1.0, 1.0])["spearman"])
    assert M.popularity_percentile(2.5, np.array([1.0, 2.0, 3.0, 4.0])) == 50.0
    assert M.validation_score({"disease": {"macro_f1": 0.5}, "popularity": {"spearman": math.nan}}) == 0.5


def test_disease_decisions_add_the_most_probable_label_only_where_the_rule_holds_and_nothing_passes() -> None:
    probs = np.array([[0.7, 0.2, 0.6], [0.1, 0.4, 0.3], [0.2, 0.2, 0.1], [0.1, 0.4, 0.3]])
    plain = M.disease_decisions(probs)
    assert plain.tolist() == [[True, False, True], [False] * 3, [False] * 3, [False] * 3]
    ruled = M.disease_decisions(probs, 0.5, True)
    # Row 0 keeps its two labels; the others get their most probable one (the first on a tie), nothing more.
    assert ruled.tolist() == [[True, False, True], [False, True, False], [True, False, False], [False, True, False]]
    per_row = M.disease_decisions(probs, 0.5, np.array([True, False, True, False]))
    assert per_row.tolist() == [[True, False, True], [False] * 3, [True, False, False], [False] * 3]
    assert M.disease_decisions(np.zeros((2, 0)), 0.5, True).shape == (2, 0)
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
    without, with_rule = M.disease_metrics(truth, probs), M.disease_metrics(truth, probs, 0.5, True)
    assert without["macro_f1"] < with_rule["macro_f1"]
    assert without["mAP"] == with_rule["mAP"]  # the ranking is the rule's business no more than the threshold's


def test_ranked_diseases_follow_the_at_least_one_rule() -> None:
    from fusion.records import Prediction

    prediction = Prediction("v", {"A": 0.3, "B": 0.45, "C": 0.45}, None, None, None, None, [], [], [], {}, [])
    assert prediction.ranked_diseases(0.5) == []
    ruled = dataclasses.replace(prediction, at_least_one=True)
    assert ruled.ranked_diseases(0.5) == [("B", 0.45)]  # one label, the first most probable in label order
    assert ruled.ranked_diseases(0.4) == prediction.ranked_diseases(0.4) == [("B", 0.45), ("C", 0.45)]
    assert dataclasses.replace(ruled, disease_probs={}).ranked_diseases(0.5) == []


def test_at_least_one_option_is_validated_and_old_configs_load_with_it_off() -> None:
    with pytest.raises(ValueError, match="disease_at_least_one"):
        config(disease_at_least_one="sometimes")
    data = config().to_dict()
    del data["disease_at_least_one"]
    assert FusionConfig.from_dict(data).disease_at_least_one == "off"
    assert not hasattr(FusionModel(config(disease_at_least_one="off")), "at_least_one")  # old state dicts load as-is
    assert "at_least_one" in FusionModel(config()).state_dict()


def test_model_percentile_follows_training_quantiles() -> None:
    model = FusionModel(config())
    model.pop_quantiles.copy_(torch.linspace(0.0, 10.0, 101))
    pct = model.popularity_percentile(torch.tensor([-1.0, 0.0, 5.0, 2.55, 10.0, 12.0]))
    assert pct.tolist() == pytest.approx([0.0, 0.0, 50.0, 25.5, 100.0, 100.0], abs=1e-4)


def test_records_reject_inconsistent_shapes_naming_the_video() -> None:
    with pytest.raises(ValueError, match="clip-7"):
        VideoFeatures("clip-7", np.zeros((2, 4)), [0.0], np.zeros((1, 3)), ["a"], np.zeros((0, 2)), [], np.zeros(3))
    with pytest.raises(ValueError, match="quality"):
        item("q", 1, 1, 0, quality=6)
    with pytest.raises(ValueError, match="more than once"):
        LabelMap(("A", "B", "A"))
    assert metadata_vector(duration_s=None, platform="weibo", published_hour=None, author_followers=None).shape == (
        METADATA_DIM,
    )
    vec, unknown = LABELS.encode(["ICD10:H40", "OVP:unknown"])
    assert vec.tolist() == [0.0, 1.0, 0.0] and unknown == ["OVP:unknown"]
    assert LabelMap.from_dict(json.loads(json.dumps(LABELS.to_dict()))) == LABELS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_model_runs_on_gpu_with_matching_outputs() -> None:
    cfg = config()
    torch.manual_seed(0)
    model = FusionModel(cfg).eval()
    batch = collate(EDGE_ITEMS, cfg, LABELS)
    with torch.no_grad():
        cpu_out = model(*batch.inputs())
        model.to("cuda")
        gpu_out = model(*batch.to(torch.device("cuda")).inputs())
    assert torch.allclose(cpu_out.embedding, gpu_out.embedding.cpu(), atol=1e-4)
    assert torch.allclose(cpu_out.frame_attention, gpu_out.frame_attention.cpu(), atol=1e-4)


def test_the_fitted_paths_give_finite_outputs_for_every_edge_case() -> None:
    cfg = config(disease_mentions=True, popularity_cascade=True, quality_skip=True)
    out, batch = run(cfg, EDGE_ITEMS)
    for tensor in (out.disease_logits, out.popularity, out.quality_logits, out.quality_probs):
        assert torch.isfinite(tensor).all()
    assert batch.mentions.shape == (len(EDGE_ITEMS), len(LABELS))


def test_switching_the_graph_off_is_the_same_to_the_model_as_emptying_every_entity_list() -> None:
    # What the no-GNN ablation relies on now that it keeps the linked ids (for the mention prior) and sets use_graph=False.
    import dataclasses

    cfg = config(use_graph=False)
    masked, _ = run(cfg, EDGE_ITEMS)
    emptied, _ = run(cfg, [dataclasses.replace(it, entities=it.entities[:0], entity_ids=[]) for it in EDGE_ITEMS])
    for a, b in ((masked.disease_logits, emptied.disease_logits), (masked.popularity, emptied.popularity),
                 (masked.quality_probs, emptied.quality_probs), (masked.embedding, emptied.embedding)):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.count_nonzero(masked.entity_attention) == 0


def test_concat_base_starts_as_the_concatenation_fusion_and_opens_its_attention_gates_by_training() -> None:
    cfg = config(concat_base=True)
    torch.manual_seed(0)
    model = FusionModel(cfg).eval()
    concat = FusionModel(cfg.replace(fusion="concat")).eval()
    shared = {k: v for k, v in model.state_dict().items() if k in concat.state_dict()}
    assert set(concat.state_dict()) <= set(model.state_dict())  # every baseline parameter has its place
    concat.load_state_dict(shared)
    batch = collate(EDGE_ITEMS, cfg, LABELS)
    with torch.no_grad():
        gated, base = model(*batch.inputs()), concat(*batch.inputs())
    # Gates at 0: the same function as the baseline with the same weights, attention weights still reported.
    assert torch.equal(model.attention_gate, torch.zeros(len(cfg.tasks)))
    assert torch.allclose(gated.embedding, base.embedding, atol=1e-6)
    assert torch.allclose(gated.quality_probs, base.quality_probs, atol=1e-6)
    assert torch.allclose(gated.frame_attention.sum(-1)[batch.frame_valid.any(-1)], torch.ones(1))
    # The loss reaches the gates, so training can open them; an open gate changes the embedding.
    model.train()
    out = model(*batch.inputs())
    (out.embedding.pow(2).sum() + out.quality_logits.sum()).backward()
    assert model.attention_gate.grad is not None and model.attention_gate.grad.abs().sum() > 0
    with torch.no_grad():
        model.attention_gate.fill_(1.0)
        opened = model.eval()(*batch.inputs())
        assert not torch.allclose(opened.embedding, base.embedding, atol=1e-4)
        model.reset_parameters()
    assert torch.equal(model.attention_gate, torch.zeros(len(cfg.tasks)))
    legacy = {k: v for k, v in cfg.to_dict().items() if k != "concat_base"}
    assert FusionConfig.from_dict(legacy).concat_base is False  # saved before the option existed


def _check_disease_only_path(model: FusionModel, path: torch.nn.Module, batch):
    """What every disease path beside the fused head must do: start silent (the logits are the head's alone), belong
    to the disease task (the refit trains it; it is no shared parameter), and get gradient from the disease loss
    alone. Leaves ``path.out`` random and the model in train mode; returns the last forward pass's output."""
    with torch.no_grad():
        out = model(*batch.inputs())
        head = model.disease_head(model.readouts["disease"](*_readout_inputs(model, batch))[0])
    assert torch.allclose(out.disease_logits, head, atol=1e-6)
    own = {id(p) for p in path.parameters()}
    assert own <= {id(p) for m in model.task_modules("disease") for p in m.parameters()}
    others = {id(p) for task in ("popularity", "quality") for m in model.task_modules(task) for p in m.parameters()}
    assert not own & others
    with torch.no_grad():
        path.out.weight.normal_()
    model.train()
    out = model(*batch.inputs())
    (out.quality_logits.sum() + out.popularity.sum()).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in path.parameters())
    model.zero_grad()
    out = model(*batch.inputs())
    out.disease_logits.sum().backward()
    assert path.proj[0].weight.grad.abs().sum() > 0 and torch.isfinite(path.proj[0].weight.grad).all()
    return out


def test_disease_visual_path_starts_silent_and_only_the_disease_loss_trains_it() -> None:
    cfg = config(disease_visual="mil", modality_dropout=0.0)
    torch.manual_seed(0)
    model = FusionModel(cfg).eval()
    path = model.disease_visual
    batch = collate(EDGE_ITEMS, cfg, LABELS)
    out = _check_disease_only_path(model, path, batch)
    # Items without frames (and the no-visual ablation) get nothing from it.
    with torch.no_grad():
        logits, weights = path(batch.frames, batch.frame_valid)
    no_frames = ~batch.frame_valid.any(-1)
    assert no_frames.any() and torch.count_nonzero(logits[no_frames]) == 0
    assert weights.shape == (*batch.frame_valid.shape, len(LABELS))  # per label, each keyframe's share
    assert torch.allclose(weights.sum(1)[~no_frames], torch.ones(int((~no_frames).sum()), len(LABELS)), atol=1e-5)
    assert torch.count_nonzero(weights[~batch.frame_valid]) == 0
    assert out.disease_frames.shape == (len(EDGE_ITEMS), len(LABELS))  # reported with every forward pass
    assert out.disease_frame_weights.shape == weights.shape
    assert FusionModel(config(use_visual=False, fusion="concat")).disease_visual is not None
    assert FusionModel(config(tasks=("quality",))).disease_visual is None
    assert FusionModel(config(disease_visual="none")).disease_visual is None


def test_disease_context_path_starts_silent_reads_text_and_entities_and_only_the_disease_loss_trains_it() -> None:
    cfg = config(disease_context=True, modality_dropout=0.0)
    torch.manual_seed(0)
    model = FusionModel(cfg).eval()
    path = model.disease_context
    batch = collate(EDGE_ITEMS, cfg, LABELS)
    _check_disease_only_path(model, path, batch)
    # It reads the tokens and entities, masked: padding changes nothing, and the no-text ablation hides the text.
    model.eval()
    with torch.no_grad():
        base = path(batch.tokens, batch.token_valid, batch.entities, batch.entity_valid)
        noisy_pad = torch.where(batch.token_valid[..., None], batch.tokens, torch.randn_like(batch.tokens) * 100)
        assert torch.allclose(path(noisy_pad, batch.token_valid, batch.entities, batch.entity_valid), base, atol=1e-5)
        no_text = FusionModel(config(disease_context=True, use_text=False)).eval()
        no_text.load_state_dict(model.state_dict())
        changed_text = torch.where(batch.token_valid[..., None], batch.tokens + 5.0, batch.tokens)
        inputs = list(batch.inputs())
        a = no_text(*inputs).disease_logits
        inputs[2] = changed_text
        assert torch.allclose(no_text(*inputs).disease_logits, a, atol=1e-5)
    assert FusionModel(config(disease_context=True, tasks=("quality",))).disease_context is None
    legacy = {k: v for k, v in config(disease_context=True).to_dict().items() if k != "disease_context"}
    assert FusionConfig.from_dict(legacy).disease_context is False


def test_quality_caption_readout_pools_the_caption_s_tokens_and_not_the_knowledge_after_sep() -> None:
    items = [dataclasses.replace(it, token_text=[*it.token_text[:2], "[SEP]", *it.token_text[3:]])
             if len(it.token_text) > 3 else it for it in EDGE_ITEMS]
    cfg = config(quality_caption_readout=True, modality_dropout=0.0)
    torch.manual_seed(0)
    model = FusionModel(cfg).eval()
    batch = collate(items, cfg, LABELS)
    assert (batch.caption_valid.sum(1) < batch.token_valid.sum(1)).any()
    with torch.no_grad():
        out = model(*batch.inputs())
        # The quality readout's text pool puts no weight after [SEP], and the quality head reads that readout (the
        # blocks before it still attend over every token, so the same weights without the option differ).
        reads = model.readouts["quality"](*_readout_inputs(model, batch)[:3], batch.token_valid & batch.caption_valid,
                                          *_readout_inputs(model, batch)[4:])
        assert torch.count_nonzero(reads[2][~batch.caption_valid]) == 0
        assert torch.allclose(model.quality_head(reads[0])[0], out.quality_logits, atol=1e-5)
        plain = FusionModel(config(modality_dropout=0.0, quality_caption_readout=False)).eval()
        plain.load_state_dict(model.state_dict())
        assert not torch.allclose(plain(*batch.inputs()).quality_logits, out.quality_logits)
    inputs = list(batch.inputs())
    inputs[8] = None
    with pytest.raises(ValueError, match="quality_caption_readout"):
        model(*inputs)


def test_mil_pooling_is_a_smooth_maximum_over_the_valid_frames() -> None:
    from fusion.model import VisualDiseasePath

    torch.manual_seed(0)
    path = VisualDiseasePath(DV, 8, 3, 0.0).eval()
    torch.nn.init.normal_(path.out.weight)
    frames = torch.randn(2, 5, DV)
    valid = torch.tensor([[True, True, True, False, False], [True] * 5])
    with torch.no_grad():
        pooled, _ = path(frames, valid)
        scores = path.out(path.proj(frames))
    for i in range(2):
        s = scores[i][valid[i]]
        assert (pooled[i] >= s.mean(0) - 1e-5).all() and (pooled[i] <= s.max(0).values + 1e-5).all()
    # Padding frames change nothing.
    with torch.no_grad():
        again, _ = path(torch.cat([frames[:1, :3], torch.randn(1, 2, DV) * 100], dim=1), valid[:1])
    assert torch.allclose(again, pooled[:1], atol=1e-5)


def test_disease_visual_option_is_validated_and_absent_from_older_configs() -> None:
    with pytest.raises(ValueError, match="disease_visual='max' is not one of"):
        config(disease_visual="max")
    legacy = {k: v for k, v in config(disease_visual="mil").to_dict().items() if k != "disease_visual"}
    assert FusionConfig.from_dict(legacy).disease_visual == "none"


def test_a_config_saved_before_the_options_were_retired_loads_and_one_that_used_one_is_refused() -> None:
    from fusion.config import RETIRED

    today = config().to_dict()
    # Saved with every retired option at the behaviour still built in (what today's defaults wrote): the same config.
    assert FusionConfig.from_dict({**today, **RETIRED}) == config()
    for name, value in (("mean_pool", True), ("gradient_surgery", "pcgrad"), ("quality_head", "softmax"),
                        ("weight_ema_epochs", 3.0), ("distill", True), ("head_refit_init", "fresh")):
        with pytest.raises(ValueError, match=f"{name}={value!r}.*retrain it with `ovp train`"):
            FusionConfig.from_dict({**today, name: value})
    with pytest.raises(ValueError, match="disease_visual='attention'.*retrain"):
        FusionConfig.from_dict({**today, "disease_visual": "attention"})
    with pytest.raises(TypeError):
        config(mean_pool=False)  # gone from the config: nothing can set it


def test_the_disease_head_decay_gives_that_fused_head_its_own_decay_and_nothing_else() -> None:
    from fusion.training import decay_groups

    head, option = "disease", "disease_head_decay"
    with pytest.raises(ValueError, match=option):
        config(**{option: -1.0})
    data = config(**{option: 10.0}).to_dict()
    del data[option]
    assert getattr(FusionConfig.from_dict(data), option) is None  # older models trained without it
    for decay, head_factor in ((None, 1 - 0.1 * 0.01), (10.0, 1 - 0.1 * 10.0)):
        model = FusionModel(config(**{option: decay}))
        params = [p for p in model.parameters() if p.requires_grad]
        groups = decay_groups(model, params, model.config)
        assert sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in params)  # each once
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        for p in params:
            p.grad = torch.zeros_like(p)  # a step of decay alone: AdamW's decoupled decay still shrinks the weights
        torch.optim.AdamW(groups, lr=0.1, weight_decay=0.01).step()
        for name, p in model.named_parameters():
            factor = head_factor if name.startswith(f"{head}_head.") else 1 - 0.1 * 0.01
            assert torch.allclose(p.detach(), before[name] * factor, atol=1e-6), name
