"""`ovp train` and `ovp evaluate --json` end to end through click's CliRunner on a tiny SYNTHETIC demo set and the
real graph (ResNet-18 with random weights, K = 4, two epochs: this pins the files and keys, not the learning, which
tests/test_fusion_training.py pins)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fusion.ablation import VARIANTS, AblationReport, VariantResult, variant_config
from fusion.config import FusionConfig
from fusion.demo_data import generate_demo_set
from cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo_set(out, videos=12, seed=5, corrupt=1)
    return out / "manifest.jsonl"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {"OVP_HOME": str(tmp_path_factory.mktemp("home")), "OVP_KEYFRAMES": "4", "OVP_DEVICE": "cpu", "OVP_LOG_LEVEL": "WARNING"}


def test_train_then_evaluate_json(graph, built_kg, demo: Path, env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    model = tmp_path / "model"
    result = runner.invoke(main, ["train", str(demo), "--out", str(model), "--seed", "1", "--epochs", "2"], env=env)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.stdout and "1 videos failed" in result.stdout
    for name in ("model.pt", "config.json", "label_map.json", "metrics.json", "model_card.md", "learning_curves.png",
                 "split.json", "features.json", "failures.json"):
        assert (model / name).is_file(), name
    split = json.loads((model / "split.json").read_text())
    assert split["seed"] == 1 and len(split["train"]) + len(split["val"]) + len(split["test"]) == 12
    assert json.loads((model / "failures.json").read_text())[0]["video_id"].startswith("synthetic_corrupt")

    result = runner.invoke(main, ["evaluate", str(demo), "--model", str(model), "--json", "--split", "all"], env=env)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["synthetic"] is True and metrics["n_videos"] == 12 and metrics["split"] == "all"
    assert set(metrics["headline"]) == {"disease_macro_f1", "popularity_spearman", "quality_qwk"}
    assert {"disease", "popularity", "quality", "score"} <= set(metrics)
    out_dir = Path(metrics["metrics_file"]).parent
    assert (out_dir / "metrics.json").is_file() and (out_dir / "quality_confusion.png").is_file()

    missing = runner.invoke(main, ["evaluate", str(demo), "--model", str(tmp_path), "--json"], env=env)
    assert missing.exit_code == 1 and "ovp train" in missing.output  # ModelNotFound says what to do, in one line


def test_ablate_cross_fitted_json(graph, built_kg, demo: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    args = ["ablate", str(demo), "--epochs", "1", "--variant", "full", "--variant", "no_visual", "--json"]
    result = runner.invoke(main, args + ["--folds", "3"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["synthetic"] is True and data["folds"] == 3 and data["sizes"]["all"] == 12  # the corrupt video is out
    assert all(len(v["best_epochs"]) == 3 for v in data["variants"].values())  # one model per fold
    assert set(data["full_minus_variant_bootstrap"]["no_visual"]) == {"disease_macro_f1", "popularity_spearman",
                                                                     "quality_qwk"}
    refused = runner.invoke(main, args + ["--folds", "2"], env=env)
    assert refused.exit_code == 2 and "--folds" in refused.output


def test_ablation_variants_and_table() -> None:
    base = FusionConfig(d_visual=8, d_text=8, d_graph=8, n_diseases=3)
    assert variant_config("no_visual", base)[0].fusion == "concat" and not variant_config("no_visual", base)[0].use_visual
    assert [c.tasks for c in variant_config("single_task", base)] == [("disease",), ("popularity",), ("quality",)]
    picky = base.replace(selection_tasks=("disease", "quality"))
    assert [c.selection_tasks for c in variant_config("single_task", picky)] == [None, None, None]
    assert variant_config("no_text", picky)[0].selection_tasks == ("disease", "quality")
    with pytest.raises(ValueError):
        variant_config("bogus", base)
    report = AblationReport(seed=0, seeds=[0], synthetic=True, sizes={"train": 7, "val": 2, "test": 3})
    for name, value in (("full", 0.6), ("no_text", 0.4), ("concat", None)):
        h = {"disease_macro_f1": value, "popularity_spearman": 0.1, "quality_qwk": 0.2}
        report.variants.append(VariantResult(name, VARIANTS[name], {}, h, 1.0, 0.1, [1], [0]))
    table = report.table()
    assert table.startswith("SYNTHETIC") and "n/a" in table and "no_text" in table
    assert report.full_wins() == {"disease_macro_f1": True, "popularity_spearman": True, "quality_qwk": True}
    assert report.to_dict()["synthetic"] is True


def test_ablation_report_gives_mean_and_spread_over_seeds() -> None:
    report = AblationReport(seed=0, seeds=[0, 1], synthetic=True, sizes={"train": 7, "val": 2, "test": 3})
    for name, runs in (("full", (0.5, 0.7)), ("no_gnn", (0.62, 0.62))):
        per_seed = [{"disease_macro_f1": f1, "popularity_spearman": 0.1, "quality_qwk": None} for f1 in runs]
        mean = {"disease_macro_f1": sum(runs) / 2, "popularity_spearman": 0.1, "quality_qwk": None}
        report.variants.append(VariantResult(name, VARIANTS[name], {}, mean, 2.0, 0.2, [1, 1], [0, 1], per_seed))
    full = report.variants[0]
    assert full.spread()["disease_macro_f1"] == pytest.approx(0.1414, abs=1e-4)
    assert full.spread()["quality_qwk"] is None and report.variants[1].spread()["disease_macro_f1"] == 0.0
    assert "0.600±0.141" in report.table() and "mean ± sd over seeds" in report.table()
    # The decision is on the means (0.60 < 0.62), however wide the spread.
    assert report.full_wins()["disease_macro_f1"] is False
    # Seed by seed the same split: full − no_gnn is −0.12 then +0.08.
    paired = report.paired()["no_gnn"]
    assert paired["disease_macro_f1"]["mean"] == pytest.approx(-0.02)
    assert paired["disease_macro_f1"]["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert paired["disease_macro_f1"]["full_ahead"] == 1 and paired["disease_macro_f1"]["seeds"] == 2
    assert paired["quality_qwk"] == {"mean": None, "sd": None, "full_ahead": 0, "seeds": 0}
    assert "-0.020±0.141 (1/2)" in report.table()
    assert report.to_dict()["variants"]["full"]["spread"]["disease_macro_f1"] == pytest.approx(0.1414, abs=1e-4)


def test_validation_only_report_names_its_split_and_bad_split_is_rejected() -> None:
    from fusion.ablation import run_ablation
    from fusion.records import LabelMap
    from fusion.splits import split_ids

    report = AblationReport(seed=0, seeds=[0], synthetic=True, sizes={"train": 7, "val": 2, "test": 3}, eval_split="val")
    assert "ablation on the val split (2 videos" in report.table() and report.to_dict()["eval_split"] == "val"
    base = FusionConfig(d_visual=8, d_text=8, d_graph=8, n_diseases=3)
    with pytest.raises(ValueError, match="eval_split"):
        run_ablation([], [], LabelMap(("a", "b", "c")), split_ids([], 0), base, eval_split="train")


def test_split_per_seed_gives_each_seed_its_own_split_shared_by_every_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    # Which videos each (variant, seed) trains and is scored on; the models themselves are not the point here.
    import types

    import numpy as np

    import fusion.ablation as ablation
    from fusion.records import LabelMap, VideoFeatures, metadata_vector

    items = [
        VideoFeatures(video_id=f"v{i:03d}", frames=np.zeros((1, 8)), frame_times=np.zeros(1), tokens=np.zeros((1, 8)),
                      token_text=["t"], entities=np.zeros((1, 8)), entity_ids=["HP:1"], diseases=["a"],
                      metadata=metadata_vector(duration_s=1, platform="other", published_hour=0, author_followers=1))
        for i in range(60)
    ]
    seen: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []

    def fake_predict(eval_items):
        seed, train_ids, _ = seen[-1]
        seen[-1] = (seed, train_ids, tuple(it.video_id for it in eval_items))
        return [types.SimpleNamespace(disease_probs={}, popularity=None, quality=None) for _ in eval_items]

    def fake_train(train_items, val_items, config, label_map, **_):
        seen.append((config.seed, tuple(it.video_id for it in train_items), ()))
        return types.SimpleNamespace(predictor=types.SimpleNamespace(predict=fake_predict), best_epoch=1, refit={})

    def fake_score(eval_items, predictions, label_map):
        return {"disease": {"macro_f1": 0.5}, "popularity": {"spearman": 0.1}, "quality": {"qwk": 0.2}}

    monkeypatch.setattr(ablation, "train", fake_train)
    monkeypatch.setattr(ablation, "score_predictions", fake_score)
    base = FusionConfig(d_visual=8, d_text=8, d_graph=8, n_diseases=1)
    ids = [it.video_id for it in items]
    for per_seed in (False, True):
        seen.clear()
        report = ablation.run_ablation(items, items, LabelMap(("a",)), ablation.split_ids(ids, 0), base,
                                       variants=("full", "concat"), seeds=[0, 1], split_per_seed=per_seed)
        assert report.split_per_seed is per_seed and ("each seed its own split" in report.table()) is per_seed
        by_seed = {seed: {(tr, te) for s, tr, te in seen if s == seed} for seed in (0, 1)}
        assert all(len(v) == 1 for v in by_seed.values())  # both variants of a seed saw the same split
        for seed in (0, 1):
            want = ablation.split_ids(ids, seed if per_seed else 0)
            assert by_seed[seed] == {(want.train, want.test)}
