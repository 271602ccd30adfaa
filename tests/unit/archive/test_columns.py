"""The columnar batch of the Archive contract, and the default write_columns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.archive import Archive, Columns, Points, SeriesMeta
from watchkeeper.clock import FakeClock
from watchkeeper.errors import InvalidData
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

T0 = 1_700_000_000.0
A = SeriesKey.make("h", "p", "a", {"x": "1"})


class Recorder(Archive):
    """An archive that only records what write() receives."""

    def __init__(self) -> None:
        super().__init__(data_dir=Path("."), options=None, clock=FakeClock(),
                         metrics=SelfMetrics())
        self.written: list[Measurement] = []

    async def start(self, exit_stack: AsyncExitStack) -> None:
        raise NotImplementedError

    async def write(self, measurements: Sequence[Measurement]) -> int:
        self.written.extend(measurements)
        return len(measurements)

    async def list_series(self, *, prefix: str = "", limit: int | None = None,
                          offset: int = 0) -> tuple[list[SeriesMeta], int]:
        raise NotImplementedError

    async def read(self, key: SeriesKey, start: float, end: float) -> Points:
        raise NotImplementedError

    async def delete(self, key: SeriesKey, start: float, end: float) -> int:
        raise NotImplementedError


async def test_the_default_writes_measurements_others_first() -> None:
    other = Measurement(key=A, ts=T0, histogram={"b": 1})
    batch = Columns(series=['h/p/a{x="1"}'], index=np.array([0, 0], np.int32),
                    ts=np.array([T0, T0 + 1]), values=np.array([1.5, math.inf]),
                    units={'h/p/a{x="1"}': "ms"}, others=[other])
    archive = Recorder()

    assert await archive.write_columns(batch) == 3

    assert archive.written == [
        other,
        Measurement(key=A, ts=T0, value=1.5, unit="ms"),
        Measurement(key=A, ts=T0 + 1, value=math.inf, unit="ms"),
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"series": ["nope"]}, "series[0]"),
        ({"index": np.array([0.0, 0.0])}, "index"),
        ({"index": np.array([[0], [0]], np.int32)}, "index"),
    ],
)
async def test_the_default_checks_the_columns(fields: dict[str, Any], field: str) -> None:
    batch = Columns(**{"series": [str(A)], "index": np.zeros(2, np.int32), "ts": np.zeros(2),
                       "values": np.zeros(2), **fields})

    with pytest.raises(InvalidData) as raised:
        await Recorder().write_columns(batch)

    assert raised.value.field == field
