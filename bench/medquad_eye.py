"""Typed loader of the MedQuAD eye evaluation set (``tests/data/medquad_eye/``): real consumer questions and NIH answer
passages whose focus condition is known, with the graph's Disease ids as gold.

Each item is one question or one answer passage; ``split`` is ``"dev"`` (for choosing thresholds) or ``"test"``
(scored once, after the thresholds are frozen). How the set was made, the mapping rule and the split rule:
``tests/data/medquad_eye/README.md``. MedQuAD is CC BY 4.0 (Ben Abacha & Demner-Fushman 2019).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ovp.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "tests" / "data" / "medquad_eye"
ITEMS_FILE = DATA_DIR / "items.jsonl"
MAPPING_FILE = DATA_DIR / "focus_mapping.tsv"
SPLITS: tuple[str, str] = ("dev", "test")
KINDS: tuple[str, str] = ("question", "answer")


@dataclass(frozen=True)
class EvalItem:
    """One question or answer passage.

    Attributes:
        item_id: ``<collection>/<document>#<MedQuAD qid>:question`` (or ``:answer``); unique.
        doc_id: ``<collection>/<document>`` in MedQuAD.
        kind: ``"question"`` or ``"answer"``.
        qtype: MedQuAD's question type (information, symptoms, treatment, …).
        text: the question or the answer passage, as MedQuAD has it.
        focus: the document's focus condition.
        gold: the Disease ids of the graph that name the focus ((): the graph has no disease for it).
        split: ``"dev"`` or ``"test"``.
    """

    item_id: str
    doc_id: str
    kind: str
    qtype: str
    text: str
    focus: str
    gold: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class FocusMapping:
    """One row of the focus → graph ids mapping (written before any threshold was chosen)."""

    focus: str
    umls_cuis: tuple[str, ...]
    graph_ids: tuple[str, ...]
    how: str  # lexicon, name, lexicon+name, manual, none
    notes: str


def load_items(split: str | None = None, path: Path = ITEMS_FILE) -> list[EvalItem]:
    """The items of one half (``"dev"``/``"test"``) or of both (None), in file order.

    Raises:
        ValueError: an unknown split asked for, or a line of the file that is not a valid item (names the line).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = EvalItem(row["item_id"], row["doc_id"], row["kind"], row["qtype"], row["text"], row["focus"],
                            tuple(row["gold"]), row["split"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a valid item ({exc})") from exc
        if item.kind not in KINDS or item.split not in SPLITS or not item.text:
            raise ValueError(f"{path}:{number}: kind {item.kind!r}, split {item.split!r} or empty text")
        if split is None or item.split == split:
            items.append(item)
    return items


def load_mapping(path: Path = MAPPING_FILE) -> list[FocusMapping]:
    """Every focus with its graph ids and how they were mapped."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return [
        FocusMapping(row["focus"], tuple(filter(None, row["umls_cuis"].split("|"))),
                     tuple(filter(None, row["graph_ids"].split("|"))), row["how"], row["notes"])
        for row in csv.DictReader(lines, delimiter="\t")
    ]
