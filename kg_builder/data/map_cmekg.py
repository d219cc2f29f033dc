"""Map the CMeKG ophthalmology entities onto graph entities and choose which Chinese aliases the graph takes.

Run by hand from the repository root after ``extract_cmekg.py`` (it reads the graph's sources from their files; no
Neo4j needed), then review ``cmekg_mapping.tsv`` row by row and record every correction in the tables below, so that
running it again reproduces the reviewed file::

    python kg_builder/data/map_cmekg.py

The rule, in order; the first step that names exactly one graph concept wins (a concept = a MAPS_TO class: a lexicon
concept together with the HPO / ICD-10 entities it maps to):

1. ``lexicon``: the CMeKG name or one of its aliases is a Chinese name or synonym of a lexicon concept → that concept.
2. ``hpo-zh``: the CMeKG name is the official Chinese label (CHPO) of exactly one HPO term of the graph → that term.
3. ``english``: one of its English names, compared without spaces and punctuation, is the name or an EXACT synonym of
   exactly one HPO term, rare disease (OMIM, ORPHA), ICD-10 code or lexicon concept → that entity.
4. ``icd10``: its ICD-10 code is a code of the graph (chapter VII) → that code. CMeKG gives many subtypes the code of
   their parent or an "unspecified" code, so every row mapped by this step is reviewed and kept only where the
   code's WHO title is the same condition (:data:`ICD_ACCEPTED`); the others are left unmapped.
5. ``manual``: rows mapped by hand after review (:data:`MANUAL`), with the reason.
A mapping the review found wrong is refused (:data:`REFUSED`, with the reason); the entity is then unmapped.
When a step lands on an HPO or ICD-10 entity that exactly one lexicon concept maps to, the aliases go to the lexicon
concept (the one the linker and lookup rank first), with ``→lexicon`` added to the rule.

Which Chinese names of a mapped entity the graph takes (the CMeKG name and its aliases), each as an EXACT synonym:
- not one that the concept already has (name, Chinese name or synonym of any entity of its class): nothing to add;
- not one that names another concept of the graph, nor one that two CMeKG entities mapped to different concepts
  share: an ambiguous alias is worse than none;
- not one without two Chinese characters (a Latin-only alias is not a Chinese name; one character is a word part);
- not one the review refused (:data:`REFUSED_ALIASES`, with the reason).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kg_builder.build import collect
from kg_builder.records import EntityRecord
from kg_builder.source_config import CMEKG_MAPPING_FILE, SOURCE_ORDER

EXTRACT = Path(__file__).resolve().parent / "cmekg_eye.jsonl"

#: Rows mapped by the ``icd10`` step that the review kept: the CMeKG entity is the condition the WHO title names.
#: (Every other row that step reached names a subtype, a cause or a neighbour of its code: left unmapped.)
ICD_ACCEPTED: dict[str, str] = {
    "原发性急性闭角型青光眼": "H40.2 Primary angle-closure glaucoma; the lexicon folds the acute form into it as well",
    "眼球内陷": "H05.4 Enophthalmos",
    "眼睑闭合不全": "H02.2 Lagophthalmos",
    "表层巩膜炎": "H15.1 Episcleritis",
    "隐斜": "H50.5 Heterophoria",
    "脉络膜脱离": "H31.4 Choroidal detachment",
    "玻璃体疝": "H43.0 Vitreous prolapse (vitreous hernia)",
    "化脓性眼内炎": "H44.0 Purulent endophthalmitis (suppurative = purulent)",
    "共同性内斜视": "H50.0 Convergent concomitant strabismus (concomitant esotropia)",
    "共同性外斜视": "H50.1 Divergent concomitant strabismus (concomitant exotropia)",
    "角膜基质炎": "H16.3 Interstitial and deep keratitis (interstitial = stromal keratitis)",
}
#: Entities mapped by hand: CMeKG name → (graph id, reason).
MANUAL: dict[str, tuple[str, str]] = {
    "Leber遗传性视神经病变": ("ORPHA:104", "Leber hereditary optic neuropathy; CMeKG's English name lost its spaces"),
    "coats病": ("ORPHA:190", "Coats disease (OMIM:300216 is the same name for one genetic form)"),
    "先天性青光眼": ("ORPHA:98976", "Congenital glaucoma; its second English name, buphthalmos, is a sign of it"),
    "剥脱综合征": ("OMIM:177650", "Exfoliation syndrome (CMeKG misspells 'exofoliation')"),
    "异色性虹膜睫状体炎": ("ORPHA:263479", "Fuchs heterochromic iridocyclitis"),
    "彼得异常": ("ORPHA:708", "Peters anomaly (the disease; HP:0000659 is the same name as a phenotype)"),
    "斯特奇—韦伯综合征": ("ORPHA:3205", "Sturge-Weber syndrome"),
    "眼球后退综合征": ("ORPHA:233", "Duane retraction syndrome; its alias is Duane综合征"),
    "眼睑皮肤弛缓症": ("ICD10:H02.3", "Blepharochalasis (HP:0010749's Chinese label 眼皮松弛 is shared with dermatochalasis)"),
    "虹膜新生血管": ("HP:0011497", "Rubeosis iridis, whose HPO synonym is iris neovascularization"),
    "麻痹性斜视": ("HP:0031775", "Neurogenic strabismus, whose HPO exact synonym is paralytic strabismus"),
    "黄斑囊样水肿": ("HP:0011505", "Cystoid macular edema"),
    "春季结膜炎": ("ORPHA:70476", "Vernal keratoconjunctivitis; its alias is 春季角膜结膜炎"),
    "春季卡他性结膜炎": ("ORPHA:70476", "Vernal keratoconjunctivitis (the older 'vernal catarrh' name)"),
    "中央晕轮状脉络膜萎缩": ("ORPHA:75377", "Central areolar choroidal dystrophy"),
    "屈光不正": ("HP:0000539", "Abnormality of refraction (refractive error); CMeKG's code H52.3 is anisometropia"),
    "圆翳内障": ("OVP:cataract", "the traditional Chinese medicine name of (senile) cataract"),
    "胬肉攀睛": ("OVP:pterygium", "the traditional Chinese medicine name of pterygium; CMeKG also lists it as 翼状胬肉's alias"),
}
#: Mappings the review refused: CMeKG name → reason.
REFUSED: dict[str, str] = {}
#: Aliases the review refused: (CMeKG name, alias) → reason.
REFUSED_ALIASES: dict[tuple[str, str], str] = {
    ("大泡性角膜病变", "囊疱性角膜炎"): "泡性/疱性角膜炎 also name phlyctenular and herpetic keratitis",
    ("大泡性角膜病变", "水疱性角膜炎"): "泡性/疱性角膜炎 also name phlyctenular and herpetic keratitis",
    ("带状角膜病变", "角膜带状混浊和钙化带状角膜病变"): "two phrases run together, not a name",
    ("视神经炎", "视神经乳头炎"): "papillitis is one form of optic neuritis, not a name of it",
    ("隐斜视", "规范名称：隐斜"): "a note ('standard name: 隐斜'), not an alias",
    ("高眼压症", "良性高眼压症等"): "a phrase ending in 等 ('and so on')",
    ("高眼压症", "高眼压者"): "a person with ocular hypertension, not the condition",
    ("先天性青光眼", "发育性光眼"): "a misspelling (发育性青光眼)",
    ("先天性青光眼", "水眼"): "hydrophthalmos is buphthalmos, a sign of congenital glaucoma",
    ("屈光不正", "屈光不同"): "'different refraction' suggests anisometropia",
    ("屈光不正", "折射错"): "a word-for-word rendering of 'refractive error', not Chinese usage",
    ("剥脱综合征", "囊膜性青光眼"): "capsular glaucoma is the glaucoma the syndrome causes, not the syndrome",
    ("微小度数斜视", "单眼注视综合征"): "monofixation syndrome includes microtropia but is not a name of it",
}

COLUMNS = ("cmekg_name", "icd10", "english", "graph_id", "graph_name", "rule", "synonyms_zh", "dropped", "note")


def norm(text: str) -> str:
    """NFKC, case-folded, letters and digits only: what 'the same name' means here."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def cjk_count(text: str) -> int:
    return sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")


@dataclass
class GraphIndex:
    """The graph's entities as the sources give them, their MAPS_TO classes and their surfaces."""

    entities: dict[str, EntityRecord]
    concept: dict[str, str]  # entity id → class representative (the lexicon concept when there is one)
    surfaces: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # norm(surface) → class ids
    english: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # norm(English) → entity ids
    zh_label: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # norm(HPO zh label) → HPO ids

    @classmethod
    def from_sources(cls) -> "GraphIndex":
        collected = collect(SOURCE_ORDER, progress=False, synonym_sources=False)  # not its own output
        entities = {record.id: record for record in collected.entities}
        parent = {entity_id: entity_id for entity_id in entities}

        def find(x: str) -> str:
            while parent[x] != x:
                x = parent[x]
            return x

        for relation in collected.relations:
            if relation.type == "MAPS_TO" and relation.start in parent and relation.end in parent:
                a, b = find(relation.start), find(relation.end)
                if a != b:
                    # the lexicon concept represents its class
                    parent[b if a.startswith("OVP:") else a] = a if a.startswith("OVP:") else b
        index = cls(entities=entities, concept={entity_id: find(entity_id) for entity_id in entities})
        for record in entities.values():
            names = [record.name, record.name_zh, *(s.text for s in record.synonyms)]
            for name in names:
                if name and cjk_count(name):
                    index.surfaces[norm(name)].add(index.concept[record.id])
            if record.source in ("HPO", "HPO-annotations", "ICD-10", "OVP-lexicon"):
                for name in [record.name, *(s.text for s in record.synonyms if s.scope == "EXACT" and s.lang == "en")]:
                    index.english[norm(name)].add(record.id)
            if record.source == "HPO" and record.name_zh:
                index.zh_label[norm(record.name_zh)].add(record.id)
        return index

    def lexicon_concepts(self, names: list[str]) -> set[str]:
        return {c for name in names for c in self.surfaces.get(norm(name), set()) if c.startswith("OVP:")}


def english_names(row: dict) -> list[str]:
    """CMeKG's English names, split where it joined two with a comma ("…neuropathy,LHON")."""
    return [part for name in row["english"] for part in name.replace("；", ",").replace(";", ",").split(",") if part.strip()]


def map_entity(row: dict, index: GraphIndex) -> tuple[str, str, str]:
    """(graph id or '', rule, note) for one CMeKG entity."""
    name = row["name"]
    if name in REFUSED:
        return "", "refused", REFUSED[name]
    if name in MANUAL:
        graph_id, reason = MANUAL[name]
        return graph_id, "manual", reason
    lexicon = index.lexicon_concepts([name, *row["aliases"]])
    if len(lexicon) == 1:
        return lexicon.pop(), "lexicon", ""
    if len(lexicon) > 1:
        return "", "ambiguous", f"names or aliases are names of {', '.join(sorted(lexicon))}"
    hpo = index.zh_label.get(norm(name), set())
    if len(hpo) == 1:
        return _to_lexicon(hpo.pop(), "hpo-zh", index)
    english = {entity_id for e in english_names(row) for entity_id in index.english.get(norm(e), set())}
    if len({index.concept[e] for e in english}) == 1:
        return _to_lexicon(sorted(english)[0], "english", index)
    for code in row["icd10"]:
        graph_id = f"ICD10:{code.strip()}"
        if graph_id in index.entities:
            if name in ICD_ACCEPTED:
                return _to_lexicon(graph_id, "icd10", index)
            return "", "icd10-different", f"{graph_id} {index.entities[graph_id].name!r} is not this condition (reviewed)"
    return "", "unmapped", ""


def _to_lexicon(graph_id: str, rule: str, index: GraphIndex) -> tuple[str, str, str]:
    concept = index.concept[graph_id]
    if concept.startswith("OVP:") and concept != graph_id:
        return concept, f"{rule}→lexicon", f"via {graph_id}"
    return graph_id, rule, ""


def choose_synonyms(rows: list[dict], targets: dict[str, str], index: GraphIndex) -> dict[str, tuple[list[str], list[str]]]:
    """Per CMeKG name: (Chinese names kept, 'alias: reason' dropped) under the rules of the module docstring."""
    claimed: dict[str, set[str]] = defaultdict(set)  # norm(alias) → concepts CMeKG gives it to
    for row in rows:
        target = targets.get(row["name"])
        if target:
            for alias in [row["name"], *row["aliases"]]:
                claimed[norm(alias)].add(index.concept[target])
    out: dict[str, tuple[list[str], list[str]]] = {}
    for row in rows:
        target = targets.get(row["name"])
        if not target:
            continue
        concept = index.concept[target]
        kept: list[str] = []
        dropped: list[str] = []
        for alias in dict.fromkeys([row["name"], *row["aliases"]]):
            key = norm(alias)
            owners = index.surfaces.get(key, set())
            if (row["name"], alias) in REFUSED_ALIASES:
                dropped.append(f"{alias}: {REFUSED_ALIASES[(row['name'], alias)]}")
            elif cjk_count(alias) < 2:
                dropped.append(f"{alias}: not a Chinese name of two characters or more")
            elif concept in owners:
                dropped.append(f"{alias}: already a name of the concept")
            elif owners:
                dropped.append(f"{alias}: names {', '.join(sorted(owners))}")
            elif len(claimed[key]) > 1:
                dropped.append(f"{alias}: CMeKG gives it to {', '.join(sorted(claimed[key]))}")
            elif key in {norm(k) for k in kept}:
                continue
            else:
                kept.append(alias)
        out[row["name"]] = (kept, dropped)
    return out


def read_extract(path: Path = EXTRACT) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("//")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CMEKG_MAPPING_FILE)
    args = parser.parse_args(argv)
    rows = read_extract()
    index = GraphIndex.from_sources()
    mapped = {row["name"]: map_entity(row, index) for row in rows}
    targets = {name: graph_id for name, (graph_id, _, _) in mapped.items() if graph_id}
    synonyms = choose_synonyms(rows, targets, index)
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        out.write(
            "# CMeKG ophthalmology entities (kg_builder/data/cmekg_eye.jsonl) mapped onto graph entities, with the Chinese\n"
            "# names the graph takes from each as EXACT synonyms (synonyms_zh, '|'-separated) and those it does not\n"
            "# (dropped, with the reason). Made by kg_builder/data/map_cmekg.py (the rule is in its docstring) and\n"
            "# reviewed row by row; corrections live in that script. Source and licence: see cmekg_eye.jsonl.\n"
        )
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            graph_id, rule, note = mapped[row["name"]]
            kept, dropped = synonyms.get(row["name"], ([], []))
            graph_name = index.entities[graph_id].name if graph_id in index.entities else ""
            writer.writerow([row["name"], "|".join(row["icd10"]), "|".join(row["english"]), graph_id, graph_name, rule,
                             "|".join(kept), "; ".join(dropped), note])
    counts: dict[str, int] = defaultdict(int)
    for graph_id, rule, _ in mapped.values():
        counts[rule] += 1
    kept_total = sum(len(kept) for kept, _ in synonyms.values())
    print(json.dumps({"entities": len(rows), "by_rule": dict(sorted(counts.items())), "synonyms_kept": kept_total},
                     ensure_ascii=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
