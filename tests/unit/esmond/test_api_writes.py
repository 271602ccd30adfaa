"""Writes: metadata POST (checksum de-duplication), bulk PUT, and refused input.

Every refused request is a 4xx with a ``detail`` naming the field and the problem, and
changes nothing stored (checked by reading back); a bulk write is all or nothing.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.unit.esmond.support import NOW, Stack

P = "/esmond/perfsonar/archive"
METADATA: dict[str, Any] = {  # test_api.py's post_data
    "source": "10.1.1.1", "destination": "10.1.1.2", "subject-type": "point-to-point",
    "tool-name": "bwctl/iperf3", "input-destination": "10.1.1.1", "input-source": "10.1.1.2",
    "measurement-agent": "10.1.1.1", "time-interval": 7200, "time-duration": 20,
    "event-types": [
        {"event-type": "packet-retransmits"},
        {"event-type": "throughput",
         "summaries": [{"summary-type": "average", "summary-window": "86400"}]},
        {"event-type": "histogram-owdelay",
         "summaries": [{"summary-type": "aggregation", "summary-window": 3600},
                       {"summary-type": "statistics", "summary-window": 0},
                       {"summary-type": "statistics", "summary-window": 86400}]},
        {"event-type": "packet-loss-rate",
         "summaries": [{"summary-type": "aggregation", "summary-window": 300}]},
        {"event-type": "failures"},
    ],
}
TS = 1398965989


async def _create(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    response = await client.post(f"{P}/", json=body or METADATA)
    assert response.status_code == 201, response.text
    key: str = response.json()["metadata-key"]
    return key


async def test_post_metadata_creates_then_finds(client: httpx.AsyncClient,
                                                anonymous: httpx.AsyncClient) -> None:
    """test_post_metadata_list: 401 without a token; 201 echoing every field as a string,
    with Location; the same POST again gives the same key."""
    assert (await anonymous.post(f"{P}/", json=METADATA)).status_code == 401
    response = await client.post(f"{P}/", json=METADATA)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    key = data["metadata-key"]
    assert len(key) == 32
    assert int(key, 16) >= 0
    assert data["uri"] == f"{P}/{key}/"
    assert response.headers["location"] == data["url"] == f"http://testserver{P}/{key}/"
    for name, value in METADATA.items():
        if name != "event-types":
            assert str(value) == str(data[name])
    assert len(data["event-types"]) == len(METADATA["event-types"])
    owdelay = next(e for e in data["event-types"] if e["event-type"] == "histogram-owdelay")
    assert [(s["summary-type"], s["summary-window"]) for s in owdelay["summaries"]] == [
        ("aggregation", "3600"), ("statistics", "0"), ("statistics", "86400")]
    assert owdelay["time-updated"] is None
    again = await client.post(f"{P}/", json=METADATA)
    assert again.status_code == 201
    assert again.json()["metadata-key"] == key
    assert again.json()["uri"] == data["uri"]


async def test_checksum_compares_lowercased_text(client: httpx.AsyncClient) -> None:
    """Values compare as lowercased strings: 20 and "20", TCP and tcp are the same;
    another summary makes another metadata (no merging)."""
    first = dict(METADATA, **{"ip-transport-protocol": "TCP", "time-duration": 20})
    second = dict(METADATA, **{"ip-transport-protocol": "tcp", "time-duration": "20"})
    assert await _create(client, first) == await _create(client, second)
    more = copy.deepcopy(METADATA)
    more["event-types"][1]["summaries"].append({"summary-type": "aggregation",
                                                "summary-window": 3600})
    assert await _create(client, more) != await _create(client, METADATA)


async def test_freeform_keys_are_listed_dashed_and_searched_as_given(
        client: httpx.AsyncClient) -> None:
    """bw_ignore_first_seconds (esmond-ps-pipe) is listed as bw-ignore-first-seconds but
    searched under the name it was posted with; null values are skipped."""
    body = dict(METADATA, bw_ignore_first_seconds=0, **{"ip-tos": None})
    key = await _create(client, body)
    data = (await client.get(f"{P}/{key}/")).json()
    assert data["bw-ignore-first-seconds"] == "0"
    assert "ip-tos" not in data
    found = (await client.get(f"{P}/", params={"bw_ignore_first_seconds": "0"})).json()
    assert [m["metadata-key"] for m in found] == [key]
    assert (await client.get(f"{P}/", params={"bw-ignore-first-seconds": "0"})).json() == []


async def test_network_element_metadata(client: httpx.AsyncClient) -> None:
    """A network-element subject has source, measurement-agent, tool-name, input-source."""
    body = {"subject-type": "network-element", "source": "2001:DB8::0:1",
            "measurement-agent": "10.0.0.1", "tool-name": "ntp", "input-source": "ntp1",
            "event-types": [{"event-type": "ntp-offset",
                             "summaries": [{"summary-type": "average",
                                            "summary-window": 3600}]}]}
    key = await _create(client, body)
    data = (await client.get(f"{P}/{key}/")).json()
    assert data["source"] == "2001:db8::1"  # addresses are stored in canonical form
    assert "destination" not in data
    found = (await client.get(f"{P}/", params={"source": "2001:db8:0::1",
                                               "subject-type": "network-element"})).json()
    assert [m["metadata-key"] for m in found] == [key]


@pytest.mark.parametrize(("change", "detail"), [
    ({"subject-type": None}, "Missing subject-type field in request"),
    ({"event-types": None}, "Missing event-types field in request"),
    ({"subject-type": "mesh"}, "Invalid subject type mesh"),
    ({"metadata-key": "abc"}, "metadata-key is not allowed to be specified"),
    ({"event-types": "throughput"}, "event_types must be a list"),
    ({"event-types": [{"summaries": []}]}, "No event-type defined"),
    ({"event-types": [{"event-type": "bandwidth"}]}, "Invalid event-type bandwidth"),
    ({"event-types": [{"event-type": "throughput", "summaries": [{"summary-window": 60}]}]},
     "Summary must contain summary-type"),
    ({"event-types": [{"event-type": "throughput",
                       "summaries": [{"summary-type": "mean", "summary-window": 60}]}]},
     "Invalid summary type 'mean'"),
    ({"event-types": [{"event-type": "failures",
                       "summaries": [{"summary-type": "aggregation", "summary-window": 60}]}]},
     "Summary type aggregation not allowed for event-type failures"),
    ({"event-types": [{"event-type": "throughput",
                       "summaries": [{"summary-type": "average"}]}]},
     "Summary must contain summary-window"),
    ({"event-types": [{"event-type": "throughput",
                       "summaries": [{"summary-type": "average", "summary-window": "day"}]}]},
     "Summary window must be an integer"),
    ({"source": None}, "Missing required field 'source' for subject-type point-to-point"),
    ({"source": "host1.example.net"}, "Field 'source' must be an IP address"),
    ({"measurement-agent": 10}, "Field 'measurement-agent' must be a string"),
    ({"uri": "/x/"}, "Field name 'uri' is reserved"),
])
async def test_post_metadata_refusals(client: httpx.AsyncClient, change: dict[str, Any],
                                      detail: str) -> None:
    """Each malformed metadata is a 400 naming the field; nothing is created."""
    body = {k: v for k, v in {**METADATA, **change}.items() if v is not None}
    response = await client.post(f"{P}/", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"].startswith(detail)
    assert (await client.get(f"{P}/")).json() == []


async def test_post_metadata_content_checks(client: httpx.AsyncClient) -> None:
    """Not JSON: 415; broken JSON: 400 "JSON parse error"."""
    response = await client.post(f"{P}/", content=b"a=b",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json()["detail"].startswith("Unsupported media type")
    broken = await client.post(f"{P}/", content=b"{",
                               headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error - ")


async def test_bulk_put_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    """A bad value in the last item refuses the whole PUT: nothing of it is stored."""
    key = await _create(client)
    body = {"data": [
        {"ts": TS, "val": [{"event-type": "throughput", "val": 100},
                           {"event-type": "histogram-owdelay", "val": {"1": 1}}]},
        {"ts": TS + 60, "val": [{"event-type": "throughput", "val": "fast"}]},
    ]}
    response = await client.put(f"{P}/{key}/", json=body)
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Value must be an integer (data item 2, value 1, throughput: got 'fast')")
    assert (await client.get(f"{P}/{key}/throughput/base", params={"time-start": 0})
            ).json() == []
    assert (await client.get(f"{P}/{key}/histogram-owdelay/base", params={"time-start": 0})
            ).json() == []
    meta = (await client.get(f"{P}/{key}/")).json()
    assert all(e["time-updated"] is None for e in meta["event-types"])


async def test_bulk_conflict_refuses_the_whole_put(client: httpx.AsyncClient) -> None:
    """A numeric point already stored refuses the PUT with 409, including its new points;
    two items for one ts and event type in one PUT conflict too (esmond summed them)."""
    key = await _create(client)
    base = f"{P}/{key}/throughput/base"
    assert (await client.post(base, json={"ts": TS, "val": 5})).status_code == 201
    body = {"data": [{"ts": TS + 60, "val": [{"event-type": "throughput", "val": 6}]},
                     {"ts": TS, "val": [{"event-type": "throughput", "val": 7}]}]}
    response = await client.put(f"{P}/{key}/", json=body)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Time series value already exists with event type throughput at time {TS}")
    assert [p["ts"] for p in (await client.get(base, params={"time-start": 0})).json()] == [TS]
    twice = {"data": [{"ts": TS + 120, "val": [{"event-type": "throughput", "val": 1},
                                               {"event-type": "throughput", "val": 2}]}]}
    assert (await client.put(f"{P}/{key}/", json=twice)).status_code == 409
    average = (await client.get(f"{P}/{key}/throughput/averages/86400")).json()
    assert average == [{"ts": 1398902400, "val": 5.0}]


async def test_bulk_tolerates_unregistered_event_types(client: httpx.AsyncClient) -> None:
    """Known event types the metadata did not register are accepted and not stored (the
    JSON GridFTP loader relies on it); unknown names are a 400."""
    key = await _create(client)
    body = {"data": [{"ts": TS, "val": [{"event-type": "throughput", "val": 1},
                                        {"event-type": "mpstat", "val": {"usr": 1.5}},
                                        {"event-type": "rusage", "val": None}]}]}
    assert (await client.put(f"{P}/{key}/", json=body)).status_code == 201
    assert (await client.get(f"{P}/{key}/mpstat/base", params={"time-start": 0})).json() == []
    assert len((await client.get(f"{P}/{key}/throughput/base", params={"time-start": 0})
                ).json()) == 1
    unknown = {"data": [{"ts": TS + 1, "val": [{"event-type": "bogus", "val": 1}]}]}
    response = await client.put(f"{P}/{key}/", json=unknown)
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid event type bogus (data item 1, value 1, bogus)"


@pytest.mark.parametrize(("body", "detail"), [
    ({}, "Request must contain 'data' element"),
    ({"data": {}}, "The 'data' element must be an array"),
    ({"data": [{"val": []}]}, "Missing ts field in provided data list at position 1"),
    ({"data": [{"ts": 1, "val": []}, {"ts": 1}]},
     "Missing val field in provided data list at position 2"),
    ({"data": [{"ts": 1, "val": {}}]}, "'val' field must be an array in provided data list"),
    ({"data": [{"ts": 1, "val": [{"val": 1}]}]},
     "Missing event-type field at data item 1 in value 1"),
    ({"data": [{"ts": 1, "val": [{"event-type": "throughput"}]}]},
     "Missing val field at data item 1 in value 1"),
    ({"data": [{"ts": "soon", "val": [{"event-type": "throughput", "val": 1}]}]},
     "Time must be a unix timestamp"),
    ({"data": [{"ts": -5, "val": [{"event-type": "throughput", "val": 1}]}]},
     "Time must be a unix timestamp between 0 and 253402300799"),
    ({"data": [{"ts": 1, "val": [{"event-type": "histogram-owdelay", "val": {"1": -2}}]}]},
     "Value of histogram must be a count"),
    ({"data": [{"ts": 1, "val": [{"event-type": "packet-loss-rate",
                                  "val": {"numerator": 1, "denominator": 0}}]}]},
     "The field 'denominator' must be greater than 0"),
])
async def test_bulk_refusals(client: httpx.AsyncClient, body: dict[str, Any],
                             detail: str) -> None:
    """Malformed bulk bodies are 400 with esmond's text and the position."""
    key = await _create(client)
    response = await client.put(f"{P}/{key}/", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


@pytest.mark.parametrize(("content", "content_type", "detail"), [
    (b'{"ts": 1, "val": 1}', "text/plain", "Must post content-type: application/json"),
    (b"", "application/json", "No data payload POSTed."),
    (b"{ts: 1}", "application/json", "POST data payload could not be decoded to a JSON object"),
    (b'{"val": 1}', "application/json", "Required field ts not provided in request"),
    (b'{"ts": "now", "val": 1}', "application/json", "Time must be a unix timestamp"),
    (b'{"ts": 1}', "application/json", "Required field val not provided in request"),
    (b'{"ts": 1, "val": 1e999}', "application/json", "POST data payload could not be decoded"),
])
async def test_single_post_refusals(client: httpx.AsyncClient, content: bytes,
                                    content_type: str, detail: str) -> None:
    """esmond's checks of a one-point POST, in its order."""
    key = await _create(client)
    response = await client.post(f"{P}/{key}/throughput/base", content=content,
                                 headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


async def test_single_post_url_refusals(client: httpx.AsyncClient) -> None:
    """Unknown event type or summary in the URL, a summary other than base, an unknown key."""
    key = await _create(client)
    point = {"ts": TS, "val": 1}
    cases = [
        (f"{P}/{key}/bandwidth/base", 400, "Invalid event type bandwidth"),
        (f"{P}/{key}/throughput/means", 400, "Invalid summary type means"),
        (f"{P}/{key}/throughput/averages/86400", 400,
         "Only base summary-type allowed for writing. Cannot use averages"),
        (f"{P}/0123456789abcdef/throughput/base", 404,
         "metadata-key: no metadata with key '0123456789abcdef'"),
    ]
    for url, status, detail in cases:
        response = await client.post(url, json=point)
        assert response.status_code == status, url
        assert response.json()["detail"].startswith(detail)


async def test_unregistered_single_post_is_accepted_and_dropped(client: httpx.AsyncClient
                                                                ) -> None:
    """A POST to a known but unregistered event type is 201 and stores nothing (esmond)."""
    key = await _create(client)
    url = f"{P}/{key}/ntp-offset/base"
    assert (await client.post(url, json={"ts": TS, "val": 0.5})).status_code == 201
    assert (await client.get(url, params={"time-start": 0})).json() == []


async def test_patch_and_event_type_post_stub(client: httpx.AsyncClient) -> None:
    """PATCH of a metadata is 405; POST to an event type checks JSON and stores nothing."""
    key = await _create(client)
    patch = await client.patch(f"{P}/{key}/", json={})
    assert patch.status_code == 405
    assert patch.json() == {"detail": "does not support PATCH verb"}
    stub = await client.post(f"{P}/{key}/throughput/", json={"anything": 1})
    assert stub.status_code == 201
    assert stub.json() == ""
    assert (await client.delete(f"{P}/{key}/")).status_code == 405


async def test_oversized_body_is_refused(stack: Stack, client: httpx.AsyncClient) -> None:
    """A body over the configured limit is 413 before it is read."""
    key = await _create(client)
    big = {"data": [{"ts": TS + i, "val": [{"event-type": "failures", "val": "x" * 100}]}
                    for i in range(20_000)]}
    response = await client.put(f"{P}/{key}/", json=big)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert "body" in response.json()["detail"]


async def test_write_then_metadata_time_filter(stack: Stack, client: httpx.AsyncClient) -> None:
    """Metadata time filters look at the last write (server clock), not at data ts."""
    key = await _create(client)
    assert (await client.get(f"{P}/", params={"time-start": NOW - 10})).json() == []
    assert (await client.post(f"{P}/{key}/throughput/base",
                              json={"ts": 1000, "val": 1})).status_code == 201
    found = (await client.get(f"{P}/", params={"time-start": NOW - 10, "time-end": NOW})
             ).json()
    assert [m["metadata-key"] for m in found] == [key]


async def test_network_element_as_esmond_client_posts_it(client: httpx.AsyncClient) -> None:
    """esmond-client's MetadataPost sends destination and input-destination whatever the
    subject type: a network-element is created without them (same metadata as without)."""
    body = {"subject-type": "network-element", "source": "10.0.0.1",
            "destination": "10.0.0.2", "measurement-agent": "10.0.0.1",
            "tool-name": "snmp", "input-source": "rtr1", "input-destination": "rtr1",
            "time-duration": 30,
            "event-types": [{"event-type": "packet-count-lost", "summaries": []}]}
    key = await _create(client, body)
    data = (await client.get(f"{P}/{key}/")).json()
    assert (data["subject-type"], data["source"], data["input-source"]) == (
        "network-element", "10.0.0.1", "rtr1")
    assert "destination" not in data
    assert "input-destination" not in data
    assert data["time-duration"] == "30"
    without = {k: v for k, v in body.items() if k not in ("destination", "input-destination")}
    assert await _create(client, without) == key  # one metadata, found again by checksum
