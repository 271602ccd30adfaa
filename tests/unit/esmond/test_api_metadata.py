"""Metadata routes: esmond's test_api.py metadata cases against the same fixture.

``PSArchiveResourceTest`` of esmond 4.2.1 (reference §7), with a stub resolver for the
DNS cases, plus the shapes and status codes of reference §2 and §4.2.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.esmond.support import NOW, Stack, load_upstream, running
from watchkeeper.archive.esmond.fixtures import parse_fixture

URL = "/perfsonar/archive/"
DETAIL_KEY = "e99bbc44b7b041c7ad9e51dc6a053b8c"
HOSTS = {
    ("lbl-pt1.es.net", socket.AF_INET): "198.129.254.30",
    ("lbl-pt1-v6.es.net", socket.AF_INET6): "2001:400:201:1150::3",
    ("ps-lat.es.net", socket.AF_INET): "198.129.254.187",
    ("ps-lat.es.net", socket.AF_INET6): "2001:400:201:11ff::87",
    ("bost-pt1.es.net", socket.AF_INET): "198.124.238.66",
}


async def stub_resolver(host: str, family: int) -> str | None:
    return HOSTS.get((host, family))


@pytest.fixture
async def fixture_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """test_api.py's setUp: the API fixture, and one row written "now"."""
    async with running(tmp_path, resolver=stub_resolver) as stack:
        await load_upstream(stack.esmond, client_fixture=False, test_data=False)
        await stack.metadata.touch([("67a3c298de0b4237abee56b879e03587", "failures")], NOW)
        yield stack


@pytest.fixture
async def api(fixture_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with fixture_stack.client(auth=None) as c:
        yield c


async def _count(api: httpx.AsyncClient, **params: Any) -> int:
    response = await api.get(URL, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return len(response.json())


def test_fixture_row_touched_is_the_one_test_api_uses() -> None:
    """Row pk 220 of the fixture (test_api sets it to now) is metadata 67a3c298's failures."""
    import json

    from tests.unit.esmond.support import UPSTREAM

    records = json.loads((UPSTREAM / "fixtures" / "perfsonar_api_metadata.json").read_text())
    row = next(r for r in records if r["model"] == "api.pseventtypes" and r["pk"] == 220)
    head = next(r for r in records if r["model"] == "api.psmetadata"
                and r["pk"] == row["fields"]["metadata"])
    assert (head["fields"]["metadata_key"], row["fields"]["event_type"]) == (
        "67a3c298de0b4237abee56b879e03587", "failures")
    assert len(parse_fixture(records)) == 16


@pytest.mark.parametrize(("params", "count"), [
    ({}, 16),
    ({"event-type": "packet-trace"}, 4),
    ({"event-type": "throughput", "summary-type": "average"}, 5),
    ({"event-type": "throughput", "summary-type": "average", "summary-window": 86400}, 4),
    ({"source": "198.129.254.30"}, 4),
    ({"source": "2001:400:201:1150::3"}, 2),
    ({"source": "198.129.254.187"}, 1),
    ({"source": "2001:400:201:11ff::87"}, 1),
    ({"time-range": 600}, 1),
    ({"time-start": 1398798900}, 4),
    ({"time-end": 1398798900}, 12),
    ({"time": 1398798965}, 1),
    ({"time-start": 1398798900, "time-range": 60}, 1),
    ({"time-end": 1398798900, "time-range": 60}, 1),
    ({"time-start": 1398798840, "time-end": 1398798960}, 2),
    ({"source": "198.129.254.30", "destination": "bost-pt1.es.net", "event-type": "throughput"},
     1),
    ({"limit": 1}, 1),
    ({"limit": 2}, 2),
    ({"offset": 1}, 15),
    ({"offset": 0, "limit": 5}, 5),
    ({"offset": 5, "limit": 5}, 5),
    ({"offset": 10, "limit": 10}, 6),
    ({"offset": 99}, 0),
    ({"limit": 0}, 16),  # DRF falls back to the default page for a zero or junk limit
    ({"limit": "junk", "offset": "junk"}, 16),
    ({"ip-transport-protocol": "tcp"}, 8),
    ({"no-such-parameter": "x"}, 0),
    ({"subject-type": "network-element"}, 0),
    ({"tool-name": "bwctl/iperf3"}, 4),
    ({"metadata-key": DETAIL_KEY}, 1),
    ({"format": "json"}, 16),
])
async def test_metadata_list_counts(api: httpx.AsyncClient, params: dict[str, Any],
                                    count: int) -> None:
    """Counts of test_api.test_get_metadata_list (and a few more filters)."""
    assert await _count(api, **params) == count


@pytest.mark.parametrize(("host", "rule", "like"), [
    ("lbl-pt1.es.net", None, "198.129.254.30"),
    ("lbl-pt1.es.net", "v4v6", "198.129.254.30"),
    ("lbl-pt1.es.net", "only-v4", "198.129.254.30"),
    ("lbl-pt1.es.net", "prefer-v4", "198.129.254.30"),
    ("lbl-pt1.es.net", "prefer-v6", "198.129.254.30"),
    ("lbl-pt1-v6.es.net", None, "2001:400:201:1150::3"),
    ("lbl-pt1-v6.es.net", "only-v6", "2001:400:201:1150::3"),
    ("lbl-pt1-v6.es.net", "prefer-v4", "2001:400:201:1150::3"),
    ("lbl-pt1-v6.es.net", "prefer-v6", "2001:400:201:1150::3"),
    ("ps-lat.es.net", "only-v4", "198.129.254.187"),
    ("ps-lat.es.net", "prefer-v4", "198.129.254.187"),
    ("ps-lat.es.net", "only-v6", "2001:400:201:11ff::87"),
    ("ps-lat.es.net", "prefer-v6", "2001:400:201:11ff::87"),
])
async def test_source_by_host_name(api: httpx.AsyncClient, host: str, rule: str | None,
                                   like: str) -> None:
    """A host name matches what its addresses match, per dns-match-rule."""
    params = {"source": host} | ({"dns-match-rule": rule} if rule else {})
    by_name = await api.get(URL, params=params)
    by_address = await api.get(URL, params={"source": like})
    assert by_name.status_code == 200
    assert by_name.json() == by_address.json()


async def test_dual_stack_host_matches_both_families(api: httpx.AsyncClient) -> None:
    """ps-lat.es.net (A and AAAA) finds both metadata; the first carries the count."""
    for params in ({"source": "ps-lat.es.net"},
                   {"source": "ps-lat.es.net", "dns-match-rule": "v4v6"}):
        found = (await api.get(URL, params=params)).json()
        assert len(found) == 2
        assert found[0]["metadata-count-total"] == 2
        assert found[0]["metadata-previous-page"] is None
        assert found[0]["metadata-next-page"] is None
        assert "metadata-count-total" not in found[1]
        assert {m["source"] for m in found} == {"198.129.254.187", "2001:400:201:11ff::87"}


@pytest.mark.parametrize(("params", "detail"), [
    ({"source": "lbl-pt1.es.net", "dns-match-rule": "only-v6"},
     "Unable to find address for host lbl-pt1.es.net"),
    ({"source": "lbl-pt1-v6.es.net", "dns-match-rule": "only-v4"},
     "Unable to find address for host lbl-pt1-v6.es.net"),
    ({"source": "198.129.254.30", "dns-match-rule": "only-v6"},
     "Unable to find address for host 198.129.254.30"),
    ({"source": "lbl-pt1.es.net", "dns-match-rule": "v6-only"},
     "Invalid dns-match-rule parameter v6-only"),
    ({"time-start": "yesterday"}, "Time parameter must be an integer"),
    ({"time-start": 10, "time-end": 5}, "Requested start time must be less than end time"),
    ({"summary-window": "daily"}, "Summary window parameter must be an integer"),
])
async def test_metadata_list_refuses_bad_filters(api: httpx.AsyncClient,
                                                 params: dict[str, Any], detail: str) -> None:
    """Bad filters are 400 with esmond's text first."""
    response = await api.get(URL, params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"].startswith(detail)


async def test_metadata_paging_keys_and_links(api: httpx.AsyncClient) -> None:
    """The first element of a page carries the total and the page URLs; Link says the same."""
    first = await api.get(URL, params={"limit": 5})
    page = first.json()
    assert page[0]["metadata-count-total"] == 16
    assert page[0]["metadata-previous-page"] is None
    assert page[0]["metadata-next-page"] == "http://testserver/perfsonar/archive/?limit=5&offset=5"
    assert all("metadata-count-total" not in m for m in page[1:])
    assert first.headers["link"] == f'<{page[0]["metadata-next-page"]}>; rel="next"'
    middle = (await api.get(URL, params={"limit": 5, "offset": 5})).json()
    assert middle[0]["metadata-previous-page"] == "http://testserver/perfsonar/archive/?limit=5"
    assert middle[0]["metadata-next-page"].endswith("?limit=5&offset=10")
    keys = [m["metadata-key"] for m in page + middle]
    assert keys == sorted(keys)
    everything = [m["metadata-key"] for m in (await api.get(URL)).json()]
    assert everything[:10] == keys


async def test_client_paging_collects_everything(api: httpx.AsyncClient) -> None:
    """ApiConnect.get_metadata's loop: offset paging until metadata-count-total is reached."""
    seen: list[str] = []
    total = None
    while total is None or len(seen) < total:
        page = (await api.get(URL, params={"limit": 6, "offset": len(seen)})).json()
        total = page[0]["metadata-count-total"]
        seen += [m["metadata-key"] for m in page]
    assert len(seen) == len(set(seen)) == 16


async def test_metadata_detail_is_esmonds(api: httpx.AsyncClient) -> None:
    """test_get_metadata_detail's object, key by key (event-type order may differ)."""
    response = await api.get(f"{URL}{DETAIL_KEY}/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    expected_top = {
        "metadata-key": DETAIL_KEY, "time-duration": "20", "subject-type": "point-to-point",
        "ip-tos": "32", "measurement-agent": "198.129.254.30",
        "input-destination": "lbl-pt1.es.net", "destination": "198.129.254.30",
        "uri": f"/perfsonar/archive/{DETAIL_KEY}/",
        "url": f"http://testserver/perfsonar/archive/{DETAIL_KEY}/",
        "source": "198.124.238.66", "ip-transport-protocol": "tcp",
        "input-source": "bost-pt1.es.net", "bw-parallel-streams": "2",
        "tool-name": "bwctl/iperf3",
    }
    assert {k: v for k, v in data.items() if k != "event-types"} == expected_top
    by_name = {e["event-type"]: e for e in data["event-types"]}
    assert set(by_name) == {"streams-throughput", "streams-throughput-subintervals",
                            "packet-retransmits", "streams-retransmits", "throughput",
                            "failures", "throughput-subintervals"}
    assert by_name["throughput"] == {
        "time-updated": 1398785369,
        "summaries": [{"summary-type": "average", "summary-window": "3600",
                       "time-updated": 1398785369,
                       "uri": f"/perfsonar/archive/{DETAIL_KEY}/throughput/averages/3600"}],
        "base-uri": f"/perfsonar/archive/{DETAIL_KEY}/throughput/base",
        "event-type": "throughput",
    }
    assert by_name["failures"]["time-updated"] is None
    assert by_name["streams-retransmits"]["time-updated"] == 1398785370


async def test_detail_uris_follow_the_request_prefix(fixture_stack: Stack) -> None:
    """Under /esmond/perfsonar, every URI the server emits carries /esmond."""
    async with fixture_stack.client(auth=None) as api:
        data = (await api.get(f"/esmond/perfsonar/archive/{DETAIL_KEY}/")).json()
    assert data["uri"] == f"/esmond/perfsonar/archive/{DETAIL_KEY}/"
    assert data["url"] == f"http://testserver/esmond/perfsonar/archive/{DETAIL_KEY}/"
    for entry in data["event-types"]:
        assert entry["base-uri"].startswith(f"/esmond/perfsonar/archive/{DETAIL_KEY}/")
        for summary in entry["summaries"]:
            assert summary["uri"].startswith("/esmond/perfsonar/archive/")
            assert isinstance(summary["summary-window"], str)


async def test_detail_applies_the_list_filters(api: httpx.AsyncClient) -> None:
    """The detail route runs the search filters first: one that excludes the key is 404."""
    assert (await api.get(f"{URL}{DETAIL_KEY}/", params={"event-type": "throughput"})
            ).status_code == 200
    missing = await api.get(f"{URL}{DETAIL_KEY}/", params={"event-type": "packet-trace"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found."}
    assert (await api.get(f"{URL}0000/")).status_code == 404


async def test_event_type_detail(api: httpx.AsyncClient) -> None:
    """test_get_event_type_detail: a list of one event-type object; unknown ones give []."""
    for path in (f"{URL}{DETAIL_KEY}/throughput/", f"{URL}{DETAIL_KEY}/throughput"):
        response = await api.get(path)
        assert response.status_code == 200
        assert response.json() == [{
            "time-updated": 1398785369,
            "summaries": [{"summary-type": "average", "summary-window": "3600",
                           "time-updated": 1398785369,
                           "uri": f"/perfsonar/archive/{DETAIL_KEY}/throughput/averages/3600"}],
            "base-uri": f"/perfsonar/archive/{DETAIL_KEY}/throughput/base",
            "event-type": "throughput"}]
    assert (await api.get(f"{URL}{DETAIL_KEY}/histogram-owdelay/")).json() == []
    assert (await api.get(f"{URL}nokey/throughput/")).json() == []


async def test_summary_list(api: httpx.AsyncClient) -> None:
    """test_get_summary_detail: the summaries of one type; none registered is 404."""
    response = await api.get(f"{URL}{DETAIL_KEY}/throughput/averages/")
    assert response.status_code == 200
    assert response.json() == [{
        "summary-type": "average", "summary-window": "3600", "time-updated": 1398785369,
        "uri": f"/perfsonar/archive/{DETAIL_KEY}/throughput/averages/3600"}]
    missing = await api.get(f"{URL}{DETAIL_KEY}/throughput/aggregations")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found."}


async def test_api_root(api: httpx.AsyncClient) -> None:
    """The DRF API root names the archive URL."""
    response = await api.get("/esmond/perfsonar/")
    assert response.json() == {"archive": "http://testserver/esmond/perfsonar/archive/"}
