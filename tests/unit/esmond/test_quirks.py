"""esmond's write-path quirks (reference §3.7 and §4): one test per decision.

Each test names its decision in docs/decisions_esmond.md (E1...). "Fixed" means the
behaviour deliberately differs from esmond's; "kept" means it is esmond's on purpose.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.unit.esmond.support import NOW, Stack

P = "/esmond/perfsonar/archive"
TS = 1398965989
DAY = 1398902400


async def _metadata(client: httpx.AsyncClient, event_types: list[dict[str, Any]]) -> str:
    response = await client.post(f"{P}/", json={
        "subject-type": "point-to-point", "source": "10.0.0.1", "destination": "10.0.0.2",
        "measurement-agent": "10.0.0.1", "tool-name": "t", "input-source": "a",
        "input-destination": "b", "event-types": event_types})
    assert response.status_code == 201
    key: str = response.json()["metadata-key"]
    return key


def _put(ts: int, *items: tuple[str, Any]) -> dict[str, Any]:
    return {"ts": ts, "val": [{"event-type": e, "val": v} for e, v in items]}


async def _read(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await client.get(path, params={"time-start": 0})).json()
    return result


async def test_e1_histograms_in_one_put_all_merge(client: httpx.AsyncClient) -> None:
    """E1 fixed: points of one request each see the earlier ones (esmond lost updates)."""
    key = await _metadata(client, [{"event-type": "histogram-rtt", "summaries": [
        {"summary-type": "aggregation", "summary-window": 86400}]}])
    body = {"data": [_put(TS, ("histogram-rtt", {"1": 1})),
                     _put(TS + 60, ("histogram-rtt", {"1": 2})),
                     _put(TS + 120, ("histogram-rtt", {"2": 4}))]}
    assert (await client.put(f"{P}/{key}/", json=body)).status_code == 201
    assert await _read(client, f"{P}/{key}/histogram-rtt/aggregations/86400") == [
        {"ts": DAY, "val": {"1": 3, "2": 4}}]


async def test_e2_same_point_twice_in_one_put_conflicts(client: httpx.AsyncClient) -> None:
    """E2 fixed: two numeric items with one ts and event type in a PUT are a 409 (esmond
    summed them into the aggregations)."""
    key = await _metadata(client, [{"event-type": "packet-count-lost", "summaries": [
        {"summary-type": "aggregation", "summary-window": 3600}]}])
    body = {"data": [_put(TS, ("packet-count-lost", 1)), _put(TS, ("packet-count-lost", 2))]}
    assert (await client.put(f"{P}/{key}/", json=body)).status_code == 409
    assert await _read(client, f"{P}/{key}/packet-count-lost/aggregations/3600") == []


async def test_e3_objects_are_replaced_and_summaries_follow(client: httpx.AsyncClient) -> None:
    """E3 kept + fixed: histogram, subinterval and json points at a taken ts replace the
    old one (201, as esmond); a replaced histogram leaves the aggregations (esmond counted
    both)."""
    key = await _metadata(client, [
        {"event-type": "histogram-owdelay", "summaries": [
            {"summary-type": "aggregation", "summary-window": 3600},
            {"summary-type": "statistics", "summary-window": 0}]},
        {"event-type": "failures"},
        {"event-type": "throughput-subintervals"}])
    for value in ({"5": 10}, {"6": 1}):
        body = {"data": [_put(TS, ("histogram-owdelay", value), ("failures", {"error": str(value)}),
                              ("throughput-subintervals",
                               [{"start": 0, "duration": 1, "val": str(value)}]))]}
        assert (await client.put(f"{P}/{key}/", json=body)).status_code == 201
    assert await _read(client, f"{P}/{key}/histogram-owdelay/aggregations/3600") == [
        {"ts": TS // 3600 * 3600, "val": {"6": 1}}]
    assert (await _read(client, f"{P}/{key}/histogram-owdelay/statistics/0"))[0]["val"][
        "mean"] == 6.0
    assert await _read(client, f"{P}/{key}/failures/base") == [
        {"ts": TS, "val": {"error": "{'6': 1}"}}]
    assert len(await _read(client, f"{P}/{key}/throughput-subintervals/base")) == 1


async def test_e4_floats_are_exact(client: httpx.AsyncClient) -> None:
    """E4 fixed: floats keep every bit (esmond kept 4 decimals: 0.29 became 0.2899)."""
    key = await _metadata(client, [{"event-type": "ntp-offset"}])
    for i, value in enumerate((0.29, 1.23456789e-7, -3.5)):
        assert (await client.post(f"{P}/{key}/ntp-offset/base",
                                  json={"ts": TS + i, "val": value})).status_code == 201
    assert [p["val"] for p in await _read(client, f"{P}/{key}/ntp-offset/base")] == [
        0.29, 1.23456789e-7, -3.5]


async def test_e5_bulk_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    """E5 fixed: a PUT whose last item is bad stores none of its items (esmond kept the
    items before the bad one)."""
    key = await _metadata(client, [{"event-type": "throughput"}, {"event-type": "failures"}])
    body = {"data": [_put(TS, ("throughput", 1), ("failures", {"error": "x"})),
                     _put(TS + 1, ("throughput", "bad"))]}
    assert (await client.put(f"{P}/{key}/", json=body)).status_code == 400
    assert await _read(client, f"{P}/{key}/throughput/base") == []
    assert await _read(client, f"{P}/{key}/failures/base") == []


async def test_e6_unregistered_event_types_are_dropped(client: httpx.AsyncClient) -> None:
    """E6 kept: known but unregistered event types get 201 and are not stored."""
    key = await _metadata(client, [{"event-type": "throughput"}])
    body = {"data": [_put(TS, ("throughput", 1), ("iostat", {"tps": 1}))]}
    assert (await client.put(f"{P}/{key}/", json=body)).status_code == 201
    assert await _read(client, f"{P}/{key}/iostat/base") == []


async def test_e7_unknown_metadata_key_is_404(client: httpx.AsyncClient) -> None:
    """E7 fixed: a write to a key that does not exist is 404 (esmond: 201, nothing)."""
    response = await client.post(f"{P}/deadbeef/throughput/base", json={"ts": TS, "val": 1})
    assert response.status_code == 404
    assert "deadbeef" in response.json()["detail"]
    put = await client.put(f"{P}/deadbeef/", json={"data": [_put(TS, ("throughput", 1))]})
    assert put.status_code == 404


async def test_e8_crashes_become_400s(client: httpx.AsyncClient) -> None:
    """E8 fixed: what made esmond answer 500 is a 400 naming the problem: an unknown
    event-type name in a PUT, an empty histogram, a null json value, a missing subject
    field or a hostname in an address field."""
    key = await _metadata(client, [{"event-type": "histogram-ttl"}, {"event-type": "failures"}])
    for body, detail in (
        ({"data": [_put(TS, ("no-such-type", 1))]}, "Invalid event type no-such-type"),
        ({"data": [_put(TS, ("histogram-ttl", {}))]}, "Invalid histogram provided"),
        ({"data": [_put(TS, ("failures", None))]}, "Value must be valid JSON other than null"),
    ):
        response = await client.put(f"{P}/{key}/", json=body)
        assert response.status_code == 400
        assert response.json()["detail"].startswith(detail)
    response = await client.post(f"{P}/", json={
        "subject-type": "point-to-point", "source": "host.example.net",
        "destination": "10.0.0.2", "measurement-agent": "10.0.0.1", "tool-name": "t",
        "input-source": "a", "input-destination": "b", "event-types": []})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Field 'source' must be an IP address")


async def test_e9_statistics_without_aggregation_cover_the_bin(client: httpx.AsyncClient
                                                               ) -> None:
    """E9 fixed: statistics of window W without an aggregation of W describe every point of
    the bin (esmond: only the last point posted to it)."""
    key = await _metadata(client, [{"event-type": "histogram-owdelay", "summaries": [
        {"summary-type": "statistics", "summary-window": 3600}]}])
    for i, value in enumerate(({"1": 1}, {"3": 1})):
        assert (await client.post(f"{P}/{key}/histogram-owdelay/base",
                                  json={"ts": TS + i, "val": value})).status_code == 201
    stats = await _read(client, f"{P}/{key}/histogram-owdelay/statistics/3600")
    assert stats[0]["val"]["mean"] == 2.0
    assert stats[0]["val"]["minimum"] == 1.0


async def test_e10_values_coerced_as_esmond_does(client: httpx.AsyncClient) -> None:
    """E10 kept: integers accept floats (truncated) and numeric strings and are served as
    floats; fractional ts are dropped. Fixed: booleans are refused."""
    key = await _metadata(client, [{"event-type": "throughput"}])
    url = f"{P}/{key}/throughput/base"
    assert (await client.post(url, json={"ts": TS + 0.9, "val": 93923380.35})).status_code == 201
    assert (await client.post(url, json={"ts": str(TS + 1), "val": "7"})).status_code == 201
    assert (await client.post(url, json={"ts": TS + 2, "val": True})).status_code == 400
    assert await _read(client, url) == [{"ts": TS, "val": 93923380.0},
                                        {"ts": TS + 1, "val": 7.0}]


async def test_e11_time_updated_is_per_event_type_and_second(stack: Stack,
                                                             client: httpx.AsyncClient) -> None:
    """E11 kept: a write sets time-updated to the server clock (whole seconds) on every
    row of its event type; metadata time filters compare with it."""
    key = await _metadata(client, [{"event-type": "throughput", "summaries": [
        {"summary-type": "average", "summary-window": 300}]}, {"event-type": "failures"}])
    await stack.clock.set(NOW + 5.7)
    assert (await client.post(f"{P}/{key}/throughput/base",
                              json={"ts": 1, "val": 1})).status_code == 201
    meta = (await client.get(f"{P}/{key}/")).json()
    times = {e["event-type"]: (e["time-updated"], [s["time-updated"] for s in e["summaries"]])
             for e in meta["event-types"]}
    assert times == {"throughput": (NOW + 5, [NOW + 5]), "failures": (None, [])}
