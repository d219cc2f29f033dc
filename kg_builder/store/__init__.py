"""The graph's reads and writes as named functions, one module per subject (entities, videos, profiles, batches, …).

Cypher text lives here or in ``cypher/``; blueprints, tasks, the CLI and the encoders call these functions and never
write Cypher of their own. Every value reaches Cypher as a parameter.
"""
