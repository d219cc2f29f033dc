"""Chinese names in the knowledge-graph sources, as pure parsing (no Neo4j): the official HPO labels (CHPO), the CMeKG
synonyms, how the builder applies synonyms of a synonym source, and the vendored files themselves."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from kg_builder.build import CollectedSources, add_synonyms, collect, find_problems
from kg_builder.data.extract_cmekg import RefusingUnpickler, eye_rows, is_eye_entity
from kg_builder.data.map_cmekg import REFUSED_ALIASES, read_extract
from kg_builder.records import EntityRecord, Synonym, SynonymRecord
from kg_builder.source_config import CMEKG_MAPPING_FILE, HPO_ZH_FILE, SOURCE_ORDER
from kg_builder.sources.cmekg import COLUMNS, cmekg_version, parse_cmekg_mapping, read_cmekg_synonyms
from kg_builder.sources.hpo import eye_term_ids, hpo_version, load_hpo, read_hpo_eye
from kg_builder.sources.hpo_zh import HPO_ZH_COLUMNS, parse_zh_labels, read_zh_labels
from kg_builder.sources.lexicon import mapped_ids
from ovp.errors import SourceValidationError

ZH = "# commit: abc1234\n" + "\t".join(HPO_ZH_COLUMNS) + "\nHP:0000501\tGlaucoma\t青光眼\tOFFICIAL\nHP:0000478\t\"Abnormality, eye\"\t眼部异常\tOFFICIAL\n"
HEADER = "\t".join(COLUMNS)


def _mapping(*rows: str) -> str:
    return "# a comment\n" + HEADER + "\n" + "\n".join(rows) + "\n"


# --- official HPO labels --------------------------------------------------------------------------------------------

def test_zh_labels_parse_with_version_and_quoted_values() -> None:
    labels = parse_zh_labels(ZH, path="zh.tsv")
    assert labels.version == "abc1234"
    assert labels.labels == {"HP:0000501": "青光眼", "HP:0000478": "眼部异常"}
    assert labels.english["HP:0000478"] == "Abnormality, eye"  # the babelon file quotes values CSV-style


@pytest.mark.parametrize("text, problem", [
    (ZH.replace("# commit: abc1234\n", ""), "no '# commit:' header"),
    (ZH.replace("translation_value", "label"), "expected the tab-separated columns"),
    (ZH.replace("HP:0000501", "HP:501"), "'HP:501' is not an HPO id"),
    (ZH.replace("青光眼", ""), "HP:0000501 has an empty Chinese label"),
    (ZH.replace("\tOFFICIAL\nHP:0000478", "\tCANDIDATE\nHP:0000478"), "only OFFICIAL labels"),
    (ZH + "HP:0000501\tGlaucoma\t青光眼\tOFFICIAL\n", "zh.tsv:5: HP:0000501 is listed twice"),
    (ZH + "HP:0000502\tx\n", "expected 4 columns, got 2"),
])
def test_zh_labels_refuse_malformed_files_naming_the_line(text: str, problem: str) -> None:
    with pytest.raises(SourceValidationError, match=problem):
        parse_zh_labels(text, path="zh.tsv")


def test_hpo_source_gives_each_term_its_official_label_and_a_versioned_source(tmp_path: Path) -> None:
    from tests.test_kg_sources import OBO

    obo, zh = tmp_path / "hp.obo", tmp_path / "zh.tsv"
    obo.write_text(OBO, encoding="utf-8")
    zh.write_text(ZH, encoding="utf-8")
    entities = {r.id: r for r in read_hpo_eye(obo, zh_path=zh) if isinstance(r, EntityRecord)}
    assert (entities["HP:0000501"].name_zh, entities["HP:0000478"].name_zh) == ("青光眼", "眼部异常")
    assert entities["HP:0000501"].source_version == hpo_version("2025-01-16", "abc1234") == "2025-01-16+zh.abc1234"
    with pytest.raises(SourceValidationError, match="not found"):
        list(read_hpo_eye(obo, zh_path=tmp_path / "missing.tsv"))


def test_vendored_labels_cover_every_hpo_term_the_graph_reads() -> None:
    """The vendored file has exactly the terms the HPO source reads; a lexicon mapping to a new HPO term fails here
    until kg_builder/data/vendor_hpo_zh.py is run again."""
    labels = read_zh_labels(HPO_ZH_FILE)
    assert labels.version == "62f1d25"
    doc = load_hpo()
    wanted = eye_term_ids(doc, extra_ids=mapped_ids())
    assert set(labels.labels) == wanted
    assert all(labels.english[t] == doc.terms[t].name for t in wanted)  # translations of the labels we have
    assert labels.labels["HP:0000501"] == "青光眼" and labels.labels["HP:0000316"] == "眼距过宽"
    assert "../shared" not in HPO_ZH_FILE.read_text(encoding="utf-8")


# --- CMeKG ---------------------------------------------------------------------------------------------------------

def test_cmekg_rows_become_exact_chinese_synonyms_with_their_source() -> None:
    text = _mapping(
        "麦粒肿\tH00.0\thordeolum\tOVP:stye\tStye\tlexicon\t睑腺炎|针眼\t\t",
        "A—V综合征\t\tA—Vsyndrome\t\t\tunmapped\t\t\t",
    )
    records = list(parse_cmekg_mapping(text, path="m.tsv", version="v1"))
    assert [(r.entity_id, r.synonym.text, r.origin) for r in records] == [("OVP:stye", "睑腺炎", "m.tsv:3"), ("OVP:stye", "针眼", "m.tsv:3")]
    assert {(r.synonym.scope, r.synonym.lang, r.synonym.source, r.synonym.source_version) for r in records} == {("EXACT", "zh", "CMeKG", "v1")}


@pytest.mark.parametrize("row, problem", [
    ("x\t\t\tICD10 H00\t\tlexicon\t针眼\t\t", "is not a CURIE"),
    ("x\t\t\t\t\tunmapped\t针眼\t\t", "has synonyms but no graph_id"),
    ("x\t\t\tOVP:stye\t\tlexicon\tstye\t\t", "'stye' is not a Chinese name"),
    ("x\t\t\tOVP:stye\t\tlexicon\t" + "眼" * 41 + "\t\t", "not a Chinese name of at most 40"),
    ("x\tOVP:stye\tlexicon", "expected 9 columns, got 3"),
])
def test_cmekg_mapping_refuses_damaged_rows(row: str, problem: str) -> None:
    with pytest.raises(SourceValidationError, match=problem):
        list(parse_cmekg_mapping(_mapping(row), path="m.tsv", version="v1"))
    with pytest.raises(SourceValidationError, match="expected the tab-separated columns"):
        list(parse_cmekg_mapping("cmekg_name\tgraph_id\n", path="m.tsv", version="v1"))


def test_cmekg_file_is_read_with_its_version(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_bytes(_mapping("麦粒肿\t\t\tOVP:stye\t\tlexicon\t偷针\t\t").encode())
    version, records = read_cmekg_synonyms(path)
    assert version == cmekg_version(path.read_bytes()) and len(version) == 12 and records[0].synonym.source_version == version
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(SourceValidationError, match="not UTF-8"):
        read_cmekg_synonyms(path)


def test_refusing_unpickler_loads_plain_data_and_refuses_any_class() -> None:
    plain = {"麦粒肿": {"别称": ["针眼"], "就诊科室": ["眼科"]}}
    assert RefusingUnpickler(io.BytesIO(pickle.dumps(plain, protocol=0))).load() == plain
    hostile = pickle.dumps(Path("/etc/passwd"))  # a pickle that names a class (pathlib.PosixPath)
    with pytest.raises(pickle.UnpicklingError, match="refused to load pathlib"):
        RefusingUnpickler(io.BytesIO(hostile)).load()


def test_eye_selection_by_department_or_chapter_vii_code() -> None:
    db = {
        "斜视": {"就诊科室": ["眼科"], "别称": ["斜眼"], "ICD10": ["H50.9"], "英文名称": ["strabismus"]},
        "泪腺炎": {"ICD10": ["H04.0"]},
        "感冒": {"就诊科室": ["内科"], "ICD10": ["J00"]},
    }
    assert [is_eye_entity(db[n]) for n in db] == [True, True, False]
    assert eye_rows(db)[0] == {"name": "斜视", "aliases": ["斜眼"], "english": ["strabismus"], "icd10": ["H50.9"], "departments": ["眼科"]}


def test_vendored_cmekg_mapping_is_reviewed_and_points_at_graph_entities() -> None:
    """Every mapped target is an entity the sources yield, no Chinese synonym goes to two concepts, the refused
    aliases stay out, and the examples the issue names are there."""
    version, records = read_cmekg_synonyms(CMEKG_MAPPING_FILE)
    collected = collect(SOURCE_ORDER, progress=False)
    ids = {record.id for record in collected.entities}
    assert {r.entity_id for r in records} <= ids and not collected.unapplied
    owners: dict[str, set[str]] = {}
    for r in records:
        owners.setdefault(r.synonym.text, set()).add(r.entity_id)
    assert all(len(v) == 1 for v in owners.values()), {k: v for k, v in owners.items() if len(v) > 1}
    assert not {alias for _, alias in REFUSED_ALIASES} & set(owners)
    assert owners["兔眼"] == {"ICD10:H02.2"} and owners["交感性眼炎"] == {"ORPHA:79098"}
    extract = {row["name"]: row for row in read_extract()}
    assert extract["麦粒肿"]["aliases"] == ["睑腺炎", "针眼"] and extract["斜视"]["aliases"] == ["斜眼"]


# --- applying synonyms in the builder -------------------------------------------------------------------------------

def test_add_synonyms_skips_names_and_synonyms_the_entity_has() -> None:
    record = EntityRecord("OVP:stye", "disease", "Stye", "OVP-lexicon", "v", name_zh="麦粒肿",
                          synonyms=(Synonym("针眼", lang="zh"),))
    extra = [SynonymRecord("OVP:stye", Synonym(text, lang="zh", source="CMeKG", source_version="c1")) for text in ("麦粒肿", "针眼", "偷针", "偷针")]
    updated = add_synonyms(record, extra)
    assert [(s.text, s.source) for s in updated.synonyms] == [("针眼", ""), ("偷针", "CMeKG")]
    assert add_synonyms(record, extra[:2]) is record


def test_a_synonym_for_an_unknown_id_is_a_problem_unless_the_graph_has_the_entity() -> None:
    unknown = [SynonymRecord("ICD10:H99", Synonym("某病", lang="zh", source="CMeKG"), origin="m.tsv:7")]
    every_source = CollectedSources(keys=SOURCE_ORDER, unapplied=unknown)
    assert find_problems(every_source) == ["m.tsv:7: synonym '某病' for unknown id ICD10:H99"]
    partial = CollectedSources(keys=("icd10",), unapplied=unknown)
    assert find_problems(partial, known_ids=set()) == ["m.tsv:7: synonym '某病' for unknown id ICD10:H99"]
    assert find_problems(partial, known_ids={"ICD10:H99"}) == []
    assert find_problems(partial) == []  # no graph consulted: the id may belong to a source not read now


def test_a_partial_build_applies_the_synonyms_of_the_entities_it_reads() -> None:
    collected = collect(("icd10",), progress=False)
    lagophthalmos = next(r for r in collected.entities if r.id == "ICD10:H02.2")
    assert ("兔眼", "CMeKG") in {(s.text, s.source) for s in lagophthalmos.synonyms}
    assert collected.counts["cmekg"]["synonyms"] > 50
    assert collected.unapplied and all(not s.entity_id.startswith("ICD10:") for s in collected.unapplied)
    plain = collect(("icd10",), progress=False, synonym_sources=False)
    assert "兔眼" not in {s.text for r in plain.entities if r.id == "ICD10:H02.2" for s in r.synonyms}
