"""Open-vocabulary disease tags: what the tagger reads from the graph (every disease's names and definition, the
phenotype annotations with their hierarchy and equivalents) and the tags a profile holds.

Tags are ``(:Profile)-[:TAGGED {score, source, sources, rank, evidence}]->(:Disease)``, written with the profile
(:mod:`kg_builder.store.profiles`) and kept apart from the trained head's ``PREDICTS``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kg_builder.graph import Graph

#: Every disease with what the similarity source embeds of it, in id order.
DISEASE_TEXTS = """
MATCH (d:Entity:Disease)
RETURN d.id AS id, d.name AS name, d.name_zh AS name_zh, d.definition AS definition
ORDER BY id
"""

#: Every phenotype annotation of a disease (HPO's and the lexicon's), in a stable order.
PHENOTYPE_ANNOTATIONS = """
MATCH (d:Entity:Disease)-[:HAS_PHENOTYPE]->(p:Entity:Phenotype)
RETURN d.id AS disease_id, p.id AS phenotype_id
ORDER BY disease_id, phenotype_id
"""

#: The phenotype hierarchy (child IS_A parent), for the true-path rule: a disease with a term has its ancestors.
PHENOTYPE_PARENTS = """
MATCH (child:Entity:Phenotype)-[:IS_A]->(parent:Entity:Phenotype)
RETURN child.id AS child, parent.id AS parent
ORDER BY child, parent
"""

#: Entities of any kind that are the same concept as an HPO phenotype (MAPS_TO, whichever way the edge was written):
#: the lexicon's "Blurred vision" is HPO's, and a named disease such as the lexicon's Cataract is also the phenotype
#: Cataract that syndromes are annotated with.
PHENOTYPE_EQUIVALENTS = """
MATCH (e:Entity)-[:MAPS_TO]-(p:Entity:Phenotype)
WHERE p.source = 'HPO' AND e.id <> p.id
RETURN DISTINCT e.id AS entity_id, p.id AS phenotype_id
ORDER BY entity_id, phenotype_id
"""

#: The tags of a video's latest profile, best rank first (the review pages' and ``GET /videos/{id}``'s list).
VIDEO_TAGS = """
MATCH (:Video {id: $id})-[:HAS_PROFILE]->(p:Profile {latest: true})-[t:TAGGED]->(d:Disease)
RETURN d.id AS disease_id, d.name AS name, d.name_zh AS name_zh, t.score AS score, t.source AS source,
       t.sources AS sources, t.rank AS rank, t.evidence AS evidence
ORDER BY t.rank, disease_id
"""


@dataclass(frozen=True)
class DiseaseText:
    """One disease as the similarity source reads it."""

    id: str
    name: str
    name_zh: str
    definition: str


@dataclass(frozen=True)
class PhenotypeGraph:
    """The phenotype side of the graph, as plain edges (the tagger turns it into matrices).

    Attributes:
        annotations: (disease id, phenotype id), one per HAS_PHENOTYPE.
        parents: (child, parent) phenotype IS_A edges.
        equivalents: (entity id, HPO phenotype id) for MAPS_TO pairs.
    """

    annotations: tuple[tuple[str, str], ...]
    parents: tuple[tuple[str, str], ...]
    equivalents: tuple[tuple[str, str], ...]


def disease_texts(graph: Graph) -> list[DiseaseText]:
    """Every disease in id order with its English and Chinese name and definition ("" where the graph has none)."""
    return [DiseaseText(r["id"], r["name"] or "", r["name_zh"] or "", r["definition"] or "")
            for r in graph.read(DISEASE_TEXTS)]


def phenotype_graph(graph: Graph) -> PhenotypeGraph:
    """The annotations, the phenotype hierarchy and the HPO equivalents, three reads.

    Raises:
        GraphUnavailable: Neo4j cannot be reached.
    """
    return PhenotypeGraph(
        annotations=tuple((r["disease_id"], r["phenotype_id"]) for r in graph.read(PHENOTYPE_ANNOTATIONS)),
        parents=tuple((r["child"], r["parent"]) for r in graph.read(PHENOTYPE_PARENTS)),
        equivalents=tuple((r["entity_id"], r["phenotype_id"]) for r in graph.read(PHENOTYPE_EQUIVALENTS)),
    )


def video_tags(graph: Graph, video_id: str) -> list[dict[str, Any]]:
    """The open-vocabulary tags of the video's latest profile, best first: ``{disease_id, name, name_zh, score, source,
    sources, rank, evidence}`` (``evidence`` the stored JSON string); empty when the video has no profile or tags."""
    return graph.read(VIDEO_TAGS, {"id": video_id})
