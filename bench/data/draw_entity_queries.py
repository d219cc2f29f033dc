"""Draws bench/data/entity_queries.jsonl once (seed 37): the fixed 200 lookup queries that the old and new entity lookup
must answer identically. Kept for provenance; the committed list is the reference, not this script.

Drawn from the lexicon and the built graph (names, synonyms, Chinese names, HPO and disease names), plus partial
words, seeded misspellings, case and spacing variants, and queries that should find nothing or only noise.
Usage: python bench/data/draw_entity_queries.py bench/data/entity_queries.jsonl (Neo4j with the graph built)
"""
import json, random, sys
from pathlib import Path
from kg_builder.graph import Graph
from ovp.settings import Settings
rng = random.Random(37)
lex = [json.loads(l) for l in Path("kg_builder/data/lexicon.jsonl").read_text().splitlines() if l.startswith("{")]
g = Graph(Settings.from_env())
rows = g.read("MATCH (n:Entity) WHERE n.source <> 'OVP-lexicon' RETURN n.id AS id, n.name AS name, n.name_zh AS zh, "
              "coalesce(n.synonyms, []) AS syn ORDER BY n.id")
out = []
seen = set()
def add(q, kind):
    if q and q.casefold() not in seen:
        seen.add(q.casefold()); out.append({"q": q, "kind": kind})
def take(pool, n, kind):
    pool = sorted(set(p for p in pool if p and len(p) <= 60))
    for q in rng.sample(pool, min(n, len(pool))): add(q, kind)
take([c["name"] for c in lex], 27, "name_en")
take([c["name_zh"] for c in lex], 25, "name_zh")
take([s for c in lex for s in c.get("synonyms_en", [])], 15, "synonym_en")
take([s for c in lex for s in c.get("synonyms_zh", [])], 15, "synonym_zh")
take([r["name"] for r in rows if r["id"].startswith("HP:")], 12, "hpo_name")
take([r["zh"] for r in rows if r["zh"]], 12, "hpo_name_zh")
take([s for r in rows if not r["id"].startswith("HP:") for s in [r["name"]]], 10, "disease_name")  # OMIM/ORPHA/ICD-10
take([s for r in rows for s in r["syn"]], 10, "source_synonym")
# partial words: the first word of multi-word names, a name's first 5 letters, two or three characters of a Chinese name
multi = sorted({c["name"].split()[0] for c in lex if " " in c["name"]} | {r["name"].split()[-1] for r in rows[:3000] if " " in r["name"]})
take(multi, 10, "partial_word")
take([c["name"][:5] for c in lex if len(c["name"]) > 7], 6, "partial_prefix")
take([c["name_zh"][:2] for c in lex if len(c["name_zh"]) >= 3] + [c["name_zh"][-3:] for c in lex if len(c["name_zh"]) >= 4], 8, "partial_zh")
# misspellings: two neighbouring letters swapped, one letter dropped or doubled (deterministic from the seed)
def misspell(word):
    i = rng.randrange(1, len(word) - 2)
    op = rng.choice("sdx")
    if op == "s": return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "d": return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]
base = sorted({c["name"] for c in lex if len(c["name"]) >= 6} | {s for c in lex for s in c.get("synonyms_en", []) if len(s) >= 6})
for word in rng.sample(base, 22):
    add(misspell(word), "misspelling")
# case and spacing: the same names typed differently
for word in rng.sample(sorted({c["name"] for c in lex if " " in c["name"]}), 6):
    add("  " + word.upper().replace(" ", "  ") + " ", "case_space")
for word in ["GLAUCOMA", "Pink Eye", "DRY EYE", "myopia "]:
    add(word, "case_space")
# nothing found (or nothing meaningful): other fields' words, stop words, symbols, emoji, injection-shaped text
for q in ["xyzzy", "qwertyuiop", "the", "and", "of the", "火锅", "股票行情", "football", "量子力学", "1234", "😀👀",
          "眼", "eye", 'glaucoma" OR *:*', "a) RETURN 1 //", "*", "青光眼~2^9", "?!", "NOT", "眼睛 好累 怎么办"]:
    add(q, "none_or_noise")
assert len(out) >= 200, len(out)
out = out[:200]
kinds = {}
for o in out: kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
print(kinds, file=sys.stderr)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for o in out: f.write(json.dumps(o, ensure_ascii=False) + "\n")
