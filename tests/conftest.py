"""Shared fixtures: a clean environment for every test, and a fake clock."""

from __future__ import annotations

import os

import pytest

from watchkeeper.clock import FakeClock


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WATCHKEEPER_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("WATCHKEEPER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
