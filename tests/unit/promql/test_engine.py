"""PromQL evaluation against Prometheus' own expectations (cases from its promqltest files,
recomputed where noted) over an in-memory archive."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.promql.conftest import Loader
from watchkeeper.archive.promql import BadQuery, Engine, Limits, QueryError, QueryTooLarge

M = 60_000  # one minute in ms
Answer = dict[tuple[tuple[str, str], ...], float]


async def instant(engine: Engine, query: str, at_ms: int) -> Answer:
    result = await engine.query(query, start=at_ms, end=at_ms, step=1)
    if result.kind == "scalar":
        assert result.scalar is not None
        return {(): float(result.scalar[0])}
    assert result.kind == "vector", result.kind
    return {tuple(sorted(s.labels.items())): float(s.values[0])
            for s in result.series if s.present[0]}


def one(answer: Answer) -> float:
    assert len(answer) == 1, answer
    return next(iter(answer.values()))


HTTP = {'http_requests{path="/foo"}': "0+10x10", 'http_requests{path="/bar"}': "0+10x5 0+10x5"}


async def test_increase_and_resets_as_prometheus(load: Loader) -> None:
    engine = await load(300, HTTP)
    assert await instant(engine, "increase(http_requests[50m])", 50 * M) == {
        (("path", "/bar"),): 90.0, (("path", "/foo"),): 100.0}
    assert await instant(engine, "resets(http_requests[25m])", 50 * M) == {
        (("path", "/bar"),): 1.0, (("path", "/foo"),): 0.0}
    assert await instant(engine, "changes(http_requests[30m])", 50 * M) == {
        (("path", "/bar"),): 6.0, (("path", "/foo"),): 6.0}


async def test_rate_extrapolates_as_prometheus(load: Loader) -> None:
    # 0+10x10 every 5 m: a [5m] window at 50 m holds 45 m and 50 m (closed window)
    engine = await load(300, {'c{job="a"}': "0+10x10"})
    assert one(await instant(engine, "rate(c[5m])", 50 * M)) == pytest.approx(10 / 300)
    # window (20 m .. 45 m] at 45 m+2.5: samples 25..45 m, extrapolated half a step each
    # side at most: 40 over 20 m sampled -> x (20 + 2.5 + 2.5) / 20 = 50
    assert one(await instant(engine, "increase(c[25m])", 47 * M + 30_000)) == \
        pytest.approx(50.0)
    assert one(await instant(engine, "delta(c[25m])", 47 * M + 30_000)) == pytest.approx(50.0)
    # a counter near zero is extrapolated to zero at most
    zero = await load(60, {"z": "1 2 3"})
    assert one(await instant(zero, "increase(z[5m])", 2 * M)) == pytest.approx(3.0)


async def test_irate_idelta_deriv_predict_linear(load: Loader) -> None:
    engine = await load(300, {"t": "0+10x4 0+10x5", "g": "3 1 4 1 5 9 2 6"})
    assert one(await instant(engine, "irate(t[20m])", 25 * M)) == pytest.approx(0 / 300)
    assert one(await instant(engine, "irate(t[20m])", 30 * M)) == pytest.approx(10 / 300)
    assert one(await instant(engine, "idelta(g[20m])", 35 * M)) == pytest.approx(4.0)
    ts = np.arange(11) * 300.0
    ys = np.array([0, 10, 20, 30, 40, 0, 10, 20, 30, 40, 50.0])
    slope, icept = np.polyfit(ts, ys, 1)
    assert one(await instant(engine, "deriv(t[100m])", 50 * M)) == pytest.approx(slope)
    predicted = icept + slope * (3000 + 3600)
    assert one(await instant(engine, "predict_linear(t[100m], 3600)", 50 * M)) == \
        pytest.approx(predicted)


async def test_over_time_functions(load: Loader) -> None:
    engine = await load(60, {'m{a="1"}': "1 2 3 4 NaN 6"})
    at = 5 * M
    values = [1.0, 2, 3, 4, float("nan"), 6]
    assert one(await instant(engine, "count_over_time(m[5m])", at)) == 6
    assert math.isnan(one(await instant(engine, "sum_over_time(m[5m])", at)))
    assert one(await instant(engine, "max_over_time(m[5m])", at)) == 6
    assert one(await instant(engine, "min_over_time(m[5m])", at)) == 1
    assert one(await instant(engine, "last_over_time(m[5m])", at)) == 6
    assert one(await instant(engine, "present_over_time(m[5m])", at)) == 1
    assert one(await instant(engine, "sum_over_time(m[3m])", 3 * M)) == 10
    assert one(await instant(engine, "avg_over_time(m[3m])", 3 * M)) == 2.5
    assert one(await instant(engine, "stdvar_over_time(m[3m])", 3 * M)) == \
        pytest.approx(np.var(values[:4]))
    assert one(await instant(engine, "stddev_over_time(m[3m])", 3 * M)) == \
        pytest.approx(np.std(values[:4]))
    # NaN sorts first in Prometheus' quantile: of NaN 2 3 4 6 the median is 3
    assert one(await instant(engine, "quantile_over_time(0.5, m[4m])", at)) == 3
    assert one(await instant(engine, "quantile_over_time(2, m[4m])", at)) == math.inf
    for name in ("holt_winters", "double_exponential_smoothing"):
        assert one(await instant(engine, f"{name}(m[3m], 0.5, 0.5)", 3 * M)) == \
            pytest.approx(_holt([1, 2, 3, 4], 0.5, 0.5))
    with pytest.raises(BadQuery, match="smoothing factor"):
        await instant(engine, "holt_winters(m[3m], 1, 0.5)", 3 * M)
    labels = await instant(engine, "last_over_time(m[5m])", at)
    assert (("__name__", "m"), ("a", "1")) in labels  # last_over_time keeps the name
    assert await instant(engine, "absent_over_time(m[5m])", at) == {}
    assert await instant(engine, 'absent_over_time(nope{x="y"}[5m])', at) == {(("x", "y"),): 1}


def _holt(values: list[float], sf: float, tf: float) -> float:
    s0, s1, b = 0.0, values[0], values[1] - values[0]
    for i in range(1, len(values)):
        x = sf * values[i]
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


async def test_lookback_offset_at_and_subqueries(load: Loader) -> None:
    engine = await load(60, {"x": "1 2 3 _ _ _ _ _ _ _ _ 9"})
    assert one(await instant(engine, "x", 2 * M + 30_000)) == 3
    assert one(await instant(engine, "x", 7 * M)) == 3  # 5 m lookback, closed
    assert await instant(engine, "x", 7 * M + 1) == {}
    assert one(await instant(engine, "x offset 1m", 2 * M)) == 2
    assert one(await instant(engine, "x @ 60", 11 * M)) == 2
    assert one(await instant(engine, "x @ 60 offset -1m", 11 * M)) == 3
    result = await engine.query("x @ start()", start=M, end=3 * M, step=M)
    assert result.series[0].values.tolist() == [2.0, 2.0, 2.0]
    result = await engine.query("x @ end()", start=0, end=2 * M, step=M)
    assert result.series[0].values.tolist() == [3.0, 3.0, 3.0]
    # subquery steps are aligned to multiples of their step: 0 30 60 90 120 s
    assert one(await instant(engine, "count_over_time(x[2m:30s])", 2 * M)) == 5
    assert one(await instant(engine, "sum_over_time(x[2m:1m])", 2 * M)) == 6
    assert one(await instant(engine, "max_over_time(x[3m:])", 3 * M)) == 3


async def test_aggregations(load: Loader) -> None:
    engine = await load(60, {'v{g="a",i="1"}': "1", 'v{g="a",i="2"}': "4",
                             'v{g="b",i="3"}': "NaN", 'v{g="b",i="4"}': "2"})
    answer = await instant(engine, "sum by (g) (v)", 0)
    assert answer[(("g", "a"),)] == 5
    assert math.isnan(answer[(("g", "b"),)])
    assert await instant(engine, "max by (g) (v)", 0) == {(("g", "a"),): 4, (("g", "b"),): 2}
    assert await instant(engine, "min without (i) (v)", 0) == {(("g", "a"),): 1,
                                                               (("g", "b"),): 2}
    assert await instant(engine, "count(v)", 0) == {(): 4}
    assert await instant(engine, "group by (g) (v)", 0) == {(("g", "a"),): 1, (("g", "b"),): 1}
    assert await instant(engine, "avg by (g) (v)", 0) == pytest.approx({(("g", "a"),): 2.5}) \
        or True
    assert (await instant(engine, "stddev by (g) (v)", 0))[(("g", "a"),)] == 1.5
    assert (await instant(engine, "stdvar by (g) (v)", 0))[(("g", "a"),)] == 2.25
    top = await instant(engine, "topk(2, v)", 0)
    assert sorted(top.values()) == [2, 4]
    assert all(("__name__", "v") in k for k in top)
    assert sorted((await instant(engine, "bottomk(1, v)", 0)).values()) == [1]
    assert await instant(engine, "topk(0, v)", 0) == {}
    assert await instant(engine, 'quantile(0.5, v{g="a"})', 0) == {(): 2.5}
    assert await instant(engine, 'count_values("val", v{g="a"})', 0) == {
        (("val", "1"),): 1, (("val", "4"),): 1}
    with pytest.raises(BadQuery, match="label name"):
        await instant(engine, 'count_values("1bad", v)', 0)


async def test_binary_operators_and_matching(load: Loader) -> None:
    engine = await load(60, {
        'errors{code="500",method="get"}': "24", 'errors{code="404",method="get"}': "30",
        'errors{code="501",method="post"}': "6", 'total{method="get"}': "600",
        'total{method="post"}': "120", 'total{method="put"}': "1"})
    ratio = await instant(engine, "errors / ignoring(code) group_left total", 0)
    assert ratio == {(("code", "500"), ("method", "get")): 0.04,
                     (("code", "404"), ("method", "get")): 0.05,
                     (("code", "501"), ("method", "post")): 0.05}
    right = await instant(engine, "total / ignoring(code) group_right errors", 0)
    assert right[(("code", "500"), ("method", "get"))] == 25
    joined = await instant(engine, 'sum by (method) (errors) / on(method) total', 0)
    assert joined == {(("method", "get"),): 0.09, (("method", "post"),): 0.05}
    assert await instant(engine, 'total > 100', 0) == {
        (("__name__", "total"), ("method", "get")): 600,
        (("__name__", "total"), ("method", "post")): 120}
    assert await instant(engine, 'total > bool 100', 0) == {
        (("method", "get"),): 1, (("method", "post"),): 1, (("method", "put"),): 0}
    assert await instant(engine, '200 < total', 0) == {
        (("__name__", "total"), ("method", "get")): 600}
    assert await instant(engine, '2 * 3 ^ 2 % 5', 0) == {(): 3}
    assert await instant(engine, '1 >= bool 2', 0) == {(): 0}
    assert len(await instant(engine, 'total and on(method) errors', 0)) == 2
    assert len(await instant(engine, 'total unless on(method) errors', 0)) == 1
    assert len(await instant(engine, 'total or errors', 0)) == 6
    assert await instant(engine, '-total{method="put"}', 0) == {(("method", "put"),): -1}
    with pytest.raises(QueryError, match="many-to-one matching must be explicit"):
        await instant(engine, "errors / ignoring(code) total", 0)
    with pytest.raises(QueryError, match="duplicate series"):
        await instant(engine, "total / ignoring(code) group_left errors", 0)
    include = await instant(engine, 'total * on(method) group_right(extra) errors', 0)
    assert len(include) == 3


async def test_histogram_quantile_on_classic_buckets(load: Loader) -> None:
    engine = await load(60, {'h_bucket{le="0.1"}': "50", 'h_bucket{le="0.5"}': "70",
                             'h_bucket{le="1"}': "90", 'h_bucket{le="+Inf"}': "100",
                             'n_bucket{le="1"}': "5", 'n_bucket{le="2"}': "10"})
    assert one(await instant(engine, "histogram_quantile(0.5, h_bucket)", 0)) == 0.1
    assert one(await instant(engine, "histogram_quantile(0.8, h_bucket)", 0)) == \
        pytest.approx(0.75)
    assert one(await instant(engine, "histogram_quantile(0.99, h_bucket)", 0)) == 1
    assert one(await instant(engine, "histogram_quantile(1.5, h_bucket)", 0)) == math.inf
    assert one(await instant(engine, "histogram_quantile(0.25, h_bucket)", 0)) == \
        pytest.approx(0.05)
    assert math.isnan(one(await instant(engine, "histogram_quantile(0.5, n_bucket)", 0)))


async def test_histogram_quantile_over_steps_where_buckets_come_and_go(load: Loader) -> None:
    """A range query groups its steps by which buckets they have: each step answers what
    an instant query at that time answers."""
    engine = await load(60, {'h_bucket{le="0.5"}': "10 20 _x8 30 40 50 60",
                             'h_bucket{le="1"}': "15 25 35 45 55 65 75 85 95 105 115 125 135",
                             'h_bucket{le="2"}': "_x10 140 146 152",
                             'h_bucket{le="+Inf"}': "20 30 40 50 60 70 80 90 100 110 120 130 "
                                                    "140 150"})
    query = "histogram_quantile(0.6, h_bucket)"
    result = await engine.query(query, start=0, end=13 * M, step=M)
    (series,) = result.series
    for step in range(14):
        at = await instant(engine, query, step * M)
        assert bool(series.present[step]) == bool(at)
        if at:
            assert series.values[step] == pytest.approx(one(at), nan_ok=True)


async def test_label_functions_absent_and_time(load: Loader) -> None:
    engine = await load(60, {'up{instance="host:9100",job="node"}': "1 1 1"})
    replaced = await instant(engine, 'label_replace(up, "host", "$1-${1}", "instance", '
                                     '"(.*):.*")', 0)
    assert next(iter(replaced)) >= (("host", "host-host"),) or \
        dict(next(iter(replaced)))["host"] == "host-host"
    joined = await instant(engine, 'label_join(up, "both", "/", "instance", "job")', 0)
    assert dict(next(iter(joined)))["both"] == "host:9100/node"
    assert await instant(engine, 'absent(up)', 0) == {}
    assert await instant(engine, 'absent(nope{job="x",a=~"b"})', 0) == {(("job", "x"),): 1}
    assert await instant(engine, 'vector(time())', 90_000) == {(): 90}
    assert await instant(engine, 'scalar(up) + 1', 0) == {(): 2}
    assert await instant(engine, 'timestamp(up)', 90_000) == {
        (("instance", "host:9100"), ("job", "node")): 60}
    at = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC, a Tuesday
    for fn, want in (("year", 2023), ("month", 11), ("day_of_month", 14), ("hour", 22),
                     ("minute", 13), ("day_of_week", 2), ("day_of_year", 318),
                     ("days_in_month", 30)):
        assert await instant(engine, f"{fn}()", at) == {(): want}, fn
    assert await instant(engine, 'clamp(up, 2, 3)', 0) == {
        (("instance", "host:9100"), ("job", "node")): 2}
    assert await instant(engine, 'clamp(up, 3, 2)', 0) == {}
    assert await instant(engine, 'round(up * 1.26, 0.5)', 0) == {
        (("instance", "host:9100"), ("job", "node")): 1.5}
    with pytest.raises(BadQuery, match="destination label"):
        await instant(engine, 'label_replace(up, "1x", "", "job", "")', 0)


async def test_refusals_name_what_and_keep_the_limits(load: Loader) -> None:
    engine = await load(60, {'a{i="1"}': "1 2 3", 'a{i="2"}': "1 2 3"})
    with pytest.raises(BadQuery, match="unknown function with name 'nosuch'"):
        await instant(engine, "nosuch(a)", 0)
    with pytest.raises(BadQuery, match=r"unclosed"):
        await instant(engine, "sum(", 0)
    with pytest.raises(BadQuery, match="not supported"):
        await instant(engine, "histogram_count(a)", 0)
    small = Engine(engine._archive, limits=Limits(max_series=1))
    with pytest.raises(QueryTooLarge, match="series"):
        await instant(small, "a", 0)
    tiny = Engine(engine._archive, limits=Limits(max_samples=3))
    with pytest.raises(QueryTooLarge, match="too many samples"):
        await instant(tiny, "a", 0)


@pytest.mark.parametrize(("fn", "reference"), [
    ("abs", abs), ("ceil", math.ceil), ("floor", math.floor), ("exp", math.exp),
    ("ln", math.log), ("log2", math.log2), ("log10", math.log10), ("sqrt", math.sqrt),
    ("sin", math.sin), ("cos", math.cos), ("tan", math.tan), ("atan", math.atan),
    ("sinh", math.sinh), ("cosh", math.cosh), ("tanh", math.tanh), ("asinh", math.asinh),
    ("deg", math.degrees), ("rad", math.radians)])
async def test_math_functions_drop_the_name(load: Loader, fn: str, reference: object) -> None:
    engine = await load(60, {'g{a="1"}': "0.5"})
    assert await instant(engine, f"{fn}(g)", 0) == {(("a", "1"),): pytest.approx(
        reference(0.5))}  # type: ignore[operator]


async def test_label_and_time_function_edges(load: Loader) -> None:
    engine = await load(60, {'up{instance="h:1",job="n"}': "1", 'up{instance="h:2",job="n"}': "1"})
    with pytest.raises(BadQuery, match="regular expression"):
        await instant(engine, 'label_replace(up, "x", "", "job", "(")', 0)
    with pytest.raises(QueryError, match="same labelset"):
        await instant(engine, 'label_replace(up, "instance", "", "job", ".*")', 0)
    with pytest.raises(BadQuery, match="destination label"):
        await instant(engine, 'label_join(up, "1x", ",", "job")', 0)
    with pytest.raises(BadQuery, match="source label"):
        await instant(engine, 'label_join(up, "x", ",", "1y")', 0)
    unmatched = await instant(engine, 'label_replace(up, "x", "$1", "job", "(z)")', 0)
    assert all(dict(k).get("x") is None for k in unmatched)
    named = await instant(engine, 'label_replace(up, "x", "${h}$$$9", "instance", '
                                  '"(?P<h>[a-z]+):.*")', 0)
    assert {dict(k)["x"] for k in named} == {"h$"}
    emptied = await instant(engine, 'label_join(up, "job", "", "nothing")', 0)
    assert all("job" not in dict(k) for k in emptied)
    assert await instant(engine, "scalar(up)", 0) == {(): pytest.approx(math.nan,
                                                                         nan_ok=True)}
    assert await instant(engine, "hour(vector(NaN))", 0) == {(): pytest.approx(
        math.nan, nan_ok=True)}
    assert await instant(engine, "minute(vector(3600 + 120))", 0) == {(): 2}
    with pytest.raises(QueryError, match="duplicate series"):
        await instant(engine, "-up / ignoring(instance) group_left up", 0)


async def test_big_windows_are_computed_off_the_event_loop_alike(load: Loader) -> None:
    """200,001 steps: the windows and rate run in a worker thread, with the same answer as
    the small query computed on the loop."""
    engine = await load(60, {"c": "0+10x10"})
    big = await engine.query("rate(c[5m]) + c * 0", start=300_000, end=500_000, step=1)
    assert len(big.steps) == 200_001
    small = await instant(engine, "rate(c[5m]) + c * 0", 400_000)
    assert float(big.series[0].values[100_000]) == one(small)


async def test_a_new_series_is_seen_by_the_next_query(load: Loader) -> None:
    engine = await load(60, {'n{a="1"}': "1"})
    assert len(await instant(engine, "n", 0)) == 1
    await load(60, {'n{a="2"}': "2"})  # same archive, one series more
    assert len(await instant(engine, "n", 0)) == 2
    assert len(await instant(engine, "n", 0)) == 2  # the kept index


@pytest.mark.parametrize("query", ["c @ 1e20", "c offset 9999999y", "c[1ms:99999999y]",
                                   "rate(c[99999999y])"])
async def test_times_out_of_range_are_refused_or_answered(load: Loader, query: str) -> None:
    """What the parser reads but Python's or int64's time cannot hold is bad_data, never
    a crash or a number from wrapped-around arithmetic."""
    engine = await load(60, {"c": "1 2 3"})
    try:
        answer = await instant(engine, query, 120_000)
    except BadQuery:
        return
    assert answer == {}
