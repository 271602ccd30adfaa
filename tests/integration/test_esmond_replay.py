"""Every request the real esmond-client 4.2.1 sent (``captured/*.requests.jsonl``), replayed
against the real app, each response checked for what the client reads from it.

The store holds esmond's upstream fixtures and test data, plus the metadata the recording
mock served (key ``abc123def456``) with data written through the API, so the query
scenarios find what they looked for. A write scenario uses the key its own metadata POST
got back, as the client does. What is checked (reference §0, §5.3-5.6):

* ``Content-Type`` exactly ``application/json`` on every response;
* 200 on reads, 201 with body ``""`` on data writes, 201 with the metadata on a metadata
  POST (the client raises on anything else);
* metadata lists: an array whose first element carries ``metadata-count-total`` (the
  client's offset paging stops when it has that many), root-relative ``uri`` and
  ``base-uri`` with the ``/esmond`` prefix, ``summary-window`` as a string, and the
  data URL the client asks for next is one of the URIs it was given;
* data: ``[{"ts": int, "val": ...}]`` ascending, at most ``limit`` points.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.esmond.stores import KINDS, store_location
from tests.unit.esmond.support import CAPTURED, Stack, load_upstream, running
from watchkeeper.archive.esmond.model import EventTypeRow, Metadata
from watchkeeper.archive.esmond.postgres import PostgresMetadataStore
from watchkeeper.archive.tokens import PostgresTokenStore

MOCK_KEY = "abc123def456"
LOADED_AT = 1398903400  # "now" while data is written: inside every scenario's time window
SCENARIOS = sorted(p.name.removesuffix(".requests.jsonl")
                   for p in CAPTURED.glob("*.requests.jsonl"))

# lib_query_and_post posts throughput at 1397075053 and 1397075113 one by one, then bulk-PUTs
# the same two timestamps again: esmond refuses that PUT with 409 (the recording mock said
# 201 to everything), and so do we. The client raises EventTypeBulkPostException on it.
EXPECTED_STATUS = {("lib_query_and_post", 8): 409}


def _requests(scenario: str) -> list[dict[str, Any]]:
    lines = (CAPTURED / f"{scenario}.requests.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _mock_metadata() -> Metadata:
    """The metadata the recording mock answered with (mock_responses.json)."""
    mock = json.loads((CAPTURED / "mock_responses.json").read_text())
    served = mock["GET .../archive/ (any filters)"]["body"][0]
    subject = tuple((name, served[name]) for name in (
        "source", "destination", "measurement-agent", "tool-name", "input-source",
        "input-destination"))
    rows = []
    for entry in served["event-types"]:
        rows.append(EventTypeRow(event_type=entry["event-type"], summary_type="base",
                                 summary_window=0))
        rows += [EventTypeRow(event_type=entry["event-type"], summary_type=s["summary-type"],
                              summary_window=int(s["summary-window"]))
                 for s in entry["summaries"]]
    return Metadata(key=MOCK_KEY, subject_type=served["subject-type"], subject=subject,
                    parameters=(("time-duration", served["time-duration"]),),
                    event_types=tuple(rows))


async def _load(stack: Stack) -> None:
    await load_upstream(stack.esmond, api_fixture=False)
    await stack.metadata.load(_mock_metadata(), "mock-checksum")
    start = 1398965989
    data = [{"ts": start + i * 7200, "val": [{"event-type": "throughput", "val": v}]}
            for i, v in enumerate([5978580000, 5413040000, 7964590000, 6946810000])]
    data[0]["val"] += [
        {"event-type": "histogram-owdelay", "val": {"41.00": 98, "41.10": 2}},
        {"event-type": "packet-trace", "val": [{"ttl": "1", "query": "1", "success": 1,
                                                "ip": "10.0.0.1", "rtt": "0.2",
                                                "mtu": "9000", "error_message": None}]}]
    async with stack.client() as client:
        response = await client.put(f"/esmond/perfsonar/archive/{MOCK_KEY}/",
                                    json={"data": data})
        assert response.status_code == 201, response.text


@pytest.fixture(params=KINDS)
async def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The app over SQLite stores, or over PostgreSQL metadata and token stores."""
    async with store_location(request.param, tmp_path) as where:
        stores: dict[str, Any] = {}
        if isinstance(where, str):
            stores = {"metadata": PostgresMetadataStore(where),
                      "tokens": PostgresTokenStore(where)}
        async with running(tmp_path, now=LOADED_AT, **stores) as stack:
            await _load(stack)
            yield stack


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_replay(loaded: Stack, scenario: str) -> None:
    """Each recorded request gets a response the real client accepts."""
    key = MOCK_KEY
    offered: set[str] = set()  # data URIs the last metadata list gave the client
    async with loaded.client(auth=None) as client:
        for index, recorded in enumerate(_requests(scenario)):
            path = recorded["path"]
            if recorded["method"] != "GET" or recorded["path"].count("/") > 4:
                path = path.replace(MOCK_KEY, key)
            headers = {name: value for name, value in recorded["headers"].items()
                       if name.lower() not in ("host", "content-length")}
            if "Authorization" in headers:
                headers["Authorization"] = f"Token {loaded.write_key}"
            params = [(name, value) for name, values in recorded["query"].items()
                      for value in values]
            response = await client.request(recorded["method"], path, params=params,
                                            headers=headers,
                                            content=recorded["body"].encode() or None)
            where = f"{scenario} request {index}: {recorded['method']} {path}"
            assert response.headers["content-type"] == "application/json", where
            expected = EXPECTED_STATUS.get((scenario, index))
            body = response.json()
            if recorded["method"] == "GET":
                assert response.status_code == (expected or 200), where
                if path.rstrip("/").endswith("/archive"):
                    offered = _check_metadata_list(body, recorded["query"], where)
                else:
                    if offered:
                        assert path in offered, f"{where}: not a URI the list gave"
                    _check_data(body, recorded["query"], where)
            elif path.rstrip("/").endswith("/archive"):
                assert response.status_code == 201, where
                key = _check_created_metadata(body, recorded, response, where)
            else:
                assert response.status_code == (expected or 201), f"{where}: {body}"
                if response.status_code == 201:
                    assert body == "", where


def _check_metadata_list(body: Any, query: dict[str, list[str]], where: str) -> set[str]:
    assert isinstance(body, list), where
    assert body, f"{where}: the client found nothing"
    assert body[0]["metadata-count-total"] == len(body), where  # no further page needed
    assert "metadata-next-page" in body[0]
    offered: set[str] = set()
    for item in body:
        assert item["uri"] == f"/esmond/perfsonar/archive/{item['metadata-key']}/", where
        for entry in item["event-types"]:
            assert entry["base-uri"] == f"{item['uri']}{entry['event-type']}/base", where
            offered.add(entry["base-uri"])
            for summary in entry["summaries"]:
                assert isinstance(summary["summary-window"], str), where
                assert summary["uri"].startswith(item["uri"]), where
                offered.add(summary["uri"])
        for name in ("source", "destination", "event-type", "tool-name"):
            wanted = query.get(name, [None])[0]
            if wanted and name == "event-type":
                assert wanted in [e["event-type"] for e in item["event-types"]], where
            elif wanted:
                assert item[name] == wanted, where
        if "summary-type" in query:  # esmond-ps-get -T: get_summary(type, str(window))
            summaries = [(s["summary-type"], s["summary-window"])
                         for e in item["event-types"] for s in e["summaries"]]
            window = query.get("summary-window", ["0"])[0]
            assert (query["summary-type"][0], window) in summaries, where
    return offered


def _check_data(body: Any, query: dict[str, list[str]], where: str) -> None:
    assert isinstance(body, list), where
    assert body, f"{where}: no data where the client expected some"
    stamps = [point["ts"] for point in body]
    assert all(isinstance(ts, int) for ts in stamps), where
    assert stamps == sorted(stamps), where
    assert all(set(point) == {"ts", "val"} for point in body), where
    assert len(body) <= int(query.get("limit", ["1500"])[0]), where
    begin, end = int(query["time-start"][0]), int(query["time-end"][0])
    assert all(begin <= ts <= end for ts in stamps), where


def _check_created_metadata(body: Any, recorded: dict[str, Any], response: httpx.Response,
                            where: str) -> str:
    posted = json.loads(recorded["body"])
    key: str = body["metadata-key"]
    prefix = recorded["path"].removesuffix("/archive/")
    assert body["uri"] == f"{prefix}/archive/{key}/", where
    assert response.headers["location"] == body["url"], where
    assert {e["event-type"] for e in body["event-types"]} == {
        e["event-type"] for e in posted["event-types"]}, where
    for name, value in posted.items():
        if name not in ("event-types",) and value is not None:
            assert body[name.replace("_", "-")] == str(value), where
    return key


def test_every_scenario_is_replayed() -> None:
    """The nine recorded scenarios are all here (none silently skipped)."""
    assert len(SCENARIOS) == 9
