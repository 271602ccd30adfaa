"""The esmond clients against the real watchkeeper server: in-process and over HTTP.

The library scenario of ``captured/lib_query_and_post`` runs through the compatibility
classes and must send the requests esmond-client 4.2.1 sent (the metadata key is the
server's own, put back to the captured one before comparing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.esmond_client_app import LiveEsmond, esmond_app
from tests.unit.client.esmond_replay import (
    KEY,
    captured_requests,
    comparable,
    lib_scenario,
)
from watchkeeper.client import (
    ArchiveClient,
    AsyncArchiveClient,
    BulkData,
    HTTPStatusError,
    NewMetadata,
    TransportError,
)
from watchkeeper.client.esmond import ApiConnect, ApiFilters, MetadataPost, MetadataPostException


def mock_metadata() -> NewMetadata:
    """The metadata the recording server answered with (mock_responses.json)."""
    meta = NewMetadata(source="127.0.0.1", destination="127.0.0.2",
                       measurement_agent="127.0.0.1", tool_name="bwctl/iperf3",
                       input_source="localhost", input_destination="127.0.0.2",
                       parameters={"time-duration": 20})
    meta.add_event_type("throughput", [("average", 86400)])
    meta.add_event_type("histogram-owdelay", [("statistics", 0)])
    meta.add_event_type("packet-trace")
    return meta


def load_mock_data(client: ArchiveClient) -> str:
    key = client.create_metadata(mock_metadata()).metadata_key
    assert key
    bulk = BulkData()
    bulk.add("throughput", 1398816005, 9.0e9).add("throughput", 1398816065, 8.5e9)
    bulk.add("throughput", 1398900005, 9.0e9).add("throughput", 1398900065, 8.5e9)
    bulk.add("histogram-owdelay", 1398965989, {"41.00": 98, "41.10": 2})
    bulk.add("packet-trace", 1398965989, [{"ttl": "1", "query": "1", "success": 1,
                                           "ip": "10.0.0.1", "rtt": "0.2", "mtu": "9000",
                                           "error_message": None}])
    client.post_bulk(key, bulk)
    return key


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveEsmond]:
    with LiveEsmond(tmp_path) as server:
        yield server


@pytest.fixture
def mock_key(live: LiveEsmond) -> str:
    with ArchiveClient(live.url, token=live.token, transport=live.transport()) as client:
        return load_mock_data(client)


def normalised(requests: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    found = [comparable(r) for r in requests]
    for request in found:
        for key in keys:
            request["path"] = request["path"].replace(key, KEY)
        if request["authorization"]:
            request["authorization"] = "Token KEY123"
    return found


@pytest.mark.parametrize("over", ["in-process", "http"])
def test_library_scenario_sends_the_captured_requests(live: LiveEsmond, mock_key: str,
                                                      over: str) -> None:
    log: list[dict[str, Any]] = []
    transport = live.transport(log) if over == "in-process" else live.http(log)
    try:
        out = lib_scenario(live.url, transport, key=mock_key, api_key=live.token,
                           bulk_to_new=True)
    finally:
        transport.close()
    new_key = out[5].removeprefix("posted ")
    assert new_key != mock_key
    assert normalised(log, mock_key, new_key) == [
        comparable(r) for r in captured_requests("lib_query_and_post")]
    assert out[0].startswith(f"<Metadata/{mock_key}: uri:/esmond/perfsonar/archive/{mock_key}/>")
    assert out[2].endswith("[(datetime.datetime(2014, 4, 30, 23, 20, 5), 1398900005, "
                           "9000000000.0), (datetime.datetime(2014, 4, 30, 23, 21, 5), "
                           "1398900065, 8500000000.0)]")
    assert out[4] == ("histogram [<DataHistogram: ts:2014-05-01 17:39:49 len:2>] "
                      "[{'41.00': 98, '41.10': 2}]")
    assert out[5].startswith("posted ")
    assert not any(line.startswith("alias-less bulk") for line in out)


def test_compat_query_reads_back_what_was_posted(live: LiveEsmond) -> None:
    transport = live.transport()
    post = MetadataPost(live.url, "u", live.token, subject_type="point-to-point",
                        source="10.9.0.1", destination="10.9.0.2", tool_name="test/tool",
                        measurement_agent="10.9.0.1", input_source="a", input_destination="b",
                        transport=transport)
    post.add_event_type("packet-count-sent")
    key = post.post_metadata().metadata_key
    with ArchiveClient(live.url, token=live.token, transport=transport) as client:
        bulk = BulkData()
        for i in range(2500):  # three pages of 1000 for esmond's client
            bulk.add("packet-count-sent", 1398900000 + i, i)
        client.post_bulk(key, bulk)
    filters = ApiFilters()
    filters.metadata_key = key
    filters.time_start, filters.time_end = 1398800000, 1399000000
    [meta] = ApiConnect(live.url, filters, transport=transport).get_metadata()
    etype = meta.get_event_type("packet-count-sent")
    assert etype is not None
    points = etype.get_data().data
    assert len(points) == 2500
    assert (points[0].ts_epoch, points[-1].val) == (1398900000, 2499.0)


def test_compat_metadata_post_creates_a_network_element(live: LiveEsmond) -> None:
    """MetadataPost requires (and sends) destination and input-destination for every
    subject type, as esmond-client's does: a network-element is still created."""
    transport = live.transport()
    post = MetadataPost(live.url, "u", live.token, subject_type="network-element",
                        source="10.9.1.1", destination="10.9.1.1", tool_name="snmp",
                        measurement_agent="10.9.1.1", input_source="rtr1",
                        input_destination="rtr1", transport=transport)
    post.add_event_type("packet-count-lost")
    key = post.post_metadata().metadata_key
    filters = ApiFilters()
    filters.metadata_key = key
    [meta] = ApiConnect(live.url, filters, transport=transport).get_metadata()
    assert (meta.subject_type, meta.source, meta.input_source) == (
        "network-element", "10.9.1.1", "rtr1")
    assert meta.destination is None


def test_wrong_token_is_a_clear_error(live: LiveEsmond) -> None:
    with ArchiveClient(live.url, token="not-a-key", transport=live.transport()) as client, \
            pytest.raises(HTTPStatusError) as info:
        client.create_metadata(mock_metadata())
    assert (info.value.status, info.value.detail) == (401, "Invalid token.")
    post = MetadataPost(live.url, "u", "nope", subject_type="point-to-point", source="1.1.1.1",
                        destination="1.1.1.2", tool_name="t", measurement_agent="1.1.1.1",
                        input_source="a", input_destination="b", transport=live.transport())
    post.add_event_type("throughput")
    with pytest.raises(MetadataPostException, match="status_code: 401, message: Invalid token"):
        post.post_metadata()


def test_read_only_token_cannot_write(live: LiveEsmond) -> None:
    assert live.app is not None
    with ArchiveClient(live.url, token=live.app.read_token,
                       transport=live.transport()) as client, \
            pytest.raises(HTTPStatusError) as info:
        client.create_metadata(mock_metadata())
    assert info.value.status == 403


def test_unreachable_server() -> None:
    with socket_free_port() as url, ArchiveClient(url, retries=1, backoff=0) as client, \
            pytest.raises(TransportError, match=r"cannot reach .* \(after 2 attempts\)"):
        list(client.metadata())


class socket_free_port:  # noqa: N801 - used as a context manager
    def __enter__(self) -> str:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        return None


async def test_async_client_in_process(tmp_path: Path) -> None:
    async with esmond_app(tmp_path) as stack, AsyncArchiveClient(
            "http://wk", token=stack.token,
            transport=httpx.ASGITransport(app=stack.app)) as client:
        meta = await client.create_metadata(mock_metadata())
        assert meta.metadata_key
        bulk = BulkData()
        for i in range(1500):
            bulk.add("throughput", 1398900000 + 60 * i, 1000 + i)
        await client.post_bulk(meta.metadata_key, bulk)
        with pytest.raises(HTTPStatusError) as info:
            await client.post_point(meta.metadata_key, "throughput", 1398900000, 5)
        assert info.value.status == 409
        found = [m async for m in client.metadata(source="127.0.0.1", time_start=1398900000)]
        assert [m.metadata_key for m in found] == [meta.metadata_key]
        etype = found[0].get_event_type("throughput")
        assert etype is not None
        payload = await etype.aget_data(time_start=1398900000, time_end=1399000000)
        assert len(payload) == 1500
        summary = etype.get_summary("average", 86400)
        assert summary is not None
        averages = await summary.aget_data(time_start=1398816000, time_end=1399100000)
        assert len(averages) >= 1
        with pytest.raises(HTTPStatusError, match="400"):
            await client.post_bulk(meta.metadata_key, BulkData().add("throughput", 1, "x"))
