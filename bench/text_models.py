"""Which text model encodes which language: the measurement behind ``DEFAULT_TEXT_MODEL`` (JSON on stdout).

Run (after ``ovp models fetch``; no services needed): ``python bench/text_models.py [--split dev]``

On the DEV half of the gold captions (``tests/data/captions_gold.jsonl``, split as in ``bench/linking.py``), each
captioned video's sentence vector ranks every other caption, and a caption is relevant when the two share a gold
entity (the labels were written for linking, long before this measurement). Reported per query and target language
(``zh`` → ``zh``, ``en`` → ``en``, across, and ``mixed`` captions against all): mean average precision, and the MAP a
random ranking would get (the share of relevant captions) for scale. Also each tokenizer's ``[UNK]`` rate per
language: a piece the model cannot see at all.

Models: the fusion's candidates (bge-small-zh-v1.5, all-MiniLM-L6-v2; their own sentence pooling) and, for
reference, the multilingual Universal Sentence Encoder (sentence vectors only: no token states for the fusion).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

from bench.linking import read_gold, split_of
from encoders.sentence_vectors import SentenceVectorEncoder
from encoders.text import KNOWN_MODELS, TextEncoder, TextEncoderConfig
from ovp.settings import Settings


def mean_average_precision(vectors: np.ndarray, labels: Sequence[set[str]], queries: Sequence[int],
                           targets: Sequence[int]) -> tuple[float, float, int]:
    """(MAP over ``queries`` that have a relevant target, the random-ranking MAP, the number of such queries)."""
    sims = vectors @ vectors.T
    aps, chance = [], []
    for q in queries:
        pool = [t for t in targets if t != q]
        relevant = np.array([bool(labels[q] & labels[t]) for t in pool])
        if not relevant.any():
            continue
        order = np.argsort(-sims[q, pool], kind="stable")
        hits = relevant[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
        chance.append(float(relevant.mean()))
    return (float(np.mean(aps)) if aps else float("nan")), (float(np.mean(chance)) if chance else float("nan")), len(aps)


def unknown_rate(encoder: TextEncoder, texts: Sequence[str]) -> float:
    """Share of word pieces (special tokens aside) that are ``[UNK]``."""
    tokens = [t for row in encoder.encode(list(texts)).tokens for t in row[1:-1]]
    return sum(t == "[UNK]" for t in tokens) / max(1, len(tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev",
                        help="which half of the gold captions (default dev)")
    args = parser.parse_args()
    settings = Settings.from_env()
    captions = [c for c in read_gold() if c.gold and (args.split == "all" or split_of(c.id) == args.split)]
    texts = [c.text for c in captions]
    labels = [set(c.gold) for c in captions]
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(captions):
        by_lang[c.lang].append(i)
    everyone = list(range(len(captions)))
    pairs = {"zh->zh": ("zh", "zh"), "en->en": ("en", "en"), "zh->en": ("zh", "en"), "en->zh": ("en", "zh"),
             "mixed->all": ("mixed", None), "all->all": (None, None)}

    encoders: dict[str, Callable[[list[str]], np.ndarray]] = {}
    text_encoders: dict[str, TextEncoder] = {}
    for name in KNOWN_MODELS:
        encoder = TextEncoder(TextEncoderConfig.from_settings(settings, model=name, device="cpu")).load()
        text_encoders[name] = encoder
        encoders[name] = lambda batch, e=encoder: e.encode(batch).pooled
    use = SentenceVectorEncoder()
    encoders["multilingual-USE-v3 (reference)"] = use.encode

    report: dict[str, object] = {
        "data": f"tests/data/captions_gold.jsonl, {args.split} half, captions with a gold entity",
        "captions": {lang: len(ids) for lang, ids in sorted(by_lang.items())},
        "relevant": "another caption sharing a gold entity",
        "models": {},
    }
    for name, encode in encoders.items():
        encode(texts[:8])  # warm-up: the first call pays for lazy loading and thread pools
        started = time.perf_counter()
        vectors = np.asarray(encode(texts), dtype=np.float32)
        seconds = time.perf_counter() - started
        scores = {}
        for key, (q_lang, t_lang) in pairs.items():
            queries = by_lang[q_lang] if q_lang else everyone
            targets = by_lang[t_lang] if t_lang else everyone
            value, chance, n = mean_average_precision(vectors, labels, queries, targets)
            scores[key] = {"map": round(value, 3), "random_map": round(chance, 3), "queries": n}
        entry: dict[str, object] = {"map": scores, "dim": int(vectors.shape[1]),
                                    "captions_per_s": round(len(texts) / seconds, 1)}
        if name in text_encoders:
            entry["unk_rate"] = {lang: round(unknown_rate(text_encoders[name], [texts[i] for i in ids]), 4)
                                 for lang, ids in sorted(by_lang.items())}
            entry["pooling"] = text_encoders[name].pooling
        report["models"][name] = entry  # type: ignore[index]
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
