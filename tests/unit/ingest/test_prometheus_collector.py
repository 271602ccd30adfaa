"""The prometheus collector against a real HTTP server on 127.0.0.1 serving fixed bodies."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from watchkeeper.clock import FakeClock
from watchkeeper.collect.builtin.prometheus import (
    METADATA_RESEND_SECONDS,
    PrometheusCollector,
    PrometheusOptions,
)
from watchkeeper.collect.builtin.promtext import Relabel
from watchkeeper.collect.poll import run_poll
from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.collect.testing import poll_once
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Event, MetricMetadata, Status
from watchkeeper.runtime.assemble import BoundCollector
from watchkeeper.runtime.bridge import outcome_event
from watchkeeper.runtime.inventory import JobReconciler
from watchkeeper.settings import CollectorSettings

BODY = b"""# TYPE node_load1 gauge
node_load1 0.5
# TYPE c_total counter
c_total{mode="a"} 7
c_total{mode="b",job="inner"} 1
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/missing":
            self.send_error(404)
            return
        body = gzip.compress(BODY)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def collector(**options: object) -> PrometheusCollector:
    return PrometheusCollector(PrometheusOptions(**options), name="prom")  # type: ignore[arg-type]


async def test_scrape_writes_samples_and_scrape_series(exporter: int) -> None:
    """A device's connections.prometheus is scraped (gzip); samples carry the target's
    labels (a clashing job kept as exported_job), relabelling drops what it should, and
    up/scrape_* series are written."""
    device = Device(name="h1", address="127.0.0.1", connections={"prometheus": {"port": exporter}})
    prom = collector(job="node", metric_relabel_configs=(
        Relabel(source_labels=("mode",), regex="a", action="drop"),))
    try:
        result = await poll_once(prom, device, now=1000.0)
    finally:
        await prom.aclose()
    assert result.status == Status.OK
    got = {str(m.key): m.value for m in result.measurements}
    assert got["h1/node/node_load1"] == 0.5
    assert got['h1/node/c_total{exported_job="inner",mode="b"}'] == 1.0
    assert not any("mode=\"a\"" in key for key in got)
    assert got["h1/node/up"] == 1.0
    assert got["h1/node/scrape_samples_scraped"] == 3.0
    assert got["h1/node/scrape_samples_post_metric_relabeling"] == 2.0
    assert got["h1/node/scrape_duration_seconds"] >= 0


async def test_families_ride_on_the_result_when_new_changed_or_due(exporter: int) -> None:
    """The exporter's # TYPE lines travel with the job's first scrape, not with the next
    (unchanged), again once METADATA_RESEND_SECONDS passed; the check event carries them."""
    device = Device(name="h1", address="127.0.0.1", connections={"prometheus": {"port": exporter}})
    prom = collector(job="node")
    state: dict[str, object] = {}
    try:
        first = await poll_once(prom, device, state=state, now=1000.0)
        second = await poll_once(prom, device, state=state, now=1015.0)
        later = await poll_once(prom, device, state=state, now=1000.0 + METADATA_RESEND_SECONDS)
    finally:
        await prom.aclose()
    described = (("c_total", MetricMetadata("counter", "", "")),
                 ("node_load1", MetricMetadata("gauge", "", "")))
    assert (first.families, second.families, later.families) == (described, (), described)
    event: Event = outcome_event(PollOutcome(
        device=device, plugin="prometheus", job_id="j", scheduled=1000.0, started=1000.0,
        finished=1000.1, result=first))
    assert event.families == described


async def test_failed_scrape_is_up_0(exporter: int) -> None:
    """A 404 is CRITICAL with up 0 and no samples."""
    device = Device(name="h1", connections={"prometheus": {
        "url": f"http://127.0.0.1:{exporter}/missing"}})
    prom = collector()
    try:
        result = await poll_once(prom, device, now=1000.0)
    finally:
        await prom.aclose()
    assert result.status == Status.CRITICAL
    assert {str(m.key): m.value for m in result.measurements}["h1/prom/up"] == 0.0


async def test_file_sd_targets(exporter: int, tmp_path: Path) -> None:
    """file_sd targets become jobs with instance host:port and the file's labels."""
    sd = tmp_path / "targets.yml"
    sd.write_text(f"- targets: ['127.0.0.1:{exporter}']\n  labels: {{env: lab}}\n")
    prom = collector(file_sd=(str(sd),), job="node")
    (spec,) = list(prom.jobs([], (15.0,)))
    try:
        result = await run_poll(prom, spec, now=time.time(), timeout=10.0,
                                affecting_intervals=(15.0,), state={})
    finally:
        await prom.aclose()
    got = {str(m.key): m.value for m in result.measurements}
    assert got[f'127.0.0.1:{exporter}/node/node_load1{{env="lab"}}'] == 0.5
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError):
        list(collector(file_sd=(str(tmp_path / "bad.json"),)).jobs([], (15.0,)))


def test_inventory_changes_keep_file_sd_targets(tmp_path: Path) -> None:
    """The reconciler asks each collector for its jobs of no device too, so file_sd
    targets stay scheduled when the inventory changes, even with no device selected
    (repeats share one job id: the scheduler keeps one)."""
    sd = tmp_path / "targets.json"
    sd.write_text('[{"targets": ["127.0.0.1:9"]}]')
    prom = collector(file_sd=(str(sd),))
    bound = BoundCollector(spec=CollectorSettings(name="prom", plugin="prometheus",
                                                  devices=["h1"]), collector=prom,
                           path="collectors[0]")
    no_models = SimpleNamespace(snapshots=list)  # jobs() reads no model
    reconciler = JobReconciler(no_models, None, [bound], base=[],  # type: ignore[arg-type]
                               clock=FakeClock())
    ids = [job.spec.job_id for job in reconciler.jobs([Device(name="h1"), Device(name="h2")])]
    assert set(ids) == {"prom:h1", "prom:127.0.0.1:9/metrics"}
    assert [job.spec.job_id for job in reconciler.jobs([Device(name="h2")])] == [
        "prom:127.0.0.1:9/metrics"]
    sd.write_text("{")
    assert [job.spec.job_id for job in reconciler.jobs([])] == []
