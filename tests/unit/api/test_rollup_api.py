"""``GET /api/v1/rollup``: many series aggregated in one request, and its errors."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from tests.support.server import serve_in_thread
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.client import AsyncClient, Client, HTTPStatusError
from watchkeeper.wire import RollupResult

T0 = 1_699_999_200.0  # a whole hour
HOUR = 3600.0



@pytest.fixture
async def client(archive: MemoryArchive) -> AsyncIterator[AsyncClient]:
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=1_000_000)
    async with AsyncClient("http://wk", transport=httpx.ASGITransport(app=app)) as c:
        yield c


async def _load(client: AsyncClient) -> None:
    """Two hours of 10-minute points for two gauges, one other device, one histogram."""
    points: list[tuple[str, float, float | dict[str, int]]] = []
    for i in range(12):
        points.append(("r1/system/cpu", T0 + i * 600, float(i)))
        points.append(("r1/system/load", T0 + i * 600, 10.0 * i))
        points.append(("r2/system/cpu", T0 + i * 600, 1.0))
    points.append(("r1/system/rtt", T0, {"1": 2, "3": 1}))
    await client.write(points, units={"r1/system/cpu": "%"})


async def test_rollup_of_every_series_under_a_prefix(client: AsyncClient) -> None:
    await _load(client)
    out = await client.rollup("r1/", start=T0, end=T0 + 2 * HOUR - 1, step=HOUR,
                              aggs=["avg", "min", "max", "count"])
    assert isinstance(out, RollupResult)
    assert out.prefix == "r1/"
    assert (out.start, out.end, out.step) == (T0, T0 + 2 * HOUR - 1, HOUR)
    assert out.aggs == ["avg", "min", "max", "count"]
    # Key order; the histogram series is not a number series and is left out.
    assert [s.series for s in out.series] == ["r1/system/cpu", "r1/system/load"]
    cpu, load = out.series
    assert cpu.unit == "%"
    assert load.unit == ""
    assert cpu.ts == [T0, T0 + HOUR]
    assert cpu.values == {"avg": [2.5, 8.5], "min": [0.0, 6.0], "max": [5.0, 11.0],
                          "count": [6.0, 6.0]}
    assert load.values["avg"] == [25.0, 85.0]


async def test_rollup_defaults_to_avg_and_every_series(client: AsyncClient) -> None:
    await _load(client)
    out = await client.rollup(start=T0, end=T0 + 2 * HOUR, step=2 * HOUR)
    assert out.aggs == ["avg"]
    assert [s.series for s in out.series] == ["r1/system/cpu", "r1/system/load",
                                              "r2/system/cpu"]
    assert out.series[2].values == {"avg": [1.0]}


async def test_rollup_of_nothing(client: AsyncClient) -> None:
    await _load(client)
    out = await client.rollup("nosuch/", start=T0, end=T0 + HOUR, step=60)
    assert out.series == []
    empty = await client.rollup("r1/system/cpu", start=T0 - 10 * HOUR, end=T0 - 9 * HOUR,
                                step=60)
    assert [(s.series, s.ts, s.values) for s in empty.series] == [
        ("r1/system/cpu", [], {"avg": []})]


async def test_rollup_matches_the_archive(client: AsyncClient, archive: MemoryArchive) -> None:
    await _load(client)
    metas, _ = await archive.list_series(prefix="r")
    keys = [m.key for m in metas if m.kind == "float"]
    direct = await archive.rollup(keys, start=T0, end=T0 + 2 * HOUR, step=900,
                                  aggs=["avg", "max"])
    out = await client.rollup("r", start=T0, end=T0 + 2 * HOUR, step=900, aggs=["avg", "max"])
    assert [s.series for s in out.series] == [str(r.key) for r in direct]
    for got, want in zip(out.series, direct, strict=True):
        assert got.ts == want.ts.tolist()
        for agg in ("avg", "max"):
            assert all(math.isclose(a or 0.0, b) for a, b in
                       zip(got.values[agg], want.values[agg].tolist(), strict=True))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": T0, "step": 60}, "start"),
        ({"start": T0, "end": T0 + 60}, "step"),
        ({"start": T0, "end": T0 + 60, "step": "x"}, "step"),
        ({"start": T0, "end": T0 + 60, "step": 0}, "step"),
        ({"start": T0, "end": T0 + 60, "step": "nan"}, "step"),
        ({"start": T0, "end": T0 + 60, "step": -5}, "step"),
        ({"start": "yesterday", "end": T0, "step": 60}, "start"),
        ({"start": T0, "end": "soon", "step": 60}, "end"),
        ({"start": T0, "end": T0 - 60, "step": 60}, "end"),
        ({"start": T0, "end": T0 + 60, "step": 60, "aggs": "avg,median"}, "aggs"),
        ({"start": T0, "end": T0 + 60, "step": 60, "aggs": ","}, "aggs"),
        ({"start": T0, "end": T0 + 60, "step": 60, "aggs": "avg,avg"}, "aggs"),
    ],
)
async def test_bad_parameters_name_the_field(archive: MemoryArchive, client: AsyncClient,
                                             params: dict[str, object], field: str) -> None:
    await _load(client)
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=1_000_000)
    async with httpx.AsyncClient(base_url="http://wk",
                                 transport=httpx.ASGITransport(app=app)) as http:
        response = await http.get("/api/v1/rollup", params={"prefix": "r1/", **params})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = msgspec.json.decode(response.content)["detail"]
    assert detail.startswith(f"{field}:"), detail


async def test_client_raises_the_detail(client: AsyncClient) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        await client.rollup("r1/", start=T0, end=T0 + 60, step=60, aggs=["bogus"])
    assert caught.value.status == 400
    assert "aggs:" in str(caught.value)


async def test_sync_client_over_a_real_server(archive: MemoryArchive) -> None:
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=1_000_000)
    with serve_in_thread(app) as base_url, Client(base_url) as sync:
        sync.write([("d/p/m", T0 + i * 60, float(i)) for i in range(60)])
        out = sync.rollup("d/", start=T0, end=T0 + HOUR, step=600, aggs=("min", "max"))
    assert [s.series for s in out.series] == ["d/p/m"]
    assert out.series[0].ts == [T0 + k * 600 for k in range(6)]
    assert out.series[0].values["min"] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert out.series[0].values["max"] == [9.0, 19.0, 29.0, 39.0, 49.0, 59.0]
