"""Composing the esmond archive and the token store from settings (``esmond:`` section).

``store: embedded`` keeps metadata in ``data_dir/esmond.sqlite3`` and tokens in
``data_dir/auth.sqlite3`` (in the archive's schema when ``archive.backend`` is postgres);
``store: postgres`` keeps both in the database ``dsn`` names.
Points always go to the configured archive.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from watchkeeper.archive import Archive
from watchkeeper.archive.esmond import EsmondArchive, MetadataStore
from watchkeeper.archive.esmond.sqlite import SqliteMetadataStore
from watchkeeper.archive.tokens import PostgresTokenStore, SqliteTokenStore, TokenStore
from watchkeeper.clock import Clock
from watchkeeper.settings import Locator, Settings

STORES = ("embedded", "postgres")


@dataclass(frozen=True)
class EsmondParts:
    """The token store, and the esmond archive when enabled."""

    tokens: TokenStore
    metadata: MetadataStore | None
    esmond: EsmondArchive | None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Start in dependency order (the archive must be started already)."""
        await self.tokens.start(exit_stack)
        if self.metadata is not None:
            await self.metadata.start(exit_stack)
        if self.esmond is not None:
            await self.esmond.start(exit_stack)


def build_tokens(settings: Settings, locator: Locator) -> TokenStore:
    """The token store the settings name (no I/O yet): esmond's PostgreSQL database when
    ``esmond.store`` is postgres, else the PostgreSQL archive's schema when the archive is
    (so every server of that archive reads the same tokens), else ``data_dir``."""
    if _store(settings, locator) == "postgres":
        return PostgresTokenStore(settings.esmond.dsn)
    if settings.archive.backend == "postgres":
        from watchkeeper.archive.backends.postgres import PostgresOptions

        defaults = PostgresOptions()
        options = settings.archive.options
        return PostgresTokenStore(str(options.get("dsn", defaults.dsn)),
                                  schema=str(options.get("schema", defaults.schema)))
    return SqliteTokenStore(Path(settings.data_dir))


def build_esmond(settings: Settings, locator: Locator, *, archive: Archive,
                 clock: Clock) -> EsmondParts:
    """Token store, metadata store and esmond archive from the settings (no I/O yet)."""
    tokens = build_tokens(settings, locator)
    if not settings.esmond.enabled:
        return EsmondParts(tokens=tokens, metadata=None, esmond=None)
    metadata: MetadataStore
    if _store(settings, locator) == "postgres":
        from watchkeeper.archive.esmond.postgres import PostgresMetadataStore

        metadata = PostgresMetadataStore(settings.esmond.dsn)
    else:
        metadata = SqliteMetadataStore(Path(settings.data_dir))
    esmond = EsmondArchive(metadata=metadata, archive=archive, clock=clock)
    return EsmondParts(tokens=tokens, metadata=metadata, esmond=esmond)


def _store(settings: Settings, locator: Locator) -> str:
    store = settings.esmond.store
    if store not in STORES:
        raise locator.error("esmond.store", f"must be one of {', '.join(STORES)}", store)
    if store == "postgres" and not settings.esmond.dsn:
        raise locator.error("esmond.dsn", "is required when esmond.store is postgres")
    return store
