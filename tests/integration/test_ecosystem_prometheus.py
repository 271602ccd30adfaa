"""Debian's Prometheus and node exporter against watchkeeper, all real, on 127.0.0.1.

Prometheus scrapes the node exporter and remote-writes to watchkeeper (Bearer token):
the same node_* series with the same labels land in watchkeeper. The same Prometheus
scrapes watchkeeper's /federate and gets what watchkeeper holds. watchkeeper's own
prometheus collector scrapes the same exporter and reads what Prometheus read. The metric
metadata Prometheus sends (sent by default by Debian's 2.42; every second here, a minute by
default) is what watchkeeper's /metadata answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.ecosystem_servers import (
    Watchkeeper,
    node_exporter,
    prom_query,
    prometheus,
    wait_for,
)
from watchkeeper.api.ingest import METADATA_FILE
from watchkeeper.collect.builtin.prometheus import PrometheusCollector, PrometheusOptions
from watchkeeper.collect.testing import poll_once
from watchkeeper.model import Device, SeriesKey, Status
from watchkeeper.model.promlabels import to_labels

pytestmark = pytest.mark.timeout(90)

CONFIG = """\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ['{node}']}}]
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {{'match[]': ['{{job="system"}}']}}
    static_configs: [{{targets: ['127.0.0.1:{wk_port}']}}]
remote_write:
  - url: {wk}/prometheus/api/v1/write
    authorization: {{credentials: {token}}}
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
    metadata_config: {{send_interval: 1s}}
    write_relabel_configs:
      - {{source_labels: [job], regex: node, action: keep}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Watchkeeper, str, str]]:
    tmp = tmp_path_factory.mktemp("eco")
    wk = Watchkeeper(tmp)
    with node_exporter() as node, wk.serve(), prometheus(tmp, CONFIG.format(
            node=node, wk=wk.url, wk_port=wk.port, token=wk.token)) as prom:
        yield wk, node, prom


def node_series(wk: Watchkeeper, node: str) -> set[frozenset[tuple[str, str]]]:
    return {frozenset(to_labels(SeriesKey.parse(text)).items())
            for text in wk.series(prefix=f"{node}/node/")}


def test_remote_write_lands_the_same_series(stack: tuple[Watchkeeper, str, str]) -> None:
    """Every node_* series Prometheus holds is in watchkeeper with exactly its labels,
    and the values agree at a shared timestamp."""
    wk, node, prom = stack
    wanted = wait_for(lambda: {frozenset(r["metric"].items())  # type: ignore[union-attr]
                               for r in prom_query(prom, '{job="node",__name__=~"node_.*"}')},
                      30, "prometheus to scrape")
    assert isinstance(wanted, set)
    assert len(wanted) > 20
    wait_for(lambda: wanted <= node_series(wk, node), 30, "the series in watchkeeper")
    load = f"{node}/node/node_load1"
    (ts, value), *_ = reversed(wk.points(load))
    (answer,) = prom_query(prom, f'node_load1{{instance="{node}"}}', at=ts)
    assert float(answer["value"][1]) == value  # type: ignore[index]


def test_metadata_is_what_prometheus_scraped(stack: tuple[Watchkeeper, str, str]) -> None:
    """Type, help and unit of the exporter's families, as Prometheus' own /metadata has
    them, answered by watchkeeper's from what remote write sent, and kept on disk."""
    wk, _, prom = stack
    auth = {"Authorization": f"Bearer {wk.token}"}

    def ours(metric: str) -> object:
        return httpx.get(f"{wk.url}/prometheus/api/v1/metadata", params={"metric": metric},
                         headers=auth, timeout=10).json()["data"].get(metric)

    for metric in ("node_cpu_seconds_total", "node_load1", "go_gc_duration_seconds"):
        wait_for(lambda metric=metric: ours(metric) not in (None, [  # type: ignore[misc]
            {"type": "unknown", "help": "", "unit": ""}]), 30, f"the metadata of {metric}")
        theirs = httpx.get(f"{prom}/api/v1/metadata", params={"metric": metric},
                           timeout=10).json()["data"][metric]
        assert ours(metric) == theirs[:1]
        assert theirs[0]["type"] in ("counter", "gauge", "summary")
    assert "node_load1" in (wk.data / METADATA_FILE).read_text()


def test_prometheus_scrapes_federate(stack: tuple[Watchkeeper, str, str]) -> None:
    """A native series written to watchkeeper is scraped from /federate by Prometheus
    with its mapped labels and value."""
    wk, _, prom = stack
    now = time.time()
    response = httpx.post(f"{wk.url}/api/v1/write", timeout=10,
                          headers={"Authorization": f"Bearer {wk.token}"},
                          json={"points": [["localhost/system/cpu.percent", now, 42.5]]})
    assert response.status_code == 201, response.text
    found = wait_for(lambda: prom_query(prom, 'cpu_percent{job="system"}'), 30,
                     "prometheus to scrape /federate")
    assert isinstance(found, list)
    (sample,) = found
    assert sample["metric"] == {"__name__": "cpu_percent", "instance": "localhost",
                                "job": "system"}
    assert float(sample["value"][1]) == 42.5  # type: ignore[index]


async def test_collector_reads_what_prometheus_read(stack: tuple[Watchkeeper, str, str]
                                                    ) -> None:
    """The prometheus collector scraping the same exporter gets the same series (labels
    but instance/job) and values within the exporter's drift."""
    _, node, prom = stack
    host, port = node.rsplit(":", 1)
    prom_collector = PrometheusCollector(PrometheusOptions(job="node"), name="prometheus")
    device = Device(name="box", address=host, connections={"prometheus": {"port": int(port)}})
    try:
        result = await poll_once(prom_collector, device, now=time.time())
    finally:
        await prom_collector.aclose()
    assert result.status == Status.OK
    ours = {}
    for m in result.measurements:
        labels = to_labels(m.key)
        assert (labels.pop("instance"), labels.pop("job")) == ("box", "node")
        ours[frozenset(labels.items())] = m.value
    theirs = {}
    for r in prom_query(prom, f'{{job="node",instance="{node}",__name__=~"node_.*"}}'):
        labels = dict(r["metric"])  # type: ignore[call-overload]
        del labels["instance"], labels["job"]
        theirs[frozenset(labels.items())] = float(r["value"][1])  # type: ignore[index]
    assert set(theirs) <= set(ours)
    total = frozenset({("__name__", "node_memory_MemTotal_bytes")})
    assert ours[total] == theirs[total]
    for key, value in theirs.items():
        if dict(key)["__name__"] == "node_cpu_seconds_total":
            assert abs(ours[key] - value) <= 5.0  # a few seconds of CPU time between scrapes
