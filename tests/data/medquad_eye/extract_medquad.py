"""Extract the eye-condition documents of MedQuAD into ``tests/data/medquad_eye/documents.jsonl``.

Run by hand from the repository root, with a checkout (or ``git archive``) of the public repository abachaa/MedQuAD
at commit 577bd37 (2023-10-17)::

    python tests/data/medquad_eye/extract_medquad.py PATH/TO/MedQuAD

MedQuAD (Ben Abacha & Demner-Fushman, BMC Bioinformatics 2019; CC BY 4.0) holds consumer questions and NIH answers,
one XML document per focus condition with its UMLS CUIs. That repository has no National Eye Institute collection;
its NEI-written text is in the NIHSeniorHealth collection (age-related macular degeneration, cataract, diabetic
retinopathy, dry eye, glaucoma, low vision). So the eye set is chosen by a fixed rule on the focus name over every
collection that ships answers (the three MedlinePlus A.D.A.M., drugs and herbs collections do not):
a document is kept when its focus matches :data:`EYE_FOCUS` and not :data:`NOT_EYE_FOCUS` (skin keratoderma and
keratosis, pterygium syndromes of the limbs and neck, choriomeningitis: words that look ocular but are not), and
the focus is a condition (MedlinePlus topics with no CUI, "Eye Wear" and "Laser Eye Surgery", are left out).
Text is copied as MedQuAD has it (XML entities decoded, whitespace collapsed); QA pairs without an answer are left out.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).resolve().parent / "documents.jsonl"
COMMIT = "577bd37b96c02d1833b2c9eed2de9f96964e96cb"
#: Collections that ship answers (the numbered folders of the repository).
COLLECTIONS = ("1_CancerGov_QA", "2_GARD_QA", "3_GHR_QA", "4_MPlus_Health_Topics_QA", "5_NIDDK_QA", "6_NINDS_QA",
               "7_SeniorHealth_QA", "8_NHLBI_QA_XML", "9_CDC_QA")
EYE_FOCUS = re.compile(
    r"\b(eyes?|ocular|oculo\w*|ophthalm\w*|retin\w*|cornea\w*|keratitis|keratoconus\w*|keratoconjunctivitis|"
    r"conjunctiv\w*|glaucoma|cataracts?|macula\w*|vision|visual|blind\w*|optic\w*|eyelids?|blephar\w*|lacrimal|"
    r"uveitis|iris|irid\w*|strabismus|nystagmus|amblyopia|myopia|hyperopia|presbyopia|astigmatism|aniridia|"
    r"coloboma\w*|\w*ophthalmia|ptosis|exophthalmos|proptosis|chorioretin\w*|choroid\w*|scler(?:a|itis)|vitre\w*|"
    r"trachoma|amaurosis|\w*chromatopsia|dacryo\w*|orbital|pterygium|sjogren\w*)\b",
    re.IGNORECASE,
)
NOT_EYE_FOCUS = re.compile(r"pterygium (syndrome|colli)|antecubital pterygium|choriomening", re.IGNORECASE)
NOT_A_CONDITION = frozenset({"Eye Wear", "Laser Eye Surgery"})


def _text(element: ET.Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def read_document(path: Path, collection: str) -> dict | None:
    """The document as plain data, or None when it is not kept (see the module docstring)."""
    root = ET.parse(path).getroot()
    focus = _text(root.find("Focus"))
    if not EYE_FOCUS.search(focus) or NOT_EYE_FOCUS.search(focus) or focus in NOT_A_CONDITION:
        return None
    pairs = []
    for pair in root.iter("QAPair"):
        question, answer = pair.find("Question"), pair.find("Answer")
        if answer is None or not _text(answer):
            continue
        pairs.append({"qid": question.get("qid", ""), "qtype": question.get("qtype", ""),
                      "question": _text(question), "answer": _text(answer)})
    if not pairs:
        return None
    return {
        "doc_id": f"{collection}/{path.stem}",
        "source": root.get("source", ""),
        "url": root.get("url", ""),
        "focus": focus,
        "cuis": [c.text.strip() for c in root.iter("CUI") if c.text and c.text.strip()],
        "semantic_types": [t.text.strip() for t in root.iter("SemanticType") if t.text],
        "focus_synonyms": [_text(s) for s in root.iter("Synonym") if _text(s)],
        "qa_pairs": pairs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("medquad", type=Path, help="a checkout of abachaa/MedQuAD at commit 577bd37")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    docs = []
    for collection in COLLECTIONS:
        for path in sorted((args.medquad / collection).glob("*.xml")):
            doc = read_document(path, collection)
            if doc is not None:
                docs.append(doc)
    with open(args.out, "w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    pairs = sum(len(d["qa_pairs"]) for d in docs)
    print(f"{len(docs)} documents, {pairs} QA pairs, {len({d['focus'].casefold() for d in docs})} foci → {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
