"""Benchmark: the ablation study on the SYNTHETIC 600-video demo set; prints JSON.

Claim measured: the full model (cross-modal attention over keyframes, knowledge-enriched text and GNN entity
embeddings, three joint heads) is at least as good as every ablation on each task's headline metric (disease macro-F1,
popularity Spearman, quality QWK) on the held-out test split, and training + evaluation of all variants take under
20 minutes on the development CPU.

    python bench/fusion_demo.py [--videos 600] [--seed 0] [--seeds 0,1,2] [--epochs N] [--patience N] [--out DIR]

Makes the demo set with ``ovp demo-data``'s library function when it is missing. Features go through the feature
cache (``<OVP_HOME>/cache/features``), so a second run measures training and evaluation only; ``features_s`` says
which it was. Encoders follow the ``OVP_*`` settings (ResNet-50, K = 8 unless set). Every number is on SYNTHETIC data.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

from ovp.settings import PROJECT_ROOT, Settings

log = logging.getLogger("bench.fusion_demo")


@click.command()
@click.option("--videos", type=int, default=600, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Demo-set, split and (default) training seed.")
@click.option("--seeds", default=None, help="Training seeds averaged per variant, e.g. 0,1,2 [default: --seed].")
@click.option("--epochs", type=int, default=None, help="Most epochs per model [default: FusionConfig's].")
@click.option("--patience", type=int, default=None,
              help="Early-stopping patience [default: FusionConfig's]. The disease head crosses its 0.5 threshold only "
                   "after ~10 epochs on this set, so a short patience stops before it has learnt anything.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Demo set folder [default: .ovp/bench/demo<videos>].")
def main(videos: int, seed: int, seeds: str | None, epochs: int | None, patience: int | None, out: Path | None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    from fusion.ablation import ablate_manifest
    from fusion.demo_data import generate_demo_set

    settings = Settings.from_env()
    out = out or PROJECT_ROOT / ".ovp" / "bench" / f"demo{videos}"
    manifest = out / "manifest.jsonl"
    generate_s = 0.0
    if not manifest.is_file():
        started = time.perf_counter()
        summary = generate_demo_set(out, videos=videos, seed=seed)
        generate_s = time.perf_counter() - started
        log.info("%s", summary.line())
    started = time.perf_counter()
    report, feats = ablate_manifest(
        manifest, settings, seed=seed, seeds=[int(s) for s in seeds.split(",")] if seeds else None, epochs=epochs,
        progress=sys.stderr.isatty(), **({"patience": patience} if patience else {}),
        on_variant=lambda v: log.info("%s: %s (train %.0f s, eval %.1f s)", v.name, v.headline, v.train_s, v.eval_s),
    )
    total_s = time.perf_counter() - started
    print(report.table(), file=sys.stderr)
    train_s = sum(v.train_s for v in report.variants)
    eval_s = sum(v.eval_s for v in report.variants)
    result = {
        "benchmark": "fusion ablation on the demo set",
        **report.to_dict(),
        "manifest": str(manifest),
        "videos": videos,
        "encoders": {"resnet_arch": settings.resnet_arch, "keyframes": settings.keyframes,
                     "gnn_entities_with_embedding": sum(len(it.entity_ids) for it in feats.items)},
        "seconds": {
            "generate_demo_set": round(generate_s, 1),
            "features": round(feats.seconds, 1),
            "feature_stages": feats.timings,
            "training": round(train_s, 1),
            "evaluation": round(eval_s, 1),
            "training_plus_evaluation": round(train_s + eval_s, 1),
            "total": round(total_s + generate_s, 1),
        },
        "targets": {"training_plus_evaluation_under_s": 1200, "met": train_s + eval_s < 1200,
                    "full_at_least_every_ablation": all(v is not False for v in report.full_wins().values())},
        "failed_videos": len(feats.failures),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
