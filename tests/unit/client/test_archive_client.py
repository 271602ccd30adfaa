"""ArchiveClient units: paging, errors, retries, typed results (MockTransport, no server)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from watchkeeper.client import (
    ArchiveClient,
    AsyncArchiveClient,
    BulkData,
    ClientError,
    DataHistogram,
    HTTPStatusError,
    Metadata,
    NewMetadata,
    TransportError,
)

BASE = "/esmond/perfsonar/archive/"


def meta(key: str, **extra: Any) -> dict[str, Any]:
    return {"metadata-key": key, "uri": f"{BASE}{key}/", "source": "10.0.0.1",
            "event-types": [{"event-type": "histogram-owdelay",
                             "base-uri": f"{BASE}{key}/histogram-owdelay/base",
                             "summaries": [{
                                 "summary-type": "statistics", "summary-window": "0",
                                 "uri": f"{BASE}{key}/histogram-owdelay/statistics/0"}]}],
            **extra}


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})


class Series:
    """A fake archive: 25 metadata in pages of 10, a series of 2500 points."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        params = request.url.params
        if request.url.path == BASE:
            offset = int(params.get("offset", 0))
            page = [meta(f"k{i:02d}") for i in range(offset, min(offset + 10, 25))]
            if page:
                page[0]["metadata-count-total"] = 25
            return ok(page)
        start, limit = int(params["time-start"]), int(params["limit"])
        end = int(params.get("time-end", 10**10))
        points = [{"ts": t, "val": {"1": t}} for t in range(1000, 3500)
                  if start <= t <= end][:limit]
        return ok(points)


def test_metadata_pages_by_offset_and_data_pages_by_time() -> None:
    fake = Series()
    with ArchiveClient("http://ma", transport=httpx.MockTransport(fake)) as client:
        metas = list(client.metadata(source="10.0.0.1", time_start=0, time_end=5000))
        assert [m.metadata_key for m in metas] == [f"k{i:02d}" for i in range(25)]
        offsets = [r.url.params.get("offset") for r in fake.seen]
        assert offsets == [None, "10", "20"]
        etype = metas[0].get_event_type("histogram-owdelay")
        assert etype is not None
        assert etype.data_type == "histogram"
        payload = etype.get_data()
    assert len(payload) == 2500
    assert isinstance(payload.data[0], DataHistogram)
    assert [p.ts_epoch for p in payload.data[:2]] == [1000, 1001]
    data_requests = [r.url.params for r in fake.seen[3:]]
    assert [p["time-start"] for p in data_requests] == ["0", "2000", "3000"]
    assert {p["limit"] for p in data_requests} == {"1000"}
    assert {p["time-end"] for p in data_requests} == {"5000"}


def test_summary_lookup_compares_windows_as_text() -> None:
    m = Metadata(meta("k"))
    et = m.get_event_type("histogram-owdelay")
    assert et is not None
    assert et.summaries == [("statistics", "0")]
    assert et.get_summary("statistics", 0) is not None
    assert et.get_summary("statistics", 300) is None
    with pytest.raises(RuntimeError, match="not bound"):
        et.get_data()


def test_errors_carry_the_servers_detail() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return ok({"detail": "Invalid token."}, 401)
        if request.method == "PUT":
            return ok({"detail": "Unsupported event type 'nope'"}, 400)
        return httpx.Response(200, content=b"<html>", headers={"Content-Type": "text/html"})

    with ArchiveClient("http://ma", token="bad", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(HTTPStatusError) as info:
            c.create_metadata(NewMetadata(source="1.1.1.1"))
        assert (info.value.status, info.value.detail) == (401, "Invalid token.")
        with pytest.raises(HTTPStatusError, match="Unsupported event type 'nope'"):
            c.post_bulk("k", BulkData().add("nope", 1, 2))
        with pytest.raises(ClientError, match="expected application/json, got text/html"):
            list(c.metadata())


def test_connection_failures_are_retried_then_reported() -> None:
    attempts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        if len(attempts) < 3:
            raise httpx.ConnectError("refused", request=request)
        return ok([])

    with ArchiveClient("http://ma", backoff=0, transport=httpx.MockTransport(handler)) as c:
        assert list(c.metadata()) == []
    assert len(attempts) == 3

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with ArchiveClient("http://ma", backoff=0, retries=2,
                       transport=httpx.MockTransport(down)) as c, \
            pytest.raises(TransportError, match=r"cannot reach http://ma .*after 3 attempts"):
        c.post_point("k", "throughput", 1, 2)


def test_reads_are_retried_on_read_errors_but_writes_are_not() -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadError("reset", request=request)

    with ArchiveClient("http://ma", backoff=0, retries=1,
                       transport=httpx.MockTransport(flaky)) as c:
        with pytest.raises(TransportError):
            c.post_bulk("k", BulkData().add("throughput", 1, 1))
        with pytest.raises(TransportError):
            list(c.metadata())
    assert calls == ["PUT", "GET", "GET"]


def test_bulk_data_groups_by_timestamp_in_insertion_order() -> None:
    bulk = BulkData().add("throughput", 2, 1).add("packet-loss-rate", 2, {"numerator": 1,
                                                                        "denominator": 2})
    bulk.add("throughput", 1, 5)
    assert bulk.to_payload() == {"data": [
        {"ts": 2, "val": [{"event-type": "throughput", "val": 1},
                          {"event-type": "packet-loss-rate",
                           "val": {"numerator": 1, "denominator": 2}}]},
        {"ts": 1, "val": [{"event-type": "throughput", "val": 5}]}]}
    with pytest.raises(TypeError):
        bulk.add("throughput", 1.5, 1)  # type: ignore[arg-type]


def test_url_prefix_and_alias() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return ok("", 201)

    for url, alias in (("http://ma/esmond", "/"), ("http://ma", "esmond"), ("http://ma", None)):
        with ArchiveClient(url, script_alias=alias, transport=httpx.MockTransport(handler)) as c:
            c.post_bulk("k", BulkData().add("throughput", 1, 1))
    assert seen == ["/esmond/perfsonar/archive/k/", "/esmond/perfsonar/archive/k/",
                    "/perfsonar/archive/k/"]


async def test_async_client_pages_the_same_way() -> None:
    fake = Series()
    async with AsyncArchiveClient("http://ma", transport=httpx.MockTransport(fake)) as client:
        metas = [m async for m in client.metadata(time_start=0)]
        assert len(metas) == 25
        etype = metas[0].get_event_type("histogram-owdelay")
        assert etype is not None
        payload = await etype.aget_data(time_end=2500)
        with pytest.raises(RuntimeError, match="aget_data"):
            etype.get_data()
    assert len(payload) == 1501
    assert payload.data[-1].ts_epoch == 2500


def test_to_pandas_and_to_arrow_when_installed() -> None:
    from watchkeeper.client import DataPayload

    payload = DataPayload([{"ts": 1, "val": 2.0}], "unspecified")
    pd = pytest.importorskip("pandas")
    frame = payload.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert frame["val"].tolist() == [2.0]
    pytest.importorskip("pyarrow")
    assert payload.to_arrow().num_rows == 1
