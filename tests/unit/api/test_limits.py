"""Requests that used to break the server (issue 17 §1) now get a 4xx naming the field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.unit.api.full_app import full_app
from tests.unit.esmond.support import Stack, running
from watchkeeper.api import create_app
from watchkeeper.api.limits import MAX_JSON_DEPTH, MAX_WHOLE, json_depth, whole_param
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.errors import InvalidData

P = "/esmond/perfsonar/archive"
METADATA = {"subject-type": "point-to-point", "source": "10.0.0.1", "destination": "10.0.0.2",
            "tool-name": "bwctl/iperf3", "measurement-agent": "10.0.0.1",
            "input-source": "10.0.0.1", "input-destination": "10.0.0.2",
            "event-types": [{"event-type": "throughput"}]}


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.fixture
async def native(archive: MemoryArchive) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=100_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as h:
        yield h


@pytest.fixture
async def esmond(tmp_path: Path) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    async with running(tmp_path, max_body_bytes=1_000_000) as stack, stack.client() as client:
        yield stack, client


@pytest.mark.parametrize(("query", "field"), [
    ("offset=1e400", "offset"), ("limit=NaN", "limit"), ("limit=1e400", "limit"),
    ("offset=-1", "offset"), ("limit=1.5", "limit"), ("offset=" + "9" * 30, "offset"),
    ("limit=%C2%B2", "limit"),  # a superscript two: a digit to str.isdigit, not to int()
])
async def test_series_paging_is_whole_numbers(native: httpx.AsyncClient, query: str,
                                              field: str) -> None:
    """limit and offset are whole numbers; anything else is a 400 naming the field."""
    response = await native.get(f"/api/v1/series?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}: expected a whole number")


async def test_series_paging_still_pages(native: httpx.AsyncClient) -> None:
    """Good values page as before."""
    await native.post("/api/v1/write", json={"points": [[f"a/b/m{i}", 1.0, 1.0]
                                                        for i in range(3)]})
    page = (await native.get("/api/v1/series?limit=1&offset=1")).json()
    assert (page["total"], [s["series"] for s in page["series"]]) == (3, ["a/b/m1"])


def test_whole_param_bounds() -> None:
    """The one helper: default when absent, bounds inclusive, the field in the error."""
    assert whole_param(None, field="x", default=7) == 7
    assert whole_param("", field="x", default=7) == 7
    assert whole_param(" 12 ", field="x", default=7) == 12
    assert whole_param(str(MAX_WHOLE), field="x", default=0) == MAX_WHOLE
    with pytest.raises(InvalidData, match=r"^x: "):
        whole_param(str(MAX_WHOLE + 1), field="x", default=0)
    with pytest.raises(InvalidData, match="from 1 to 5"):
        whole_param("0", field="x", default=1, low=1, high=5)


@pytest.mark.parametrize(("text", "depth"), [
    (b"[]", 1), (b'{"a": [1, {"b": []}]}', 4), (b"1", 0),
    (b'[' * 70 + b'"]]]]"' + b']' * 70, 70),
    (json.dumps(["[" * 100]).encode(), 1),  # brackets inside a string do not count
    (json.dumps([['\\"[[' * 30]] * 40).encode(), 2),  # nor after escaped quotes
    (json.dumps(['\\', [[['x']]]] * 30).encode(), 4),  # an escaped backslash ends no string
])
def test_json_depth(text: bytes, depth: int) -> None:
    """Depth is exact past the limit (and an upper bound below it)."""
    json.loads(text)  # every case is valid JSON
    assert json_depth(text, stop_after=0) == depth


async def test_deep_json_write_is_refused(native: httpx.AsyncClient) -> None:
    """Thousands of levels of nesting: 400 naming the limit, not a RecursionError."""
    refused = await native.post("/api/v1/write", content=deep(5000))
    assert refused.status_code == 400  # its type says an object comes first
    assert "Expected `object`, got `array`" in refused.json()["detail"]
    body = b'{"points": [], "x": ' + deep(5000) + b"}"
    skipped = await native.post("/api/v1/write", content=body)
    assert skipped.status_code == 400  # deep inside a field msgspec skips
    assert f"deeper than {MAX_JSON_DEPTH} levels" in skipped.json()["detail"]


async def test_deep_msgpack_write_is_refused(native: httpx.AsyncClient) -> None:
    """The bulk (msgpack) form too: an unknown field nested thousands deep is a 400."""
    body = b"\x81\xa1x" + b"\x91" * 5000 + b"\xc0"
    response = await native.post("/api/v1/write", content=body, headers={
        "Content-Type": "application/vnd.watchkeeper.columns+msgpack"})
    assert response.status_code == 400
    assert "deeper" in response.json()["detail"]


async def test_deep_json_to_esmond_is_refused(
        esmond: tuple[Stack, httpx.AsyncClient]) -> None:
    """The metadata POST, the data POST and the bulk PUT refuse deep nesting alike."""
    _, client = esmond
    created = await client.post(f"{P}/", json=METADATA)
    assert created.status_code == 201
    key = created.json()["metadata-key"]
    body = b'{"ts": 1, "val": ' + deep(5000) + b"}"
    headers = {"Content-Type": "application/json"}
    for method, url, content in (("POST", f"{P}/", deep(5000)),
                                 ("POST", f"{P}/{key}/throughput/base", body),
                                 ("PUT", f"{P}/{key}/", b'{"data": ' + deep(5000) + b"}"),
                                 ("POST", f"{P}/{key}/throughput/", deep(5000))):
        response = await client.request(method, url, content=content, headers=headers)
        assert response.status_code == 400, (url, response.text)
        assert f"deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"]


@pytest.mark.parametrize("name", ["time", "time-start", "time-end", "time-range"])
async def test_huge_esmond_times_are_refused(esmond: tuple[Stack, httpx.AsyncClient],
                                             name: str) -> None:
    """A time past 2**53 is a 400 naming the parameter, in the search and on one metadata."""
    _, client = esmond
    key = (await client.post(f"{P}/", json=METADATA)).json()["metadata-key"]
    for url in (f"{P}/", f"{P}/{key}/", f"{P}/{key}/throughput/base"):
        response = await client.get(url, params={name: "99999999999999999999"})
        assert response.status_code == 400, (url, response.text)
        assert f"{name}='99999999999999999999'" in response.json()["detail"]
    sum_overflow = await client.get(f"{P}/", params={"time-start": str(MAX_WHOLE),
                                                      "time-range": str(MAX_WHOLE)})
    assert sum_overflow.status_code == 200


async def test_huge_esmond_paging_and_window(esmond: tuple[Stack, httpx.AsyncClient]) -> None:
    """Huge limit/offset fall back as DRF's junk does; a huge summary window is a 400."""
    _, client = esmond
    await client.post(f"{P}/", json=METADATA)
    listed = await client.get(f"{P}/", params={"limit": "9" * 30, "offset": "9" * 30})
    assert listed.status_code == 200
    assert len(listed.json()) == 1
    window = await client.get(f"{P}/", params={"summary-window": "9" * 30})
    assert window.status_code == 400
    assert "Summary window" in window.json()["detail"]


def _chunks(size: int, piece: int = 4096) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b" " * min(piece, size - sent)
        sent += piece


async def test_chunked_body_over_the_limit_is_refused(archive: MemoryArchive) -> None:
    """A body without Content-Length is counted as it arrives: 413 past the limit."""
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=10_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as h:

        async def body(size: int, head: bytes = b"") -> AsyncIterator[bytes]:
            yield head
            for chunk in _chunks(size):
                yield chunk

        over = await h.post("/api/v1/write", content=body(20_000, b'{"points": []}'))
        assert over.status_code == 413
        assert "over 10000 bytes" in over.json()["detail"]
        under = await h.post("/api/v1/write", content=body(5_000, b'{"points": []}'))
        assert under.status_code == 201


async def test_deep_json_to_collect_results_is_refused(tmp_path: Path) -> None:
    """The remote collectors' results route bounds depth too (found by the fuzz)."""
    async with full_app(tmp_path) as full, full.client(full.write_key) as client:
        response = await client.post("/api/v1/collect/results", content=deep(5000))
        assert response.status_code == 400
        assert f"deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"]
