"""The archive contract: every backend (embedded, PostgreSQL, memory) implements :class:`Archive`.

Backends do storage only. Rollup arithmetic lives in :mod:`watchkeeper.archive.rollup`,
which is pure and shared, so every backend answers a query with the same numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from watchkeeper.clock import Clock
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

Kind = Literal["float", "histogram"]


class SeriesMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What the archive knows about one series."""

    key: SeriesKey
    unit: str
    kind: Kind
    first_ts: float | None
    last_ts: float | None


@dataclass(frozen=True)
class Points:
    """Points of one series in ascending time order.

    ``ts`` holds seconds since the epoch. Float series fill ``values``; histogram
    series fill ``histograms`` (one ``{bucket: count}`` per timestamp).
    """

    kind: Kind
    ts: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    histograms: tuple[dict[str, int], ...] = ()

    def __len__(self) -> int:
        return int(self.ts.shape[0])


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A backend without options."""


class Archive(ABC):
    """A durable store of series and their points.

    Construction does no I/O; :meth:`start` opens storage and registers its closing
    on the exit stack. In a durable backend (all but the in-memory one) a write that
    returned survives a crash of the process (SIGKILL) and is visible to every later
    read, in this or another process.
    A point with the same series and timestamp as a stored one replaces it.
    """

    Options: ClassVar[type[msgspec.Struct]] = NoOptions

    def __init__(
        self,
        *,
        data_dir: Path,
        options: Any,
        clock: Clock,
        metrics: SelfMetrics,
    ) -> None:
        self.data_dir = data_dir
        self.options = options
        self.clock = clock
        self.metrics = metrics

    @abstractmethod
    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Open (creating if needed) the storage; close it when the stack unwinds."""

    @abstractmethod
    async def write(self, measurements: Sequence[Measurement]) -> int:
        """Store all measurements durably, all or nothing; return how many were stored.

        Raises :class:`~watchkeeper.errors.InvalidData` when a measurement's kind does not
        match its series (a histogram sent to a float series), without storing any.
        """

    @abstractmethod
    async def list_series(
        self, *, prefix: str = "", limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        """Series whose text key starts with ``prefix``, sorted by key, and the total count."""

    @abstractmethod
    async def read(self, key: SeriesKey, start: float, end: float) -> Points:
        """Points with ``start <= ts <= end``; raises SeriesNotFound for an unknown key."""

    @abstractmethod
    async def delete(self, key: SeriesKey, start: float, end: float) -> int:
        """Remove points with ``start <= ts <= end``; return how many were removed."""
