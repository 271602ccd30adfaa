"""Composing the esmond archive and token store from settings, and ``watchkeeper token``."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.esmond.postgres import PostgresMetadataStore
from watchkeeper.archive.esmond.sqlite import SqliteMetadataStore
from watchkeeper.archive.tokens import PostgresTokenStore, SqliteTokenStore, Token
from watchkeeper.cli.main import main
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


def test_token_create_prints_the_key_last(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``watchkeeper token create`` prints the key as the last word; it works with --data
    and with --config, and the key is found in the store."""
    data = tmp_path / "var"
    assert main(["token", "create", "--user", "ps", "--write", "--data", str(data)]) == 0
    written = capsys.readouterr().out.split()[-1]
    config = tmp_path / "wk.yaml"
    config.write_text(f"data_dir: {data}\n")
    assert main(["token", "create", "--user", "viewer", "--config", str(config)]) == 0
    read_only = capsys.readouterr().out.split()[-1]
    async def lookup() -> tuple[Token | None, Token | None]:
        async with AsyncExitStack() as stack:
            store = SqliteTokenStore(data)
            await store.start(stack)
            return await store.lookup(written), await store.lookup(read_only)

    writer, reader = asyncio.run(lookup())
    assert writer is not None
    assert (writer.user, writer.write) == ("ps", True)
    assert reader is not None
    assert (reader.user, reader.write) == ("viewer", False)


def test_token_create_refuses_both_places(capsys: pytest.CaptureFixture[str]) -> None:
    """--data and --config exclude each other."""
    with pytest.raises(SystemExit):
        main(["token", "create", "--user", "x", "--data", "a", "--config", "b"])
    assert "not allowed with" in capsys.readouterr().err
