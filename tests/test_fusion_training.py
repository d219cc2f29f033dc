"""Training on a tiny SYNTHETIC tensor set with planted patterns: learning, determinism, saving and loading."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.batches import collate
from fusion.config import FusionConfig
from fusion.evaluation import evaluate
from fusion.features import feature_settings_for
from fusion.inference import LoadedModel, load_model
from fusion.model import FusionModel
from fusion.records import LabelMap, VideoFeatures, metadata_vector
from fusion.training import TrainResult, at_least_one_rule, train
from ovp.errors import ConfigError, ModelNotFound
from ovp.settings import Settings

DV, DT, DG = 32, 24, 16
DISEASES = ("ICD10:H10", "ICD10:H40", "ICD10:H52.4", "ICD10:H50")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Two shared cores: a second intra-op thread makes tiny models tens of times slower under load.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_items(n: int, seed: int = 0) -> list[VideoFeatures]:
    """Videos whose labels are planted in the features.

    Each disease has a keyframe pattern (added to about half the frames), a token pattern (added to one token) and an
    entity embedding (present 60% of the time); quality shifts frames and tokens along fixed directions; popularity is a
    token direction plus noise. About 10% of items miss each label, which the loss must mask.
    """
    proto = np.random.default_rng(1234)  # the patterns are fixed; ``seed`` only draws the videos
    frame_pattern = proto.normal(size=(len(DISEASES), DV))
    token_pattern = proto.normal(size=(len(DISEASES), DT))
    entity_pattern = proto.normal(size=(len(DISEASES), DG))
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    quality_v, quality_t, popularity_t = unit(proto.normal(size=DV)), unit(proto.normal(size=DT)), unit(proto.normal(size=DT))
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        present = [d for d in range(len(DISEASES)) if rng.random() < 0.3]
        quality = int(rng.integers(1, 6))
        reach = float(rng.normal())
        k, l = int(rng.integers(1, 9)), int(rng.integers(4, 17))
        frames = rng.normal(size=(k, DV)) + (quality - 3) * quality_v
        tokens = rng.normal(size=(l, DT)) + (quality - 3) * 0.5 * quality_t + 1.5 * reach * popularity_t
        entities, entity_ids = [], []
        for d in present:
            rows = rng.random(k) < 0.5
            rows[rng.integers(k)] = True
            frames[rows] += 1.5 * frame_pattern[d]
            tokens[rng.integers(l)] += 2.0 * token_pattern[d]
            if rng.random() < 0.6:
                entities.append(entity_pattern[d] + 0.3 * rng.normal(size=DG))
                entity_ids.append(DISEASES[d])
        if rng.random() < 0.3:
            entities.append(rng.normal(size=DG))
            entity_ids.append("HP:0000001")
        items.append(
            VideoFeatures(
                video_id=f"v{seed}-{i:04d}",
                frames=frames,
                frame_times=np.arange(k) * 2.0,
                tokens=tokens,
                token_text=[f"t{j}" for j in range(l)],
                caption_tokens=tokens,  # no knowledge appended: the caption encoded on its own is the whole text
                entities=np.array(entities).reshape(len(entities), DG),
                entity_ids=entity_ids,
                metadata=metadata_vector(
                    duration_s=float(rng.uniform(10, 300)),
                    platform=("douyin", "youtube", None)[i % 3],
                    published_hour=float(rng.uniform(0, 24)),
                    author_followers=float(rng.lognormal(8, 2)),
                ),
                diseases=[DISEASES[d] for d in present] if rng.random() > 0.1 else None,
                popularity=2.0 + 1.5 * reach + 0.3 * float(rng.normal()) if rng.random() > 0.1 else None,
                quality=quality if rng.random() > 0.1 else None,
                synthetic=True,
                visual_model=VISUAL_MODEL,
                text_model=TEXT_MODEL,
            )
        )
    return items


VISUAL_MODEL, TEXT_MODEL = "efficientnet_lite0/efficientnet-lite0-57934424", "bge-small-zh-v1.5"


LABELS = LabelMap(DISEASES)
TRAIN, VAL, TEST = make_items(100, seed=0), make_items(30, seed=1), make_items(40, seed=2)


def small_config(**overrides) -> FusionConfig:
    values = dict(width=32, heads=2, epochs=20, batch_size=16, lr=3e-3, patience=6, seed=0)
    values.update(overrides)
    return FusionConfig.from_items(TRAIN, LABELS, **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    out_dir = tmp_path_factory.mktemp("model")
    return train(TRAIN, VAL, small_config(), LABELS, out_dir=out_dir, progress=False, device="cpu"), out_dir


def test_training_lowers_every_task_loss(trained: tuple[TrainResult, Path]) -> None:
    history = trained[0].history
    first, best = history[0], history[trained[0].best_epoch - 1]
    assert best["train_loss"] < first["train_loss"]
    for task in ("disease", "popularity", "quality"):
        assert best["task_losses"][task] < 0.7 * first["task_losses"][task], task


def test_held_out_metrics_beat_chance(trained: tuple[TrainResult, Path]) -> None:
    result = evaluate(trained[0].predictor, TEST)
    # A predictor that guesses each label at its training frequency has expected F1 equal to that frequency (≈0.3);
    # one that always predicts the commonest GQS level has QWK 0; and random popularity has Spearman 0.
    frequency = np.mean([LABELS.encode(it.diseases)[0] for it in TRAIN if it.diseases is not None], axis=0)
    assert result["disease"]["macro_f1"] > max(frequency) + 0.3
    assert result["disease"]["mAP"] > 0.7
    assert result["quality"]["qwk"] > 0.4
    assert result["popularity"]["spearman"] > 0.5
    assert result["disease"]["n"] == sum(it.diseases is not None for it in TEST)  # unlabelled items are left out


def test_same_seed_gives_same_metrics_and_another_seed_does_not() -> None:
    cfg = small_config(epochs=2)
    runs = [train(TRAIN[:48], VAL[:16], cfg.replace(seed=s), LABELS, progress=False, device="cpu") for s in (5, 5, 6)]
    assert runs[0].history[-1]["train_loss"] == runs[1].history[-1]["train_loss"]
    assert runs[0].val_metrics == runs[1].val_metrics
    assert runs[0].history[-1]["train_loss"] != runs[2].history[-1]["train_loss"]


def test_no_early_stop_before_min_epochs_and_best_is_the_best_window_average() -> None:
    # Patience 1 would stop at epoch 2 or 3 on its own; min_epochs holds it to 6 at least. No head refit: the
    # validation metrics compared are the joint checkpoint's.
    result = train(TRAIN[:48], VAL[:16], small_config(epochs=8, patience=1, min_epochs=6, score_window=3,
                                                      head_refit_epochs=0), LABELS, progress=False, device="cpu")
    assert len(result.history) >= 6
    scores = [h["val_score"] for h in result.history]
    averages = [float(np.mean(scores[max(0, i - 2) : i + 1])) for i in range(len(scores))]
    assert [h["smoothed_score"] for h in result.history] == pytest.approx(averages)
    assert result.best_epoch == int(np.argmax(averages)) + 1
    assert result.val_metrics["score"] == scores[result.best_epoch - 1]


def test_stopping_options_are_validated() -> None:
    with pytest.raises(ValueError, match="score_window"):
        small_config(score_window=0)
    with pytest.raises(ValueError, match="min_epochs"):
        small_config(min_epochs=-1)
    assert FusionConfig.from_dict({k: v for k, v in small_config().to_dict().items()
                                   if k not in ("min_epochs", "score_window")}).min_epochs == FusionConfig.min_epochs


def test_head_refit_moves_only_task_parameters_and_never_lowers_a_task_s_validation_metric() -> None:
    from fusion.evaluation import score_predictions
    from fusion.losses import MultiTaskLoss
    from fusion.metrics import task_score
    from fusion.training import _Batcher, refit_heads

    config = small_config(epochs=6, min_epochs=0, head_refit_epochs=0)
    joint = train(TRAIN, VAL, config, LABELS, progress=False, device="cpu")
    model = joint.predictor.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    val_before = score_predictions(VAL, joint.predictor.predict(VAL), LABELS)
    refit_config = config.replace(head_refit_epochs=8)
    batches = _Batcher(refit_config, LABELS, float(model.pop_mean), float(model.pop_std), torch.device("cpu"))
    report = refit_heads(model, MultiTaskLoss(refit_config), TRAIN, VAL, refit_config, LABELS,
                         np.random.default_rng(0), batches, joint.predictor)
    after = model.state_dict()
    heads = {"disease": ("disease_head.", "mention_prior.", "disease_visual.", "disease_context."),
             "popularity": ("popularity_head.", "popularity_cascade."), "quality": ("quality_head.", "quality_skip.")}
    own_by_task = {task: {*heads[task], f"readouts.{task}."} for task in config.tasks}
    own = set().union(*own_by_task.values())
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed, "the refit kept every task's joint head: nothing trained"
    assert all(any(k.startswith(p) for p in own) for k in changed), sorted(changed)  # the trunk is untouched
    assert all(p.requires_grad for p in model.parameters())  # the frozen trunk is trainable again afterwards
    assert len(report["epochs"]) <= 8 and set(report["kept"]) == set(config.tasks)
    for task in config.tasks:
        assert task_score(report["val_metrics"], task) >= task_score(val_before, task) - 1e-9, task
        if report["kept"][task] == 0:  # kept the joint head: its parameters are exactly the joint ones
            prefixes = own_by_task[task]
            assert all(torch.equal(before[k], after[k]) for k in after if any(k.startswith(p) for p in prefixes))


def test_train_with_head_refit_records_it_and_saves_it(tmp_path: Path) -> None:
    result = train(TRAIN, VAL, small_config(epochs=4, min_epochs=0, head_refit_epochs=3), LABELS, out_dir=tmp_path,
                   progress=False, device="cpu")
    assert 1 <= len(result.refit["epochs"]) <= 3 and set(result.refit["kept"]) == {"disease", "popularity", "quality"}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["head_refit"]["kept"] == result.refit["kept"]
    assert "Per-task head refit on the frozen trunk" in (tmp_path / "model_card.md").read_text()
    assert load_model(tmp_path, device="cpu").config.head_refit_epochs == 3
    with pytest.raises(ValueError, match="head_refit_epochs"):
        small_config(head_refit_epochs=-1)
    # A model saved before the refit stage existed was trained without one, whatever today's default is.
    legacy = {k: v for k, v in small_config(head_refit_epochs=3).to_dict().items() if k != "head_refit_epochs"}
    assert FusionConfig.from_dict(legacy).head_refit_epochs == 0


def test_save_load_round_trip_gives_identical_predictions(trained: tuple[TrainResult, Path]) -> None:
    result, out_dir = trained
    for name in ("model.pt", "config.json", "label_map.json", "metrics.json", "model_card.md",
                 "learning_curves.png", "quality_confusion.png"):
        assert (out_dir / name).is_file(), name
    assert "SYNTHETIC" in (out_dir / "model_card.md").read_text()
    saved = json.loads((out_dir / "metrics.json").read_text())
    assert saved["synthetic"] is True and saved["best_epoch"] == result.best_epoch

    loaded = load_model(out_dir, device="cpu")
    assert loaded.model_version == result.predictor.model_version != ""
    before, after = result.predictor.predict(TEST), loaded.predict(TEST)
    assert [p.disease_probs for p in before] == [p.disease_probs for p in after]
    assert [(p.popularity, p.popularity_pct, p.quality, p.quality_probs) for p in before] == [
        (p.popularity, p.popularity_pct, p.quality, p.quality_probs) for p in after
    ]
    assert [p.embedding for p in before] == [p.embedding for p in after]


def test_metadata_is_standardised_with_training_statistics_and_old_models_still_load(
    trained: tuple[TrainResult, Path], tmp_path: Path
) -> None:
    result, out_dir = trained
    values = np.stack([it.metadata for it in TRAIN]).astype(np.float64)
    model = result.predictor.model
    assert np.allclose(model.meta_mean.numpy(), values.mean(axis=0), atol=1e-5)
    std = values.std(axis=0)
    assert np.allclose(model.meta_std.numpy(), np.where(std < 1e-6, 1.0, std), atol=1e-5)
    # A model saved before the buffers existed (raw metadata) loads with identity statistics.
    old_dir = tmp_path / "old"
    shutil.copytree(out_dir, old_dir)
    state = torch.load(old_dir / "model.pt", weights_only=True)
    del state["meta_mean"], state["meta_std"]
    torch.save(state, old_dir / "model.pt")
    old = load_model(old_dir, device="cpu").model
    assert torch.equal(old.meta_mean, torch.zeros_like(old.meta_mean)) and torch.equal(old.meta_std, torch.ones_like(old.meta_std))


def test_a_model_saved_with_the_old_readout_names_loads_unchanged(trained: tuple[TrainResult, Path], tmp_path: Path) -> None:
    # Before per-task readouts, the one readout's parameters were pools.*, gates.* and fuse_norm.* on the model, and
    # config.json had no task_readout key.
    _, out_dir = trained
    old_dir = tmp_path / "old"
    shutil.copytree(out_dir, old_dir)
    config = small_config(task_readout=False)
    torch.manual_seed(3)
    model = FusionModel(config).eval()
    prefix = {"readouts.shared.pools.": "pools.", "readouts.shared.gates.": "gates.", "readouts.shared.norm.": "fuse_norm."}
    old_state = {}
    for key, value in model.state_dict().items():
        for new, old in prefix.items():
            if key.startswith(new):
                key = old + key[len(new):]
        old_state[key] = value
    assert any(k.startswith("fuse_norm.") for k in old_state)
    torch.save(old_state, old_dir / "model.pt")
    legacy = {k: v for k, v in config.to_dict().items() if k not in ("task_readout", "modality_dropout", "task_weights")}
    (old_dir / "config.json").write_text(json.dumps(legacy))
    loaded = load_model(old_dir, device="cpu")
    assert loaded.config.task_readout is False
    before = LoadedModel(model, config, LABELS, torch.device("cpu")).predict(TEST)
    assert [p.embedding for p in before] == [p.embedding for p in loaded.predict(TEST)]


def test_a_model_refuses_features_of_encoders_it_was_not_trained_on(trained: tuple[TrainResult, Path]) -> None:
    result, out_dir = trained
    card = (out_dir / "model_card.md").read_text(encoding="utf-8")
    assert f"`{VISUAL_MODEL}` ({DV}-d per keyframe)" in card and f"`{TEXT_MODEL}` ({DT}-d)" in card
    loaded = load_model(out_dir, device="cpu")
    assert (loaded.config.visual_features, loaded.config.text_features) == (VISUAL_MODEL, TEXT_MODEL)
    item = TEST[0]
    # Another backbone of the same width, another width, another text model: each refused, naming both sides.
    for changes in ({"visual_model": "resnet50/IMAGENET1K_V2"},
                    {"visual_model": "resnet50/IMAGENET1K_V2", "frames": np.zeros((2, 2 * DV)), "frame_times": [0, 1]},
                    {"text_model": "all-MiniLM-L6-v2"}):
        with pytest.raises(ValueError, match=r"from visual .* the model was trained on .* from visual "
                                             + VISUAL_MODEL.replace("/", ".")) as caught:
            loaded.predict([dataclasses.replace(item, **changes)])
        assert "features.json" in str(caught.value)
    # Features whose encoders were not recorded are judged by their widths alone.
    assert len(loaded.predict([dataclasses.replace(item, visual_model="", text_model="")])) == 1
    with pytest.raises(ValueError, match="extract every video with the same encoders"):
        FusionConfig.from_items([item, dataclasses.replace(item, visual_model="efficientnet_lite0/random")], LABELS)


def test_predictions_carry_explanations(trained: tuple[TrainResult, Path]) -> None:
    prediction = trained[0].predictor.predict(TEST[:1])[0]
    item = TEST[0]
    assert [t for t, _ in prediction.frame_attention] == item.frame_times.tolist()
    assert [e for e, _ in prediction.entity_attention] == item.entity_ids
    assert sum(w for _, w in prediction.frame_attention) == pytest.approx(1.0, abs=1e-5)
    assert len(prediction.embedding) == 32
    assert 0.0 <= prediction.popularity_pct <= 100.0
    ranked = prediction.ranked_diseases(0.0)
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)


def test_at_least_one_rule_follows_the_training_labels(trained: tuple[TrainResult, Path], tmp_path: Path) -> None:
    auto = small_config()
    labelled = [it for it in TRAIN if it.diseases]
    unlabelled = [dataclasses.replace(it, diseases=None) for it in TRAIN]
    assert any(it.diseases == [] for it in TRAIN)  # the planted set has videos labelled "about no disease"
    assert at_least_one_rule(auto, TRAIN) is False
    assert at_least_one_rule(auto, labelled + unlabelled[:5]) is True  # unlabelled videos say nothing either way
    assert at_least_one_rule(auto, unlabelled) is False
    assert at_least_one_rule(small_config(disease_at_least_one="on"), TRAIN) is True
    assert at_least_one_rule(small_config(disease_at_least_one="off"), labelled) is False
    assert not any(p.at_least_one for p in trained[0].predictor.predict(TEST))
    # Trained on videos that all have a label, every prediction names at least one disease, and so does the saved model.
    result = train(labelled[:48], VAL, small_config(epochs=2, min_epochs=0, head_refit_epochs=0), LABELS,
                   out_dir=tmp_path, progress=False, device="cpu")
    for predictor in (result.predictor, load_model(tmp_path, device="cpu")):
        predictions = predictor.predict(TEST)
        assert all(p.at_least_one and p.ranked_diseases(0.5) for p in predictions)
    assert "the most probable one is predicted anyway" in (tmp_path / "model_card.md").read_text()
    assert "may be predicted to be about none" in (trained[1] / "model_card.md").read_text()


def test_load_model_names_the_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=str(tmp_path / "nowhere")):
        load_model(tmp_path / "nowhere")


def test_a_model_trained_with_a_retired_option_is_refused_naming_it(trained: tuple[TrainResult, Path],
                                                                    tmp_path: Path) -> None:
    _, out_dir = trained
    for name, value in (("refit_attention", True), ("popularity_head", "linear"), ("disease_loss", "sum")):
        old_dir = tmp_path / name
        shutil.copytree(out_dir, old_dir)
        config = json.loads((old_dir / "config.json").read_text())
        (old_dir / "config.json").write_text(json.dumps({**config, name: value}))
        with pytest.raises(ModelNotFound, match=f"{name}={value!r}.*retrain"):
            load_model(old_dir, device="cpu")
    # Set to the behaviour still built in (as every model saved before the options were retired has them), it loads.
    (old_dir / "config.json").write_text(json.dumps({**config, "refit_attention": False, "distill": False}))
    assert load_model(old_dir, device="cpu").config == trained[0].config


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_runs_on_gpu_in_either_precision(precision: str) -> None:
    result = train(TRAIN[:48], VAL[:16], small_config(epochs=2), LABELS, progress=False, device="cuda",
                   precision=precision)
    assert result.predictor.device.type == "cuda" and result.predictor.precision == precision
    predictions = result.predictor.predict(TEST[:4])
    assert all(np.isfinite(p.embedding).all() for p in predictions)


def test_fusion_precision_is_a_setting_checked_where_the_model_runs(trained: tuple[TrainResult, Path]) -> None:
    from fusion.inference import check_precision

    assert Settings.from_env({}).fusion_precision == "fp32"
    assert Settings.from_env({"OVP_FUSION_PRECISION": "BF16"}).fusion_precision == "BF16"
    assert check_precision("BF16") == "bf16" and check_precision("") == "fp32"
    with pytest.raises(ConfigError, match="OVP_FUSION_PRECISION='fp8'"):
        check_precision("fp8")
    with pytest.raises(ConfigError, match="OVP_FUSION_PRECISION"):
        load_model(trained[1], device="cpu", precision="fp8")
    with pytest.raises(ConfigError, match="OVP_FUSION_PRECISION"):
        train(TRAIN[:8], [], small_config(epochs=1), LABELS, progress=False, device="cpu", precision="fp16")
    # On CPU the model always runs in float32: bf16 asks for autocast on CUDA only.
    loaded = load_model(trained[1], device="cpu", precision="bf16")
    assert loaded.precision == "bf16"
    assert [p.embedding for p in loaded.predict(TEST[:4])] == [p.embedding for p in trained[0].predictor.predict(TEST[:4])]


def test_selection_tasks_choose_the_checkpoint_on_their_metrics_alone() -> None:
    from fusion.metrics import task_score

    cfg = small_config(epochs=8, patience=8, min_epochs=8, score_window=1, head_refit_epochs=0,
                       selection_tasks=("quality",))
    result = train(TRAIN[:48], VAL[:16], cfg, LABELS, progress=False, device="cpu")
    quality = [task_score(h["val_metrics"], "quality") for h in result.history]
    assert [h["val_score"] for h in result.history] == pytest.approx(quality)
    assert result.best_epoch == int(np.argmax(quality)) + 1
    assert FusionConfig.from_dict(cfg.to_dict()).selection_tasks == ("quality",)
    with pytest.raises(ValueError, match="selection_tasks"):
        small_config(tasks=("disease", "quality"), selection_tasks=("popularity",))


def test_quality_skip_is_the_closed_form_ridge_on_mean_inputs_and_survives_saving(tmp_path: Path) -> None:
    cfg = small_config(epochs=4, min_epochs=0, head_refit_epochs=2, quality_skip=True, quality_skip_ridge=50.0,
                       quality_skip_caption_only=False, quality_skip_caption_alone=False)
    # Every token here; the caption-only and caption-alone forms have their own tests.
    result = train(TRAIN, VAL, cfg, LABELS, progress=False, device="cpu", out_dir=tmp_path)
    skip = result.predictor.model.quality_skip
    # The same ridge computed independently in numpy from the items' mean keyframe and mean token features.
    labelled = [it for it in TRAIN if it.quality is not None]
    x = np.stack([np.concatenate([it.frames.mean(axis=0), it.tokens.mean(axis=0)]) for it in labelled])
    y = np.array([it.quality for it in labelled], dtype=float)
    xs = (x - x.mean(axis=0)) / x.std(axis=0)
    w = np.linalg.solve(xs.T @ xs + 50.0 * np.eye(xs.shape[1]), xs.T @ (y - y.mean()))
    assert np.allclose(skip.weight.numpy(), w, atol=1e-4)
    # The ridge alone ranks held-out quality (the planted quality direction is linear in the means).
    test_x = np.stack([np.concatenate([it.frames.mean(axis=0), it.tokens.mean(axis=0)]) for it in TEST])
    pred = ((test_x - x.mean(axis=0)) / x.std(axis=0)) @ w
    truth = [(p, it.quality) for p, it in zip(pred, TEST) if it.quality is not None]
    assert np.corrcoef([p for p, _ in truth], [q for _, q in truth])[0, 1] > 0.5
    # The quality score is the head's plus the skip's: with the head's own score zeroed, only the skip is left.
    model = result.predictor.model
    with torch.no_grad():
        model.quality_head.score.weight.zero_()
        model.quality_head.score.bias.zero_()
    batch = collate(TEST[:8], cfg, LABELS)
    out = model(*batch.inputs())
    inputs = model.quality_skip_inputs(batch.frames, batch.frame_valid, batch.tokens, batch.token_valid)
    expected = skip(inputs)[:, None] - model.quality_head.thresholds()
    assert torch.allclose(out.quality_logits, expected, atol=1e-5)
    loaded = load_model(tmp_path, device="cpu")
    assert loaded.config.quality_skip and torch.equal(loaded.model.quality_skip.weight, skip.weight)
    assert [p.quality_probs for p in loaded.predict(TEST)] == [
        p.quality_probs for p in load_model(tmp_path, device="cpu").predict(TEST)
    ]
    # A switched-off modality is left out of the means: its half of the ridge has zero weight.
    no_visual = train(TRAIN, VAL, cfg.replace(use_visual=False, fusion="concat", head_refit_epochs=0, epochs=1),
                      LABELS, progress=False, device="cpu")
    assert torch.count_nonzero(no_visual.predictor.model.quality_skip.weight[:DV]) == 0
    legacy = {k: v for k, v in cfg.to_dict().items() if k != "quality_skip"}
    assert FusionConfig.from_dict(legacy).quality_skip is False  # saved before the option existed
    with pytest.raises(ValueError, match="quality_skip_ridge"):
        small_config(quality_skip=True, quality_skip_ridge=0.0)


def with_knowledge(it: VideoFeatures, n: int, shift: float = 0.0) -> VideoFeatures:
    """``it`` as the joint text: the caption's states (moved by ``shift``, as if they had attended to the knowledge),
    [SEP] and n tokens of appended knowledge far from the caption's states; the caption encoded on its own keeps
    ``it``'s states."""
    extra = np.full((n + 1, DT), 50.0, dtype=np.float32)
    return dataclasses.replace(it, tokens=np.concatenate([it.tokens + shift, extra]), caption_tokens=it.tokens,
                               token_text=it.token_text + ["[SEP]"] + [f"k{j}" for j in range(n)])


KNOWLEDGE_LENGTHS = (0, 1, 3, 5, 8, 13)


def test_the_quality_skip_can_read_the_caption_s_own_tokens_and_not_the_knowledge_after_them() -> None:
    items = [with_knowledge(it, n) for it, n in zip(TEST[:6], KNOWLEDGE_LENGTHS)]
    cfg = small_config(quality_skip=True, quality_skip_caption_only=True, quality_skip_caption_alone=False)
    batch = collate(items, cfg, LABELS)
    model = FusionModel(cfg)
    means = model.quality_skip_inputs(batch.frames, batch.frame_valid, batch.tokens, batch.token_valid,
                                      batch.caption_valid)[:, DV:]
    for row, it in zip(means.numpy(), items):  # the caption and the first [SEP], whatever follows
        assert np.allclose(row, it.tokens[: it.token_text.index("[SEP]") + 1].mean(axis=0), atol=1e-5)
    everything = FusionModel(cfg.replace(quality_skip_caption_only=False)).quality_skip_inputs(
        batch.frames, batch.frame_valid, batch.tokens, batch.token_valid, batch.caption_valid)[:, DV:]
    assert np.allclose(everything[-1].numpy(), items[-1].tokens.mean(axis=0), atol=1e-5)
    plain = collate(TEST[:4], cfg, LABELS)  # no [SEP]: every token is the caption's
    assert torch.equal(plain.caption_valid, plain.token_valid)
    result = train(items, items[:2], cfg.replace(epochs=1, head_refit_epochs=0), LABELS, progress=False, device="cpu")
    assert torch.count_nonzero(result.predictor.model.quality_skip.weight) > 0  # fitted through the same mask
    with pytest.raises(ValueError, match="quality_skip_caption_only=True"):
        model(*batch.inputs()[:8])
    legacy = {k: v for k, v in cfg.to_dict().items() if k != "quality_skip_caption_only"}
    assert FusionConfig.from_dict(legacy).quality_skip_caption_only is False


def test_the_quality_skip_can_read_the_caption_encoded_on_its_own_and_nothing_else_changes() -> None:
    items = [with_knowledge(it, n, shift=3.0) for it, n in zip(TEST[:6], KNOWLEDGE_LENGTHS)]
    cfg = small_config(quality_skip=True, quality_skip_caption_only=True, quality_skip_caption_alone=True)
    batch = collate(items, cfg, LABELS)
    model = FusionModel(cfg)
    means = model.quality_skip_inputs(batch.frames, batch.frame_valid, batch.tokens, batch.token_valid,
                                      batch.caption_valid, batch.caption_tokens, batch.caption_token_valid)[:, DV:]
    for row, it in zip(means.numpy(), items):
        assert np.allclose(row, it.caption_tokens.mean(axis=0), atol=1e-5)
        assert not np.allclose(row, it.tokens[: it.token_text.index("[SEP]") + 1].mean(axis=0), atol=1e-2)
    # Only the skip reads them: with the skip's ridge fixed, the other outputs do not move when they change.
    torch.manual_seed(0)
    model.eval()
    out = model(*batch.inputs())
    moved = collate([dataclasses.replace(it, caption_tokens=it.caption_tokens - 7.0) for it in items], cfg, LABELS)
    out2 = model(*moved.inputs())
    assert torch.equal(out.disease_logits, out2.disease_logits) and torch.equal(out.popularity, out2.popularity)
    result = train(items, items[:2], cfg.replace(epochs=1, head_refit_epochs=0), LABELS, progress=False, device="cpu")
    assert torch.count_nonzero(result.predictor.model.quality_skip.weight) > 0
    without = [dataclasses.replace(it, caption_tokens=None) for it in TEST[:2]]  # extracted without caption_states
    with pytest.raises(ValueError, match="caption_states"):
        collate(without, cfg, LABELS)
    # Only a model whose quality skip exists reads them, so only such a model needs them.
    for other in (cfg.replace(quality_skip=False), cfg.replace(tasks=("disease", "popularity")),
                  cfg.replace(quality_skip_caption_alone=False)):
        assert not other.reads_caption_alone and collate(without, other, LABELS).caption_tokens is None
    settings = Settings.from_env()  # the features a model trained with these options is given
    assert feature_settings_for(settings, {}).caption_states  # the default reads them
    assert not feature_settings_for(settings, {"quality_skip": False, "epochs": 3}).caption_states
    with pytest.raises(ValueError, match="quality_skip_caption_alone=True"):
        model(*batch.inputs()[:10])
    legacy = {k: v for k, v in cfg.to_dict().items() if k != "quality_skip_caption_alone"}
    assert FusionConfig.from_dict(legacy).quality_skip_caption_alone is False


def test_popularity_cascade_is_a_ridge_on_metadata_and_disease_labels_read_with_the_disease_heads_probabilities(
    tmp_path: Path,
) -> None:
    cfg = small_config(epochs=3, min_epochs=0, head_refit_epochs=2, popularity_cascade=True, popularity_cascade_ridge=5.0)
    fresh = FusionModel(cfg)
    assert torch.count_nonzero(fresh.popularity_head[-1].weight) == 0  # the head starts at zero: the cascade leads
    result = train(TRAIN, VAL, cfg, LABELS, progress=False, device="cpu", out_dir=tmp_path)
    model = result.predictor.model
    cascade = model.popularity_cascade
    # The same ridge in numpy: standardised engagement on [raw metadata, disease multi-hot] of the videos with both labels.
    both = [it for it in TRAIN if it.popularity is not None and it.diseases is not None]
    x = np.stack([np.concatenate([it.metadata, LABELS.encode(it.diseases)[0]]) for it in both]).astype(float)
    pops = np.array([it.popularity for it in TRAIN if it.popularity is not None])
    y = (np.array([it.popularity for it in both]) - pops.mean()) / pops.std()
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    xs = (x - x.mean(axis=0)) / std
    w = np.linalg.solve(xs.T @ xs + 5.0 * np.eye(xs.shape[1]), xs.T @ (y - y.mean()))
    assert np.allclose(cascade.weight.numpy(), w, atol=1e-4)
    assert float(model.pop_mean) == pytest.approx(pops.mean(), rel=1e-5)  # the standardisation it was fitted in
    # At prediction time it reads the disease head's probabilities: popularity = head + a·ridge([metadata, p̂]) + c.
    batch = collate(TEST[:8], cfg, LABELS)
    model.eval()
    with torch.no_grad():
        out = model(*batch.inputs())
        inputs = torch.cat([batch.metadata, torch.sigmoid(out.disease_logits)], dim=1)
    with torch.no_grad():
        last = model.popularity_head[-1]
        saved = last.weight.clone(), last.bias.clone()
        last.weight.zero_()
        last.bias.zero_()
        zeroed = model(*batch.inputs()).popularity
        last.weight.copy_(saved[0])
        last.bias.copy_(saved[1])
    assert torch.allclose(zeroed, cascade(inputs), atol=1e-5)
    # The popularity loss does not reach the disease head through the cascade.
    model.train()
    model.zero_grad()
    model(*batch.inputs()).popularity.sum().backward()
    assert model.disease_head.weight.grad is None or torch.count_nonzero(model.disease_head.weight.grad) == 0
    assert cascade.scale.grad is not None
    model.eval()
    # Saved and loaded with the model.
    loaded = load_model(tmp_path, device="cpu")
    assert loaded.config.popularity_cascade and torch.equal(loaded.model.popularity_cascade.weight, cascade.weight)
    assert [p.popularity for p in loaded.predict(TEST)] == [p.popularity for p in result.predictor.predict(TEST)]
    # A popularity-only model has no disease head to read: its cascade is the metadata part alone.
    alone = train(TRAIN, VAL, cfg.single_task("popularity").replace(epochs=1, head_refit_epochs=0), LABELS,
                  progress=False, device="cpu")
    assert alone.predictor.model.popularity_cascade.weight.shape == (cfg.d_meta,)
    legacy = {k: v for k, v in cfg.to_dict().items() if k not in ("popularity_cascade", "popularity_cascade_ridge")}
    assert FusionConfig.from_dict(legacy).popularity_cascade is False  # saved before the option existed
    with pytest.raises(ValueError, match="popularity_cascade_ridge"):
        small_config(popularity_cascade=True, popularity_cascade_ridge=0.0)
    with pytest.raises(ValueError, match="popularity_cascade=True needs use_metadata=True or the disease task"):
        small_config(popularity_cascade=True, use_metadata=False, tasks=("popularity",))


def smoothed_log_odds(k: int, n: int) -> float:
    """log-odds of (k + ½) / (n + 1): what MentionPrior.fit counts, computed independently of it."""
    rate = (k + 0.5) / (n + 1.0)
    return float(np.log(rate) - np.log1p(-rate))


def test_disease_mentions_add_a_learned_log_odds_to_each_label_the_linked_entities_name(tmp_path: Path) -> None:
    from fusion.ablation import variant_config
    batch = collate(TEST[:12], small_config(), LABELS)
    for row, it in zip(batch.mentions.numpy(), TEST[:12]):  # HP:0000001 is linked but is no label
        assert [LABELS.disease_ids[j] for j in np.flatnonzero(row)] == [d for d in LABELS.disease_ids if d in it.entity_ids]
    cfg = small_config(epochs=3, min_epochs=0, head_refit_epochs=2, disease_mentions=True)
    assert torch.count_nonzero(FusionModel(cfg).disease_head.weight) == 0  # the prior leads at first
    result = train(TRAIN, VAL, cfg, LABELS, progress=False, device="cpu", out_dir=tmp_path)
    model = result.predictor.model.eval()
    prior = model.mention_prior
    # Fitted: the smoothed log-odds of each label without (b) and with (b + a) a mention, counted independently.
    labelled = [it for it in TRAIN if it.diseases is not None]
    for j, d in enumerate(LABELS.disease_ids):
        named = [d in it.diseases for it in labelled if d in it.entity_ids]
        unnamed = [d in it.diseases for it in labelled if d not in it.entity_ids]
        assert float(prior.fitted_bias[j]) == pytest.approx(smoothed_log_odds(sum(unnamed), len(unnamed)), abs=1e-5)
        assert float(prior.fitted_bias[j] + prior.fitted_weight[j]) == pytest.approx(smoothed_log_odds(sum(named), len(named)), abs=1e-5)
    assert not torch.equal(prior.weight, prior.fitted_weight)  # then trained with the disease task
    weight, bias = prior.weight.detach().clone(), prior.bias.detach().clone()
    # The logit is the head's (and the frames' and the text's paths') plus b_j + a_j·m_j: with those zeroed only the prior is left.
    with torch.no_grad():
        model.disease_head.weight.zero_()
        model.disease_head.bias.zero_()
        model.disease_visual.zero_output()
        model.disease_context.zero_output()
        out = model(*batch.inputs())
    assert torch.allclose(out.disease_logits, batch.mentions * weight + bias, atol=1e-6)
    # Predictions carry the keyframes' path's share per label and the keyframe it leaned on, one of the video's.
    for prediction, it in zip(result.predictor.predict(TEST[:4]), TEST[:4]):
        assert set(prediction.disease_frame_logits) == set(prediction.disease_keyframes) == set(LABELS.disease_ids)
        assert all(t in list(it.frame_times) and 0 < w <= 1 for t, w in prediction.disease_keyframes.values())
    prior.reset_parameters()  # a new model starts from the fitted odds
    assert torch.equal(prior.weight, prior.fitted_weight)
    with pytest.raises(ValueError, match="disease_mentions=True"):
        model(*batch.inputs()[:7], caption_valid=batch.caption_valid, caption_tokens=batch.caption_tokens,
              caption_token_valid=batch.caption_token_valid)  # no mentions
    loaded = load_model(tmp_path, device="cpu")
    assert loaded.config.disease_mentions and torch.equal(loaded.model.mention_prior.fitted_bias, prior.fitted_bias)
    # The no-GNN ablation hides the GNN embeddings and keeps the linked ids the prior reads.
    (no_gnn,) = variant_config("no_gnn", cfg)
    assert not no_gnn.use_graph and no_gnn.disease_mentions
    legacy = {k: v for k, v in cfg.to_dict().items() if k != "disease_mentions"}
    assert FusionConfig.from_dict(legacy).disease_mentions is False  # saved before the option existed


def with_related(items: list[VideoFeatures], seed: int) -> list[VideoFeatures]:
    """``items`` whose unnamed true labels (and one wrong label) the graph relates to a described symptom about 70 %
    of the time, as a symptom-only caption's linked phenotypes would."""
    rng = np.random.default_rng(seed)
    out = []
    for it in items:
        related = [d for d in (it.diseases or []) if d not in it.entity_ids and rng.random() < 0.7]
        if related or rng.random() < 0.2:
            related.append(DISEASES[int(rng.integers(len(DISEASES)))])
        out.append(dataclasses.replace(it, related_ids=list(dict.fromkeys(related))))
    return out


def test_disease_related_adds_the_log_odds_of_labels_the_graph_links_to_a_described_symptom(tmp_path: Path) -> None:
    from fusion.ablation import variant_config
    train_items, val_items = with_related(TRAIN, 0), with_related(VAL, 1)
    batch = collate(train_items[:12], small_config(), LABELS)
    for row, it in zip(batch.related.numpy(), train_items[:12]):
        assert [LABELS.disease_ids[j] for j in np.flatnonzero(row)] == [d for d in LABELS.disease_ids if d in it.related_ids]
    cfg = small_config(epochs=3, min_epochs=0, head_refit_epochs=0, disease_mentions=True, disease_related=True)
    result = train(train_items, val_items, cfg, LABELS, progress=False, device="cpu", out_dir=tmp_path)
    model = result.predictor.model.eval()
    prior = model.mention_prior
    # Fitted: three cells per label, counted independently — named; related and not named; neither.
    labelled = [it for it in train_items if it.diseases is not None]
    for j, d in enumerate(LABELS.disease_ids):
        named = [d in it.diseases for it in labelled if d in it.entity_ids]
        related = [d in it.diseases for it in labelled if d not in it.entity_ids and d in it.related_ids]
        neither = [d in it.diseases for it in labelled if d not in it.entity_ids and d not in it.related_ids]
        b = float(prior.fitted_bias[j])
        assert b == pytest.approx(smoothed_log_odds(sum(neither), len(neither)), abs=1e-5)
        assert b + float(prior.fitted_weight[j]) == pytest.approx(smoothed_log_odds(sum(named), len(named)), abs=1e-5)
        assert b + float(prior.fitted_related_weight[j]) == pytest.approx(smoothed_log_odds(sum(related), len(related)), abs=1e-5)
    assert float(prior.fitted_related_weight.mean()) > 0  # the planted relation: a related label is more likely
    # The logit is the head's plus b + a·m + c·r·(1 − m): a named label gets a, never a + c.
    batch = collate(with_related(TEST, 2)[:16], cfg, LABELS)
    with torch.no_grad():
        model.disease_head.weight.zero_()
        model.disease_head.bias.zero_()
        model.disease_visual.zero_output()
        model.disease_context.zero_output()
        out = model(*batch.inputs())
    m, r = batch.mentions, batch.related
    expected = m * prior.weight + prior.bias + r * (1 - m) * prior.related_weight
    assert torch.allclose(out.disease_logits, expected, atol=1e-6)
    with pytest.raises(ValueError, match="disease_related=True"):
        model(*batch.inputs()[:9], caption_tokens=batch.caption_tokens,
              caption_token_valid=batch.caption_token_valid)  # no related labels
    loaded = load_model(tmp_path, device="cpu")
    assert loaded.config.disease_related
    assert torch.equal(loaded.model.mention_prior.fitted_related_weight, prior.fitted_related_weight)
    # The no-GNN ablation keeps the graph's related labels (they come from the enrichment, not the embeddings).
    (no_gnn,) = variant_config("no_gnn", cfg)
    assert no_gnn.disease_related
    legacy = {k: v for k, v in cfg.to_dict().items() if k != "disease_related"}
    assert FusionConfig.from_dict(legacy).disease_related is False  # saved before the option existed
    # Without the option the prior has no related weight and ignores the related labels.
    plain = FusionModel(cfg.replace(disease_related=False)).eval()
    assert not hasattr(plain.mention_prior, "related_weight")
