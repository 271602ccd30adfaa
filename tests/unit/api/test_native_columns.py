"""The bulk (columnar, msgpack) form of POST /api/v1/write, in-process (ASGI transport)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.model import SeriesKey
from watchkeeper.wire import COLUMNS_CONTENT_TYPE, WirePoint, WriteColumns

NOW = 1_700_000_000.0
CPU = "r1/system/cpu.percent"
RTT = 'r1/ping/rtt{target="db1"}'



@pytest.fixture
async def http(archive: MemoryArchive) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(archive, metrics=archive.metrics)
    async with httpx.AsyncClient(base_url="http://wk",
                                 transport=httpx.ASGITransport(app=app)) as client:
        yield client


def body(**fields: Any) -> bytes:
    defaults: dict[str, Any] = {
        "series": [CPU],
        "index": np.zeros(3, "<i4").tobytes(),
        "ts": (NOW + np.arange(3) * 10).astype("<f8").tobytes(),
        "values": np.array([1.0, 2.5, math.nan], "<f8").tobytes(),
    }
    return msgspec.msgpack.encode(WriteColumns(**{**defaults, **fields}))


async def post(http: httpx.AsyncClient, content: bytes) -> httpx.Response:
    return await http.post("/api/v1/write", content=content,
                           headers={"Content-Type": COLUMNS_CONTENT_TYPE})


async def test_columns_are_written(http: httpx.AsyncClient, archive: MemoryArchive) -> None:
    """Numbers as columns and histograms as points land in one all-or-nothing write."""
    response = await post(http, body(units={CPU: "%"},
                                     points=[WirePoint(RTT, NOW, {"0.5": 3})]))

    assert (response.status_code, response.json()) == (201, {"written": 4})
    points = await archive.read(SeriesKey.parse(CPU), NOW, NOW + 100)
    assert points.values[:2].tolist() == [1.0, 2.5]
    assert math.isnan(points.values[2])
    assert (await archive.read(SeriesKey.parse(RTT), NOW, NOW)).histograms == ({"0.5": 3},)
    listed, _ = await archive.list_series(prefix="r1/system")
    assert listed[0].unit == "%"


async def test_query_answers_numbers_as_json_lists(http: httpx.AsyncClient) -> None:
    """Float points leave as ``[ts, value]`` pairs, NaN as null, with the series' unit."""
    await post(http, body(units={CPU: "%"}))

    response = await http.get("/api/v1/query", params={"series": CPU, "start": NOW,
                                                         "end": NOW + 100})

    assert response.headers["content-type"] == "application/json"
    got = response.json()
    assert (got["unit"], got["points"]) == ("%", [[NOW, 1.0], [NOW + 10, 2.5], [NOW + 20, None]])
    rolled = (await http.get("/api/v1/query", params={
        "series": CPU, "start": NOW, "end": NOW + 100, "step": 20, "agg": "max"})).json()
    assert rolled["points"] == [[NOW, 2.5], [NOW + 20, None]]


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"index": b"\x00\x00\x00"}, "index"),
        ({"values": b"\x00" * 12}, "values"),
        ({"index": np.array([0, 0, 1], "<i4").tobytes()}, "index"),
        ({"ts": np.array([NOW, -1.0, NOW], "<f8").tobytes()}, "ts"),
        ({"ts": np.array([NOW, math.inf, NOW], "<f8").tobytes()}, "ts"),
        ({"series": ["not a series"]}, "series"),
        ({"series": [CPU, 7]}, "series"),  # the list is decoded lazily: still a 400
        ({"series": {CPU: 1}}, "series"),
        ({"points": [WirePoint("bad", NOW, 1.0)]}, "points[0].series"),
    ],
    ids=["index-bytes", "values-bytes", "index-range", "negative-ts", "infinite-ts",
         "bad-series", "series-not-text", "series-not-a-list", "bad-point"],
)
async def test_malformed_columns_are_400(
    http: httpx.AsyncClient, archive: MemoryArchive, fields: dict[str, Any], detail: str
) -> None:
    response = await post(http, body(**fields))

    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert await archive.list_series() == ([], 0)


async def test_a_body_that_is_not_msgpack_is_400(http: httpx.AsyncClient) -> None:
    response = await post(http, b"{}")

    assert response.status_code == 400
    assert "malformed request body" in response.json()["detail"]
