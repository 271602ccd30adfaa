"""The Prometheus query API's envelopes, parameters, errors and token rules (in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest

from watchkeeper.api import create_app
from watchkeeper.api.prometheus_query import _matrix
from watchkeeper.archive import Columns
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.promql import (
    Limits,
    Series,
    format_time,
    format_times,
    format_value,
    format_values,
)
from watchkeeper.archive.tokens import SqliteTokenStore
from watchkeeper.clock import FakeClock
from watchkeeper.model import promlabels
from watchkeeper.telemetry import SelfMetrics

API = "/prometheus/api/v1"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    """An app with public reads off, the CPU counters of two hosts from t=1000 s every
    15 s, a read token and a write token."""
    metrics = SelfMetrics()
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(start=5000.0), metrics=metrics)
        await archive.start(stack)
        tokens = SqliteTokenStore(tmp_path)
        await tokens.start(stack)
        reader = await tokens.create("reader", write=False, now=0)
        writer = await tokens.create("writer", write=True, now=0)
        series, index, ts, values = [], [], [], []
        stamps = np.arange(1000, 4600, 15.0)
        for host in ("a", "b"):
            for mode in ("idle", "user"):
                series.append(promlabels.key_text([
                    ("__name__", "node_cpu_seconds_total"), ("instance", f"{host}:9100"),
                    ("job", "node"), ("mode", mode)]))
                index += [len(series) - 1] * len(stamps)
                ts += stamps.tolist()
                values += (np.arange(len(stamps)) * (3.0 if mode == "idle" else 1.5)).tolist()
        series.append("box/cpu/cpu.percent")  # a native series: sanitized name, instance/job
        index.append(len(series) - 1)
        ts.append(4000.0)
        values.append(12.5)
        await archive.write_columns(Columns(series=series, index=np.array(index, np.int32),
                                            ts=np.array(ts), values=np.array(values)))
        app = create_app(archive, metrics=metrics, tokens=tokens, public_reads=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://wk") as http:
            yield http, reader, writer


async def test_instant_and_range_envelopes(client: tuple[httpx.AsyncClient, str, str]) -> None:
    http, reader, _ = client
    auth = {"Authorization": f"Bearer {reader}"}
    health = await http.get(f"{API}/query", params={"query": "1+1", "time": "3000.5"},
                            headers=auth)
    assert health.json() == {"status": "success",
                             "data": {"resultType": "scalar", "result": [3000.5, "2"]}}
    # no time: the archive clock's now
    now = await http.post(f"{API}/query", data={"query": "time()"}, headers=auth)
    assert now.json()["data"]["result"] == [5000, "5000"]
    rate = await http.post(f"{API}/query_range", headers=auth, data={
        "query": 'sum by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m]))',
        "start": "2000", "end": "2120", "step": "1m"})
    data = rate.json()["data"]
    assert data["resultType"] == "matrix"
    assert [s["metric"] for s in data["result"]] == [{"instance": "a:9100"},
                                                     {"instance": "b:9100"}]
    assert data["result"][0]["values"] == [[2000, "0.2"], [2060, "0.2"], [2120, "0.2"]]
    scalar = await http.get(f"{API}/query_range", headers=auth, params={
        "query": "2", "start": "2000", "end": "2030", "step": "15"})
    assert scalar.json()["data"]["result"] == [{"metric": {}, "values": [
        [2000, "2"], [2015, "2"], [2030, "2"]]}]
    native = await http.get(f"{API}/query", headers=auth, params={
        "query": 'cpu_percent{instance="box"}', "time": "4000"})
    assert native.json()["data"]["result"] == [{
        "metric": {"__name__": "cpu_percent", "instance": "box", "job": "cpu"},
        "value": [4000, "12.5"]}]
    matrix = await http.get(f"{API}/query", headers=auth, params={
        "query": 'node_cpu_seconds_total{instance="a:9100",mode="user"}[30s]', "time": "1030"})
    assert matrix.json()["data"]["result"][0]["values"] == [
        [1000, "0"], [1015, "1.5"], [1030, "3"]]
    text = await http.get(f"{API}/query", headers=auth, params={"query": '"hi"', "time": "1"})
    assert text.json()["data"] == {"resultType": "string", "result": [1, "hi"]}
    rfc = await http.get(f"{API}/query", headers=auth, params={
        "query": "time()", "time": "1970-01-01T00:16:40Z"})
    assert rfc.json()["data"]["result"] == [1000, "1000"]
    ordered = await http.get(f"{API}/query", headers=auth, params={
        "query": "sort_desc(node_cpu_seconds_total)", "time": "2000"})
    assert [s["metric"]["mode"] for s in ordered.json()["data"]["result"]] == [
        "idle", "idle", "user", "user"]


@pytest.mark.parametrize(("params", "status", "kind", "words"), [
    ({"query": "sum("}, 400, "bad_data", "invalid parameter \"query\""),
    ({"query": "1", "time": "yesterday"}, 400, "bad_data", "cannot parse \"yesterday\""),
    ({"query": "1", "start": "10", "end": "5", "step": "1"}, 400, "bad_data",
     "end timestamp must not be before start time"),
    ({"query": "1", "start": "0", "end": "5", "step": "0"}, 400, "bad_data",
     "zero or negative query resolution"),
    ({"query": "1", "start": "0", "end": "100000", "step": "1"}, 400, "bad_data",
     "exceeded maximum resolution of 11,000 points"),
    ({"query": "1", "start": "0", "end": "5", "step": "soon"}, 400, "bad_data",
     "cannot parse \"soon\" to a valid duration"),
    ({"query": "1", "time": "1e300"}, 400, "bad_data", "valid timestamp"),
    ({"query": "1", "timeout": "9" * 400}, 400, "bad_data", "valid duration"),
    ({"query": "1", "timeout": "1" + "0" * 40 + "y"}, 400, "bad_data", "valid duration"),
    ({"query": "1", "start": "0", "end": "5", "step": "inf"}, 400, "bad_data",
     "valid duration"),
    ({"query": "rate(node_cpu_seconds_total[99999999y])", "time": "2000"}, 400, "bad_data",
     "too large"),
    ({"query": "node_cpu_seconds_total[1m]", "start": "0", "end": "5", "step": "1"}, 400,
     "bad_data", "invalid expression type \"range vector\" for range query"),
    ({"query": "node_cpu_seconds_total / ignoring(mode) node_cpu_seconds_total",
      "start": "2000", "end": "2000", "step": "1"}, 422, "execution",
     "found duplicate series for the match group"),
])
async def test_errors_carry_prometheus_types(client: tuple[httpx.AsyncClient, str, str],
                                             params: dict[str, str], status: int, kind: str,
                                             words: str) -> None:
    http, reader, _ = client
    path = "query_range" if "step" in params else "query"
    answer = await http.post(f"{API}/{path}", data=params,
                             headers={"Authorization": f"Token {reader}"})
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["status"] == "error"
    assert body["errorType"] == kind
    assert words in body["error"]


async def test_metadata_routes(client: tuple[httpx.AsyncClient, str, str]) -> None:
    http, reader, _ = client
    auth = {"Authorization": f"Bearer {reader}"}

    async def data(path: str, **params: str | list[str]) -> object:
        answer = await http.get(f"{API}/{path}", params=params, headers=auth)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    assert await data("labels") == ["__name__", "instance", "job", "mode"]
    assert await data("label/__name__/values") == ["cpu_percent", "node_cpu_seconds_total"]
    assert await data("label/instance/values", **{"match[]": "cpu_percent"}) == ["box"]
    assert await data("label/mode/values", start="4100") == ["idle", "user"]
    assert await data("label/mode/values", end="500") == []
    series = await data("series", **{"match[]": ['{__name__=~"node.*",mode="user"}',
                                                 'node_cpu_seconds_total{instance="a:9100"}']})
    assert isinstance(series, list)
    assert len(series) == 3
    assert await data("metadata", metric="cpu_percent") == {
        "cpu_percent": [{"type": "unknown", "help": "", "unit": ""}]}
    assert await data("metadata", limit="1") == {
        "cpu_percent": [{"type": "unknown", "help": "", "unit": ""}]}
    assert (await data("status/buildinfo"))["version"] == "2.42.0"  # type: ignore[index]
    assert await data("query_exemplars", query="x") == []
    missing = await http.get(f"{API}/series", headers=auth)
    assert missing.json()["errorType"] == "bad_data"
    bad_name = await http.get(f"{API}/label/1x/values", headers=auth)
    assert bad_name.status_code == 400
    not_selector = await http.get(f"{API}/series", params={"match[]": "1+1"}, headers=auth)
    assert not_selector.status_code == 400
    bad_limit = await http.get(f"{API}/metadata", params={"limit": "x"}, headers=auth)
    assert bad_limit.status_code == 400


async def test_tokens_and_form_posts(client: tuple[httpx.AsyncClient, str, str]) -> None:
    """Reads follow public_reads (off here): any valid token, Token or Bearer, on GET and
    on the form POSTs Grafana sends; a read-only token may POST a query."""
    http, reader, writer = client
    anonymous = await http.post(f"{API}/query", data={"query": "1"})
    assert anonymous.status_code == 401
    for key in (reader, writer):
        for scheme in ("Token", "Bearer"):
            ok = await http.post(f"{API}/query", data={"query": "1"},
                                 headers={"Authorization": f"{scheme} {key}"})
            assert ok.status_code == 200, ok.text
    wrong_type = await http.post(f"{API}/query", content=b'{"query": "1"}',
                                 headers={"Authorization": f"Bearer {reader}",
                                          "content-type": "application/json"})
    assert wrong_type.status_code == 400
    not_utf8 = await http.post(f"{API}/query", content=b"query=\xff",
                               headers={"Authorization": f"Bearer {reader}",
                                        "content-type": "application/x-www-form-urlencoded"})
    assert not_utf8.status_code == 400


def test_value_and_time_formats_are_go_s() -> None:
    assert [format_value(v) for v in (1.0, 0.1, 1e21, 1e-7, float("nan"), float("inf"),
                                      float("-inf"), -2.5)] == [
        "1", "0.1", "1000000000000000000000", "0.0000001", "NaN", "+Inf", "-Inf", "-2.5"]
    assert format_time(1_000_000) == 1000
    assert format_time(1_000_500) == 1000.5


async def test_limits_reach_the_routes(tmp_path: Path) -> None:
    """create_app's promql_limits (server.promql) refuse as Prometheus does."""
    metrics = SelfMetrics()
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=metrics)
        await archive.start(stack)
        await archive.write_columns(Columns(
            series=["a/b/m", "c/d/m"], index=np.array([0, 1], np.int32),
            ts=np.array([10.0, 10.0]), values=np.array([1.0, 2.0])))
        app = create_app(archive, metrics=metrics, promql_limits=Limits(max_series=1))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://wk") as http:
            one = await http.get(f"{API}/query", params={"query": 'm{job="b"}', "time": "10"})
            assert one.status_code == 200
            both = await http.get(f"{API}/query", params={"query": "m", "time": "10"})
            assert both.status_code == 422
            assert both.json()["errorType"] == "execution"


def test_many_values_format_as_one_by_one() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.normal(0, 1e6, 2000), np.round(rng.normal(0, 1e6, 2000)),
        rng.random(500) * 1e-6, [0.0, -0.0, 1e16, -1e17, 1e-4, 9.99e-5, 1e21, np.nan,
                                 np.inf, -np.inf, 123456789012345.0, 0.1 + 0.2]])
    assert format_values(values) == [format_value(float(v)) for v in values]
    # any double: random bit patterns (every magnitude, subnormals, NaN payloads)
    doubles = np.concatenate([rng.integers(0, 2**64, 20_000, dtype=np.uint64).view(np.float64),
                              10 ** rng.uniform(-5, 17, 20_000) * rng.choice([-1, 1], 20_000)])
    assert format_values(doubles) == [format_value(float(v)) for v in doubles]
    assert format_values(np.zeros(0)) == []
    stamps = np.array([1_000, 2_000, 3_500], dtype=np.int64)
    assert format_times(stamps) == [1, 2, 3.5]
    assert format_times(stamps[:2]) == [1, 2]


def test_range_answer_json_is_msgspec_s_of_the_pairs() -> None:
    """A range answer's series written at once read as msgspec writes each series'
    ``{"metric": labels, "values": [[t, "v"], ...]}``: absent steps left out, whole
    and fractional seconds, odd values, labels that need escaping."""
    rng = np.random.default_rng(11)
    for steps in (np.arange(1_000_000, 1_600_000, 60_000, dtype=np.int64),
                  np.arange(1_000_250, 1_030_000, 1_500, dtype=np.int64)):
        n = len(steps)
        series = []
        for i in range(5):
            values = np.round(rng.normal(0, 100, n), i)
            values[::7] = [np.nan, np.inf, -0.0, 1e-7, 1e21][i]
            present = rng.random(n) < 0.8
            present[i] = True
            series.append(Series({"__name__": "m", "i": str(i), "q": 'a"b\\\n\u00e9'},
                                 values, present))
        series.append(Series({}, np.ones(n), np.eye(1, n, n - 1, dtype=bool)[0]))
        plain = [{"metric": s.labels, "values": list(zip(
            format_times(steps[s.present]), format_values(s.values[s.present]), strict=True))}
            for s in series]
        assert _matrix(series, steps) == msgspec.json.encode(plain)
    assert _matrix([], np.arange(3, dtype=np.int64)) == b"[]"
    # a small answer of plain values (written series by series)
    small = Series({"i": "0"}, np.array([1.0, 2.5, -0.0]), np.ones(3, dtype=bool))
    assert _matrix([small], steps[:3]) == msgspec.json.encode([{"metric": small.labels, "values": [
        [t, v] for t, v in zip(format_times(steps[:3]), ["1", "2.5", "-0"], strict=True)]}])
    # a big answer of plain values (the compiled layout): whole numbers, decimals, zeros
    steps = np.arange(1_000_000, 1_000_000 + 2000 * 15_500, 15_500, dtype=np.int64)
    series = [Series({"i": str(i)}, np.round(rng.normal(0, 10.0 ** i, len(steps)), 3 - i),
                     rng.random(len(steps)) < 0.9) for i in range(4)]
    series[0].values[:50] = 0.0
    series[1].values[:50] = -0.0
    plain = [{"metric": s.labels, "values": list(zip(
        format_times(steps[s.present]), format_values(s.values[s.present]), strict=True))}
        for s in series]
    assert _matrix(series, steps) == msgspec.json.encode(plain)
