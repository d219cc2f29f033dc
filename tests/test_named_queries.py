"""Named queries: header parsing, parameter validation, refusal of write clauses at load time (unit tests), and every
query of cypher/queries running read-only on the real graph."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kg_builder.graph import Graph
from kg_builder.named_queries import (
    QUERY_DIR,
    NamedQueryError,
    QueryParamError,
    UnknownQuery,
    check_read_only,
    cypher_code,
    load_queries,
    parse_query,
    run_named_query,
)

HEADER = """// name: sample
// description: A sample query.
// param: entity_id id - the entity
// param: limit int[1..50] 10 rows to return
// param: min_prob float[0..1] 0.5 cut-off
// param: text string[..20] abc a short text
"""
BODY = """// a comment line
MATCH (e:Entity {id: $entity_id}) WHERE size($text) >= 0 AND $min_prob >= 0
RETURN e.id AS id LIMIT $limit
"""


def sample() -> Any:
    return parse_query(HEADER + BODY, "sample.cypher")


# --- parsing ------------------------------------------------------------------------------------------------------

def test_header_is_parsed() -> None:
    query = sample()
    assert query.name == "sample" and query.description == "A sample query."
    params = {p.name: p for p in query.params}
    assert params["entity_id"].required and params["entity_id"].type == "id"
    assert (params["limit"].default, params["limit"].minimum, params["limit"].maximum) == (10, 1, 50)
    assert params["min_prob"].default == 0.5 and params["text"].default == "abc" and params["text"].maximum == 20


def test_bind_converts_and_fills_defaults() -> None:
    query = sample()
    assert query.bind({"entity_id": "OVP:glaucoma"}) == {"entity_id": "OVP:glaucoma", "limit": 10, "min_prob": 0.5, "text": "abc"}
    # strings from the command line are converted; JSON numbers are taken as they are
    assert query.bind({"entity_id": "HP:0000501", "limit": "3", "min_prob": "1", "text": ""})["limit"] == 3
    assert query.bind({"entity_id": "x", "limit": 5.0})["limit"] == 5


@pytest.mark.parametrize("given", [
    {},                                              # required parameter missing
    {"entity_id": "x", "nope": 1},                   # unknown parameter
    {"entity_id": "x", "limit": 0},                  # below the minimum
    {"entity_id": "x", "limit": 51},                 # above the maximum
    {"entity_id": "x", "limit": 2.5},                # not an integer
    {"entity_id": "x", "limit": True},               # a bool is not an int
    {"entity_id": "x", "limit": "10; DROP"},         # not a number
    {"entity_id": "x", "limit": 2**70},              # wider than Cypher's 64-bit integers
    {"entity_id": "x", "min_prob": float("nan")},    # not finite
    {"entity_id": "x", "min_prob": 1.5},
    {"entity_id": "x", "text": "x" * 21},            # string too long
    {"entity_id": "x", "text": 3},                   # not a string
    {"entity_id": "' OR 1=1 //"},                    # not an id
    {"entity_id": "MATCH (n) DETACH DELETE n"},
    {"entity_id": ""},
    {"entity_id": "x" * 129},
])
def test_bind_rejects_bad_values(given: dict[str, Any]) -> None:
    with pytest.raises(QueryParamError):
        sample().bind(given)


@pytest.mark.parametrize(("header", "problem"), [
    ("// description: no name\n", "name"),
    ("// name: x\n", "description"),
    ("// name: Bad-Name\n// description: d\n", "must match"),
    ("// name: x\n// description: d\n// param: limit integer 1 d\n", "type"),
    ("// name: x\n// description: d\n// param: limit int[5..1] 3 d\n", "empty range"),
    ("// name: x\n// description: d\n// param: limit int[1..5] 9 d\n", "default"),
    ("// name: x\n// description: d\n// param: limit int 9\n", "NAME TYPE DEFAULT DESCRIPTION"),
    ("// name: x\n// description: d\n// param: id id[1..3] - d\n", "no bounds"),
])
def test_malformed_headers_are_refused(header: str, problem: str) -> None:
    with pytest.raises(NamedQueryError, match=problem):
        parse_query(header + "MATCH (n) RETURN n LIMIT $limit", "bad.cypher")


def test_parameters_must_be_declared_and_used() -> None:
    head = "// name: x\n// description: d\n"
    with pytest.raises(NamedQueryError, match="undeclared parameter"):
        parse_query(head + "MATCH (n {id: $id}) RETURN n", "x.cypher")
    with pytest.raises(NamedQueryError, match="unused parameter"):
        parse_query(head + "// param: id id - d\nMATCH (n) RETURN n", "x.cypher")
    with pytest.raises(NamedQueryError, match="declared twice"):
        parse_query(head + "// param: id id - d\n// param: id id - e\nMATCH (n {id: $id}) RETURN n", "x.cypher")


# --- read-only check ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cypher", [
    "CREATE (n:X) RETURN n",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n) delete n",
    "MATCH (n) SET n.x = 1 RETURN n",
    "MATCH (n) REMOVE n.x RETURN n",
    "MERGE (n:X {id: 1}) RETURN n",
    "MATCH (n) FOREACH (x IN [1] | SET n.y = x)",
    "LOAD CSV FROM 'file:///x' AS row RETURN row",
    "DROP INDEX entity_names",
    "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DELETE n', {})",
    "CALL dbms.security.createUser('x', 'y')",
    "MATCH (n) CALL { WITH n RETURN n AS m } IN TRANSACTIONS RETURN m",
    "CALL { MATCH (n) RETURN n } RETURN n",
    "MATCH (n) RETURN n /* comment */ ; CREATE (m)",
])
def test_write_clauses_are_refused(cypher: str) -> None:
    with pytest.raises(NamedQueryError):
        check_read_only(cypher, "x.cypher")


@pytest.mark.parametrize("cypher", [
    "// we never CREATE or DELETE anything here\nMATCH (n) RETURN n",
    "MATCH (n) WHERE n.name = 'Set of CREATE DELETE words' RETURN n",
    'MATCH (n) WHERE n.name CONTAINS "merge" RETURN n.settings AS settings, n.created_at AS created',
    "CALL db.index.fulltext.queryNodes('entity_names', $q) YIELD node RETURN node",
    "MATCH (v:Video) CALL db.index.vector.queryNodes('video_embedding', 5, v.embedding) YIELD node RETURN node",
    "MATCH (n:Offset) RETURN n.reset AS reset, n.dataset AS dataset",
])
def test_reading_queries_pass(cypher: str) -> None:
    check_read_only(cypher, "x.cypher")


def test_comments_and_strings_are_blanked() -> None:
    code = cypher_code("MATCH (n) // DELETE n\nWHERE n.x = 'DELETE' /* SET */ RETURN n")
    assert "DELETE" not in code and "SET" not in code and "MATCH (n)" in code and "RETURN n" in code


def test_a_directory_with_a_writing_query_fails_to_load(tmp_path: Path) -> None:
    (tmp_path / "good.cypher").write_text("// name: good\n// description: d\nMATCH (n) RETURN count(n) AS n\n", encoding="utf-8")
    assert list(load_queries(tmp_path)) == ["good"]
    (tmp_path / "evil.cypher").write_text("// name: evil\n// description: d\nMATCH (n) DETACH DELETE n\n", encoding="utf-8")
    with pytest.raises(NamedQueryError, match="evil.cypher"):
        load_queries(tmp_path)


def test_duplicate_names_fail_to_load(tmp_path: Path) -> None:
    for file in ("a.cypher", "b.cypher"):
        (tmp_path / file).write_text("// name: same\n// description: d\nMATCH (n) RETURN n\n", encoding="utf-8")
    with pytest.raises(NamedQueryError, match="also used"):
        load_queries(tmp_path)


# --- the project's queries ----------------------------------------------------------------------------------------

def test_project_queries_load_and_are_commented() -> None:
    queries = load_queries()
    assert len(queries) >= 8
    for query in queries.values():
        assert query.path is not None and query.path.parent == QUERY_DIR
        code_lines = [line for line in query.text.splitlines() if line.strip() and not line.strip().startswith("//")]
        comment_lines = [line for line in query.text.splitlines() if line.strip().startswith("//")
                         and not line.strip()[2:].strip().startswith(("name:", "description:", "param:"))]
        assert comment_lines, f"{query.name} has no explanatory comments"
        assert len(code_lines) >= 3
        # every query bounds its rows (a LIMIT on a declared parameter) unless it is keyed to one video
        assert "LIMIT $" in query.text or query.name == "video_profile_history"


def test_unknown_query_names_the_known_ones() -> None:
    with pytest.raises(UnknownQuery, match="similar_videos"):
        run_named_query(None, "nope")  # type: ignore[arg-type]


def example_params(query: Any) -> dict[str, Any]:
    """Required parameters with ids that exist in the built knowledge graph."""
    examples = {"disease_id": "OVP:glaucoma", "entity_id": "OVP:glaucoma", "phenotype_id": "HP:0000545", "video_id": "apitest_none"}
    return {p.name: examples[p.name] for p in query.params if p.required}


def test_every_project_query_runs_read_only_on_the_graph(graph: Graph, built_kg: dict[str, Any]) -> None:
    queries = load_queries()
    for name, query in queries.items():
        rows = run_named_query(graph, name, example_params(query), queries=queries)
        assert isinstance(rows, list)
    assert run_named_query(graph, "entity_neighbourhood", {"entity_id": "OVP:glaucoma"}, queries=queries)
    assert len(run_named_query(graph, "phenotype_diseases", {"phenotype_id": "HP:0000545", "limit": "3"}, queries=queries)) == 3


def plan_operators(graph: Graph, cypher: str, params: dict[str, Any]) -> list[str]:
    """The operators of ``cypher``'s plan (EXPLAIN: planned, not run), e.g. ``NodeUniqueIndexSeek``."""

    def walk(plan: dict[str, Any]) -> list[str]:
        return [plan["operatorType"].split("@")[0]] + [op for child in plan.get("children", []) for op in walk(child)]

    return graph.read_transaction(lambda tx: walk(tx.run("EXPLAIN " + cypher, **params).consume().plan))


def test_queries_anchored_on_an_id_seek_it_in_the_index(graph: Graph, built_kg: dict[str, Any]) -> None:
    """A query that starts from one entity, video or disease id finds it through a uniqueness constraint's index.
    ``(:Disease {id: …})`` alone has no index (the constraint is on ``:Entity``): Neo4j scanned all 6,600 Disease
    nodes for every lookup, which made writing a profile's predictions 10 ms per video."""
    from kg_builder.store.diseases import DISEASE_EXISTS

    queries = load_queries()
    anchored = {name: q for name, q in queries.items() if any(p.required and p.name.endswith("_id") for p in q.params)}
    assert {"disease_videos_by_popularity", "phenotype_diseases", "entity_videos"} <= set(anchored)
    for name, query in anchored.items():
        params = {p.name: example_params(query).get(p.name, p.default) for p in query.params}
        operators = plan_operators(graph, query.text, params)
        assert not [op for op in operators if op.endswith("Scan")], (name, operators)
    assert "NodeUniqueIndexSeek" in plan_operators(graph, DISEASE_EXISTS, {"id": "OVP:glaucoma"})
