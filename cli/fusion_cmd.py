"""`ovp demo-data`, `ovp train`, `ovp evaluate`, `ovp ablate`: thin shells over the fusion package."""
from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("demo-data")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--videos", "-n", type=click.IntRange(min=0), default=200, show_default=True, help="Decodable videos to make.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed → same manifest and video files.")
@click.option("--corrupt", type=click.IntRange(min=0), default=0, show_default=True,
              help="Extra entries whose files do not decode (truncated MP4 / text renamed .mp4), for failure tests.")
@click.option("--size", type=click.Choice(["160", "224"]), default="160", show_default=True, help="Frame width and height.")
@click.option("--lexicon", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Lexicon JSONL to label with [default: kg_builder/data/lexicon.jsonl].")
def demo_data(out: Path, videos: int, seed: int, corrupt: int, size: str, lexicon: Path | None) -> None:
    """Synthesise a SYNTHETIC labelled demo set in OUT: manifest.jsonl, videos/synthetic_*.mp4, README.txt.

    Diseases come from the lexicon's profile labels; the latent model behind the labels is in docs/demo-data.md.
    """
    from tqdm import tqdm

    from fusion.demo_data import generate_demo_set

    if videos + corrupt == 0:
        raise click.BadParameter("nothing to make: give --videos or --corrupt above 0", param_hint="--videos")
    with tqdm(total=videos + corrupt, unit="video", desc="demo-data", disable=not sys.stderr.isatty()) as bar:
        summary = generate_demo_set(out, videos=videos, seed=seed, corrupt=corrupt, size=int(size),
                                    lexicon_path=lexicon, on_video=bar.update)
    click.echo(summary.line())


def _progress() -> bool:
    return sys.stderr.isatty()


PATIENCE = click.option(
    "--patience", type=click.IntRange(min=1), default=None,
    help="Epochs without a better (3-epoch averaged) validation score before stopping; never before epoch 20 "
         "[default: 8].",
)


def _stopping(patience: int | None) -> dict[str, int]:
    # Only what was given, so FusionConfig's defaults stay the one source of the defaults.
    return {"patience": patience} if patience is not None else {}


@click.command("train")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model directory to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Split and training seed: same seed → same model.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Most epochs (early stopping on val) [default: 40].")
@PATIENCE
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N [default: OVP_DEVICE].")
@click.pass_obj
def train(settings, manifest: Path, out: Path, seed: int, epochs: int | None, patience: int | None,
          device: str | None) -> None:
    """Train the fusion model on MANIFEST (split 70/15/15 by id hash and --seed) and save it to --out."""
    from fusion.training import train_on_manifest

    outcome = train_on_manifest(manifest, out, settings, seed=seed, epochs=epochs, device=device,
                                progress=_progress(), **_stopping(patience))
    result = outcome.result
    label = "SYNTHETIC data — " if result.synthetic else ""
    click.echo(
        f"{label}model {result.predictor.model_version} → {outcome.model_dir}: {result.n_train} train / {result.n_val} val "
        f"/ {len(outcome.split.test)} test videos, best epoch {result.best_epoch} of {len(result.history)}, "
        f"val score {result.val_metrics.get('score', float('nan')):.3f}, {len(outcome.features.failures)} videos failed "
        f"({outcome.features.seconds:.0f} s features, {outcome.train_s:.0f} s training)"
    )
    for task, why in result.untrained.items():
        click.echo(f"not trained: the {task} head ({why}); the model does not predict {task}")
    if result.weak_diseases:
        click.echo(f"WEAK disease labels on {result.weak_diseases} videos (proposed from their linked text; model card)")


@click.command("evaluate")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["test", "all"]), default="test", show_default=True,
              help="test: the videos the training split held out; all: every readable video of MANIFEST.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where metrics.json and the plots go [default: MODEL/evaluation/SPLIT].")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N [default: OVP_DEVICE].")
@click.pass_obj
def evaluate(settings, manifest: Path, model_dir: Path, split: str, out: Path | None, as_json: bool, device: str | None) -> None:
    """Evaluate the model in --model on MANIFEST; metrics.json and PNG plots are written beside each other."""
    import json

    from fusion.evaluation import evaluate_on_manifest

    metrics = evaluate_on_manifest(manifest, model_dir, settings, split=split, out_dir=out, device=device,
                                   progress=_progress())
    if as_json:
        click.echo(json.dumps(metrics, ensure_ascii=False, indent=2))
        return
    h = metrics["headline"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    click.echo(
        f"{'SYNTHETIC data — ' if metrics['synthetic'] else ''}{split} split, {metrics['n_videos']} videos: "
        f"disease macro-F1 {fmt(h['disease_macro_f1'])}, popularity Spearman {fmt(h['popularity_spearman'])}, "
        f"quality QWK {fmt(h['quality_qwk'])} → {metrics['metrics_file']}"
    )


@click.command("ablate")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Split seed (and training seed unless --seeds).")
@click.option("--seeds", default=None, help="Comma-separated training seeds to average each variant over, e.g. 0,1,2.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Most epochs per model [default: 40].")
@PATIENCE
@click.option("--variant", "variants", multiple=True, help="Only these variants (repeatable) [default: all].")
@click.option("--split-per-seed", is_flag=True,
              help="Each training seed draws its own train/val/test split, so the means average over several test sets.")
@click.option("--folds", type=click.IntRange(min=3), default=None,
              help="K-fold cross-fitting: K models per variant and seed, each tested on its own fold, metrics over all "
                   "videos pooled, with a paired bootstrap of full − variant (K times the training).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of the table.")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N [default: OVP_DEVICE].")
@click.pass_obj
def ablate(settings, manifest: Path, seed: int, seeds: str | None, epochs: int | None, patience: int | None,
           variants: tuple[str, ...], split_per_seed: bool, folds: int | None, as_json: bool,
           device: str | None) -> None:
    """Train the full model and each ablation on one split of MANIFEST (one per seed with --split-per-seed, K per
    seed with --folds) and print one table of test metrics, led by the target's reading: the full model never
    clearly worse than an ablation (needs two or more --seeds)."""
    import json

    from fusion.ablation import VARIANTS, ablate_on_manifest

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}; choose from {', '.join(VARIANTS)}", param_hint="--variant")
    try:
        seed_list = [int(s) for s in seeds.split(",")] if seeds else None
    except ValueError:
        raise click.BadParameter(f"{seeds!r} is not a comma-separated list of integers", param_hint="--seeds") from None
    show = _progress()
    report, feats = ablate_on_manifest(
        manifest, settings, seed=seed, seeds=seed_list, epochs=epochs, variants=variants or tuple(VARIANTS),
        device=device, progress=show, split_per_seed=split_per_seed, folds=folds, **_stopping(patience),
        on_variant=(lambda v: click.echo(f"{v.name}: {v.headline} ({v.train_s:.0f} s)", err=True)) if show else None,
    )
    if as_json:
        data = report.to_dict()
        data["features"] = {"seconds": round(feats.seconds, 1), "failed": len(feats.failures), "stages": feats.timings}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(report.table())
