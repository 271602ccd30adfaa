"""An in-memory archive loaded the way Prometheus' promqltest ``load`` lines read:
``{"http_requests{path=\"/foo\"}": "0+10x10"}`` at a step, from time 0."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.archive import Columns
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.promql import Engine
from watchkeeper.clock import FakeClock
from watchkeeper.model import promlabels
from watchkeeper.telemetry import SelfMetrics

STALE = float(np.array([promlabels.STALE_BITS], dtype=np.uint64).view(np.float64)[0])
Loader = Callable[[float, dict[str, str]], Awaitable[Engine]]
_SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$')
_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"\s*,?')


def expand(text: str) -> list[float | None]:
    """promqltest's values: ``1+2x3`` is 1 3 5 7, ``_`` is no sample, ``_x3`` three,
    ``stale`` Prometheus' stale marker."""
    out: list[float | None] = []
    for item in text.split():
        if item == "stale":
            out.append(STALE)
            continue
        found = re.fullmatch(r"(-?[0-9.e]+|NaN|_)(?:([+-][0-9.e]+)?x([0-9]+))?", item)
        assert found, item
        start, delta, times = found.groups()
        if times is None:
            out.append(None if start == "_" else float(start))
        elif start == "_":
            out.extend([None] * int(times))
        else:
            step = float(delta or 0)
            out.extend(float(start) + step * i for i in range(int(times) + 1))
    return out


def labels_of(text: str) -> list[tuple[str, str]]:
    found = _SERIES.match(text)
    assert found, text
    pairs = [("__name__", found.group(1))]
    pairs.extend(_PAIR.findall(found.group(2) or ""))
    return pairs


@pytest.fixture
async def load(tmp_path: Path) -> AsyncIterator[Loader]:
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)

        async def loader(step: float, data: dict[str, str]) -> Engine:
            series, index, ts, values = [], [], [], []
            for text, spec in data.items():
                series.append(promlabels.key_text(labels_of(text)))
                for i, value in enumerate(expand(spec)):
                    if value is not None:
                        index.append(len(series) - 1)
                        ts.append(i * step)
                        values.append(value)
            await archive.write_columns(Columns(series=series, index=np.array(index, np.int32),
                                                ts=np.array(ts), values=np.array(values)))
            return Engine(archive)

        yield loader
