"""Prometheus' staleness: a stale marker (stored by remote write as sent) ends a series for
an instant selector and is never a sample of a range. The cases are Prometheus' own
(promqltest's ``staleness.test``, Prometheus 2.x: windows closed at both ends)."""

from __future__ import annotations

import math

from tests.unit.promql.conftest import Loader
from tests.unit.promql.test_engine import instant

S = 1000  # one second in ms
METRIC = (("__name__", "metric"),)


async def test_an_instant_selector_ends_at_the_marker(load: Loader) -> None:
    engine = await load(10, {"metric": "0 1 stale 2"})
    assert await instant(engine, "metric", 10 * S) == {METRIC: 1.0}
    assert await instant(engine, "metric", 20 * S) == {}  # the latest sample is the marker
    assert await instant(engine, "metric", 25 * S) == {}
    assert await instant(engine, "metric", 30 * S) == {METRIC: 2.0}  # back again
    assert await instant(engine, "metric", 330 * S) == {METRIC: 2.0}
    assert await instant(engine, "metric", 331 * S) == {}  # 5 minutes after the last


async def test_range_functions_ignore_stale_samples(load: Loader) -> None:
    engine = await load(10, {"metric": "0 1 stale 2"})
    assert await instant(engine, "count_over_time(metric[1m])", 30 * S) == {(): 3.0}
    assert await instant(engine, "count_over_time(metric[1s])", 10 * S) == {(): 1.0}
    assert await instant(engine, "count_over_time(metric[1s])", 20 * S) == {}
    assert await instant(engine, "count_over_time(metric[10s])", 20 * S) == {(): 1.0}
    assert await instant(engine, "last_over_time(metric[15s])", 20 * S) == {METRIC: 1.0}
    assert await instant(engine, "absent_over_time(metric[5s])", 20 * S) == {(): 1.0}


async def test_a_vanished_target_leaves_queries_at_its_marker(load: Loader) -> None:
    """A node-exporter-like target scraped every 15 s disappears after 2 minutes: Prometheus
    writes a stale marker for each of its series at the next scrape; from there the series
    are gone from instant selectors, aggregations and ``up``-style counts, while the other
    target goes on, and a range query over the time shows the end."""
    cpu = 'node_cpu_seconds_total{instance="%s",job="node",mode="idle"}'
    engine = await load(15, {cpu % "a:9100": "0+15x8 stale",
                             cpu % "b:9100": "0+15x20"})
    at = 135 * S  # the marker's time
    assert await instant(engine, 'count(node_cpu_seconds_total)', at - 15 * S) == {(): 2.0}
    assert await instant(engine, 'count(node_cpu_seconds_total)', at) == {(): 1.0}
    assert await instant(engine, 'sum(rate(node_cpu_seconds_total[1m]))', at + 60 * S) == {
        (): 1.0}
    # the vanished target's rate over a window that still holds its samples: the marker
    # is not a sample, so the rate is that of the real ones
    rate = await instant(engine, 'rate(node_cpu_seconds_total{instance="a:9100"}[1m])', at)
    assert list(rate.values()) == [1.0]
    result = await engine.query("node_cpu_seconds_total", start=0, end=300 * S, step=15 * S)
    ended = next(s for s in result.series if s.labels["instance"] == "a:9100")
    assert ended.present.tolist() == [True] * 9 + [False] * 12


async def test_a_plain_nan_is_a_value_not_a_marker(load: Loader) -> None:
    """The marker is one NaN bit pattern; any other NaN stays a value (Prometheus too)."""
    engine = await load(10, {"metric": "0 NaN 1"})
    answer = await instant(engine, "metric", 15 * S)
    assert list(answer) == [METRIC]
    assert math.isnan(answer[METRIC])
    assert await instant(engine, "count_over_time(metric[30s])", 20 * S) == {(): 3.0}
