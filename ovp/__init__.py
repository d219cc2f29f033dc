"""OVP — Ophthalmic Video Profiling: the foundation every other package stands on (settings, errors).

It imports nothing of the project above it; the ``ovp`` command line lives in the top-level package ``cli``.
"""
from __future__ import annotations

__version__ = "0.1.0"
