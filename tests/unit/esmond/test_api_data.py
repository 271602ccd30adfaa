"""Data routes: esmond's test_api.py data cases (``PSArchiveResourceDataTest``) and more.

Each test posts one point, refuses a duplicate where esmond does (409), bulk-PUTs the
rest, and reads base data and summaries back. Where esmond's test encodes one of its
write-path bugs, the test here says so and checks the fixed behaviour
(docs/decisions_esmond.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.esmond.support import NOW, Stack, load_upstream, running

P = "/perfsonar/archive"
INT_KEY = "f6b732e9f351487a96126f0c25e5e546"
MIX_KEY = "67a3c298de0b4237abee56b879e03587"
START = 1398965989
DAY = 1398902400


@pytest.fixture
async def data_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running(tmp_path) as stack:
        await load_upstream(stack.esmond, client_fixture=False, test_data=False)
        yield stack


@pytest.fixture
async def api(data_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with data_stack.client() as c:
        yield c


async def _post(api: httpx.AsyncClient, url: str, ts: Any, val: Any) -> httpx.Response:
    return await api.post(url, json={"ts": ts, "val": val})


async def _single_post_success(api: httpx.AsyncClient, url: str, ts: int, val: Any,
                               equals: bool = True) -> None:
    """assertSinglePostSuccess: 201 with "", then ``?time=ts`` gives exactly that point."""
    response = await _post(api, url, ts, val)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == ""
    got = (await api.get(url, params={"time": ts})).json()
    assert len(got) == 1
    if equals:
        assert got[0] == {"ts": ts, "val": val}


async def _bulk_put(api: httpx.AsyncClient, key: str, event_type: str, start: int,
                    interval: int, values: list[Any]) -> int:
    """assertBulkTSPutSuccess: values[1:] at start + i * interval in one PUT."""
    data = [{"ts": start + i * interval, "val": [{"event-type": event_type, "val": v}]}
            for i, v in enumerate(values) if i]
    response = await api.put(f"{P}/{key}/", json={"data": data})
    assert response.status_code == 201, response.text
    assert response.json() == ""
    end = start + (len(values) - 1) * interval
    base = f"{P}/{key}/{event_type}/base"
    got = (await api.get(base, params={"time-start": start, "time-end": end})).json()
    assert len(got) == len(values)
    return end


async def test_integer_data(api: httpx.AsyncClient) -> None:
    """throughput: 400, 201, 409, bulk, and the daily average and aggregation."""
    base = f"{P}/{INT_KEY}/throughput/base/"
    values = [5978580000, 5413040000, 7964590000, 6946810000]
    bad = await _post(api, base, START, "bad input")
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("Value must be an integer")
    await _single_post_success(api, base, START, values[0])
    conflict = await _post(api, base, START, values[0])
    assert conflict.status_code == 409
    assert conflict.json() == {"detail": "Time series value already exists with event type "
                                         f"throughput at time {START}"}
    await _bulk_put(api, INT_KEY, "throughput", START, 7200, values)
    average = await api.get(f"{P}/{INT_KEY}/throughput/averages/86400/")
    assert average.json() == [{"ts": DAY, "val": 6575755000.0}]
    aggregation = await api.get(f"{P}/{INT_KEY}/throughput/aggregations/86400/")
    assert aggregation.json() == [{"ts": DAY, "val": 26303020000}]
    assert isinstance(aggregation.json()[0]["val"], float)  # esmond serves integers as floats
    base_points = (await api.get(base, params={"time-start": START})).json()
    assert [p["val"] for p in base_points] == values
    assert all(isinstance(p["val"], float) for p in base_points)


async def test_float_data(api: httpx.AsyncClient) -> None:
    """time-error-estimates: average 0.002, aggregation 0.01 (exact floats, so approx)."""
    base = f"{P}/{MIX_KEY}/time-error-estimates/base/"
    values = [0.001, 0.003, 0.002, 0.003, 0.001]
    bad = await _post(api, base, START, "bad input")
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("Value must be a floating point number")
    await _single_post_success(api, base, START, values[0])
    assert (await _post(api, base, START, values[0])).status_code == 409
    await _bulk_put(api, MIX_KEY, "time-error-estimates", START, 60, values)
    average = (await api.get(f"{P}/{MIX_KEY}/time-error-estimates/averages/86400/")).json()
    aggregation = (await api.get(f"{P}/{MIX_KEY}/time-error-estimates/aggregations/86400")
                   ).json()
    assert [p["ts"] for p in average + aggregation] == [DAY, DAY]
    assert average[0]["val"] == pytest.approx(0.002, rel=1e-12)
    assert aggregation[0]["val"] == pytest.approx(0.01, rel=1e-12)


async def test_json_data(api: httpx.AsyncClient) -> None:
    """failures: posted objects come back as posted."""
    base = f"{P}/{INT_KEY}/failures/base/"
    values = [{"error": e} for e in ("error1", "error2", "error3", "error4")]
    await _single_post_success(api, base, START, values[0])
    await _bulk_put(api, INT_KEY, "failures", START, 7200, values)
    got = (await api.get(base, params={"time-start": START})).json()
    assert [p["val"] for p in got] == values


async def test_percentage_data(api: httpx.AsyncClient) -> None:
    """packet-loss-rate: nine refusals, 201, 409, bulk; base values are num/den."""
    base = f"{P}/{MIX_KEY}/packet-loss-rate/base/"
    for bad in ("bad input", {}, {"numerator": 10}, {"denominator": 10},
                {"numerator": "bad", "denominator": "bad"},
                {"numerator": 10, "denominator": "bad"}, {"numerator": 10, "denominator": 0},
                {"numerator": -1, "denominator": 10}, {"numerator": "bad", "denominator": 10}):
        assert (await _post(api, base, START, bad)).status_code == 400, bad
    posted = [{"numerator": n, "denominator": d} for n, d in ((4, 100), (50, 200), (1, 10),
                                                              (15, 40))]
    await _single_post_success(api, base, START, posted[0], equals=False)
    assert (await _post(api, base, START, posted[0])).status_code == 409
    await _bulk_put(api, MIX_KEY, "packet-loss-rate", START, 60, posted)
    got = (await api.get(base, params={"time-start": START})).json()
    assert got == [{"ts": START + i * 60, "val": p["numerator"] / p["denominator"]}
                   for i, p in enumerate(posted)]
    assert [p["val"] for p in got] == [0.04, 0.25, 0.1, 0.375]
    daily = (await api.get(f"{P}/{MIX_KEY}/packet-loss-rate/aggregations/86400")).json()
    assert daily == [{"ts": DAY, "val": 70 / 350}]
    hourly = (await api.get(f"{P}/{MIX_KEY}/packet-loss-rate/aggregations/3600")).json()
    assert hourly == [{"ts": 1398963600, "val": 70 / 350}]


async def test_subinterval_data(api: httpx.AsyncClient) -> None:
    """throughput-subintervals: eight refusals; strings stay strings."""
    base = f"{P}/{INT_KEY}/throughput-subintervals/base/"
    for bad in ("bad input", {}, [{}], [{"duration": 1, "val": 1}], [{"start": 1, "val": 1}],
                [{"duration": 1, "start": 1}], [{"duration": "bad", "start": 1, "val": 1}],
                [{"duration": 1, "start": "bad", "val": 1}]):
        assert (await _post(api, base, START, bad)).status_code == 400, bad
    intervals = [[{"duration": "1.000080", "start": "0.000000", "val": "1331580000"}],
                 [{"duration": "1.000090", "start": "0.000000", "val": "1331570000"},
                  {"duration": "1.000290", "start": "1.000090", "val": "1163590000"}],
                 [{"duration": "0.999730", "start": "2.000370", "val": "7849890000"}]]
    await _single_post_success(api, base, START, intervals[0])
    await _bulk_put(api, INT_KEY, "throughput-subintervals", START, 7200, intervals)


HISTOGRAMS = [{"41.00": 98, "41.10": 2}, {"41.00": 98, "41.10": 2},
              {"41.10": 96, "41.20": 3, "50.0": 1}]


async def test_histogram_data(api: httpx.AsyncClient) -> None:
    """histogram-rtt: the daily aggregation merges all three points (esmond's test
    expects the middle one lost: a bug of its bulk PUT, fixed here) and the statistics
    describe that merge; a non-numeric bucket turns the statistics into ``{}``."""
    base = f"{P}/{MIX_KEY}/histogram-rtt/base/"
    bad = await _post(api, base, START, {"41.0": "bad", "42.2": 20})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("Value of histogram must be an integer")
    await _single_post_success(api, base, START, HISTOGRAMS[0])
    await _bulk_put(api, MIX_KEY, "histogram-rtt", START, 600, HISTOGRAMS)
    aggregation = (await api.get(f"{P}/{MIX_KEY}/histogram-rtt/aggregations/86400/")).json()
    assert aggregation == [{"ts": DAY, "val": {"41.00": 196, "41.10": 100, "41.20": 3,
                                               "50.0": 1}}]
    stats = (await api.get(f"{P}/{MIX_KEY}/histogram-rtt/statistics/86400/")).json()
    assert [p["ts"] for p in stats] == [DAY]
    assert stats[0]["val"]["minimum"] == 41.0
    assert stats[0]["val"]["maximum"] == 50.0
    assert stats[0]["val"]["mean"] == pytest.approx((41.0 * 196 + 41.1 * 100 + 41.2 * 3 + 50)
                                                    / 300)
    per_point = (await api.get(f"{P}/{MIX_KEY}/histogram-rtt/statistics/0")).json()
    assert [p["ts"] for p in per_point] == [START, START + 600, START + 1200]
    assert per_point[2]["val"]["median"] == 41.1
    await _single_post_success(api, base, START + 1000, {"test": 100})
    stats = (await api.get(f"{P}/{MIX_KEY}/histogram-rtt/statistics/86400/")).json()
    assert stats == [{"ts": DAY, "val": {}}]


async def test_histogram_overwrite_replaces_its_share_of_summaries(api: httpx.AsyncClient
                                                                   ) -> None:
    """Re-posting a histogram at the same ts replaces it (201, as esmond) and the daily
    aggregation holds the new one instead of both (esmond added it twice)."""
    base = f"{P}/{MIX_KEY}/histogram-rtt/base"
    assert (await _post(api, base, START, {"1": 5})).status_code == 201
    assert (await _post(api, base, START, {"1": 2, "3": 1})).status_code == 201
    got = (await api.get(base, params={"time": START})).json()
    assert got == [{"ts": START, "val": {"1": 2, "3": 1}}]
    daily = (await api.get(f"{P}/{MIX_KEY}/histogram-rtt/aggregations/86400")).json()
    assert daily == [{"ts": DAY, "val": {"1": 2, "3": 1}}]
    stats = (await api.get(f"{P}/{MIX_KEY}/histogram-rtt/statistics/86400")).json()
    assert stats[0]["val"]["mean"] == pytest.approx(5 / 3)


async def test_authentication_failures(anonymous_data: httpx.AsyncClient) -> None:
    """A write without credentials is 401 with WWW-Authenticate: Token."""
    response = await _post(anonymous_data, f"{P}/{INT_KEY}/throughput/base/", 1398965990,
                           5978580000)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["www-authenticate"] == "Token"


@pytest.fixture
async def anonymous_data(data_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with data_stack.client(auth=None) as c:
        yield c


async def test_time_updated_follows_writes(api: httpx.AsyncClient, data_stack: Stack) -> None:
    """A write sets time-updated (server clock) on every row of that event type only."""
    await data_stack.clock.set(NOW + 100)
    assert (await _post(api, f"{P}/{INT_KEY}/throughput/base", START, 1)).status_code == 201
    meta = (await api.get(f"{P}/{INT_KEY}/")).json()
    entries = {e["event-type"]: e for e in meta["event-types"]}
    assert entries["throughput"]["time-updated"] == NOW + 100
    assert {s["time-updated"] for s in entries["throughput"]["summaries"]} == {NOW + 100}
    assert entries["failures"]["time-updated"] == 1397315930  # as the fixture has it
    found = (await api.get(f"{P}/", params={"time-start": NOW + 50, "time-end": NOW + 150})
             ).json()
    assert [m["metadata-key"] for m in found] == [INT_KEY]


async def test_data_time_filters_and_paging(api: httpx.AsyncClient) -> None:
    """Ascending ts, inclusive ranges, limit/offset, and the client's time-start paging."""
    base = f"{P}/{INT_KEY}/throughput/base"
    data = [{"ts": START + i, "val": [{"event-type": "throughput", "val": i}]}
            for i in range(2500)]
    assert (await api.put(f"{P}/{INT_KEY}/", json={"data": data})).status_code == 201
    everything = (await api.get(base, params={"time-start": START})).json()
    assert len(everything) == 1500  # DRF's default page
    assert [p["ts"] for p in everything] == list(range(START, START + 1500))
    window = (await api.get(base, params={"time-start": START + 10, "time-end": START + 19})
              ).json()
    assert [p["val"] for p in window] == [float(i) for i in range(10, 20)]
    assert len((await api.get(base, params={"time": START + 7})).json()) == 1
    assert len((await api.get(base, params={"time-start": START + 2490, "time-range": 5})
                ).json()) == 6
    assert len((await api.get(base, params={"time-end": START + 4, "time-range": 4})).json()) == 5
    page = await api.get(base, params={"time-start": START, "limit": 10, "offset": 5})
    assert [p["val"] for p in page.json()] == [float(i) for i in range(5, 15)]
    assert 'rel="next"' in page.headers["link"]
    assert 'rel="prev"' in page.headers["link"]
    # EventType.get_data: limit=1000, then time-start = last ts + 1 while a page is full
    seen: list[int] = []
    start = START
    while True:
        chunk = (await api.get(base, params={"time-start": start, "time-end": START + 10_000,
                                             "limit": 1000})).json()
        seen += [p["ts"] for p in chunk]
        if len(chunk) < 1000:
            break
        start = chunk[-1]["ts"] + 1
    assert seen == list(range(START, START + 2500))
    # no time filter: 0 .. now; an open end: up to an hour after now
    later = [{"ts": NOW + 10, "val": [{"event-type": "throughput", "val": 1}]},
             {"ts": NOW + 4000, "val": [{"event-type": "throughput", "val": 2}]}]
    assert (await api.put(f"{P}/{INT_KEY}/", json={"data": later})).status_code == 201
    assert (await api.get(base, params={"offset": 2499})).json() == [
        {"ts": START + 2499, "val": 2499.0}]
    open_end = (await api.get(base, params={"time-start": NOW})).json()
    assert open_end == [{"ts": NOW + 10, "val": 1.0}]


@pytest.mark.parametrize(("path", "status", "detail"), [
    (f"{P}/{INT_KEY}/nosuchtype/base", 400, "Unsupported event type 'nosuchtype' provided"),
    (f"{P}/{INT_KEY}/throughput/means/86400", 400, "Invalid summary type 'means'"),
    (f"{P}/{INT_KEY}/throughput/averages/daily", 400,
     "Summary window parameter must be an integer"),
    (f"{P}/{INT_KEY}/throughput/base?time-start=x", 400, "Time parameter must be an integer"),
    (f"{P}/unknownkey/throughput/base", 200, None),
    (f"{P}/{INT_KEY}/throughput/base/0", 200, None),
    (f"{P}/{INT_KEY}/throughput/statistics/0", 200, None),
])
async def test_data_url_checks(api: httpx.AsyncClient, path: str, status: int,
                               detail: str | None) -> None:
    """Data URLs are checked as esmond checks them; unknown keys give ``[]``."""
    response = await api.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    if detail is None:
        assert response.json() == []
    else:
        assert response.json()["detail"].startswith(detail)


async def test_limited_reads_of_sparse_and_long_series(api: httpx.AsyncClient) -> None:
    """A limited read finds the first points however sparse the series (reads grow their
    window) and pages through a long one without gaps or repeats."""
    base = f"{P}/{INT_KEY}/throughput/base"
    stamps = [1_300_000_000 + i * 6 * 3600 for i in range(3000)]  # 6-hourly, two years
    for lo in range(0, len(stamps), 1000):
        data = [{"ts": ts, "val": [{"event-type": "throughput", "val": i}]}
                for i, ts in enumerate(stamps[lo:lo + 1000], start=lo)]
        assert (await api.put(f"{P}/{INT_KEY}/", json={"data": data})).status_code == 201
    first = (await api.get(base, params={"time-start": 0, "limit": 5})).json()
    assert [p["ts"] for p in first] == stamps[:5]
    later = (await api.get(base, params={"time-start": stamps[2000] - 1, "limit": 3,
                                         "offset": 1})).json()
    assert [p["ts"] for p in later] == stamps[2001:2004]
    seen: list[int] = []
    start = 0
    while True:
        page = (await api.get(base, params={"time-start": start, "time-end": stamps[-1],
                                            "limit": 1000})).json()
        seen += [p["ts"] for p in page]
        start = page[-1]["ts"] + 1
        if len(page) < 1000 or start >= stamps[-1]:  # the client's two stop rules
            break
    assert seen == stamps
