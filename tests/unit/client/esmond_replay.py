"""The recording server of ``captured/`` as an httpx MockTransport, for pure parsing units.

It answers what ``captured/mock_responses.json`` says the recording server answered and
records every request in the shape of ``captured/*.requests.jsonl``, so a unit test can
compare the requests our classes send with the real esmond-client's, without a server.
(Tests against the real watchkeeper app live in tests/integration.)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import httpx

from tests.support.data import ESMOND

TESTDATA = ESMOND
CAPTURED = TESTDATA / "captured"
SYNTHETIC = TESTDATA / "synthetic"
KEY = "abc123def456"


def captured_requests(scenario: str) -> list[dict[str, Any]]:
    lines = (CAPTURED / f"{scenario}.requests.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def comparable(request: dict[str, Any]) -> dict[str, Any]:
    """What must match between the real client and ours: method, path, query, JSON body,
    the Authorization header and whether a JSON content type was declared."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    body = json.loads(request["body"]) if request["body"] else None
    if request["method"] == "PUT" and isinstance(body, dict):
        # esmond-client (Python 2) listed one timestamp's event types in dict order
        for item in body.get("data", []):
            item["val"] = sorted(item["val"], key=lambda v: v["event-type"])
    return {
        "method": request["method"],
        "path": request["path"],
        "query": {k: sorted(v) for k, v in request["query"].items()},
        "body": body,
        "authorization": headers.get("authorization"),
        "json": headers.get("content-type", "").startswith("application/json")
        if body else None,
    }


def record(request: httpx.Request) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.url.path,
        "query": parse_qs(request.url.query.decode(), keep_blank_values=True),
        "headers": dict(request.headers),
        "body": request.content.decode(),
    }


class ReplayServer:
    """Answers like the recording server and keeps the requests it got."""

    def __init__(self) -> None:
        self.mock = json.loads((CAPTURED / "mock_responses.json").read_text())
        self.requests: list[dict[str, Any]] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _json(self, body: Any, status: int = 200) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(record(request))
        path = request.url.path
        listing = self.mock["GET .../archive/ (any filters)"]["body"]
        if request.method == "GET" and path.endswith("/archive/"):
            return self._json(listing)
        if request.method == "GET" and path.endswith("/throughput/base"):
            start = int(request.url.params.get("time-start", "0"))
            return self._json([{"ts": start + 5, "val": 9.0e9},
                               {"ts": start + 65, "val": 8.5e9}])
        if request.method == "POST" and path.endswith("/archive/"):
            return self._json(listing[0], 201)
        if request.method in ("POST", "PUT"):
            return self._json("", 201)
        for key, answer in self.mock.items():
            if key.startswith("GET .../") and path.endswith(key[len("GET ..."):]):
                return self._json(answer["body"])
        return self._json({"detail": "not found"}, 404)


def lib_scenario(url: str, transport: httpx.BaseTransport, key: str = KEY,
                 api_key: str = "KEY123", *, bulk_to_new: bool = False) -> list[str]:
    """What the captured ``lib_query_and_post`` run did with esmond-client, with ours.

    Returns the lines it would print, esmond style, for comparison with the capture.
    The recording server gave every metadata the same key, so the captured run wrote the
    same throughput points twice (single POSTs, then a PUT); a real archive answers 409
    to that, so with ``bulk_to_new`` the PUTs go to the metadata the scenario created.
    """
    from watchkeeper.client.esmond import (
        ApiConnect,
        ApiFilters,
        EventTypeBulkPost,
        EventTypePost,
        MetadataPost,
    )

    out: list[str] = []
    filters = ApiFilters()
    filters.source = "127.0.0.1"
    filters.event_type = "throughput"
    filters.time_start = 1398900000
    filters.time_end = 1399000000
    conn = ApiConnect(url, filters, username="user1", api_key=api_key, transport=transport)
    meta = next(iter(conn.get_metadata()))
    out.append(f"{meta!r} {meta.event_types} {meta.metadata_key} {meta.time_duration}")
    etype = meta.get_event_type("throughput")
    assert etype is not None
    out.append(f"{etype!r} {etype.data_type} {etype.summaries}")
    payload = etype.get_data()
    out.append(f"{payload!r} {[(p.ts, p.ts_epoch, p.val) for p in payload.data]}")
    summary = etype.get_summary("average", 86400)
    assert summary is not None
    out.append(f"{summary!r} {summary.get_data().data}")
    histo = meta.get_event_type("histogram-owdelay")
    assert histo is not None
    hdata = histo.get_data()
    out.append(f"{hdata.data_type} {hdata.data} {[p.val for p in histo.get_data().data]}")

    post = MetadataPost(url, "user1", api_key, subject_type="point-to-point",
                        source="10.0.0.1", destination="10.0.0.2", tool_name="bwctl/iperf3",
                        measurement_agent="10.0.0.1", input_source="h1", input_destination="h2",
                        time_duration=30, transport=transport)
    post.add_event_type("throughput")
    post.add_summary_type("throughput", "average", [86400])
    post.add_summary_type("packet-loss-rate", "aggregation", [3600, 86400])
    post.add_freeform_key_value("bw-parallel-streams", 4)
    created = post.post_metadata()
    out.append(f"posted {created.metadata_key}")

    single = EventTypePost(url, "user1", api_key, metadata_key=key, event_type="throughput",
                           transport=transport)
    single.add_data_point(1397075053, 23)
    single.add_data_point(1397075113, 55)
    single.post_data()

    bulk_key = created.metadata_key if bulk_to_new else key
    bulk = EventTypeBulkPost(url, "user1", api_key, metadata_key=bulk_key, transport=transport)
    bulk.add_data_point("throughput", 1397075053, 23)
    bulk.add_data_point("packet-loss-rate", 1397075053, {"numerator": 1, "denominator": 10})
    bulk.add_data_point("throughput", 1397075113, 55)
    bulk.post_data()

    root = EventTypeBulkPost(url, "user1", api_key, metadata_key=bulk_key, script_alias=None,
                             transport=transport)
    root.add_data_point("throughput", 1, 2)
    try:
        root.post_data()
    except Exception as exc:  # noqa: BLE001 - a server without the alias-less route may 404
        out.append(f"alias-less bulk: {exc}")
    return out
