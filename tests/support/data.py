"""Where the tests' data lives: ``tests/data`` (its README says where each file came from)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
ESMOND = DATA / "esmond"
