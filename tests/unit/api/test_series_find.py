"""``GET /api/v1/series`` by subject, plugin, metric, label, substring and kind (issue 14),
over the embedded archive (its index) and the in-memory one; bad input names the
parameter; the OpenAPI document lists every parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from watchkeeper.api import create_app
from watchkeeper.archive import Archive
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.clock import FakeClock
from watchkeeper.telemetry import SelfMetrics

NOW = 1_700_000_000.0
SERIES = [
    'web1/http/latency{host="web1",url="/a"}',
    'web1/http/latency{host="web1",url="/b"}',
    'web2/http/latency{host="web2",url="/a"}',
    'web1/snmp/if.in{if="eth0"}',
    "db1/ssh/check.status",
]
OWDELAY = "abc123/esmond/histogram-owdelay"


@pytest.fixture(params=[MemoryArchive, EmbeddedArchive])
async def http(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    cls: type[Archive] = request.param
    async with AsyncExitStack() as stack:
        archive = cls(data_dir=tmp_path, options=cls.Options(), clock=FakeClock(),
                      metrics=SelfMetrics())
        await archive.start(stack)
        app = create_app(archive, metrics=archive.metrics)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk"))
        points: list[list[Any]] = [[s, NOW, 1.0] for s in SERIES]
        points.append([OWDELAY, NOW, {"10.5": 3, "11.0": 1}])
        written = await client.post("/api/v1/write", json={"points": points})
        assert written.status_code == 201, written.text
        yield client


async def _names(http: httpx.AsyncClient, query: str) -> tuple[list[str], int]:
    answer = await http.get(f"/api/v1/series?{query}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return [s["series"] for s in body["series"]], body["total"]


@pytest.mark.parametrize(("query", "expected"), [
    ("plugin=http", SERIES[:3]),
    ("metric=latency&label=host%3Dweb1", SERIES[:2]),
    ("label=host%3Dweb1&label=url%3D/b", SERIES[1:2]),
    ("label=url%3D/a&subject=web2", SERIES[2:3]),
    ("match=eth", SERIES[3:4]),
    ("match=web&match=/b", SERIES[1:2]),
    ("kind=histogram", [OWDELAY]),
    ("prefix=web1/&plugin=http", SERIES[:2]),
    ("plugin=nothing", []),
    ("label=host%3D", []),  # an empty value: no series carries it
])
async def test_filters(http: httpx.AsyncClient, query: str, expected: list[str]) -> None:
    assert await _names(http, query) == (sorted(expected), len(expected))


async def test_a_page_with_the_total(http: httpx.AsyncClient) -> None:
    assert await _names(http, "plugin=http&limit=1&offset=1") == (sorted(SERIES[:3])[1:2], 3)
    assert await _names(http, "prefix=web1") == (sorted(SERIES[:2] + SERIES[3:4]), 3)


@pytest.mark.parametrize(("query", "detail"), [
    ("label=host", "label: expected name=value"),
    ("label=1host%3Dx", "label: label names are identifiers"),
    ("plugin=a%20b", "plugin: must be non-empty"),
    ("subject=a/b", "subject: must be non-empty"),
    ("metric=%7B", "metric: must be non-empty"),
    ("match=", "match: must not be empty"),
    ("kind=int", "kind: must be one of float, histogram, object"),
    ("plugin=http&limit=-1", "limit:"),
])
async def test_bad_parameters_are_named(http: httpx.AsyncClient, query: str, detail: str) -> None:
    answer = await http.get(f"/api/v1/series?{query}")
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(detail), answer.json()


async def test_openapi_lists_the_parameters(http: httpx.AsyncClient) -> None:
    document = (await http.get("/api/v1/openapi.json")).json()
    params = {p["name"]: p for p in document["paths"]["/api/v1/series"]["get"]["parameters"]}
    assert {"prefix", "subject", "plugin", "metric", "label", "match", "kind", "limit",
            "offset"} <= set(params)
    assert params["kind"]["schema"]["enum"] == ["float", "histogram", "object"]
