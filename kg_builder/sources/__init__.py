"""Terminology sources: one module per source, each a generator of typed records (kg_builder.records)."""
