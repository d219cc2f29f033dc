"""Schema as code: the graph's fixed vocabulary (labels, relationship types) and applying ``cypher/schema.cypher``.

Labels and relationship types can't be Cypher parameters, so any query that names one builds it only from the
allow-lists here; values always travel as parameters.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from kg_builder.graph import Graph
from ovp.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

SCHEMA_FILE = PROJECT_ROOT / "cypher" / "schema.cypher"

#: Kind labels an Entity carries besides :Entity, keyed by the lower-case kind used in JSON.
ENTITY_KINDS: dict[str, str] = {
    "disease": "Disease",
    "phenotype": "Phenotype",
    "anatomy": "Anatomy",
    "treatment": "Treatment",
    "exam": "Exam",
}
#: The same mapping read the other way (label → kind), in the same order: a node carrying several kind labels takes
#: the first kind of this order.
KIND_OF_LABEL: dict[str, str] = {label: kind for kind, label in ENTITY_KINDS.items()}
#: Relationship types between entities (the knowledge graph proper).
ENTITY_RELATIONS: tuple[str, ...] = ("IS_A", "HAS_PHENOTYPE", "MAPS_TO")
#: Relationship types the profiling pipeline writes.
#: PREDICTS is the trained head's; TAGGED the open-vocabulary tags (any disease of the graph), kept apart from it.
PROFILE_RELATIONS: tuple[str, ...] = ("MENTIONS", "HAS_PROFILE", "PREDICTS", "TAGGED", "CONTAINS")


def kind_label(kind: str) -> str:
    """The node label for an entity kind ('disease' → 'Disease'); ValueError for anything off the allow-list."""
    try:
        return ENTITY_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {sorted(ENTITY_KINDS)}") from None


def relation_type(name: str) -> str:
    """``name`` if it is an allowed relationship type, else ValueError."""
    if name not in ENTITY_RELATIONS + PROFILE_RELATIONS:
        raise ValueError(f"unknown relationship type {name!r}")
    return name


def schema_statements(text: str) -> list[str]:
    """Split a .cypher file into statements: drop ``//`` comment lines, split on ``;`` at the end of a line."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("//")]
    statements = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [" ".join(s.split()) for s in statements if s.strip()]


def apply_schema(graph: Graph, path: Path = SCHEMA_FILE) -> int:
    """Apply every statement of the schema file (idempotent); return how many ran."""
    statements = schema_statements(path.read_text(encoding="utf-8"))
    for statement in statements:
        graph.write(statement)
    # Index population is asynchronous; wait so that a lookup right after `ovp db init` sees the indexes online.
    graph.write("CALL db.awaitIndexes(300)")
    log.info("applied %d schema statements from %s", len(statements), path)
    return len(statements)


def describe_schema(graph: Graph) -> dict[str, list[str]]:
    """Names of the constraints and indexes present, sorted (what the idempotence test compares)."""
    constraints = graph.read("SHOW CONSTRAINTS YIELD name RETURN name ORDER BY name")
    indexes = graph.read("SHOW INDEXES YIELD name, type, state RETURN name, type, state ORDER BY name")
    return {
        "constraints": [row["name"] for row in constraints],
        "indexes": [f"{row['name']}:{row['type']}:{row['state']}" for row in indexes],
    }
