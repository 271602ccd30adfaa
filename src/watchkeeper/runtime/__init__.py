"""The runtime: the composition root and the processes it runs (serve, up)."""

from __future__ import annotations

from watchkeeper.runtime.config import read_settings
from watchkeeper.runtime.service import run

__all__ = ["read_settings", "run"]
