"""OVP — Ophthalmic Video Profiling: shared settings, errors and the `ovp` command line."""
from __future__ import annotations

__version__ = "0.1.0"
