"""esmond summaries through two ``watchkeeper serve`` processes on one PostgreSQL store.

The same points (and the same replaced histograms) are written to three metadata: all
through one server, alternately through two, and by four threads at once over two.
Every summary window of every event type must read the same in all three, and equal
the summaries recomputed from the base points; a numeric timestamp stored through one
server and posted again through the other is refused (409) and changes nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration import scaled_servers as scaled
from watchkeeper.archive.esmond.summaries import summarize
from watchkeeper.archive.esmond.values import Percentage

pytestmark = [pytest.mark.slow, pytest.mark.external_service]

ARCHIVE = "/esmond/perfsonar/archive"
DAY = 86400
START = 1_600_041_600 + DAY - 3600  # 23:00: the points cross an hour and a day
POINTS = 60
STEP = 120
SUMMARIES: dict[str, list[tuple[str, int]]] = {
    "throughput": [("aggregation", 300), ("aggregation", 3600), ("average", 3600),
                   ("average", DAY)],
    "time-error-estimates": [("average", 3600), ("aggregation", DAY)],
    "packet-loss-rate": [("aggregation", 3600), ("aggregation", DAY)],
    # statistics of 86400 has no aggregation of its window: it keeps a hidden histogram
    "histogram-owdelay": [("aggregation", 3600), ("statistics", 0), ("statistics", 3600),
                          ("statistics", DAY)],
}
URL_NAME = {"aggregation": "aggregations", "average": "averages", "statistics": "statistics"}
Post = Callable[[int, str, str, Any], int]  # (writer, key, event type, point) -> status


def _value(event_type: str, i: int) -> Any:
    if event_type == "throughput":
        return i + 1  # sum 1,830 over the 60 points
    if event_type == "time-error-estimates":
        return 0.125 * (i % 7)  # exact binary fractions: sums in any order agree
    if event_type == "packet-loss-rate":
        return {"numerator": i % 4, "denominator": 100 + i}
    return {str(40 + i % 5): 10 + i, str(41 + i % 3): 1}


def _replacement(i: int) -> dict[str, int]:
    """The histogram that replaces point ``i``'s (esmond lets histograms be re-posted)."""
    return {"39": i + 2}


def _metadata(name: str) -> dict[str, Any]:
    return {"subject-type": "point-to-point", "source": "10.0.0.1", "destination": "10.0.0.2",
            "measurement-agent": "10.0.0.1", "tool-name": "pscheduler/powstream",
            "input-source": name, "input-destination": "sink",
            "event-types": [{"event-type": e, "summaries": [
                {"summary-type": t, "summary-window": w} for t, w in windows]}
                for e, windows in SUMMARIES.items()]}


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], str]]:
    """Two servers on one database, and a write token both honour."""
    tmp = tmp_path_factory.mktemp("scaled-esmond")
    with scaled.database() as db:
        configs = [db.config(tmp / f"{n}.json", tmp / n) for n in ("a", "b")]
        with scaled.servers(configs) as running:
            yield [s.url for s in running], scaled.token(configs[0])


def _writer(urls: list[str], token: str) -> tuple[Post, Callable[[], None]]:
    clients = [httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"},
                            timeout=30) for url in urls]

    def post(writer: int, key: str, event_type: str, point: Any) -> int:
        response = clients[writer % len(clients)].post(
            f"{ARCHIVE}/{key}/{event_type}/base", json=point)
        return response.status_code

    def close() -> None:
        for client in clients:
            client.close()

    return post, close


def _write(post: Post, key: str, indices: list[int], writer: int) -> None:
    """Points ``indices`` of every event type, then replace their histograms."""
    for i in indices:
        for event_type in SUMMARIES:
            point = {"ts": START + STEP * i, "val": _value(event_type, i)}
            assert post(writer, key, event_type, point) == 201
    for i in (i for i in indices if i % 3 == 0):
        point = {"ts": START + STEP * i, "val": _replacement(i)}
        assert post(writer + 1, key, "histogram-owdelay", point) == 201


def _create(url: str, token: str, name: str) -> str:
    response = httpx.post(f"{url}{ARCHIVE}/", json=_metadata(name),
                          headers={"Authorization": f"Token {token}"})
    assert response.status_code == 201
    key: str = response.json()["metadata-key"]
    return key


def _read(url: str, key: str, event_type: str, summary: str = "base",
          window: int = 0) -> list[dict[str, Any]]:
    path = f"{ARCHIVE}/{key}/{event_type}/base" if summary == "base" else \
        f"{ARCHIVE}/{key}/{event_type}/{URL_NAME[summary]}/{window}"
    response = httpx.get(f"{url}{path}", params={"time-start": 0, "time-end": START + DAY})
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()
    return rows


def _everything(url: str, key: str) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    out = {(e, "base", 0): _read(url, key, e) for e in SUMMARIES}
    for event_type, windows in SUMMARIES.items():
        for summary, window in windows:
            out[event_type, summary, window] = _read(url, key, event_type, summary, window)
    return out


def _same(got: Any, want: Any) -> bool:
    """Equal, but floats within 1e-12 relative (integers stay exact)."""
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-12)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(map(_same, got, want))
    return bool(got == want) and type(got) is type(want)


def _single(urls: list[str], token: str,
            name: str) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """What one server alone stores for the scenario (written through the first only)."""
    key = _create(urls[0], token, f"single-{name}")
    post, close = _writer(urls[:1], token)
    try:
        _write(post, key, list(range(POINTS)), 0)
    finally:
        close()
    return _everything(urls[0], key)


def test_alternating_writers_give_single_server_summaries(
        two_servers: tuple[list[str], str]) -> None:
    """Points written alternately through two servers: every summary window equals the
    single-server run's (read through either server), and the recomputed summaries."""
    urls, token = two_servers
    expected = _single(urls, token, "alternating")
    key = _create(urls[0], token, "alternating")
    post, close = _writer(urls, token)
    try:
        for i in range(POINTS):
            _write(post, key, [i], i)
    finally:
        close()
    base = expected["throughput", "base", 0]
    assert sum(row["val"] for row in base) == 1830
    stored = [(row["ts"], int(row["val"])) for row in base]
    assert [{"ts": t, "val": v} for t, v in summarize("integer", "aggregation", 3600, stored)
            ] == expected["throughput", "aggregation", 3600]
    assert _everything(urls[0], key) == expected
    assert _everything(urls[1], key) == expected


def test_concurrent_writers_give_single_server_summaries(
        two_servers: tuple[list[str], str]) -> None:
    """Four threads, two per server, writing one metadata at once: summaries exact."""
    urls, token = two_servers
    expected = _single(urls, token, "concurrent")
    key = _create(urls[1], token, "concurrent")
    post, close = _writer(urls, token)
    writers = 4
    try:
        with ThreadPoolExecutor(writers) as pool:
            done = [pool.submit(_write, post, key, list(range(w, POINTS, writers)), w)
                    for w in range(writers)]
            for future in done:
                future.result()
    finally:
        close()
    # Concurrent writers fold an hour's points in arrival order, not time order, so a float
    # average may differ from the one-writer run in its last bit (sums are not associative);
    # everything else, counts, integers and histograms included, is exact.
    assert _same(_everything(urls[0], key), expected)
    assert _same(_everything(urls[1], key), expected)


def test_duplicate_through_the_other_server_is_refused(
        two_servers: tuple[list[str], str]) -> None:
    """A numeric point stored through one server and posted again through the other gets
    409, as on one server, and neither the base value nor any summary changes."""
    urls, token = two_servers
    key = _create(urls[0], token, "duplicate")
    post, close = _writer(urls, token)
    try:
        # The second server stores the first point (and so knows the series' end), the
        # first server the later ones.
        for i, event_type in itertools.product(range(3), ("throughput", "packet-loss-rate")):
            assert post(min(i, 1) - 1, key, event_type, {"ts": START + STEP * i,
                                                         "val": _value(event_type, i)}) == 201
        before = _everything(urls[1], key)
        for i, event_type in itertools.product(range(3), ("throughput", "packet-loss-rate")):
            again = {"ts": START + STEP * i, "val": _value(event_type, i + 10)}
            assert post(1, key, event_type, again) == 409
            assert post(0, key, event_type, again) == 409
    finally:
        close()
    assert _everything(urls[0], key) == before
    assert _everything(urls[1], key) == before
    assert [row["val"] for row in before["packet-loss-rate", "base", 0]] == [
        Percentage(i % 4, 100 + i).ratio for i in range(3)]
