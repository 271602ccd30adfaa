"""Composing the esmond archive and token store from settings (``watchkeeper token`` is
tested in tests/unit/cli/test_token.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.esmond.postgres import PostgresMetadataStore
from watchkeeper.archive.esmond.sqlite import SqliteMetadataStore
from watchkeeper.archive.tokens import PostgresTokenStore, SqliteTokenStore
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError
from watchkeeper.runtime.esmond import build_esmond
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics


def _archive(tmp_path: Path) -> MemoryArchive:
    return MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(), clock=FakeClock(),
                         metrics=SelfMetrics())


def test_default_is_embedded(tmp_path: Path) -> None:
    """By default metadata and tokens are SQLite files in the data directory."""
    settings, locator = load_settings(f"data_dir: {tmp_path}")
    parts = build_esmond(settings, locator, archive=_archive(tmp_path), clock=FakeClock())
    assert isinstance(parts.metadata, SqliteMetadataStore)
    assert parts.metadata.path == tmp_path / "esmond.sqlite3"
    assert isinstance(parts.tokens, SqliteTokenStore)
    assert parts.esmond is not None


def test_postgres_and_disabled(tmp_path: Path) -> None:
    """``store: postgres`` uses the DSN for both; ``enabled: false`` keeps only tokens."""
    settings, locator = load_settings("esmond: {store: postgres, dsn: 'host=db'}")
    parts = build_esmond(settings, locator, archive=_archive(tmp_path), clock=FakeClock())
    assert isinstance(parts.metadata, PostgresMetadataStore)
    assert isinstance(parts.tokens, PostgresTokenStore)
    settings, locator = load_settings("esmond: {enabled: false}")
    parts = build_esmond(settings, locator, archive=_archive(tmp_path), clock=FakeClock())
    assert parts.esmond is None
    assert parts.metadata is None


@pytest.mark.parametrize(("text", "message"), [
    ("esmond:\n  store: mysql\n", "wk.yaml:2: esmond.store: must be one of embedded, postgres"),
    ("esmond:\n  store: postgres\n",
     "wk.yaml:1: esmond.dsn: is required when esmond.store is postgres"),
])
def test_bad_settings_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    """A bad esmond setting is a ConfigError pointing at its line (or its section's)."""
    settings, locator = load_settings(text, source="wk.yaml")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        build_esmond(settings, locator, archive=_archive(tmp_path), clock=FakeClock())
