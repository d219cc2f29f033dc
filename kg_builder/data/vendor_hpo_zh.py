"""Vendor the official Chinese HPO labels of the terms the knowledge graph reads into ``kg_builder/data/hpo_zh.tsv``.

Run by hand from the repository root (never by the set-up or the build), with the CHPO babelon file as argument::

    python kg_builder/data/vendor_hpo_zh.py PATH/TO/hp-zh.babelon.tsv

The input is ``babelon/hp-zh.babelon.tsv`` of the repository obophenotype/hpo-translations at commit 62f1d25
(2026-06-22): the official Chinese labels of the Human Phenotype Ontology from the Chinese HPO consortium (CHPO).
Only the rows of the terms the HPO source reads are kept (the eye and ocular-adnexa subtrees, plus the HPO terms the
lexicon maps to: :func:`kg_builder.sources.hpo.eye_term_ids`); columns and values are copied unchanged. Rerun it when
the lexicon maps to a new HPO term or the HPO release changes; the build reports terms without a Chinese label.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from kg_builder.source_config import HPO_ZH_FILE
from kg_builder.sources.hpo import eye_term_ids, load_hpo
from kg_builder.sources.hpo_zh import HPO_ZH_COLUMNS
from kg_builder.sources.lexicon import mapped_ids

SOURCE = {
    "repository": "obophenotype/hpo-translations",
    "file": "babelon/hp-zh.babelon.tsv",
    "commit": "62f1d25",
    "date": "2026-06-22",
}
HEADER = f"""\
# Official Chinese labels of the Human Phenotype Ontology (HPO) terms this knowledge graph reads: the eye
# (HP:0000478) and ocular-adnexa (HP:0032039) subtrees and the HPO terms the OVP lexicon maps to.
# Translations by the Chinese HPO consortium (CHPO), published in the babelon format.
# source-repository: {SOURCE['repository']}
# source-file: {SOURCE['file']}
# commit: {SOURCE['commit']}
# date: {SOURCE['date']}
# licence: the HPO licence (free use with attribution); see docs/credits.md
# attribution: This service/product uses the Human Phenotype Ontology (version {{release}}) and its Chinese
#   translation by the Chinese HPO consortium (CHPO). Find out more at http://www.human-phenotype-ontology.org
# Rows copied unchanged (columns below); regenerate with: python kg_builder/data/vendor_hpo_zh.py hp-zh.babelon.tsv
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("babelon", type=Path, help="hp-zh.babelon.tsv of obophenotype/hpo-translations")
    parser.add_argument("--out", type=Path, default=HPO_ZH_FILE)
    args = parser.parse_args(argv)
    doc = load_hpo()
    wanted = eye_term_ids(doc, extra_ids=mapped_ids())
    with open(args.babelon, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t") if row["subject_id"] in wanted]
    rows.sort(key=lambda row: row["subject_id"])
    missing = sorted(wanted - {row["subject_id"] for row in rows})
    release = doc.data_version.rsplit("/", 1)[-1]
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER.format(release=release))
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(HPO_ZH_COLUMNS)
        for row in rows:
            writer.writerow([row[column] for column in HPO_ZH_COLUMNS])
    print(f"{len(rows)} of {len(wanted)} terms written to {args.out}; without a Chinese label: {len(missing)}"
          + (f" ({', '.join(missing[:10])})" if missing else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
