"""The metadata store contract: esmond's relational part (metadata, event types, parameters).

Points never live here: they are archive series (see :mod:`.series`), JSON-valued
ones (json and subinterval event types, histogram statistics) as ``object`` series.

Implementations: :class:`~.sqlite.SqliteMetadataStore` (embedded default, its own file
in the data directory, usable from several processes at once) and
:class:`~.postgres.PostgresMetadataStore`. One contract suite runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec

from watchkeeper.archive.esmond.model import Metadata, MetadataSpec


class MetadataQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A metadata search; every condition given must hold (esmond's GET filters).

    ``event_type``, ``summary_type``, ``summary_window`` and ``updated`` must all hold
    for the *same* event-type row. ``updated`` is ``(begin, end)`` on that row's
    ``time_updated`` (``end`` None: open); rows never written to never match it.
    ``subject`` maps a subject field to the values it may have (a resolved host gives
    several addresses); ``parameters`` are free-form ``(name, value)`` pairs.
    """

    subject_type: str | None = None
    metadata_key: str | None = None
    subject: tuple[tuple[str, tuple[str, ...]], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    event_type: str | None = None
    summary_type: str | None = None
    summary_window: int | None = None
    updated: tuple[int, int | None] | None = None


class MetadataStore(ABC):
    """Metadata by key and by checksum, searchable; ``time_updated`` per event type.

    Construction does no I/O; :meth:`start` opens (creating if needed) and registers
    the closing on the exit stack. Every method is safe to call concurrently, also
    from several processes on the same storage.
    """

    @abstractmethod
    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Open the storage; close it when the stack unwinds."""

    @abstractmethod
    async def create(self, spec: MetadataSpec, *, key: str | None = None) -> tuple[Metadata, bool]:
        """Store ``spec`` under a new key (or ``key``), or find the one with its checksum.

        Returns the stored metadata and whether it was created now. Concurrent creates
        of one spec store it once.
        """

    @abstractmethod
    async def search(self, query: MetadataQuery, *, limit: int | None,
                     offset: int = 0) -> tuple[list[Metadata], int]:
        """Matching metadata sorted by key (bytewise), one page of them, and the total."""

    @abstractmethod
    async def touch(self, touched: Sequence[tuple[str, str]], now: int) -> None:
        """Set ``time_updated = now`` on every row of each ``(metadata key, event type)``,
        in one transaction."""

    @abstractmethod
    async def load(self, metadata: Metadata, checksum: str) -> None:
        """Store a metadata exactly as given (key, rows and times): imports and fixtures.

        Replaces a metadata with the same key.
        """

    @asynccontextmanager
    async def writing(self, series: Sequence[tuple[str, str]]
                      ) -> AsyncIterator[Mapping[tuple[str, str], int]]:
        """Hold the right to write the points of ``(metadata key, event type)`` pairs,
        against every process.

        Summaries are read, folded and written back (:mod:`.service`), so two processes
        writing one event type of one metadata at once must take turns. Yields, per pair,
        how many turns it has had, this one included: a writer that counts one more than
        at its own last turn knows nobody else wrote since, so what it cached holds.

        This default is for a store only one process writes through (the embedded
        deployment: its archive admits one writing process): no lock, and an empty
        mapping, which means "nobody else writes".
        """
        del series
        yield {}

    async def get(self, key: str) -> Metadata | None:
        """The metadata with ``key``, or None."""
        found, _ = await self.search(MetadataQuery(metadata_key=key), limit=1)
        return found[0] if found else None
