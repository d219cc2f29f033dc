"""`ovp link` and `ovp enrich` through click's runner, against the real graph (needs `ovp neo4j start`)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from cli.text_cmd import decode_lines
from ovp.settings import Settings

pytestmark = pytest.mark.neo4j


def run(args: list[str], stdin: bytes | None = None):
    result = CliRunner().invoke(main, args, input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_decode_lines_reports_the_bad_byte_and_goes_on() -> None:
    import io

    lines = list(decode_lines(io.BytesIO(b"ok\r\nab\xffc\n\n")))
    assert lines == [(1, "ok", ""), (2, None, "invalid UTF-8 at byte 2"), (3, "", "")]


def test_link_json_prints_text_and_mentions(built_kg) -> None:
    out = json.loads(run(["link", "--json", "--no-semantic", "#青光眼 早期症状👀"]).stdout)
    assert out["text"] == "#青光眼 早期症状👀"
    assert [m["id"] for m in out["mentions"]] == ["OVP:glaucoma"]
    assert set(out["mentions"][0]) == {"id", "name", "kind", "surface", "start", "end", "score", "negated", "xrefs"}


def test_link_stdin_keeps_order_and_survives_an_invalid_utf8_line(built_kg) -> None:
    stdin = "pink eye again\n".encode() + b"bad \xc3\x28 line\n" + "\n不是青光眼\n".encode()
    lines = [json.loads(line) for line in run(["link", "--json", "--no-semantic"], stdin).stdout.splitlines()]
    assert len(lines) == 4
    assert [m["id"] for m in lines[0]["mentions"]] == ["OVP:conjunctivitis"]
    assert lines[1] == {"line": 2, "error": "invalid UTF-8 at byte 4"}
    assert lines[2] == {"text": "", "mentions": []}
    assert lines[3]["mentions"][0]["id"] == "OVP:glaucoma" and lines[3]["mentions"][0]["negated"]


def test_link_cuts_a_megabyte_text_with_a_warning(built_kg) -> None:
    limit = Settings.from_env().max_text_chars
    text = "老花眼 " + "x" * 1_000_000 + " 青光眼"
    result = run(["link", "--json", "--no-semantic", text])
    out = json.loads(result.stdout)
    assert len(out["text"]) == limit
    assert [m["id"] for m in out["mentions"]] == ["OVP:presbyopia"]  # glaucoma came after the cut
    assert f"cut to {limit}" in result.stderr


def test_enrich_json_gives_enriched_text_and_annotations(built_kg) -> None:
    out = json.loads(run(["enrich", "--json", "--no-semantic", "不是青光眼，只是眼压偏高"]).stdout)
    assert out["enriched"].startswith("不是青光眼，只是眼压偏高")
    assert "not: Glaucoma" in out["annotations"]
    assert {m["id"] for m in out["mentions"]} == {"OVP:glaucoma", "OVP:ocular_hypertension"}


@pytest.mark.slow
def test_link_with_semantic_fallback_loads_the_persisted_vectors(built_kg) -> None:
    out = json.loads(run(["link", "--json", "I love cooking pasta with my family on sunday"]).stdout)
    assert out["mentions"] == []
