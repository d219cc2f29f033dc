"""Celery workers that profile batches and write profiles back into the graph."""
