"""esmond-compatible REST routes: the perfSONAR archive API under ``/esmond/perfsonar/``."""

from __future__ import annotations

from watchkeeper.api.esmond.routes import PREFIXES, EsmondApi

__all__ = ["PREFIXES", "EsmondApi"]
