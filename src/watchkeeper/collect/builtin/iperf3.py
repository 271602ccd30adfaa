"""Throughput, retransmits and loss from ``iperf3 -c HOST -p PORT -J`` against an iperf3 server.

Metric names are esmond's iperf3 event types, so an esmond-compatible archive files them
where perfSONAR clients look: ``throughput`` (bit/s; TCP: ``end.sum_received``, UDP:
``end.sum``), ``packet-retransmits`` (TCP, ``end.sum_sent.retransmits``),
``packet-count-sent``, ``packet-count-lost`` and ``packet-loss-rate`` (UDP; lost/sent as
a fraction), and with several streams ``streams-throughput`` and
``streams-packet-retransmits`` labelled by ``stream``. The pure :func:`parse_report` does
the mapping and is table-tested.

An iperf3 server runs one test at a time; "busy" answers are retried ``busy_retries``
times. An unreachable or still-busy server is CRITICAL; a missing ``iperf3`` binary or
an unreadable report is ERRORED. The client process is killed if the poll is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, NamedTuple

import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.thresholds import Threshold, judge
from watchkeeper.errors import CollectError
from watchkeeper.model import Device, Measurement, Status

UNITS = {"throughput": "bit/s", "streams-throughput": "bit/s", "packet-loss-rate": ""}


class Iperf3Options(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = ""  # default: the device's address, else its name
    port: int = 5201
    duration: float = 5.0  # seconds (-t)
    udp: bool = False
    bandwidth: str | None = None  # -b, e.g. "100M"; iperf3's UDP default is 1 Mbit/s
    parallel: int = 1  # -P
    reverse: bool = False  # -R: the server sends
    connect_timeout: float = 3.0
    busy_retries: int = 2
    busy_wait: float = 1.0
    binary: str = "iperf3"
    thresholds: dict[str, Threshold] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.parallel < 1 or not 0 < self.port < 65536:
            raise ValueError("duration must be positive, parallel at least 1, port valid")


class Metric(NamedTuple):
    name: str
    value: float
    labels: dict[str, str]


class Report(NamedTuple):
    """What one iperf3 run measured, or the error it reported."""

    metrics: list[Metric]
    error: str | None
    protocol: str


def parse_report(report: dict[str, Any]) -> Report:
    """esmond-named metrics from an iperf3 ``-J`` report (the pure part of the collector)."""
    if report.get("error"):
        return Report([], str(report["error"]), "")
    start = report.get("start", {})
    test = start.get("test_start", {})
    protocol = str(test.get("protocol", "TCP")).upper()
    end = report.get("end", {})
    metrics: list[Metric] = []
    if protocol == "UDP":
        total = end.get("sum", {})
        _add(metrics, "throughput", total.get("bits_per_second"))
        sent, lost = total.get("packets"), total.get("lost_packets")
        _add(metrics, "packet-count-sent", sent)
        _add(metrics, "packet-count-lost", lost)
        if isinstance(sent, int | float) and isinstance(lost, int | float) and sent > 0:
            _add(metrics, "packet-loss-rate", lost / sent)
    else:
        _add(metrics, "throughput", end.get("sum_received", {}).get("bits_per_second"))
        _add(metrics, "packet-retransmits", end.get("sum_sent", {}).get("retransmits"))
    streams = end.get("streams", [])
    if int(test.get("num_streams", len(streams)) or 0) > 1:
        for index, stream in enumerate(streams):
            labels = {"stream": str(index)}
            receiver = stream.get("receiver") or stream.get("udp") or {}
            _add(metrics, "streams-throughput", receiver.get("bits_per_second"), labels)
            if protocol != "UDP":
                _add(metrics, "streams-packet-retransmits",
                     (stream.get("sender") or {}).get("retransmits"), labels)
    if not metrics:
        return Report([], "the report carries no results", protocol)
    return Report(metrics, None, protocol)


def _add(metrics: list[Metric], name: str, value: Any,
         labels: dict[str, str] | None = None) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        metrics.append(Metric(name, float(value), labels or {}))


class Iperf3Collector(Collector):
    """Runs the iperf3 client as a subprocess and reports esmond's iperf3 event types."""

    Options = Iperf3Options
    options: Iperf3Options

    def command(self, host: str) -> list[str]:
        opts = self.options
        args = [opts.binary, "-c", host, "-p", str(opts.port), "-J", "-t", f"{opts.duration:g}",
                "--connect-timeout", str(int(opts.connect_timeout * 1000))]
        if opts.udp:
            args.append("-u")
        if opts.bandwidth:
            args += ["-b", opts.bandwidth]
        if opts.parallel > 1:
            args += ["-P", str(opts.parallel)]
        if opts.reverse:
            args.append("-R")
        return args

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        host = opts.host or device.address or device.name
        where = f"{host}:{opts.port}"
        for attempt in range(opts.busy_retries + 1):
            report = parse_report(await self._run(self.command(host)))
            if report.error is None or "busy" not in report.error or attempt == opts.busy_retries:
                break
            await asyncio.sleep(opts.busy_wait)
        if report.error is not None:
            return ctx.result([], Status.CRITICAL, f"iperf3 to {where}: {report.error}")
        out: list[Measurement] = []
        notes: list[tuple[Status, str]] = []
        for metric in report.metrics:
            unit = UNITS.get(metric.name, "")
            out.append(ctx.measure(metric.name, metric.value, unit=unit,
                                   labels=metric.labels or None))
            if not metric.labels:
                notes.append(judge(metric.name, metric.value, opts.thresholds.get(metric.name)))
        status = Status.rollup(s for s, _ in notes) if notes else Status.OK
        throughput = next((m.value for m in report.metrics if m.name == "throughput"), 0.0)
        summary = f"iperf3 {report.protocol} to {where}: {throughput / 1e6:.1f} Mbit/s"
        return ctx.result(out, status, "; ".join([summary, *(t for _, t in notes if t)]))

    async def _run(self, args: list[str]) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            stdout, stderr = await proc.communicate()
        finally:
            if proc.returncode is None:  # cancelled (the poll timed out): never leave it running
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        try:
            report = json.loads(stdout)
        except ValueError:
            why = stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise CollectError(f"iperf3 gave no JSON report: {why}") from None
        if not isinstance(report, dict):
            raise CollectError("iperf3 gave a JSON report that is not an object")
        return report
