"""K-fold cross-fitting for the ablation: the folds, the pooled scores and the paired bootstrap (tiny SYNTHETIC set)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score, f1_score

from fusion import metrics as M
from fusion.ablation import _headline_value, paired_bootstrap, run_ablation
from fusion.splits import fold_splits, split_ids
from test_fusion_training import LABELS, TEST, TRAIN, VAL, one_thread, small_config  # noqa: F401 (autouse fixture)


IDS = [f"v{i:03d}" for i in range(53)]


def test_every_video_is_tested_exactly_once_and_validates_the_fold_before() -> None:
    splits = fold_splits(IDS, 3, 5)
    tests = [set(s.test) for s in splits]
    assert sorted(v for t in tests for v in t) == sorted(IDS)  # each id in exactly one test fold
    assert max(map(len, tests)) - min(map(len, tests)) <= 1
    for k, s in enumerate(splits):
        assert set(s.val) == tests[(k + 1) % 5]
        assert set(s.train) == set(IDS) - set(s.test) - set(s.val)
        assert s.fractions == (0.6, 0.2, 0.2)
    assert fold_splits(list(reversed(IDS)), 3, 5) == splits  # the order of the ids does not matter
    assert fold_splits(IDS, 4, 5) != splits


@pytest.mark.parametrize("ids, folds, message", [
    (IDS, 2, "at least 3 folds"),
    (IDS[:4], 5, "cannot fill 5 folds"),
    (IDS + IDS[:1], 5, "unique"),
])
def test_fold_splits_refuse_what_they_cannot_do(ids: list[str], folds: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fold_splits(ids, 0, folds)


def test_disease_headline_matches_the_evaluation_metric() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random((40, 6)) < 0.2).astype(int)
    truth[:, 5] = 0  # a label without a positive item is left out, as in the evaluation
    guess = rng.random((40, 6))
    guess[:, 2] = 0.1  # a label never predicted scores F1 0
    assert _headline_value("disease", truth, guess) == pytest.approx(M.disease_metrics(truth, guess)["macro_f1"])
    # The at-least-one rule changes the score, and the bootstrap's value follows the evaluation's.
    low = guess * 0.6  # most rows then have no label at 0.5
    ruled = _headline_value("disease", truth, low, True)
    assert ruled == pytest.approx(M.disease_metrics(truth, low, 0.5, True)["macro_f1"])
    assert ruled != pytest.approx(_headline_value("disease", truth, low))


@pytest.fixture(scope="module")
def cross_fitted():
    items = TRAIN + VAL + TEST
    # Without the mention prior: after 3 epochs on this tiny set both variants' disease predictions would still be the
    # prior's, the same thresholded labels, and the bootstrap below needs two variants that differ.
    cfg = small_config(epochs=3, min_epochs=0, head_refit_epochs=0, disease_mentions=False)
    return items, run_ablation(items, items, LABELS, split_ids([it.video_id for it in items], 0), cfg,
                               variants=["full", "no_visual"], seeds=[0], device="cpu", progress=False, folds=3)


def test_cross_fitted_scores_are_the_metrics_of_every_video_pooled(cross_fitted) -> None:
    items, report = cross_fitted
    assert report.folds == 3 and report.sizes["all"] == len(items)
    by_id = {it.video_id: it for it in items}
    for variant in report.variants:
        assert len(variant.best_epochs) == 3  # one model per fold
        (scored,) = variant.scored
        ids, truth, probs = scored["disease"]
        labelled = sorted(it.video_id for it in items if it.diseases is not None)
        assert sorted(ids) == labelled  # every labelled video once, from the fold that tested it
        scored_labels = truth.sum(axis=0) > 0
        expected = f1_score(truth[:, scored_labels], (probs >= 0.5)[:, scored_labels], average="macro", zero_division=0)
        assert variant.headline["disease_macro_f1"] == pytest.approx(expected)
        ids, truth, guess = scored["popularity"]
        assert np.allclose(truth, [by_id[v].popularity for v in ids])
        assert variant.headline["popularity_spearman"] == pytest.approx(spearmanr(truth, guess).statistic)
        ids, truth, guess = scored["quality"]
        assert variant.headline["quality_qwk"] == pytest.approx(
            cohen_kappa_score(truth.astype(int), guess.astype(int), labels=[1, 2, 3, 4, 5], weights="quadratic"))


def test_paired_bootstrap_brackets_the_observed_difference(cross_fitted) -> None:
    _, report = cross_fitted
    full, other = report.variants
    boot = paired_bootstrap(full, other, resamples=200)
    for name, d in boot.items():
        assert d["diff"] == pytest.approx(full.headline[name] - other.headline[name])
        assert d["lo"] <= d["hi"] and 0.0 <= d["p_full_ahead"] <= 1.0
        assert d["lo"] < d["hi"]  # resampling videos moves the difference
    same = paired_bootstrap(full, full, resamples=50)
    assert all(d["diff"] == 0 and d["lo"] == d["hi"] == 0 and d["p_full_ahead"] == 1.0 for d in same.values())
    assert paired_bootstrap(full, other, resamples=200) == boot  # seeded


def test_cross_fitted_report_renders_and_serialises(cross_fitted) -> None:
    _, report = cross_fitted
    text = report.table()
    assert "3-fold cross-fitting" in text and "paired bootstrap" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data["full_minus_variant_bootstrap"]) == {"no_visual"}
    assert "scored" not in data["variants"]["full"]


def test_cross_fitting_scores_test_folds_only() -> None:
    items = TRAIN[:30]
    with pytest.raises(ValueError, match="eval_split must be 'test'"):
        run_ablation(items, items, LABELS, split_ids([it.video_id for it in items], 0), small_config(),
                     variants=["full"], device="cpu", progress=False, eval_split="val", folds=3)


def test_reports_of_two_processes_merge_into_the_same_bootstrap(cross_fitted) -> None:
    from fusion.ablation import AblationReport

    _, report = cross_fitted
    data = json.loads(json.dumps(report.to_dict(predictions=True)))  # through JSON, as bench --merge reads it
    parts = [{**data, "variants": {name: v}} for name, v in reversed(list(data["variants"].items()))]
    merged = AblationReport.merged(parts)
    assert [v.name for v in merged.variants] == ["full", "no_visual"]  # the variants' order, not the parts'
    assert [v.headline for v in merged.variants] == [v.headline for v in report.variants]
    assert merged.bootstrap(resamples=100) == report.bootstrap(resamples=100)
    with pytest.raises(ValueError, match="differ in folds"):
        AblationReport.merged([parts[0], {**parts[1], "folds": 4}])
    with pytest.raises(ValueError, match="full appears with seed"):
        AblationReport.merged([parts[1], parts[1]])


def test_reports_that_split_the_seeds_merge_into_the_report_of_one_process(cross_fitted) -> None:
    """Processes that each ran some of the seeds (and some of the variants) merge into the very report one process
    running every seed makes: the same per-seed numbers, means, paired differences and bootstrap."""
    from fusion.ablation import AblationReport

    items, seed0 = cross_fitted
    cfg = small_config(epochs=3, min_epochs=0, head_refit_epochs=0, disease_mentions=False)
    split = split_ids([it.video_id for it in items], 0)
    both = run_ablation(items, items, LABELS, split, cfg, variants=["full", "no_visual"], seeds=[0, 1], device="cpu",
                        progress=False, folds=3)
    seed1 = run_ablation(items, items, LABELS, split, cfg, variants=["full", "no_visual"], seeds=[1], device="cpu",
                         progress=False, folds=3)
    parts = [json.loads(json.dumps(r.to_dict(predictions=True))) for r in (seed1, seed0)]
    parts = [{**part, "variants": {name: v}} for part in parts for name, v in part["variants"].items()]
    merged = AblationReport.merged(parts)
    assert merged.seeds == [0, 1]
    for got, want in zip(merged.variants, both.variants):
        assert (got.name, got.seeds, got.best_epochs) == (want.name, want.seeds, want.best_epochs)
        assert got.seed_headlines == want.seed_headlines
        assert got.headline == pytest.approx(want.headline)
    assert merged.paired() == both.paired()
    assert merged.bootstrap(resamples=100) == both.bootstrap(resamples=100)

    with pytest.raises(ValueError, match="no_visual lacks seed"):
        AblationReport.merged(parts[:3])
    with pytest.raises(ValueError, match="full appears with seed"):
        AblationReport.merged([parts[0], parts[0]])


def test_bench_merge_refuses_processes_run_with_different_options(cross_fitted, tmp_path) -> None:
    """``bench/fusion_demo.py --merge`` prints one table from two processes' JSON only when both were run alike: a
    part trained under another ``--set`` (or epochs, manifest, encoders) is refused with the keys that differ."""
    import sys

    from click.testing import CliRunner

    from ovp.settings import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT))
    from bench.fusion_demo import main

    _, report = cross_fitted
    data = json.loads(json.dumps(report.to_dict(predictions=True)))
    alike = {"model": {"width": 16, "epochs": 4, "overrides": {}}, "manifest": "m.jsonl", "videos": 53,
             "encoders": {"visual_backbone": "resnet18"}}
    paths = []
    for k, (name, v) in enumerate(data["variants"].items()):
        paths.append(tmp_path / f"part{k}.json")
        paths[-1].write_text(json.dumps({**data, **alike, "variants": {name: v}}))
    runner = CliRunner()
    merged = runner.invoke(main, [arg for p in paths for arg in ("--merge", str(p))])
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.stdout)["model"] == alike["model"]

    other = json.loads(paths[1].read_text())
    other["model"] = {**alike["model"], "overrides": {"modality_dropout": 0.3}}
    other["manifest"] = "other.jsonl"
    paths[1].write_text(json.dumps(other))
    refused = runner.invoke(main, [arg for p in paths for arg in ("--merge", str(p))])
    assert refused.exit_code != 0
    assert "differ in model, manifest" in refused.output


def _variant(name: str, per_seed: list[tuple[float, float, float]]) -> "VariantResult":
    from fusion.ablation import HEADLINE, VariantResult

    keys = [f"{task}_{key}" for task, key in HEADLINE]
    rows = [dict(zip(keys, values)) for values in per_seed]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return VariantResult(name=name, description=name, metrics={}, headline=mean, train_s=0.0, eval_s=0.0,
                         best_epochs=[], seeds=list(range(len(rows))), seed_headlines=rows)


def test_verdicts_read_each_difference_against_the_seeds_noise() -> None:
    """A gap is a win or a loss only beyond two standard errors of its seed mean: a consistent 0.02 lead is a win, a
    0.02 deficit a loss, a mean of −0.001 that swings by 0.03 between seeds is within noise (and still counts against
    the plain at-least-as-good tally)."""
    from fusion.ablation import AblationReport

    full = _variant("full", [(0.80, 0.30, 0.70), (0.81, 0.31, 0.68), (0.82, 0.29, 0.72), (0.80, 0.30, 0.66)])
    other = _variant("no_gnn", [(0.78, 0.32, 0.70), (0.79, 0.33, 0.65), (0.80, 0.31, 0.74), (0.78, 0.32, 0.674)])
    report = AblationReport(seed=0, seeds=[0, 1, 2, 3], synthetic=True, sizes={}, variants=[full, other])
    read = report.verdicts()
    verdicts = {metric: c["verdict"] for metric, c in read["comparisons"]["no_gnn"].items()}
    assert verdicts == {"disease_macro_f1": "win", "popularity_spearman": "loss", "quality_qwk": "within noise"}
    assert read["comparisons"]["no_gnn"]["quality_qwk"]["mean"] == pytest.approx(-0.001)
    assert (read["at_least_as_good"], read["clear_wins"], read["clear_losses"], read["within_noise"]) == (1, 1, 1, 1)
    assert "clear loss: no_gnn popularity_spearman -0.020" in report.table()
    # The target's reading comes first, in the table and in the JSON.
    assert report.non_inferiority()["met"] is False
    assert report.table().splitlines()[0] == (
        "SYNTHETIC data — target: the full model is never clearly worse than an ablation (by more than 2 standard "
        "errors of the seed mean) — NOT MET: 1 clear loss(es) in 3 comparisons: no_gnn popularity_spearman -0.020 "
        "(se 0.000)")
    assert next(iter(report.to_dict())) == "non_inferiority"
    assert report.to_dict()["non_inferiority"]["reading"] == report.table().splitlines()[0]
    better = AblationReport(seed=0, seeds=[0, 1, 2, 3], synthetic=False, sizes={}, variants=[full, _variant(
        "no_gnn", [(0.78, 0.29, 0.70), (0.79, 0.30, 0.65), (0.80, 0.28, 0.74), (0.78, 0.29, 0.674)])])
    assert better.non_inferiority() == {"met": True, "margin_se": 2.0, "comparisons": 3, "clear_losses": []}
    assert better.table().startswith("target: the full model is never clearly worse") and "— MET" in better.table()

    one_seed = AblationReport(seed=0, seeds=[0], synthetic=True, sizes={},
                              variants=[_variant("full", [(0.8, 0.3, 0.7)]), _variant("no_gnn", [(0.7, 0.2, 0.6)])])
    assert one_seed.verdicts() == {}  # no spread to read a gap against
    assert one_seed.non_inferiority()["met"] is None and "not judged" in one_seed.table().splitlines()[0]


def test_bench_merge_takes_one_manifest_however_its_path_was_spelled(cross_fitted, tmp_path) -> None:
    """Two processes that read the same manifest, one given a relative and one an absolute path, merge; a part made on
    a manifest with other contents at the same path is refused."""
    import sys

    from click.testing import CliRunner

    from ovp.settings import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT))
    from bench.fusion_demo import main

    _, report = cross_fitted
    data = json.loads(json.dumps(report.to_dict(predictions=True)))
    alike = {"model": {"width": 16}, "videos": 53, "encoders": {"visual_backbone": "resnet18"}}
    spelled = [("demo/manifest.jsonl", "ab" * 32), ("/work/demo/manifest.jsonl", "ab" * 32)]
    paths = []
    for k, ((name, v), (manifest, digest)) in enumerate(zip(data["variants"].items(), spelled)):
        paths.append(tmp_path / f"part{k}.json")
        paths[-1].write_text(json.dumps({**data, **alike, "manifest": manifest, "manifest_sha256": digest,
                                         "variants": {name: v}}))
    runner = CliRunner()
    merged = runner.invoke(main, [arg for p in paths for arg in ("--merge", str(p))])
    assert merged.exit_code == 0, merged.output
    # One training seed: no spread between seeds, so the noise reading is left undecided rather than passed.
    assert json.loads(merged.stdout)["targets"]["full_never_clearly_worse_than_an_ablation"] is None

    other = json.loads(paths[1].read_text())
    other["manifest"], other["manifest_sha256"] = spelled[0][0], "cd" * 32
    paths[1].write_text(json.dumps(other))
    refused = runner.invoke(main, [arg for p in paths for arg in ("--merge", str(p))])
    assert refused.exit_code != 0
    assert "differ in manifest" in refused.output
