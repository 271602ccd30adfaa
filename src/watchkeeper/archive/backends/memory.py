"""An archive in a dict, for tests and demos.

It validates and answers exactly like the durable backends (it shares their batch
validation and read helpers), but nothing outlives the instance: it is the one backend
exempt from the durability promise of :class:`~watchkeeper.archive.abc.Archive`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import (
    Archive,
    Columns,
    FloatRuns,
    Points,
    SeriesMeta,
    SeriesQuery,
    float_runs,
)
from watchkeeper.archive.backends._batch import Batch, columnize, columnize_columns
from watchkeeper.archive.backends._catalog import Catalog
from watchkeeper.archive.backends._index import SeriesIndex
from watchkeeper.archive.backends._points import object_array, to_points, window_ms
from watchkeeper.clock import Clock
from watchkeeper.errors import SeriesNotFound
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


class MemoryArchive(Archive):
    """Series and points in memory: ``{series id: {ts in ms: value or histogram}}``."""

    def __init__(
        self, *, data_dir: Path, options: Any, clock: Clock, metrics: SelfMetrics
    ) -> None:
        super().__init__(data_dir=data_dir, options=options, clock=clock, metrics=metrics)
        self._catalog = Catalog()
        self._index = SeriesIndex(self._catalog)
        self._points: dict[int, dict[int, Any]] = {}

    async def start(self, exit_stack: AsyncExitStack) -> None:
        exit_stack.callback(self._points.clear)

    async def write(self, measurements: Sequence[Measurement]) -> int:
        return self._store(columnize(measurements, self._catalog))

    async def write_columns(self, columns: Columns) -> int:
        return self._store(columnize_columns(columns, self._catalog))

    def _store(self, batch: Batch) -> int:
        """Keep a validated batch (validation raises before anything changes)."""
        if not len(batch):
            return 0
        for series in batch.new_series:
            self._catalog.add(series)
            self._points[series.sid] = {}
        for sids, ts, values in batch.columns:
            for sid, ms, value in zip(sids.tolist(), ts.tolist(), values.tolist(), strict=True):
                self._points[sid][ms] = value
            self._catalog.widen(sids, ts)
        self.metrics.points_ingested.inc(len(batch))
        self.metrics.ingest_batches.inc()
        return len(batch)

    async def list_series(
        self, *, prefix: str = "", limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        series = self._catalog.ids_by_text.items()
        matching = sorted((text, sid) for text, sid in series if text.startswith(prefix))
        page = matching[offset:] if limit is None else matching[offset : offset + limit]
        return [self._catalog.meta(sid) for _, sid in page], len(matching)

    async def series_count(self) -> int:
        return len(self._catalog.ids_by_text)

    async def find_series(
        self, query: SeriesQuery, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        sids, total = self._index.find(query, limit, offset)
        return [self._catalog.meta(sid) for sid in sids], total

    async def read(self, key: SeriesKey, start: float, end: float) -> Points:
        sid = self._sid(key)
        lo, hi = window_ms(start, end)
        points = sorted((ms, v) for ms, v in self._points[sid].items() if lo <= ms <= hi)
        ts = np.array([ms for ms, _ in points], dtype=np.int64)
        values = object_array([v for _, v in points])
        return to_points(self._catalog.kind(sid), ts, values, start, end,
                         unit=self._catalog.unit(sid))

    async def read_floats(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                          ) -> FloatRuns:
        runs: list[tuple[Int64Array, Float64Array] | None] = []
        for key in keys:
            sid = self._catalog.ids.get(key)
            if sid is None or self._catalog.kind(sid) != "float":
                runs.append(None)
                continue
            points = sorted((ms, v) for ms, v in self._points[sid].items()
                            if start_ms <= ms <= end_ms)
            runs.append((np.array([ms for ms, _ in points], dtype=np.int64),
                         np.array([v for _, v in points], dtype=np.float64)))
        return float_runs(runs)

    async def delete(self, key: SeriesKey, start: float, end: float) -> int:
        sid = self._sid(key)
        lo, hi = window_ms(start, end)
        series = self._points[sid]
        doomed = [ms for ms in series if lo <= ms <= hi and start <= ms / 1000.0 <= end]
        for ms in doomed:
            del series[ms]
        self._catalog.set_range(sid, min(series, default=None), max(series, default=None))
        return len(doomed)

    def _sid(self, key: SeriesKey) -> int:
        sid = self._catalog.ids.get(key)
        if sid is None:
            raise SeriesNotFound(str(key))
        return sid
