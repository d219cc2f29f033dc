"""Foundation: the schema, the batched writer and the full-text index against the real Neo4j; the CLI's shell."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from kg_builder.graph import Graph, unreachable_message
from kg_builder.schema import apply_schema, describe_schema, schema_statements
from ovp.errors import GraphUnavailable
from ovp.settings import Settings

OVP = [sys.executable, "-m", "cli"]


@pytest.fixture(scope="module")
def graph() -> Graph:
    # No skip: if Neo4j is down this fails with the GraphUnavailable message, which says how to start it.
    with Graph.connect(Settings.from_env()) as g:
        apply_schema(g)
        yield g


def test_schema_statements_split_on_semicolons_and_drop_comments() -> None:
    text = "// a comment\nCREATE CONSTRAINT a IF NOT EXISTS\n  FOR (n:X) REQUIRE n.id IS UNIQUE;\n\n// b\nCREATE INDEX b IF NOT EXISTS FOR (n:X) ON (n.y);\n"
    assert schema_statements(text) == [
        "CREATE CONSTRAINT a IF NOT EXISTS FOR (n:X) REQUIRE n.id IS UNIQUE",
        "CREATE INDEX b IF NOT EXISTS FOR (n:X) ON (n.y)",
    ]


@pytest.mark.neo4j
def test_schema_applied_twice_leaves_the_same_constraints_and_indexes(graph: Graph) -> None:
    first = describe_schema(graph)
    apply_schema(graph)
    second = describe_schema(graph)
    assert first == second
    assert {"entity_id", "video_id", "profile_id", "batch_id"} <= set(first["constraints"])
    assert "entity_names:FULLTEXT:ONLINE" in first["indexes"]
    assert "video_embedding:VECTOR:ONLINE" in first["indexes"]


@pytest.mark.neo4j
def test_batched_write_of_10000_nodes_is_visible_and_idempotent(graph: Graph) -> None:
    run = uuid.uuid4().hex
    rows = [{"id": f"{run}-{i}", "run": run, "n": i} for i in range(10_000)]
    query = "UNWIND $rows AS row MERGE (n:OvpTestNode {id: row.id}) SET n.run = row.run, n.n = row.n"
    count = "MATCH (n:OvpTestNode {run: $run}) RETURN count(n) AS c"
    # Like every id in the real schema, the merge key is backed by a uniqueness constraint (else MERGE scans).
    graph.write("CREATE CONSTRAINT ovp_test_node_id IF NOT EXISTS FOR (n:OvpTestNode) REQUIRE n.id IS UNIQUE")
    try:
        assert graph.write_batches(query, rows, batch_size=1000) == 10_000
        assert graph.read(count, {"run": run}) == [{"c": 10_000}]
        graph.write_batches(query, rows, batch_size=1000)
        assert graph.read(count, {"run": run}) == [{"c": 10_000}]
    finally:
        graph.write_batches(
            "UNWIND $rows AS row MATCH (n:OvpTestNode {id: row.id}) DELETE n", ({"id": r["id"]} for r in rows), batch_size=5000
        )
        graph.write("DROP CONSTRAINT ovp_test_node_id IF EXISTS")


@pytest.mark.neo4j
def test_fulltext_index_finds_a_node_by_its_chinese_name(graph: Graph) -> None:
    node_id = f"TEST:{uuid.uuid4().hex}"
    graph.write(
        "CREATE (n:Entity {id: $id, name: 'Test vitreous haze', name_zh: '测试玻璃体混浊症', synonyms_text: '', source: 'test'})",
        {"id": node_id},
    )
    try:
        hits = graph.read(
            "CALL db.index.fulltext.queryNodes('entity_names', $q) YIELD node, score "
            "WHERE node.source = 'test' RETURN node.id AS id, score",
            {"q": "玻璃体混浊"},
        )
        assert hits and hits[0]["id"] == node_id
    finally:
        graph.write("MATCH (n:Entity {id: $id}) DETACH DELETE n", {"id": node_id})


@pytest.mark.neo4j
def test_a_deadlock_between_two_writers_is_retried_and_counted(graph: Graph) -> None:
    """Two transactions lock two nodes in opposite orders; Neo4j breaks the deadlock by failing one, which the driver
    runs again (the other has committed by then): both land, and the retry is counted."""
    ids = [f"TEST:{uuid.uuid4().hex}", f"TEST:{uuid.uuid4().hex}"]
    graph.write("UNWIND $ids AS id CREATE (:OvpTestNode {id: id, n: 0})", {"ids": ids})
    both_hold_one = threading.Barrier(2, timeout=20)
    before = graph.retries

    def lock_both(first: str, second: str) -> None:
        runs = 0

        def work(tx) -> None:
            nonlocal runs
            runs += 1
            tx.run("MATCH (n:OvpTestNode {id: $id}) SET n.n = n.n + 1", id=first).consume()
            if runs == 1:
                both_hold_one.wait()
            tx.run("MATCH (n:OvpTestNode {id: $id}) SET n.n = n.n + 1", id=second).consume()

        graph.write_transaction(work)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(lock_both, ids[0], ids[1]), pool.submit(lock_both, ids[1], ids[0])]:
                future.result()
        assert graph.retries - before >= 1
        assert [row["n"] for row in graph.read("UNWIND $ids AS id MATCH (n:OvpTestNode {id: id}) RETURN n.n AS n",
                                               {"ids": ids})] == [2, 2]
    finally:
        graph.write("UNWIND $ids AS id MATCH (n:OvpTestNode {id: id}) DELETE n", {"ids": ids})


def test_wrong_port_raises_graph_unavailable_with_the_fix() -> None:
    settings = dataclasses.replace(Settings.from_env(), neo4j_uri="bolt://127.0.0.1:1")
    with pytest.raises(GraphUnavailable) as info:
        Graph.connect(settings)
    assert str(info.value) == unreachable_message("bolt://127.0.0.1:1")
    assert "ovp neo4j start" in str(info.value)


def test_cli_wrong_port_prints_one_line_and_exits_non_zero() -> None:
    env = {**os.environ, "OVP_NEO4J_URI": "bolt://127.0.0.1:1"}
    result = subprocess.run([*OVP, "db", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Neo4j is not reachable at bolt://127.0.0.1:1 — start it with `ovp neo4j start` or set OVP_NEO4J_URI"
    )


def test_cli_help_lists_the_subcommands() -> None:
    result = subprocess.run([*OVP, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("neo4j", "redis", "db", "kg", "link", "keyframes", "train", "profile", "serve", "query"):
        assert f"  {command} " in result.stdout


def test_settings_read_ovp_variables_and_reject_bad_values() -> None:
    settings = Settings.from_env({"OVP_NEO4J_URI": "bolt://db:7688", "OVP_KEYFRAMES": "4", "OVP_DEVICE": ""})
    assert settings.neo4j_bolt_port == 7688 and settings.keyframes == 4 and settings.device == "auto"
    with pytest.raises(Exception, match="OVP_KEYFRAMES='many' is not a valid int"):
        Settings.from_env({"OVP_KEYFRAMES": "many"})
