"""The ``prometheus`` collector: scrape exporters' ``/metrics`` as Prometheus does.

Targets come from the inventory (a device's ``connections.prometheus``: ``url``, or
``scheme``/``port``/``path`` on its address) and from Prometheus ``file_sd`` files
(options ``file_sd``: JSON or YAML, read when the jobs are planned). Every sample gets the
target's labels (``instance``: the device's name, or the file's ``host:port``; ``job``:
option ``job``, default the collector's name; a file's own labels), then
``metric_relabel_configs``, and is stored under the one mapping of
:mod:`watchkeeper.model.promlabels` (``instance/job/name{labels}``). Each scrape also
writes ``up``, ``scrape_duration_seconds``, ``scrape_samples_scraped`` and
``scrape_samples_post_metric_relabeling`` with the target's labels only, as Prometheus does.
Counters are stored raw (a reset is just a lower value; rates are a query's business).
The families' ``# TYPE``/``# HELP``/``# UNIT`` ride on the poll's result to the archive
writer, which keeps them where ``/prometheus/api/v1/metadata`` reads them (D46): on the
job's first scrape, when they change, and every ``METADATA_RESEND_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from watchkeeper.collect.abc import Collector, JobSpec, PollContext, PollResult
from watchkeeper.collect.builtin import promtext
from watchkeeper.collect.poll import describe
from watchkeeper.errors import ConfigError, InvalidData
from watchkeeper.model import Device, Families, Measurement, MetricMetadata, Status, promlabels

METADATA_RESEND_SECONDS: Final = 600.0
"""How often a job's unchanged metadata is sent again (Prometheus: every minute), so a
store that lost it (a new data directory, events dropped on the way) has it back soon."""


class PrometheusConnection(msgspec.Struct, frozen=True, kw_only=True,
                           forbid_unknown_fields=True):
    """How to reach one device's exporter (``connections.prometheus``)."""

    url: str = ""  # the whole URL; else scheme://address:port/path
    scheme: str = "http"
    port: int = 9100
    path: str = "/metrics"


class PrometheusOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    job: str = ""  # the job label; default: the collector's name
    scheme: str = "http"
    port: int = 9100
    path: str = "/metrics"
    url: str = ""
    file_sd: tuple[str, ...] = ()  # file_sd files; their targets are scraped besides devices
    honor_labels: bool = False
    metric_relabel_configs: tuple[promtext.Relabel, ...] = ()
    verify_tls: bool = True


class PrometheusCollector(Collector):
    """Scrapes exporters; see the module's description."""

    Options = PrometheusOptions
    options: PrometheusOptions
    protocol = "prometheus"
    Connection = PrometheusConnection

    def __init__(self, options: Any, *, name: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(options, name=name)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def job(self) -> str:
        return self.options.job or self.name

    def jobs(self, devices: Iterable[Device], intervals: tuple[float, ...]) -> Iterator[JobSpec]:
        """One job per device, then one per ``file_sd`` target (ConfigError naming a bad
        file)."""
        for spec in super().jobs(devices, intervals):
            conn = self.connection(spec.device)
            host = spec.device.address or spec.device.name
            url = conn.url or f"{conn.scheme}://{host}:{conn.port}{conn.path}"
            yield msgspec.structs.replace(spec, params={
                "url": url, "labels": {"instance": spec.device.name, "job": self.job}})
        for source in self.options.file_sd:
            try:
                targets = promtext.file_sd(Path(source).read_text(), source=source)
            except (OSError, InvalidData) as exc:
                raise ConfigError(f"collector {self.name}: file_sd {source}: {exc}",
                                  key="options.file_sd", value=source) from None
            for target in targets:
                labels = {"instance": target.address, "job": self.job, **target.labels}
                yield JobSpec(job_id=f"{self.name}:{target.address}{target.path}",
                              device=Device(name=target.address, address=target.address),
                              intervals=intervals,
                              params={"url": f"{target.scheme}://{target.address}{target.path}",
                                      "labels": labels})

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        url = ctx.job.params.get("url") or self._url(device)
        target: Mapping[str, str] = ctx.job.params.get("labels") or {
            "instance": device.name, "job": self.job}
        if self._client is None:  # trust_env off: scrape the target, not an env proxy
            self._client = httpx.AsyncClient(verify=self.options.verify_tls, trust_env=False,
                                             transport=self._transport)
        started = time.perf_counter()
        samples: list[Measurement] = []
        scraped = 0
        families: Families = ()
        try:
            response = await self._client.get(url, timeout=ctx.timeout * 0.9, headers={
                "Accept": promtext.ACCEPT, "Accept-Encoding": "gzip",
                "X-Prometheus-Scrape-Timeout-Seconds": f"{ctx.timeout * 0.9:g}"})
            response.raise_for_status()
            content_type = response.headers.get("content-type", "")
            for labels, value, stamp in promtext.parse(response.text, content_type):
                scraped += 1
                sample = self._sample(labels, target, value, stamp if stamp else ctx.now)
                if sample is not None:
                    samples.append(sample)
            families = _changed(ctx.state, promtext.families(response.text, content_type),
                                ctx.now)
            fault = ""
        except (httpx.HTTPError, InvalidData) as exc:
            fault = f"scrape of {url} failed: {describe(exc)}"
            samples = []
        duration = time.perf_counter() - started
        own = [("up", 0.0 if fault else 1.0), ("scrape_duration_seconds", duration),
               ("scrape_samples_scraped", float(scraped)),
               ("scrape_samples_post_metric_relabeling", float(len(samples)))]
        samples.extend(Measurement(key=promlabels.to_key({**target, "__name__": name}),
                                   ts=ctx.now, value=value) for name, value in own)
        if fault:
            return ctx.result(samples, Status.CRITICAL, fault)
        result = ctx.result(samples, Status.OK, f"{scraped} samples from {url}")
        return msgspec.structs.replace(result, families=families) if families else result

    def _sample(self, scraped: dict[str, str], target: Mapping[str, str], value: float,
                ts: float) -> Measurement | None:
        labels = promtext.attach(scraped, target, honor_labels=self.options.honor_labels)
        kept = promtext.relabel(labels, self.options.metric_relabel_configs)
        if kept is None:
            return None
        return Measurement(key=promlabels.to_key(kept), ts=ts, value=value)

    def _url(self, device: Device) -> str:
        conn = self.connection(device)
        return conn.url or f"{conn.scheme}://{device.address or device.name}:{conn.port}{conn.path}"


def _changed(state: dict[str, Any], families: dict[str, MetricMetadata], now: float
             ) -> Families:
    """The scrape's families' metadata if this job has not sent it as it is, or not for
    ``METADATA_RESEND_SECONDS``; else nothing (the job's ``state`` remembers)."""
    if not families or (families == state.get("families")
                        and now - state.get("families_sent", 0.0) < METADATA_RESEND_SECONDS):
        return ()
    state["families"], state["families_sent"] = families, now
    return tuple(sorted(families.items()))
