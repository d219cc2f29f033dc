"""Typed records that terminology sources yield and the graph writer consumes."""
from __future__ import annotations

from dataclasses import dataclass, field

#: Synonym scopes as OBO writes them; the lexicon uses EXACT for names people actually say.
SYNONYM_SCOPES = ("EXACT", "RELATED", "BROAD", "NARROW")


@dataclass(frozen=True)
class Synonym:
    """One synonym; ``source`` and ``source_version`` name the source that gave it when that is not the entity's own
    (a :class:`SynonymRecord` from a synonym source such as CMeKG), empty otherwise."""

    text: str
    scope: str = "EXACT"
    layperson: bool = False
    lang: str = "en"
    source: str = ""
    source_version: str = ""

    def __post_init__(self) -> None:
        if self.scope not in SYNONYM_SCOPES:
            raise ValueError(f"synonym {self.text!r}: scope {self.scope!r} is not one of {SYNONYM_SCOPES}")


@dataclass(frozen=True)
class EntityRecord:
    """One node of the knowledge graph: ``(:Entity:<Kind> {id, name, …})``."""

    id: str
    kind: str  # a key of kg_builder.schema.ENTITY_KINDS
    name: str
    source: str
    source_version: str
    name_zh: str = ""
    definition: str = ""
    synonyms: tuple[Synonym, ...] = ()
    xrefs: tuple[str, ...] = ()  # external ids that are not graph nodes (UMLS:…, SNOMEDCT_US:…, MSH:…)
    profile_label: bool = False
    origin: str = ""  # "file:line" where the record was read, for error messages


@dataclass(frozen=True)
class SynonymRecord:
    """A synonym a synonym source gives an entity that another source owns (added before the entity is written)."""

    entity_id: str
    synonym: Synonym
    origin: str = ""


@dataclass(frozen=True)
class RelationRecord:
    """One relationship between two entities: ``(start)-[:TYPE {properties}]->(end)``."""

    start: str
    type: str  # one of kg_builder.schema.ENTITY_RELATIONS
    end: str
    source: str
    properties: dict[str, object] = field(default_factory=dict, hash=False, compare=False)
    origin: str = ""
