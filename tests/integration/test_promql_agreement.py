"""PromQL agreement with the real Prometheus (issue 13, "Verified against the real programs").

Debian's ``prometheus`` scrapes Debian's ``prometheus-node-exporter`` and itself every 2 s
and remote-writes everything into a real ``watchkeeper serve``, keeping its own TSDB; a
second node exporter (job ``gone``) is stopped in the middle of the range, so Prometheus
writes stale markers for its series (staleness must agree too). Then
every query of ``tests/data/promql/corpus.promql`` is run against both query APIs over the
same range and step (and as an instant query at the range's end): the answers must carry
the same series with the same labels, the same timestamps, and values equal within 1e-9
relative. The count of agreeing queries is printed (``N of M agree``).

The same stack then answers a Grafana data source's request sequence (health check,
buildinfo, metric and label browsers, panels with ``step`` from ``maxDataPoints``), with a
bearer token on every call and ``public_reads`` off.
"""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import free_port

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "promql" / "corpus.promql"
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
SCRAPE_SECONDS = 2
COLLECT_SECONDS = 75
RANGE_SECONDS = 50
STEP_SECONDS = 5
POSTABLE = ("query", "query_range", "series", "labels", "query_exemplars")
RELATIVE = 1e-9
ABSOLUTE = 1e-12  # two zeros computed along different paths may differ in the last bits

pytestmark = [pytest.mark.timeout(600)]


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@contextmanager
def running(args: list[str], cwd: Path) -> Iterator[None]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield
        except BaseException:
            log.seek(0)
            sys.stderr.write(f"--- {args[0]} said:\n"
                             f"{log.read()[-4000:].decode(errors='replace')}\n")
            raise
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@dataclass
class Stack:
    prometheus: str
    watchkeeper: str
    token: str
    node: str
    prom_self: str
    start: float
    end: float
    gone: str  # the exporter stopped in the middle of the range


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for binary in (PROMETHEUS, NODE_EXPORTER):
        if not shutil.which(binary):
            pytest.skip(f"{binary} is not installed (scripts/services installs it)")
    tmp = tmp_path_factory.mktemp("promql")
    data = tmp / "wk"
    data.mkdir()
    created = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "promql", "--write",
                              "--data-dir", str(data)], cwd=REPO, capture_output=True,
                             text=True, timeout=60, check=True)
    token = created.stdout.split()[-1]
    (tmp / "wk.yaml").write_text("server: {public_reads: false}\n")
    wk_port, node_port, prom_port = free_port(), free_port(), free_port()
    wk = f"http://127.0.0.1:{wk_port}"
    node = f"127.0.0.1:{node_port}"
    gone = f"127.0.0.1:{free_port()}"
    prom_self = f"127.0.0.1:{prom_port}"
    (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: {SCRAPE_SECONDS}s, evaluation_interval: 1m}}
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ['{node}']}}]
  - job_name: prometheus
    static_configs: [{{targets: ['{prom_self}']}}]
  - job_name: gone
    static_configs: [{{targets: ['{gone}']}}]
remote_write:
  - url: {wk}/prometheus/api/v1/write
    authorization: {{credentials: '{token}'}}
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
""")
    # a second exporter, stopped in the middle of the range: Prometheus then writes stale
    # markers for its series, which remote write stores and both engines must honour
    vanishing = ExitStack()
    vanishing.enter_context(running([NODE_EXPORTER, f"--web.listen-address={gone}",
                                     "--collector.disable-defaults", "--collector.loadavg",
                                     "--collector.time"], tmp))
    with vanishing, running([*WATCHKEEPER, "serve", "--config", str(tmp / "wk.yaml"),
                             "--listen", f"127.0.0.1:{wk_port}", "--data-dir", str(data)],
                            REPO), \
            running([NODE_EXPORTER, f"--web.listen-address={node}",
                     "--collector.disable-defaults", "--collector.cpu", "--collector.loadavg",
                     "--collector.meminfo", "--collector.stat", "--collector.uname",
                     "--collector.filesystem", "--collector.diskstats", "--collector.netdev",
                     "--collector.vmstat", "--collector.time", "--collector.netclass"], tmp), \
            running([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                     f"--storage.tsdb.path={tmp / 'tsdb'}",
                     f"--web.listen-address={prom_self}"], tmp):
        wait_for(lambda: httpx.get(f"{wk}/api/v1/health", timeout=2).status_code == 200, 60,
                 "watchkeeper serve")
        prom = f"http://{prom_self}"
        wait_for(lambda: httpx.get(f"{prom}/-/ready", timeout=2).status_code == 200, 60,
                 "prometheus")
        began = time.time()
        time.sleep(COLLECT_SECONDS - 12 - RANGE_SECONDS / 2)
        vanishing.close()
        time.sleep(12 + RANGE_SECONDS / 2)
        end = float(int(time.time()) - 12)  # what remote write has surely delivered
        time.sleep(3)
        yield Stack(prom, wk, token, node, prom_self, end - RANGE_SECONDS, end, gone)
        assert began < end - RANGE_SECONDS


def corpus(stack: Stack) -> list[tuple[str, bool]]:
    """(query, instant only) for each line, placeholders filled in."""
    out = []
    for line in CORPUS.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        instant = text.startswith("instant:")
        text = text.removeprefix("instant:").strip()
        text = (text.replace("$node", stack.node).replace("$gone", stack.gone)
                .replace("$prom", stack.prom_self)
                .replace("$__rate_interval", "10s")
                .replace("$at", f"{stack.start + RANGE_SECONDS / 2:.3f}"))
        out.append((text, instant))
    return out


def ask(base: str, path: str, params: dict[str, str], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{base}{path}", data=params, headers=headers, timeout=60).json()


def _same_value(a: str, b: str) -> bool:
    if a == b:
        return True
    x, y = float(a), float(b)
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=RELATIVE, abs_tol=ABSOLUTE)


def differences(ours: Any, theirs: Any) -> str:
    """Why two answers differ ('' when they agree)."""
    if theirs["status"] != "success" or ours["status"] != "success":
        if theirs["status"] == ours["status"] == "error":
            same = theirs["errorType"] == ours["errorType"]
            return "" if same else f"error types {ours['errorType']} != {theirs['errorType']}"
        return f"status {ours.get('error', 'success')!r} vs {theirs.get('error', 'success')!r}"
    a, b = ours["data"], theirs["data"]
    if a["resultType"] != b["resultType"]:
        return f"resultType {a['resultType']} != {b['resultType']}"
    kind = a["resultType"]
    if kind in ("scalar", "string"):
        same = a["result"][0] == b["result"][0] and (
            _same_value(a["result"][1], b["result"][1]) if kind == "scalar"
            else a["result"][1] == b["result"][1])
        return "" if same else f"{a['result']} != {b['result']}"
    return _series_difference(kind, a["result"], b["result"])


def _series_difference(kind: str, ours: list[Any], theirs: list[Any]) -> str:
    field = "value" if kind == "vector" else "values"
    mine = {tuple(sorted(s["metric"].items())): s[field] for s in ours}
    real = {tuple(sorted(s["metric"].items())): s[field] for s in theirs}
    if mine.keys() != real.keys():
        return (f"series only here: {sorted(mine.keys() - real.keys())[:3]}; only in "
                f"Prometheus: {sorted(real.keys() - mine.keys())[:3]}")
    for labels, points in real.items():
        got = mine[labels]
        pairs = [got] if kind == "vector" else got
        want = [points] if kind == "vector" else points
        if [p[0] for p in pairs] != [p[0] for p in want]:
            return (f"{dict(labels)}: timestamps {[p[0] for p in pairs][:5]} != "
                    f"{[p[0] for p in want][:5]}")
        for (t, x), (_, y) in zip(pairs, want, strict=True):
            if not _same_value(x, y):
                return f"{dict(labels)} at {t}: {x} != {y}"
    return ""


def test_the_corpus_agrees_with_prometheus(stack: Stack) -> None:
    total = 0
    disagree: list[str] = []
    for query, instant_only in corpus(stack):
        runs: list[tuple[str, dict[str, str]]] = [
            ("/api/v1/query", {"query": query, "time": f"{stack.end:.3f}"})]
        if not instant_only:
            runs.append(("/api/v1/query_range", {
                "query": query, "start": f"{stack.start:.3f}", "end": f"{stack.end:.3f}",
                "step": str(STEP_SECONDS)}))
        for path, params in runs:
            total += 1
            theirs = ask(stack.prometheus, path, params)
            ours = ask(stack.watchkeeper, f"/prometheus{path}", params, stack.token)
            why = differences(ours, theirs)
            if why:
                disagree.append(f"{path} {query}: {why}")
    print(f"\nPromQL corpus: {total - len(disagree)} of {total} agree with Prometheus")
    assert not disagree, "\n".join(disagree)


def test_the_stopped_exporter_ended_by_stale_markers(stack: Stack) -> None:
    """Section 3 of the corpus means something: the stopped exporter's series are gone
    from both engines at the range's end, well inside the 5-minute lookback (only its
    stale markers end them there), and were there at the start."""
    for base, path, token in ((stack.prometheus, "/api/v1/query", None),
                              (stack.watchkeeper, "/prometheus/api/v1/query", stack.token)):
        at_start = ask(base, path, {"query": 'node_load1{job="gone"}',
                                    "time": f"{stack.start:.3f}"}, token)
        at_end = ask(base, path, {"query": 'node_load1{job="gone"}',
                                  "time": f"{stack.end:.3f}"}, token)
        assert len(at_start["data"]["result"]) == 1, (base, at_start)
        assert at_end["data"]["result"] == [], (base, at_end)


def test_grafana_request_sequence(stack: Stack) -> None:
    """What Grafana's Prometheus data source sends (its docs and source: the health check,
    version detection, the metric and label browsers, panel queries with step =
    max(interval, (to - from) / maxDataPoints) aligned to the step), every call with the
    bearer token the data source is configured with; GET and POST (its HTTP method)."""
    base = f"{stack.watchkeeper}/prometheus/api/v1"
    auth = {"Authorization": f"Bearer {stack.token}"}
    now = f"{stack.end:.3f}"
    for method in ("GET", "POST"):
        def call(path: str, params: list[tuple[str, str]], method: str = method) -> Any:
            if method == "GET" or path not in POSTABLE:  # Prometheus serves those GET only
                response = httpx.get(f"{base}/{path}", params=params, headers=auth, timeout=30)
            else:
                response = httpx.post(f"{base}/{path}", data=dict(params), headers=auth,
                                      timeout=30)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            assert body["status"] == "success", body
            return body["data"]

        health = call("query", [("query", "1+1"), ("time", now)])
        assert health == {"resultType": "scalar", "result": [int(stack.end), "2"]}
        assert call("status/buildinfo", [])["version"].startswith("2.")
        names = call("label/__name__/values", [("start", f"{stack.start:.0f}"),
                                              ("end", f"{stack.end:.0f}")])
        assert "node_load1" in names
        assert names == sorted(names)
        labels = call("labels", [("start", f"{stack.start:.0f}"), ("end", now)])
        assert {"__name__", "instance", "job", "cpu", "mode"} <= set(labels)
        series = call("series", [("match[]", "node_cpu_seconds_total"),
                                 ("start", f"{stack.start:.0f}"), ("end", now)])
        assert series
        assert all(s["__name__"] == "node_cpu_seconds_total" for s in series)
        assert all(s["instance"] == stack.node and s["job"] == "node" for s in series)
        modes = call("label/mode/values", [("match[]", 'node_cpu_seconds_total{job="node"}')])
        assert "idle" in modes
        assert "node_load1" in call("metadata", [])
        # a panel: 50 s shown with maxDataPoints 10 -> step 5 s, start/end aligned to it
        step = max(SCRAPE_SECONDS, int(RANGE_SECONDS / 10))
        start = int(stack.start) // step * step
        end = int(stack.end) // step * step
        panel = call("query_range", [("query", "sum by (mode) (rate(node_cpu_seconds_total[10s]))"),
                                     ("start", str(start)), ("end", str(end)),
                                     ("step", str(step))])
        assert panel["resultType"] == "matrix"
        assert panel["result"]
        for s in panel["result"]:
            assert all(t % step == 0 and start <= t <= end for t, _ in s["values"])
        assert call("query_exemplars", [("query", "node_load1"), ("start", str(start)),
                                        ("end", str(end))]) == []
    refused = httpx.get(f"{base}/query", params={"query": "1+1"}, timeout=10)
    assert refused.status_code == 401  # public_reads is off: no token, no answer
    bad = httpx.post(f"{base}/query", data={"query": "sum("}, headers=auth, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["errorType"] == "bad_data"
