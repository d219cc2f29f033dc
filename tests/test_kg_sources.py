"""Knowledge-graph sources and Cypher builders as pure functions: small snippets written here, no Neo4j."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg_builder.build import CollectedSources, collect, find_problems
from kg_builder.records import EntityRecord, RelationRecord, Synonym
from kg_builder.source_config import parse_source_keys
from kg_builder.store.entities import escape_lucene, rank_candidates
from kg_builder.sources.hpo import eye_term_ids, hpo_release, read_hpo_eye
from kg_builder.sources.hpo_diseases import parse_hpoa
from kg_builder.sources.icd10 import icd_version, read_icd10_eye
from kg_builder.sources.lexicon import lexicon_version, read_lexicon
from kg_builder.sources.obo import parse_obo, parse_synonym, read_quoted
from kg_builder.writer import (
    delete_entities_by_id_query,
    delete_source_relations_query,
    entity_row,
    entity_upsert_query,
    relation_row,
    relation_upsert_query,
)
from ovp.errors import SourceValidationError

OBO = """format-version: 1.2
data-version: hp/releases/2025-01-16
synonymtypedef: layperson "layperson term"

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000478
name: Abnormality of the eye
is_a: HP:0000001 ! All

[Term]
id: HP:0000501
name: Glaucoma
def: "Loss of retinal ganglion cells \\"in a pattern\\"." [PMID:11815354, https://orcid.org/0000]
synonym: "Raised eye pressure damage" EXACT layperson [https://orcid.org/0000]
synonym: "Glaucomatous optic neuropathy" RELATED []
synonym: "GON" EXACT abbreviation []
synonym: "Optic nerve damage" BROAD layperson []
synonym: "Angle-closure glaucoma" NARROW []
xref: UMLS:C0017601
xref: SNOMEDCT_US:23986001 {source="x"}
is_a: HP:0000478 ! Abnormality of the eye
is_a: HP:0000001 ! All

[Term]
id: HP:0000999
name: Old eye term
is_obsolete: true
is_a: HP:0000478

[Term]
id: HP:0001000
name: Abnormality of the heart
is_a: HP:0000001

[Typedef]
id: part_of
name: part of
"""


def _doc():
    return parse_obo(OBO.splitlines(keepends=True), "hp.obo")


# --- OBO ---------------------------------------------------------------------------------------------------------

def test_read_quoted_unescapes_and_returns_the_rest() -> None:
    assert read_quoted('"a \\"b\\" c" [X:1]') == ('a "b" c', "[X:1]")
    with pytest.raises(ValueError):
        read_quoted('"never closed')


def test_synonym_keeps_scope_and_layperson_type() -> None:
    assert parse_synonym('"Pink eye" EXACT layperson [https://orcid.org/1]').layperson
    synonym = parse_synonym('"Conjunctivitis, recurrent" RELATED [https://orcid.org/1]')
    assert (synonym.text, synonym.scope, synonym.type, synonym.layperson) == ("Conjunctivitis, recurrent", "RELATED", "", False)
    assert parse_synonym('"GON" EXACT abbreviation []').type == "abbreviation"


def test_obo_header_terms_and_typedefs() -> None:
    doc = _doc()
    assert hpo_release(doc) == "2025-01-16"
    assert set(doc.terms) == {"HP:0000001", "HP:0000478", "HP:0000501", "HP:0000999", "HP:0001000"}  # no Typedef
    glaucoma = doc.terms["HP:0000501"]
    assert glaucoma.definition == 'Loss of retinal ganglion cells "in a pattern".'  # quotes and [refs] stripped
    assert glaucoma.xrefs == ["UMLS:C0017601", "SNOMEDCT_US:23986001"]
    assert glaucoma.is_a == ["HP:0000478", "HP:0000001"]  # "! comment" stripped
    assert glaucoma.line == 14
    assert doc.terms["HP:0000999"].obsolete


def test_eye_subtree_skips_obsolete_and_other_branches() -> None:
    assert eye_term_ids(_doc()) == {"HP:0000478", "HP:0000501"}


def test_hpo_source_yields_phenotypes_with_scoped_synonyms_and_inner_is_a(tmp_path: Path) -> None:
    path = tmp_path / "hp.obo"
    path.write_text(OBO, encoding="utf-8")
    records = list(read_hpo_eye(path, zh_path=None))
    entities = {r.id: r for r in records if isinstance(r, EntityRecord)}
    relations = [(r.start, r.type, r.end) for r in records if isinstance(r, RelationRecord)]
    assert set(entities) == {"HP:0000478", "HP:0000501"}
    glaucoma = entities["HP:0000501"]
    assert (glaucoma.kind, glaucoma.source, glaucoma.source_version) == ("phenotype", "HPO", "2025-01-16")
    assert [(s.text, s.scope, s.layperson) for s in glaucoma.synonyms] == [
        ("Raised eye pressure damage", "EXACT", True),
        ("Glaucomatous optic neuropathy", "RELATED", False),
        ("GON", "EXACT", False),
        ("Optic nerve damage", "BROAD", True),
        ("Angle-closure glaucoma", "NARROW", False),
    ]
    assert glaucoma.origin == f"{path}:14"
    # Only edges inside the subtree: not HP:0000478 → HP:0000001, not HP:0000501 → HP:0000001.
    assert relations == [("HP:0000501", "IS_A", "HP:0000478")]


# --- HPO annotations ----------------------------------------------------------------------------------------------

HPOA = (
    "#description: test\n#version: 2025-01-16\n"
    "database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier\taspect\tbiocuration\n"
    "OMIM:1\tEye disease one\t\tHP:0000501\tPMID:1\tPCS\t\t\t\t\tP\tx\n"
    "OMIM:1\tEye disease one\t\tHP:0000501\tPMID:2\tPCS\t\tHP:0040281\t\t\tP\tx\n"
    "ORPHA:2\tEye disease two\t\tHP:0000478\tORPHA:2\tTAS\t\t3/7\t\t\tP\tx\n"
    "ORPHA:3\tNegated\tNOT\tHP:0000501\tORPHA:3\tTAS\t\t\t\t\tP\tx\n"
    "OMIM:4\tOnset only\t\tHP:0000501\tPMID:4\tTAS\t\t\t\t\tC\tx\n"
    "OMIM:5\tHeart disease\t\tHP:0001000\tPMID:5\tTAS\t\t40%\t\t\tP\tx\n"
    "DECIPHER:6\tRegion\t\tHP:0000501\tDECIPHER:6\tIEA\t\t\t\t\tP\tx\n"
)


def test_hpoa_keeps_omim_and_orpha_with_an_eye_phenotype_of_aspect_p() -> None:
    records = list(parse_hpoa(HPOA.splitlines(keepends=True), {"HP:0000478", "HP:0000501"}, path="phenotype.hpoa",
                              frequency_labels={"HP:0040281": "Very frequent"}))
    diseases = {r.id: r for r in records if isinstance(r, EntityRecord)}
    edges = {(r.start, r.end): r.properties for r in records if isinstance(r, RelationRecord)}
    assert set(diseases) == {"OMIM:1", "ORPHA:2"}  # not NOT-qualified, not aspect C, not heart-only, not DECIPHER
    assert diseases["OMIM:1"].name == "Eye disease one"
    assert diseases["OMIM:1"].origin == "phenotype.hpoa:4"
    assert (diseases["OMIM:1"].kind, diseases["OMIM:1"].source, diseases["OMIM:1"].source_version) == (
        "disease", "HPO-annotations", "2025-01-16")
    # Two rows for one pair collapse into one edge, keeping the row that states a frequency.
    assert edges == {
        ("OMIM:1", "HP:0000501"): {"frequency": "HP:0040281", "frequency_label": "Very frequent"},
        ("ORPHA:2", "HP:0000478"): {"frequency": "3/7"},
    }


def test_hpoa_date_header_wins_over_version() -> None:
    records = list(parse_hpoa(["#date: 2024-08-13\n", "#version: x\n", HPOA.splitlines(keepends=True)[2], HPOA.splitlines()[3]],
                              {"HP:0000501"}))
    assert records[0].source_version == "2024-08-13"


# --- ICD-10 ---------------------------------------------------------------------------------------------------------

def test_icd10_chapter_vii_levels_and_parents() -> None:
    records = list(read_icd10_eye())
    entities = {r.id: r for r in records if isinstance(r, EntityRecord)}
    parents = {r.start: r.end for r in records if isinstance(r, RelationRecord)}
    assert icd_version() == "WHO 2019"
    assert entities["ICD10:VII"].name == "Diseases of the eye and adnexa"
    assert entities["ICD10:H40"].name == "Glaucoma"
    assert {"ICD10:H00-H06", "ICD10:H40.1", "ICD10:H52.4"} <= set(entities)
    assert all(code.startswith("ICD10:H") or code == "ICD10:VII" for code in entities)
    assert parents["ICD10:H40.1"] == "ICD10:H40" and parents["ICD10:H40"] == "ICD10:H40-H42"
    assert parents["ICD10:H40-H42"] == "ICD10:VII" and "ICD10:VII" not in parents
    assert all(r.kind == "disease" and r.source_version == "WHO 2019" for r in entities.values())
    assert 250 < len(entities) < 400


# --- lexicon -------------------------------------------------------------------------------------------------------

def _lexicon(tmp_path: Path, entries: list[dict | str]) -> Path:
    lines = ["// test lexicon"] + [e if isinstance(e, str) else json.dumps(e, ensure_ascii=False) for e in entries]
    path = tmp_path / "lexicon.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GLAUCOMA = {"id": "OVP:glaucoma", "kind": "disease", "name": "Glaucoma", "name_zh": "青光眼",
            "synonyms_en": ["high eye pressure"], "synonyms_zh": ["眼压高"], "maps_to": ["HP:0000501", "ICD10:H40"],
            "profile_label": True, "definition": "Optic nerve damage."}


def test_lexicon_entry_becomes_entity_and_maps_to(tmp_path: Path) -> None:
    path = _lexicon(tmp_path, ["", GLAUCOMA])
    records = list(read_lexicon(path))
    entity, *relations = records
    assert (entity.id, entity.kind, entity.name, entity.name_zh, entity.profile_label) == (
        "OVP:glaucoma", "disease", "Glaucoma", "青光眼", True)
    assert entity.synonyms == (Synonym("high eye pressure", "EXACT", True, "en"), Synonym("眼压高", "EXACT", True, "zh"))
    assert entity.source == "OVP-lexicon"
    assert entity.source_version == lexicon_version(path.read_bytes()) and len(entity.source_version) == 12
    assert entity.origin == f"{path}:3"
    assert [(r.start, r.type, r.end) for r in relations] == [
        ("OVP:glaucoma", "MAPS_TO", "HP:0000501"), ("OVP:glaucoma", "MAPS_TO", "ICD10:H40")]


def test_lexicon_has_phenotype_becomes_edges_from_the_disease_and_only_diseases_may_have_it(tmp_path: Path) -> None:
    pain = {"id": "OVP:eye_pain", "kind": "phenotype", "name": "Eye pain", "name_zh": "眼痛", "synonyms_en": [],
            "synonyms_zh": [], "maps_to": [], "definition": "Pain in the eye."}
    disease = {**GLAUCOMA, "maps_to": [], "has_phenotype": ["OVP:eye_pain", "OVP:eye_pain"]}
    records = list(read_lexicon(_lexicon(tmp_path, [pain, disease])))
    assert [(r.start, r.type, r.end, r.source) for r in records if isinstance(r, RelationRecord)] == [
        ("OVP:glaucoma", "HAS_PHENOTYPE", "OVP:eye_pain", "OVP-lexicon")]  # listed twice, one edge
    collected = collect(["lexicon"], lexicon_path=_lexicon(tmp_path, [pain, disease]), progress=False)
    assert find_problems(collected) == []
    dangling = collect(["lexicon"], lexicon_path=_lexicon(tmp_path, [{**disease, "has_phenotype": ["OVP:nope"]}]), progress=False)
    assert [p.split(": ", 1)[1] for p in find_problems(dangling)] == ["HAS_PHENOTYPE OVP:glaucoma → OVP:nope: unknown id OVP:nope"]
    with pytest.raises(SourceValidationError, match="'has_phenotype' is only for diseases, and this entry is a phenotype"):
        list(read_lexicon(_lexicon(tmp_path, [{**pain, "has_phenotype": ["OVP:eye_pain"]}])))
    with pytest.raises(SourceValidationError, match="'has_phenotype' must be a list of strings"):
        list(read_lexicon(_lexicon(tmp_path, [{**disease, "has_phenotype": "OVP:eye_pain"}])))


def test_lexicon_layperson_list_flags_only_the_listed_synonyms(tmp_path: Path) -> None:
    entry = {**GLAUCOMA, "synonyms_en": ["high eye pressure", "ocular hypertension glaucoma"], "layperson": ["high eye pressure"]}
    entity = next(iter(read_lexicon(_lexicon(tmp_path, [entry]))))
    assert [(s.text, s.layperson) for s in entity.synonyms] == [
        ("high eye pressure", True), ("ocular hypertension glaucoma", False), ("眼压高", False)]


def test_lexicon_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = _lexicon(tmp_path, [GLAUCOMA, '{"id": "OVP:x", "kind": '])
    with pytest.raises(SourceValidationError, match=f"{path}:3: not valid JSON"):
        list(read_lexicon(path))


def test_lexicon_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SourceValidationError, match="lexicon file not found"):
        list(read_lexicon(tmp_path / "nope.jsonl"))


# --- validation ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**GLAUCOMA}, "duplicate id OVP:glaucoma (first at {path}:2)"),
        ({**GLAUCOMA, "id": "OVP:x", "name": "  "}, "OVP:x has an empty name"),
        ({**GLAUCOMA, "id": "OVP:x", "kind": "symptom"}, "OVP:x has unknown kind 'symptom'"),
        ({**GLAUCOMA, "id": "OVP:x", "maps_to": ["HP:9999999"]}, "unknown id HP:9999999"),
        ({**GLAUCOMA, "id": "OVP:x", "kind": "anatomy"}, "only diseases can be profile labels"),
    ],
)
def test_validation_names_file_and_line(tmp_path: Path, bad: dict, message: str) -> None:
    path = _lexicon(tmp_path, [{**GLAUCOMA, "maps_to": []}, {**bad, "maps_to": bad["maps_to"] if "HP:9" in str(bad["maps_to"]) else []}])
    collected = collect(["lexicon"], lexicon_path=path, progress=False)
    problems = find_problems(collected)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: ")
    assert message.format(path=path) in problems[0]


def test_validation_accepts_relation_ends_known_to_the_graph() -> None:
    collected = CollectedSources(keys=("lexicon",))
    collected.entities.append(EntityRecord("OVP:a", "disease", "A", "OVP-lexicon", "v", origin="lex:1"))
    collected.relations.append(RelationRecord("OVP:a", "MAPS_TO", "HP:0000501", "OVP-lexicon", origin="lex:1"))
    assert find_problems(collected) == ["lex:1: MAPS_TO OVP:a → HP:0000501: unknown id HP:0000501"]
    assert find_problems(collected, known_ids={"HP:0000501"}) == []


def test_source_keys_parse_in_build_order() -> None:
    assert parse_source_keys("lexicon,hpo") == ("hpo", "lexicon")
    assert parse_source_keys(None) == ("hpo", "hpo-diseases", "icd10", "lexicon")
    with pytest.raises(ValueError, match="unknown source"):
        parse_source_keys("hpo,umls")


# --- Cypher builders -------------------------------------------------------------------------------------------------

def test_entity_upsert_query_sets_the_kind_label_from_the_allow_list() -> None:
    query = entity_upsert_query("disease")
    assert query.startswith("UNWIND $rows AS row\nMERGE (n:Entity {id: row.id})\n")
    assert query.endswith("SET n:Disease\nREMOVE n:Phenotype:Anatomy:Treatment:Exam")
    # Every builder-owned property is set from the row, so a rebuild replaces (or, with null, removes) it.
    for prop in ("name", "name_zh", "definition", "synonyms", "synonyms_text", "xrefs", "source", "profile_label"):
        assert f"n.{prop} = row.{prop}" in query
    with pytest.raises(ValueError, match="unknown entity kind"):
        entity_upsert_query("Disease) DETACH DELETE (n")


def test_relation_upsert_query_matches_both_ends_by_id() -> None:
    assert relation_upsert_query("HAS_PHENOTYPE") == (
        "UNWIND $rows AS row\n"
        "MATCH (a:Entity {id: row.start})\n"
        "MATCH (b:Entity {id: row.end})\n"
        "MERGE (a)-[r:HAS_PHENOTYPE]->(b)\n"
        "SET r += row.props"
    )
    with pytest.raises(ValueError, match="unknown relationship type"):
        relation_upsert_query("KNOWS")


def test_reset_queries_touch_only_entities_and_the_sources_own_relationships() -> None:
    assert delete_entities_by_id_query() == (
        "UNWIND $rows AS row\n"
        "MATCH (n:Entity {id: row.id})\n"
        "DETACH DELETE n"
    )
    assert delete_source_relations_query() == (
        "MATCH (:Entity)-[r]->(:Entity) WHERE r.source IN $sources\n"
        "WITH r LIMIT $limit\n"
        "DELETE r\n"
        "RETURN count(*) AS deleted"
    )


def test_entity_row_has_parallel_synonym_lists_and_joined_text() -> None:
    record = EntityRecord("HP:1", "phenotype", "Red eye", "HPO", "2025", synonyms=(
        Synonym("Pink eye", "EXACT", True), Synonym("Ocular redness", "RELATED", False)), xrefs=("UMLS:C1",), profile_label=True)
    row = entity_row(record)
    assert row["synonyms"] == ["Pink eye", "Ocular redness"]
    assert row["synonym_scopes"] == ["EXACT", "RELATED"]
    assert row["synonym_layperson"] == [True, False]
    assert row["synonyms_text"] == "Pink eye | Ocular redness"
    assert row["name_zh"] is None and row["definition"] is None
    assert row["profile_label"] is None  # only diseases carry profile_label
    assert entity_row(EntityRecord("ICD10:H40", "disease", "Glaucoma", "ICD-10", "WHO 2019"))["profile_label"] is False
    assert relation_row(RelationRecord("OMIM:1", "HAS_PHENOTYPE", "HP:1", "HPO-annotations", {"frequency": "1/2"})) == {
        "start": "OMIM:1", "end": "HP:1", "props": {"frequency": "1/2", "source": "HPO-annotations"}}


# --- lookup helpers ----------------------------------------------------------------------------------------------------

def test_escape_lucene_neutralises_query_syntax() -> None:
    assert escape_lucene('pink eye') == "pink eye"
    assert escape_lucene('a:b OR c* "d" (e) AND NOT f\\') == 'a\\:b or c\\* \\"d\\" \\(e\\) and not f\\\\'
    assert escape_lucene("老花眼") == "老花眼"


def test_rank_puts_exact_curated_matches_first() -> None:
    rows = [
        {"id": "HP:0000509", "name": "Conjunctivitis", "name_zh": None, "synonyms": ["Pink eye"], "source": "HPO", "score": 5.0},
        {"id": "OVP:pink_eye", "name": "Conjunctivitis (pink eye)", "name_zh": "红眼病", "synonyms": ["pink eye"],
         "source": "OVP-lexicon", "score": 3.0},
        {"id": "HP:1", "name": "Pink discoloured eye patches", "name_zh": None, "synonyms": [], "source": "HPO", "score": 7.0},
        {"id": "OVP:pink_eye", "name": "Conjunctivitis (pink eye)", "name_zh": "红眼病", "synonyms": ["pink eye"],
         "source": "OVP-lexicon", "score": 0.0},  # the same node again from the exact-match query
    ]
    ranked = rank_candidates("Pink  Eye", rows)
    assert [row["id"] for row in ranked] == ["OVP:pink_eye", "HP:0000509", "HP:1"]
    assert ranked[0]["score"] == 153.0 and ranked[1]["score"] == 105.0
