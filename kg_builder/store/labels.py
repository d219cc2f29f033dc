"""The profile labels: the diseases the fusion model classifies (``Disease {profile_label: true}``, from the
lexicon)."""
from __future__ import annotations

from dataclasses import dataclass

from kg_builder.graph import Graph

#: The profile-label diseases, in id order: the classification targets.
PROFILE_LABELS_QUERY = """
MATCH (d:Disease {profile_label: true})
RETURN d.id AS id, d.name AS name
ORDER BY id
"""


@dataclass(frozen=True)
class ProfileLabel:
    """One profile-label disease: its id and display name (the id when the graph has no name)."""

    id: str
    name: str


def read_profile_labels(graph: Graph) -> list[ProfileLabel]:
    """The graph's profile-label diseases in id order; empty when the graph has none (not built yet).

    ``graph`` is anything with ``Graph.read``'s signature (the GPU bench passes a snapshot of the graph).

    Raises:
        GraphUnavailable: Neo4j cannot be reached.
    """
    return [ProfileLabel(row["id"], row["name"] or row["id"]) for row in graph.read(PROFILE_LABELS_QUERY)]
