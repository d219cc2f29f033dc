"""Map each MedQuAD eye focus condition onto Disease entities of the graph, then split by condition and write the items.

Run by hand from the repository root after ``extract_medquad.py`` (reads the graph's sources from their files; with
``--candidates`` also asks the real Neo4j's full-text lookup for candidates to review)::

    python tests/data/medquad_eye/map_focus.py [--candidates]

Writes ``focus_mapping.tsv`` (one row per focus: focus, UMLS CUIs, graph ids, how mapped, notes) and ``items.jsonl``
(one item per question and per answer passage: its text, focus, gold graph ids, split). The mapping was written and
reviewed before any threshold was chosen on it; a row's graph ids are the Disease entities that name that condition.

How a focus is mapped, first rule that gives an answer:
1. ``manual``: mapped by hand after review, from the lookup's candidates (:data:`MANUAL`, with the reason); this
   also corrects rows the rules below got wrong.
2. ``lexicon`` and ``name`` (both, united): the focus or one of its MedQuAD synonyms is (case-folded, punctuation
   ignored) the name or an English synonym of a lexicon disease → that concept and every Disease entity it MAPS_TO
   (its ICD-10 codes); and the name of Disease entities (OMIM, ORPHA, ICD-10) → all of them (OMIM and Orphanet
   often list one condition under the same name).
4. ``none``: no Disease entity of the graph is this condition (:data:`NO_DISEASE` gives the reason where one was
   looked for); kept, marked, for precision.

Split: conditions are the connected components of foci that share a graph id or a normalised name; they are ordered by
the SHA-256 of their first normalised focus and each goes, in that order, to the half that holds fewer items so far
(dev first on a tie): a fixed rule that keeps the halves balanced and every condition in one half.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path

from kg_builder.build import collect
from kg_builder.source_config import SOURCE_ORDER

HERE = Path(__file__).resolve().parent
DOCUMENTS = HERE / "documents.jsonl"
MAPPING = HERE / "focus_mapping.tsv"
ITEMS = HERE / "items.jsonl"
COLUMNS = ("focus", "umls_cuis", "graph_ids", "how", "notes")

#: Foci mapped by hand after review: focus → (graph ids, reason).
MANUAL: dict[str, tuple[tuple[str, ...], str]] = {
    "Adult-onset vitelliform macular dystrophy": (("ORPHA:99000",), "adult-onset foveomacular vitelliform dystrophy"),
    "Aniridia absent patella": (("OMIM:106220", "ORPHA:1069"), "aniridia and absent patella"),
    "Amaurosis congenita cone-rod type with congenital hypertrichosis": (("ORPHA:1021",), "amaurosis-hypertrichosis syndrome"),
    "Autosomal recessive nonsyndromic congenital nuclear cataract": ((), "a group of recessive congenital cataracts; no one OMIM entry"),
    "Blepharophimosis, ptosis, and epicanthus inversus syndrome type 1": (("OMIM:110100", "ORPHA:126"), "BPES (OMIM lists both types under 110100)"),
    "Blepharophimosis, ptosis, and epicanthus inversus syndrome type 2": (("OMIM:110100", "ORPHA:126"), "BPES (OMIM lists both types under 110100)"),
    "blepharophimosis, ptosis, and epicanthus inversus syndrome": (("OMIM:110100", "ORPHA:126"), "BPES"),
    "Blepharoptosis myopia ectopia lentis": (("OMIM:110150", "ORPHA:1259"), "blepharoptosis-myopia-ectopia lentis syndrome"),
    "Cataract anterior polar dominant": (("OMIM:115650",), "cataract, anterior polar, 1 (the dominant form)"),
    "Cataract, posterior polar, 1": (("OMIM:116600",), "cataract, posterior polar, 1"),
    "Cataracts, ataxia, short stature, and mental retardation": (("OMIM:300619",), "the same name in OMIM"),
    "Cerebro-Oculo-Facio-Skeletal Syndrome (COFS)": (("ORPHA:1466",), "COFS syndrome"),
    "Coloboma, cleft lip/palate and mental retardation syndrome": (("OMIM:120433", "ORPHA:1473"), "ocular coloboma with cleft lip/palate and mental retardation"),
    "Cornea guttata with anterior polar cataract": (("OMIM:121390",), "the same name in OMIM"),
    "Corneal dystrophy and perceptive deafness": (("OMIM:217400", "ORPHA:1490"), "corneal (endothelial) dystrophy and perceptive deafness"),
    "Corneal endothelial dystrophy type 2": (("OMIM:217700",), "CHED2: corneal endothelial dystrophy, autosomal recessive"),
    "Deafness and myopia syndrome": (("OMIM:221200",), "deafness and myopia"),
    "Deafness conductive ptosis skeletal anomalies": (("OMIM:221320", "ORPHA:3236"), "the same syndrome"),
    "Dominant optic atrophy": (("OMIM:165500", "ORPHA:98673"), "optic atrophy 1, the classic autosomal dominant optic atrophy"),
    "optic atrophy type 1": (("OMIM:165500", "ORPHA:98673"), "optic atrophy 1 (classic dominant optic atrophy)"),
    "Optic atrophy 1": (("OMIM:165500", "ORPHA:98673"), "optic atrophy 1 (classic dominant optic atrophy)"),
    "Optic atrophy 1 and deafness": (("OMIM:125250",), "optic atrophy with or without deafness… (OPA1 'plus')"),
    "Epithelial basement membrane corneal dystrophy": (("OMIM:121820",), "the same name in OMIM"),
    "Glaucoma sleep apnea": (("ORPHA:2085",), "glaucoma-sleep apnea syndrome"),
    "Hereditary endotheliopathy, retinopathy, nephropathy, and stroke": (("OMIM:192315", "ORPHA:247691"), "HERNS, now one retinal vasculopathy with cerebral leukoencephalopathy (RVCL)"),
    "Hereditary vascular retinopathy": (("OMIM:192315", "ORPHA:247691"), "HVR, one form of RVCL"),
    "Retinal vasculopathy with cerebral leukodystrophy": (("OMIM:192315", "ORPHA:247691"), "RVCL"),
    "Ichthyosiform erythroderma, corneal involvement, deafness": (("OMIM:242150",), "the same name in OMIM"),
    "Lattice corneal dystrophy type 1": (("OMIM:122200", "ORPHA:98964"), "lattice corneal dystrophy type I"),
    "lattice corneal dystrophy type I": (("OMIM:122200", "ORPHA:98964"), "lattice corneal dystrophy type I"),
    "Lattice corneal dystrophy type 3A": (("OMIM:608471",), "corneal dystrophy, lattice type IIIA"),
    "Macular dystrophy, atypical vitelliform": (("OMIM:153840",), "macular dystrophy, vitelliform, 1 (atypical)"),
    "Macular dystrophy, corneal type 1": (("OMIM:217800", "ORPHA:98969"), "macular corneal dystrophy 1"),
    "Meesmann corneal dystrophy": (("OMIM:122100", "OMIM:618767"), "Meesmann corneal dystrophy 1 and 2"),
    "Microphthalmia microtia fetal akinesia": (("ORPHA:2547",), "the same syndrome"),
    "Microphthalmia syndromic 7": (("ORPHA:2556",), "MCOPS7 is microphthalmia with linear skin defects"),
    "microphthalmia with linear skin defects syndrome": (("ORPHA:2556",), "the same name in Orphanet"),
    "Syndromic microphthalmia, type 3": (("OMIM:206900",), "microphthalmia, syndromic 3"),
    "SOX2 anophthalmia syndrome": (("OMIM:206900",), "microphthalmia, syndromic 3 is the SOX2 anophthalmia syndrome"),
    "Muscular dystrophy, congenital, infantile with cataract and hypogonadism": (("OMIM:254000", "ORPHA:1875"), "the same syndrome"),
    "Nephrotic syndrome ocular anomalies": (("OMIM:614199",), "nephrotic syndrome type 5 with or without ocular abnormalities"),
    "Neuromyelitis Optica": (("ORPHA:71211",), "neuromyelitis optica spectrum disorder"),
    "neuromyelitis optica": (("ORPHA:71211",), "neuromyelitis optica spectrum disorder"),
    "Oculodentoosseous dysplasia recessive": (("OMIM:257850",), "oculodentodigital dysplasia, autosomal recessive"),
    "Patterned dystrophy of retinal pigment epithelium": (("OMIM:169150",), "macular dystrophy, patterned, 1"),
    "Pterygium of the conjunctiva and cornea": (("OMIM:178000", "ORPHA:2989"), "familial pterygium of the conjunctiva (and cornea)"),
    "Septo-Optic Dysplasia": (("OMIM:182230", "ORPHA:3157"), "septo-optic dysplasia"),
    "Septo-optic dysplasia": (("OMIM:182230", "ORPHA:3157"), "septo-optic dysplasia"),
    "septo-optic dysplasia": (("OMIM:182230", "ORPHA:3157"), "septo-optic dysplasia"),
    "Sjogren's Syndrome": (("OMIM:270150",), "Sjogren syndrome"),
    "Spastic quadriplegia retinitis pigmentosa mental retardation": (("OMIM:270950",), "the same name in OMIM"),
    "Split hand split foot nystagmus": (("OMIM:183800",), "split-hand with congenital nystagmus, fundal changes, and cataracts"),
    "Tetraamelia with ectodermal dysplasia and lacrimal duct abnormalities": (("OMIM:273390",), "the same name in OMIM"),
    "Tremors, nystagmus and duodenal ulcers": (("OMIM:190310", "ORPHA:3350"), "the same syndrome"),
    "Tubulointerstitial nephritis and uveitis": (("ORPHA:91500",), "TINU syndrome"),
    "Vertebral fusion posterior lumbosacral blepharoptosis": (("OMIM:192800", "ORPHA:2064"), "the same syndrome"),
    "Vitreoretinochoroidopathy dominant": (("OMIM:193220",), "vitreoretinochoroidopathy (autosomal dominant)"),
    "autosomal dominant vitreoretinochoroidopathy": (("OMIM:193220",), "vitreoretinochoroidopathy (autosomal dominant)"),
    "X-linked congenital stationary night blindness": (("OMIM:310500", "OMIM:300071"), "CSNB 1A and 2A, the X-linked types"),
    "autosomal dominant congenital stationary night blindness": (("OMIM:163500", "OMIM:610444", "OMIM:610445"), "the autosomal dominant CSNB types"),
    "autosomal recessive congenital stationary night blindness": (("ORPHA:215",), "congenital stationary night blindness (the recessive types have no one entry)"),
    "X-linked infantile nystagmus": (("OMIM:310700", "OMIM:300814"), "nystagmus 1 (FRMD7) and 6 (GPR143), X-linked"),
    "coloboma": (("OMIM:120200",), "coloboma, ocular"),
    "deafness-dystonia-optic neuronopathy syndrome": (("OMIM:304700", "ORPHA:52368"), "Mohr-Tranebjaerg syndrome"),
    "early-onset glaucoma": (("ORPHA:98976", "ORPHA:98977"), "congenital and juvenile glaucoma, the two forms the text covers"),
    "gyrate atrophy of the choroid and retina": (("ORPHA:414", "OMIM:258870"), "the same condition"),
    "hypomyelination and congenital cataract": (("ORPHA:85163",), "hypomyelination-congenital cataract syndrome"),
    "ocular albinism": (("OMIM:300500", "ORPHA:54"), "ocular albinism type I (X-linked)"),
    "Oculocutaneous albinism": (("OMIM:203100", "OMIM:606952", "OMIM:203200", "OMIM:203290", "OMIM:606574", "OMIM:615312", "OMIM:113750"),
                                "every oculocutaneous albinism type in the graph"),
    "oculocutaneous albinism": (("OMIM:203100", "OMIM:606952", "OMIM:203200", "OMIM:203290", "OMIM:606574", "OMIM:615312", "OMIM:113750"),
                                "every oculocutaneous albinism type in the graph"),
    "Oculocutaneous albinism type 1B": (("ORPHA:79434", "OMIM:606952"), "OCA1B"),
    "Oculocutaneous albinism type 2": (("ORPHA:79432", "OMIM:203200"), "OCA2"),
    "Oculocutaneous albinism type 3": (("ORPHA:79433", "OMIM:203290"), "OCA3"),
    "vitelliform macular dystrophy": (("OMIM:153700", "ORPHA:1243", "ORPHA:99000"), "Best disease and the adult-onset form, the two the text covers"),
    "Best vitelliform macular dystrophy": (("OMIM:153700", "ORPHA:1243"), "Best disease (vitelliform macular dystrophy 2)"),
    "Sjogren syndrome": (("OMIM:270150",), "Sjogren syndrome"),
}
#: The note of a focus the review found no Disease entity for among the lookup's candidates (listed after it).
REVIEWED_NONE = "reviewed: no Disease entity of the graph is this condition"
#: Foci reviewed with no Disease entity of the graph naming that condition: focus → reason.
NO_DISEASE: dict[str, str] = {
    "Corneal Disorders": "a group of conditions, not one disease",
    "Eye Cancer": "a group of conditions, not one disease",
    "Eye Diseases": "a group of conditions, not one disease",
    "Eye Infections": "a group of conditions, not one disease",
    "Eye Injuries": "a group of conditions, not one disease",
    "Eye Movement Disorders": "a group of conditions, not one disease",
    "Eyelid Disorders": "a group of conditions, not one disease",
    "Retinal Disorders": "a group of conditions, not one disease",
    "Low Vision": "a state of vision, not one disease",
    "Vision Impairment and Blindness": "a state of vision, not one disease",
    "Prevent diabetes problems: Keep your eyes healthy": "advice, not one disease (diabetic eye disease is named in it)",
    "microphthalmia": "isolated and syndromic forms; no one Disease entity",
    "Acanthamoeba - Granulomatous Amebic Encephalitis (GAE); Keratitis": "an infection with two diseases; Acanthamoeba keratitis has no entity of its own",
    "Retinochoroidal coloboma": "a form of ocular coloboma, not the OMIM entry's condition",
}

def norm(text: str) -> str:
    """Case-folded, letters and digits only, words kept apart: 'Sjögren's syndrome' → 'sjogren s syndrome'."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text).split())


def graph_index() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, str]]:
    """(lexicon disease name → its class's Disease ids, Disease name → ids, id → name) from the sources' files."""
    collected = collect(SOURCE_ORDER, progress=False)
    diseases = {r.id: r for r in collected.entities if r.kind == "disease"}
    maps = defaultdict(set)
    for rel in collected.relations:
        if rel.type == "MAPS_TO":
            maps[rel.start].add(rel.end)
    lexicon: dict[str, set[str]] = defaultdict(set)
    names: dict[str, set[str]] = defaultdict(set)
    for record in diseases.values():
        if record.source == "OVP-lexicon":
            ids = {record.id} | {m for m in maps[record.id] if m in diseases}
            for name in [record.name, *(s.text for s in record.synonyms if s.lang == "en")]:
                lexicon[norm(name)] |= ids
        else:
            names[norm(record.name)].add(record.id)
    return lexicon, names, {i: r.name for i, r in diseases.items()}


def map_focus(doc: dict, lexicon: dict[str, set[str]], names: dict[str, set[str]]) -> tuple[list[str], str, str]:
    """(graph ids, how, notes) of one document's focus."""
    focus = doc["focus"]
    if focus in MANUAL:
        ids, reason = MANUAL[focus]
        return sorted(ids), "manual", reason
    keys = [norm(focus), *(norm(s) for s in doc["focus_synonyms"])]
    hits: set[str] = set()
    rules = []
    for rule, table in (("lexicon", lexicon), ("name", names)):
        found = set().union(*(table.get(k, set()) for k in keys))
        if found:
            hits |= found
            rules.append(rule)
    if hits:
        return sorted(hits), "+".join(rules), ""
    return [], "none", NO_DISEASE.get(focus, REVIEWED_NONE)


def lookup_candidates(foci: list[str], id_names: dict[str, str]) -> dict[str, str]:
    """Top full-text Disease hits per focus (for review only; never written as a mapping by themselves)."""
    from kg_builder.store.entities import lookup
    from kg_builder.graph import Graph
    from ovp.settings import Settings

    out = {}
    with Graph.connect(Settings.from_env()) as graph:
        for focus in foci:
            hits = [h for h in lookup(graph, focus, limit=15) if h.kind == "disease"][:3]
            out[focus] = "candidates: " + "; ".join(f"{h.id} {h.name}" for h in hits)
    return out


def split_items(docs: list[dict], mapped: dict[str, tuple[list[str], str, str]]) -> dict[str, str]:
    """focus → 'dev' | 'test' by the rule of the module docstring."""
    parent = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for doc in docs:
        node = "focus:" + norm(doc["focus"])
        find(node)
        for graph_id in mapped[doc["focus"]][0]:
            a, b = find(node), find("id:" + graph_id)
            if a != b:
                parent[max(a, b)] = min(a, b)
    size: dict[str, int] = defaultdict(int)
    first: dict[str, str] = {}
    for doc in docs:
        root = find("focus:" + norm(doc["focus"]))
        size[root] += 2 * len(doc["qa_pairs"])  # a question and an answer passage per pair
        first[root] = min(first.get(root, "~"), norm(doc["focus"]))
    halves = {"dev": 0, "test": 0}
    half_of_root = {}
    for root in sorted(size, key=lambda r: hashlib.sha256(first[r].encode()).hexdigest()):
        half = "dev" if halves["dev"] <= halves["test"] else "test"
        half_of_root[root] = half
        halves[half] += size[root]
    return {doc["focus"]: half_of_root[find("focus:" + norm(doc["focus"]))] for doc in docs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", action="store_true", help="add the lookup's Disease candidates to unmapped rows' notes")
    args = parser.parse_args(argv)
    docs = [json.loads(line) for line in DOCUMENTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    lexicon, names, id_names = graph_index()
    mapped = {doc["focus"]: map_focus(doc, lexicon, names) for doc in docs}
    if args.candidates:
        todo = [f for f, (ids, how, notes) in mapped.items() if how == "none" and notes == REVIEWED_NONE]
        for focus, note in lookup_candidates(todo, id_names).items():
            mapped[focus] = ([], "none", f"{REVIEWED_NONE}; {note}")
    split = split_items(docs, mapped)
    cuis: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        cuis[doc["focus"]] = list(dict.fromkeys(cuis[doc["focus"]] + doc["cuis"]))
    with open(MAPPING, "w", encoding="utf-8", newline="") as out:
        out.write("# MedQuAD eye focus conditions → Disease entities of the graph (see map_focus.py for the rule).\n"
                  "# Written and reviewed before any threshold was chosen on this set.\n")
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for focus in sorted(mapped, key=str.casefold):
            ids, how, notes = mapped[focus]
            named = "; ".join(f"{i} {id_names.get(i, '?')}" for i in ids)
            writer.writerow([focus, "|".join(cuis[focus]), "|".join(ids), how, (notes + (" | " if notes and named else "") + named)])
    with open(ITEMS, "w", encoding="utf-8") as out:
        for doc in docs:
            ids = mapped[doc["focus"]][0]
            for pair in doc["qa_pairs"]:
                for kind in ("question", "answer"):
                    out.write(json.dumps({
                        "item_id": f"{doc['doc_id']}#{pair['qid']}:{kind}",  # qids repeat across collections
                        "doc_id": doc["doc_id"], "kind": kind, "qtype": pair["qtype"], "text": pair[kind],
                        "focus": doc["focus"], "gold": ids, "split": split[doc["focus"]],
                    }, ensure_ascii=False) + "\n")
    counts = defaultdict(int)
    for doc in docs:
        counts[split[doc["focus"]]] += 2 * len(doc["qa_pairs"])
    hows = defaultdict(int)
    for ids, how, _ in mapped.values():
        hows[how] += 1
    print(json.dumps({"foci": len(mapped), "how": dict(hows), "items": dict(counts)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
