"""esmond's test_client.py flows against esmond's client fixture and test data.

The expected counts, first and last points are esmond's ``TestResults`` (test_data.py,
reference §7), read through the client's own paging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.esmond import client_logic as esmond_client
from tests.unit.esmond.support import Stack, load_upstream, running

FILTERS = {"time-start": 1391558400, "time-end": 1391616000}  # TestResults.q_start/q_end
OWAMP = "lbl-owamp.es.net"
BWCTL = "lbl-pt1.es.net"


@pytest.fixture
async def upstream(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running(tmp_path) as stack:
        await load_upstream(stack.esmond, api_fixture=False)
        yield stack


@pytest.fixture
async def client(upstream: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with upstream.client() as c:
        yield c


async def _series(client: httpx.AsyncClient, input_source: str,
                  event: str) -> list[dict[str, Any]]:
    found = await esmond_client.get_metadata(client, FILTERS | {"input-source": input_source})
    assert len(found) == 1
    entry = esmond_client.event_type(found[0], event)
    assert entry is not None
    return await esmond_client.get_data(client, entry["base-uri"], FILTERS)


@pytest.mark.parametrize(("source", "event", "count", "first", "last"), [
    (OWAMP, "histogram-ttl", 960, (1391558439, {"10": 600}),
     (1391615979, {"9": 114, "10": 486})),
    (OWAMP, "histogram-owdelay", 960,
     (1391558410, {"472": 3, "800": 41, "15": 5, "263": 281, "241": 49, "505": 30, "232": 191}),
     (1391615950, {"309": 1, "763": 1, "45": 11, "182": 3, "473": 3, "427": 1, "362": 99,
                   "424": 9, "430": 472})),
    (BWCTL, "throughput", 4, (1391563070, 5524593445.0), (1391606270, 7549113664.0)),
    (OWAMP, "packet-duplicates", 960, (1391558413, 281.0), (1391615953, 379.0)),
    (OWAMP, "packet-count-sent", 960, (1391558435, 431.0), (1391615975, 505.0)),
    (OWAMP, "packet-count-lost", 960, (1391558410, 95.0), (1391615950, 312.0)),
])
async def test_histograms_and_values(client: httpx.AsyncClient, source: str, event: str,
                                     count: int, first: tuple[int, Any],
                                     last: tuple[int, Any]) -> None:
    """test_histograms / test_values: counts, first and last points of TestResults."""
    data = await _series(client, source, event)
    assert len(data) == count
    assert (data[0]["ts"], data[0]["val"]) == first
    assert (data[-1]["ts"], data[-1]["val"]) == last


async def test_summaries(client: httpx.AsyncClient) -> None:
    """test_summaries: the owdelay daily aggregation, loaded as given (not bin-aligned)."""
    found = await esmond_client.get_metadata(client, FILTERS | {"input-source": OWAMP})
    entry = esmond_client.event_type(found[0], "histogram-owdelay")
    assert entry is not None
    assert [(s["summary-type"], s["summary-window"]) for s in entry["summaries"]] == [
        ("aggregation", "86400")]
    chosen = esmond_client.summary(entry, "aggregation", 86400)
    assert chosen is not None
    data = await esmond_client.get_data(client, chosen["uri"], FILTERS)
    # the fixture literal lists "203" twice; the later value, 330, is the one kept
    assert data == [{"ts": 1391613631, "val": {
        "623": 206173, "203": 330, "833": 175, "863": 6, "193": 5, "713": 85, "928": 575408,
        "341": 1402, "265": 93, "224": 25810, "544": 1}}]


async def test_client_post(client: httpx.AsyncClient) -> None:
    """test_client_post: metadata, one point, a refused duplicate, a bulk post, a refused
    bulk duplicate, read back through the client's paging."""
    metadata = await esmond_client.post_metadata(client, {
        "subject-type": "point-to-point", "source": "10.0.0.1", "destination": "10.0.0.2",
        "tool-name": "bwctl/iperf3", "measurement-agent": "10.0.0.3",
        "input-source": "host1.example.net", "input-destination": "host2.example.net",
        "event-types": [{"event-type": "throughput", "summaries": []},
                        {"event-type": "streams-packet-retransmits", "summaries": []}]})
    key = metadata["metadata-key"]

    async def read(event: str) -> list[dict[str, Any]]:
        entry = esmond_client.event_type(metadata, event)
        assert entry is not None
        return await esmond_client.get_data(client, entry["base-uri"], {})

    await esmond_client.post_point(client, key, "throughput", 60, 6000)
    assert await read("throughput") == [{"ts": 60, "val": 6000}]
    with pytest.raises(esmond_client.ClientRefused, match="EventTypePostException: 409"):
        await esmond_client.post_point(client, key, "throughput", 60, 6000)
    await esmond_client.post_bulk(client, key, [
        ("throughput", 90, 9000), ("throughput", 120, 12000),
        ("streams-packet-retransmits", 60, 4), ("streams-packet-retransmits", 90, 0)])
    throughput = await read("throughput")
    retransmits = await read("streams-packet-retransmits")
    assert len(throughput) == 3
    assert len(retransmits) == 2
    assert throughput[-1] == {"ts": 120, "val": 12000}
    assert retransmits[-1] == {"ts": 90, "val": 0}
    with pytest.raises(esmond_client.ClientRefused, match="EventTypeBulkPostException: 409"):
        await esmond_client.post_bulk(client, key, [("throughput", 90, 9000)])
