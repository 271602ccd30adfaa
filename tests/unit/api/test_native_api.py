"""The native REST API and the Python client, together in-process (ASGI transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from starlette.applications import Starlette

from tests.support.server import serve_in_thread
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.client import AsyncClient, Client, HTTPStatusError, TransportError

NOW = 1_700_000_000.0



@pytest.fixture
async def client(archive: MemoryArchive) -> AsyncIterator[AsyncClient]:
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=10_000)
    async with AsyncClient("http://wk", transport=httpx.ASGITransport(app=app)) as c:
        yield c


async def test_write_list_query(client: AsyncClient) -> None:
    points = [("r1/system/cpu.percent", NOW + i * 10, float(i)) for i in range(6)]
    points.append(('r1/snmp/if.in{if="eth0"}', NOW, 5.0))
    written = await client.write(points, units={"r1/system/cpu.percent": "%"})
    assert written.written == 7
    listing = await client.list_series()
    assert listing.total == 2
    assert [s.series for s in listing.series] == ['r1/snmp/if.in{if="eth0"}',
                                                  "r1/system/cpu.percent"]
    assert listing.series[0].labels == {"if": "eth0"}
    only = await client.list_series("r1/system", limit=1)
    assert [s.series for s in only.series] == ["r1/system/cpu.percent"]
    result = await client.query("r1/system/cpu.percent", start=NOW, end=NOW + 50)
    assert result.unit == "%"
    assert result.points == [(NOW + i * 10, float(i)) for i in range(6)]
    rolled = await client.query("r1/system/cpu.percent", start=NOW, end=NOW + 59, step=30,
                                agg="max")
    assert rolled.agg == "max"
    # Buckets align to the epoch: NOW is 20 s past a multiple of 30.
    assert rolled.points == [(NOW - 20, 0.0), (NOW + 10, 3.0), (NOW + 40, 5.0)]


async def test_histograms_round_trip(client: AsyncClient) -> None:
    await client.write([("r1/owamp/delay", NOW, {"1.5": 3, "2": 1})])
    result = await client.query("r1/owamp/delay", start=NOW - 1, end=NOW + 1)
    assert result.points == [(NOW, {"1.5": 3, "2": 1})]


async def test_delete_range(client: AsyncClient) -> None:
    await client.write([("a/b/c", NOW + i, float(i)) for i in range(10)])
    deleted = await client.delete("a/b/c", start=NOW + 2, end=NOW + 4)
    assert deleted.deleted == 3
    left = await client.query("a/b/c", start=NOW, end=NOW + 10)
    assert [ts - NOW for ts, _ in left.points] == [0, 1, 5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "fragment"),
    [
        ("GET", "/api/v1/query?series=nope/x/y&start=0&end=1", None, 404, "no series"),
        ("GET", "/api/v1/query?series=bad&start=0", None, 400, "series"),
        ("GET", "/api/v1/query", None, 400, "series: is required"),
        ("GET", "/api/v1/query?series=a/b/c&start=yesterday", None, 400, "start:"),
        ("GET", "/api/v1/query?series=a/b/c&start=nan", None, 400, "must be finite"),
        ("GET", "/api/v1/series?limit=ten", None, 400, "limit: expected a whole number"),
        ("POST", "/api/v1/write", b"{not json", 400, "malformed request body"),
        ("POST", "/api/v1/write", b'{"points": [["a/b/c", "x", 1]]}', 400, "points[0]"),
        ("POST", "/api/v1/write", b'{"points": [["a b/c", 1, 1]]}', 400, "points[0].series"),
        ("POST", "/api/v1/write", b'{"points": [["a/b/c", -5, 1]]}', 400, "timestamp out of"),
        ("POST", "/api/v1/write", b'{"points": []}' + b" " * 20_000, 413, "over 10000 bytes"),
        ("GET", "/api/v1/nowhere", None, 404, "Not Found"),
    ],
)
async def test_bad_requests_get_a_detail(archive: MemoryArchive, method: str, url: str,
                                         body: bytes | None, status: int, fragment: str) -> None:
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=10_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as h:
        response = await h.request(method, url, content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert fragment in msgspec.json.decode(response.content)["detail"]


async def test_rejected_write_changes_nothing(client: AsyncClient) -> None:
    await client.write([("a/b/c", NOW, 1.0)])
    with pytest.raises(HTTPStatusError) as info:
        await client.write([("a/b/c", NOW + 1, 2.0), ("a/b/c", NOW + 2, {"1": 1})])
    assert info.value.status == 400
    result = await client.query("a/b/c", start=NOW - 10, end=NOW + 10)
    assert result.points == [(NOW, 1.0)]


async def test_health_and_metrics(client: AsyncClient, archive: MemoryArchive) -> None:
    assert (await client.health()).status == "ok"
    await client.write([("a/b/c", NOW, 1.0)])
    app = create_app(archive, metrics=archive.metrics)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as h:
        text = (await h.get("/metrics")).text
    assert "watchkeeper_points_ingested_total 1.0" in text


def test_sync_client_reports_unreachable_server() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as c, pytest.raises(TransportError,
                                                                     match="cannot reach"):
        c.health()


async def test_async_client_reports_unreachable_server() -> None:
    async with AsyncClient("http://127.0.0.1:9", timeout=2) as c:
        with pytest.raises(TransportError, match="cannot reach"):
            await c.health()


async def test_sync_client_over_real_http(archive: MemoryArchive) -> None:
    app = create_app(archive, metrics=archive.metrics)
    await asyncio.to_thread(_sync_client_session, app)


def _sync_client_session(app: Starlette) -> None:
    with serve_in_thread(app) as url, Client(url) as client:
        client.write([("a/b/c", NOW, 1.0), ("a/b/c", NOW + 60, 3.0)])
        assert client.list_series().total == 1
        assert client.query("a/b/c", start=NOW, end=NOW + 60).points == [(NOW, 1.0),
                                                                        (NOW + 60, 3.0)]
        assert client.delete("a/b/c", start=NOW, end=NOW).deleted == 1
        with pytest.raises(HTTPStatusError, match="no series"):
            client.query("x/y/z", since="5m")
