"""POST /prometheus/api/v1/write: snappy protobuf in, durable series out, the right codes."""

from __future__ import annotations

import math
import struct

import cramjam
import numpy as np
import pytest

from tests.unit.ingest.conftest import Served
from watchkeeper.api.ingest.remote_write import write_request_class
from watchkeeper.model import SeriesKey

PATH = "/prometheus/api/v1/write"
T0 = 1_700_000_000_000
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def payload(*series: tuple[list[tuple[str, str]], list[tuple[int, float]]]) -> bytes:
    request = write_request_class()()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for stamp, value in samples:
            ts.samples.add(timestamp=stamp, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


NODE = [("__name__", "node_load1"), ("instance", "h1:9100"), ("job", "node")]


async def post(served: Served, body: bytes, key: str | None = None) -> int:
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Write-Version": "0.1.0",
               "Authorization": f"Bearer {key or served.writer}"}
    return (await served.http.post(PATH, content=body, headers=headers)).status_code


async def test_samples_are_stored_under_the_mapping(served: Served) -> None:
    """A write answers 204 once stored; NaN is stored, and the stale marker too, its bits
    intact (a native read shows it as a NaN point; PromQL ends the series there)."""
    body = payload((NODE, [(T0, 0.5), (T0 + 15_000, math.nan), (T0 + 30_000, STALE)]),
                   ([("__name__", "up"), ("zone", "a")], [(T0, 1.0)]))
    assert await post(served, body) == 204
    points = await served.archive.read(SeriesKey.parse("h1:9100/node/node_load1"), 0, 2e9)
    assert points.ts.tolist() == [T0 / 1000, T0 / 1000 + 15, T0 / 1000 + 30]
    assert points.values[0] == 0.5
    assert np.asarray(points.values).view(np.uint64)[1:].tolist() == [0x7FF8000000000000,
                                                                     0x7FF0000000000002]
    up = await served.archive.read(SeriesKey.parse('prometheus/prometheus/up{zone="a"}'), 0, 2e9)
    assert up.values.tolist() == [1.0]


@pytest.mark.parametrize("body", [
    b"\xff\xff\xff\xff garbage",  # not a snappy block
    bytes(cramjam.snappy.compress_raw(b"\x0a\x20\x0a")),  # truncated protobuf
    payload(([("job", "n"), ("__name__", "x")], [(T0, 1.0)])),  # out of order
    payload(([("__name__", "x"), ("a", "1"), ("a", "2")], [(T0, 1.0)])),  # duplicated
    payload(([("job", "n")], [(T0, 1.0)])),  # no __name__
])
async def test_bad_payloads_are_400_and_store_nothing(served: Served, body: bytes) -> None:
    """What retrying cannot fix is 400 (never retried), and nothing is stored."""
    good = payload((NODE, [(T0, 1.0)]))
    assert await post(served, body) == 400
    assert (await served.archive.list_series())[1] == 0
    assert await post(served, good) == 204


async def test_auth_bearer_basic_and_rights(served: Served) -> None:
    """Bearer and basic (key as password) are accepted; no token 401, a read token 403."""
    body = payload((NODE, [(T0, 1.0)]))
    assert (await served.http.post(PATH, content=body)).status_code == 401
    assert await post(served, body, key=served.reader) == 403
    response = await served.http.post(PATH, content=body, auth=("prom", served.writer))
    assert response.status_code == 204
    response = await served.http.post(PATH, content=body, auth=("prom", "wrong"))
    assert response.status_code == 401
    bad = await served.http.post(PATH, content=body, headers={"Authorization": "Basic !!"})
    assert bad.status_code == 401


async def test_bearer_works_on_native_routes(served: Served) -> None:
    """Bearer is read on every route (the native write here); basic auth only on the
    ecosystem's, so a Basic header elsewhere is no credential at all (esmond's rule)."""
    point = {"points": [["h/p/m", 1.7e9, 1.0]]}
    bearer = await served.http.post("/api/v1/write", json=point,
                                    headers={"Authorization": f"Bearer {served.writer}"})
    assert bearer.status_code == 201
    basic = await served.http.post("/api/v1/write", json=point, auth=("u", served.writer))
    assert basic.status_code == 401


async def test_a_native_read_shows_a_stale_marker_as_a_nan_point(served: Served) -> None:
    """The native API has no staleness: the marker is a point without a value (null), at
    the time the series ended (docs/ecosystem.md)."""
    body = payload((NODE, [(T0, 0.5), (T0 + 15_000, STALE)]))
    assert await post(served, body) == 204
    answer = await served.http.get("/api/v1/query", params={
        "series": "h1:9100/node/node_load1", "start": str(T0 / 1000 - 1),
        "end": str(T0 / 1000 + 20)}, headers={"Authorization": f"Bearer {served.reader}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["points"] == [[T0 / 1000, 0.5], [T0 / 1000 + 15, None]]
