"""Knowledge-graph builder: terminology sources, the graph schema, and the one Neo4j access layer."""
