"""Bench: caption entity linking on the real knowledge graph. Prints one JSON object.

Run (Neo4j up, graph built): ``python bench/linking.py [--repeats 5] [--errors [--split dev]] [--gold-only]``

DEV / TEST split of the gold captions. Each caption belongs to one half, fixed by a hash of its id
(:func:`split_of`: the low bit of the first byte of ``sha256(id)``; 0 = DEV, 1 = TEST), so the split never changes
when captions are added or reordered. DEV is for development: the semantic threshold is chosen on it, and lexicon
authors read its errors (``--errors`` lists DEV errors only unless ``--split test|all`` is asked for) to find
missing surfaces, then add the words people really use for those concepts in general, not the failing phrase
alone. TEST errors are never read while editing the lexicon or the linker; TEST scores are only reported, and the
recall floor in ``tests/test_linking_real_graph.py`` is asserted on TEST. A new round of lexicon work that has
looked at TEST errors must say so, because TEST then stops being held out.

What it measures:

(a) ``gold`` — concept linking on ``tests/data/captions_gold.jsonl`` (hand-labelled captions, zh/en/mixed).
    A caption's predicted concepts are the equivalence classes of its linked ids; classes are the connected
    components of MAPS_TO (either direction), so ``HP:0000501`` counts for ``OVP:glaucoma``. Micro precision, recall
    and F1 over (caption, concept) pairs, dictionary only and with the semantic fallback (English spans embedded as
    written, Chinese ones through their English gloss); negation accuracy over the correctly linked concepts (negated
    iff the gold marks it negated). Reported on DEV, TEST and all (``by_split``). The two semantic thresholds
    (English, glossed) are chosen together on DEV and reported on TEST (``held_out_half``) and on all.
(b) ``leave_synonyms_out`` — HPO's layperson synonyms, each linked as its own text, with a dictionary built WITHOUT
    them (and without any lexicon synonym identical to one after normalisation). Top-1 accuracy: the first
    mention's concept is the synonym's HPO term or equivalent. Short phrases are below the matcher's ``min_words``
    for captions, so here the whole phrase is always embedded (``min_words=1``); ``semantic_rank`` reports top-1/5
    of the raw cosine ranking over all entities, whatever the threshold.
(c) ``throughput`` — captions/s of :func:`encoders.linking.link_mentions` on the gold captions, one torch thread,
    median over repeats; dictionary alone and with the semantic fallback.

The semantic fallback measured here is the English-only one with Chinese glosses (``load_linker(...,
vectors="gloss")``), whose two thresholds this script chooses; the cross-lingual fallback that OVP uses is measured
beside it, with its thresholds frozen, by ``bench/linking_cross_lingual.py``.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from encoders.linking import (
    DictionaryMatcher,
    EntityLinker,
    KBEntry,
    KnowledgeBase,
    Mention,
    SemanticMatcher,
    link_mentions,
    load_linker,
)
from encoders.normalize import normalize_surface
from kg_builder.graph import Graph
from ovp.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

GOLD_FILE = PROJECT_ROOT / "tests" / "data" / "captions_gold.jsonl"
#: Thresholds tried on the tuning half.
THRESHOLD_GRID = (0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70)
#: Thresholds tried for glossed Chinese spans (their best F1 on the tuning half came at the old grid's edge, 0.70).
GLOSS_THRESHOLD_GRID = THRESHOLD_GRID + (0.75, 0.80)

#: HPO layperson synonyms, with their term and scope.
LAYPERSON_QUERY = """
MATCH (e:Entity {source: 'HPO'})
WHERE any(flag IN coalesce(e.synonym_layperson, []) WHERE flag)
RETURN e.id AS id, e.synonyms AS synonyms, e.synonym_layperson AS layperson
ORDER BY id
"""


@dataclass(frozen=True)
class GoldCaption:
    """One labelled caption."""

    id: str
    lang: str
    text: str
    gold: tuple[str, ...]
    negated: tuple[str, ...]
    descriptive: bool


def read_gold(path: Path = GOLD_FILE) -> list[GoldCaption]:
    """The labelled captions (blank lines skipped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        out.append(GoldCaption(row["id"], row.get("lang", ""), row["text"], tuple(row.get("gold", [])),
                               tuple(row.get("negated", [])), bool(row.get("descriptive", False))))
    return out


class ConceptClasses:
    """Equivalence classes of entity ids: connected components of MAPS_TO (the KB entries' xrefs)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for entry in kb:
            find(entry.id)
            for x in entry.xrefs:
                parent[find(x)] = find(entry.id)
        self._find = find

    def of(self, entity_id: str) -> str:
        """A representative id of the class ``entity_id`` belongs to."""
        return self._find(entity_id)


#: The two halves of the gold captions (see the module docstring): index = :func:`half_of`.
SPLITS: tuple[str, str] = ("dev", "test")


def half_of(caption_id: str) -> int:
    """0 (DEV: tuning, error analysis) or 1 (TEST: held out), by a stable hash of the caption id."""
    return hashlib.sha256(caption_id.encode()).digest()[0] & 1


def split_of(caption_id: str) -> str:
    """``"dev"`` or ``"test"``: the half a caption belongs to."""
    return SPLITS[half_of(caption_id)]


def in_split(captions: Sequence[GoldCaption], split: str) -> list[int]:
    """Indices of the captions in ``split`` (``"dev"``, ``"test"`` or ``"all"``)."""
    if split == "all":
        return list(range(len(captions)))
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS + ('all',)}, got {split!r}")
    return [i for i, c in enumerate(captions) if split_of(c.id) == split]


def score_gold(
    captions: Sequence[GoldCaption], predictions: Sequence[list[Mention]], classes: ConceptClasses
) -> dict[str, Any]:
    """Micro P/R/F1 over (caption, concept) pairs and negation accuracy over correctly linked concepts."""
    tp = fp = fn = 0
    neg_right = neg_total = 0
    for cap, mentions in zip(captions, predictions):
        gold = {classes.of(g) for g in cap.gold}
        gold_neg = {classes.of(g) for g in cap.negated}
        predicted: dict[str, bool] = {}
        for m in mentions:
            c = classes.of(m.id)
            predicted[c] = predicted.get(c, False) or m.negated
        tp += len(gold & predicted.keys())
        fp += len(predicted.keys() - gold)
        fn += len(gold - predicted.keys())
        for c in gold & predicted.keys():
            neg_total += 1
            neg_right += predicted[c] == (c in gold_neg)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "captions": len(captions), "tp": tp, "fp": fp, "fn": fn,
        "precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4),
        "negation_accuracy": round(neg_right / neg_total, 4) if neg_total else None, "negation_checked": neg_total,
    }


def errors(captions: Sequence[GoldCaption], predictions: Sequence[list[Mention]], classes: ConceptClasses) -> list[dict[str, Any]]:
    """Per caption with a wrong or missing concept: what was expected and what came out."""
    out = []
    for cap, mentions in zip(captions, predictions):
        gold = {classes.of(g) for g in cap.gold}
        got = {classes.of(m.id) for m in mentions}
        if gold != got:
            out.append({
                "id": cap.id, "text": cap.text, "missing": sorted(g for g in cap.gold if classes.of(g) not in got),
                "extra": [(m.surface, m.id, m.method, round(m.score, 3)) for m in mentions if classes.of(m.id) not in gold],
            })
    return out


# --- (b) leave synonyms out -------------------------------------------------------------------------------------


def layperson_synonyms(graph: Graph) -> list[tuple[str, str]]:
    """(HPO id, synonym) for every layperson synonym of an HPO term."""
    pairs = []
    for row in graph.read(LAYPERSON_QUERY):
        for syn, flag in zip(row["synonyms"] or [], row["layperson"] or []):
            if flag and syn:
                pairs.append((row["id"], syn))
    return pairs


def kb_without(kb: KnowledgeBase, pairs: Sequence[tuple[str, str]]) -> KnowledgeBase:
    """``kb`` without HPO's layperson synonyms, and without any other synonym identical to one (normalised)."""
    held = {normalize_surface(s) for _, s in pairs}
    entries: list[KBEntry] = []
    for e in kb:
        keep = [i for i, s in enumerate(e.synonyms) if normalize_surface(s) not in held]
        scopes = tuple(e.scope_of(i) for i in keep)
        entries.append(replace(e, synonyms=[e.synonyms[i] for i in keep], synonym_scopes=scopes))
    return KnowledgeBase(entries)


def leave_synonyms_out(
    kb: KnowledgeBase, pairs: Sequence[tuple[str, str]], semantic: SemanticMatcher, classes: ConceptClasses, threshold: float
) -> dict[str, Any]:
    """Top-1 accuracy of linking each held-out layperson synonym as its own text (see module docstring)."""
    reduced = kb_without(kb, pairs)
    # the entity vectors depend on names and definitions only, which are unchanged: reuse the matrix, same order
    phrase_matcher = SemanticMatcher(semantic.encoder, reduced, threshold=threshold, min_words=1,
                                     entity_vectors=lambda texts: semantic.entity_matrix(),
                                     defined_only=semantic.defined_only, sentence_vectors=semantic.sentence_vectors)
    phrase_matcher._sentences = semantic.sentence_matrix()  # same entities in the same order: reuse the rows
    dictionary_only = EntityLinker(reduced)
    linker = EntityLinker(reduced, semantic=phrase_matcher)
    texts = [s for _, s in pairs]
    by_dict = dictionary_only.link_batch(texts)
    by_linker = linker.link_batch(texts)
    right = lambda target, ms: bool(ms) and classes.of(ms[0].id) == classes.of(target)  # noqa: E731
    sims = phrase_matcher.similarities(texts)
    top5 = np.argsort(-sims, axis=1)[:, :5]
    entries = reduced.entries
    rank1 = rank5 = 0
    for (target, _), row in zip(pairs, top5):
        ids = [classes.of(entries[int(k)].id) for k in row]
        rank1 += ids[0] == classes.of(target)
        rank5 += classes.of(target) in ids
    n = len(pairs)
    return {
        "phrases": n,
        "dictionary_top1": round(sum(right(t, ms) for (t, _), ms in zip(pairs, by_dict)) / n, 4),
        "dictionary_linked_any": round(sum(bool(ms) for ms in by_dict) / n, 4),
        "linker_top1": round(sum(right(t, ms) for (t, _), ms in zip(pairs, by_linker)) / n, 4),
        "linker_linked_any": round(sum(bool(ms) for ms in by_linker) / n, 4),
        "semantic_rank_top1": round(rank1 / n, 4),
        "semantic_rank_top5": round(rank5 / n, 4),
        "threshold": threshold,
    }


# --- (c) throughput ---------------------------------------------------------------------------------------------


def throughput(texts: Sequence[str], linker: EntityLinker, repeats: int) -> dict[str, Any]:
    """Median captions/s of ``link_mentions`` over ``repeats`` passes (after one warm-up pass)."""
    link_mentions(list(texts), linker)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        link_mentions(list(texts), linker)
        rates.append(len(texts) / (time.perf_counter() - started))
    return {"captions_per_s": round(statistics.median(rates), 1), "repeats": repeats, "captions": len(texts)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing passes per configuration")
    parser.add_argument("--errors", action="store_true", help="also list the captions the linker gets wrong")
    parser.add_argument("--split", choices=(*SPLITS, "all"), default="dev",
                        help="whose errors --errors lists (default dev: TEST errors are not for lexicon work)")
    parser.add_argument("--gold-only", action="store_true",
                        help="skip the leave-synonyms-out and throughput parts (seconds instead of minutes)")
    parser.add_argument("--gold", type=Path, default=GOLD_FILE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import torch

    torch.set_num_threads(1)
    settings = Settings.from_env()
    captions = read_gold(args.gold)
    texts = [c.text for c in captions]
    with Graph.connect(settings) as graph:
        full = load_linker(settings, graph, semantic=True, vectors="gloss")
        pairs = layperson_synonyms(graph)
    kb = full.kb
    classes = ConceptClasses(kb)
    assert full.semantic is not None
    full.semantic.entity_matrix()  # load the persisted vectors before any timing
    dictionary = EntityLinker(kb, dictionary=full.dictionary, max_text_chars=settings.max_text_chars)

    # (a) dictionary only; then the threshold chosen on the tuning half, reported on the held-out half and on all
    dict_pred = link_mentions(texts, dictionary)
    tune = in_split(captions, "dev")
    held = in_split(captions, "test")
    pick = lambda seq, idx: [seq[i] for i in idx]  # noqa: E731
    # Both thresholds (English spans, glossed Chinese spans) are chosen together, by F1 on the tuning half. One pass at
    # the lowest thresholds: the matcher keeps spans greedily by descending score, so what it keeps at higher ones is
    # (nearly: an entity is returned once per text, and a higher-scoring duplicate may fall below its own threshold)
    # what it kept here with a score at or above them. The reported predictions are linked again at the chosen pair.
    full.semantic.threshold = full.semantic.gloss_threshold = min(THRESHOLD_GRID)
    lowest = full.link_batch(pick(texts, tune))
    tuning: dict[str, float] = {}
    for t, g in itertools.product(THRESHOLD_GRID, GLOSS_THRESHOLD_GRID):
        kept = [[m for m in ms if m.score >= {"semantic": t, "gloss": g}.get(m.method, 0.0)] for ms in lowest]
        tuning[f"{t:.2f}/{g:.2f}"] = score_gold(pick(captions, tune), kept, classes)["f1"]
    best, best_gloss = max(itertools.product(THRESHOLD_GRID, GLOSS_THRESHOLD_GRID),
                           key=lambda tg: (tuning[f"{tg[0]:.2f}/{tg[1]:.2f}"], tg))
    full.semantic.threshold, full.semantic.gloss_threshold = best, best_gloss
    sem_pred = full.link_batch(texts)
    report: dict[str, Any] = {
        "kb_entities": len(kb),
        "dictionary_surfaces": full.dictionary.surface_count,
        "gold": {
            "file": str(args.gold.relative_to(PROJECT_ROOT)) if args.gold.is_relative_to(PROJECT_ROOT) else str(args.gold),
            "dictionary": score_gold(captions, dict_pred, classes),
            "by_split": {
                name: {
                    "dictionary": score_gold(pick(captions, idx), pick(dict_pred, idx), classes),
                    "semantic": score_gold(pick(captions, idx), pick(sem_pred, idx), classes),
                }
                for name, idx in (("dev", tune), ("test", held), ("all", list(range(len(captions)))))
            },
            "semantic": {
                "threshold_chosen_on_tuning_half": best,
                "gloss_threshold_chosen_on_tuning_half": best_gloss,
                "tuning_half_f1_by_threshold_semantic/gloss": tuning,
                "held_out_half": score_gold(pick(captions, held), pick(sem_pred, held), classes),
                "held_out_half_dictionary": score_gold(pick(captions, held), pick(dict_pred, held), classes),
                "all": score_gold(captions, sem_pred, classes),
            },
            "descriptive_only": {
                "dictionary": score_gold([c for c in captions if c.descriptive],
                                         [p for c, p in zip(captions, dict_pred) if c.descriptive], classes),
                "semantic": score_gold([c for c in captions if c.descriptive],
                                       [p for c, p in zip(captions, sem_pred) if c.descriptive], classes),
            },
        },
    }
    if not args.gold_only:
        report["leave_synonyms_out"] = leave_synonyms_out(kb, pairs, full.semantic, classes, best)
        report["throughput_one_thread"] = {
            "dictionary": throughput(texts, dictionary, args.repeats),
            "semantic": throughput(texts, full, max(1, args.repeats // 2)),
        }
    if args.errors:
        shown = in_split(captions, args.split)
        report["errors"] = {
            "split": args.split,
            "dictionary": errors(pick(captions, shown), pick(dict_pred, shown), classes),
            "semantic": errors(pick(captions, shown), pick(sem_pred, shown), classes),
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
