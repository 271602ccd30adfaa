"""SNMP interface-table polls per minute against the local agent (``scripts/services``).

Each simulated device is its own job (``dev00001`` ...) polling the full interface tables
(ifTable + ifXTable: 12 columns, with rates) of the snmpd on udp 127.0.0.1:16161, through
the real scheduler on the real clock, so the figures include scheduling, pysnmp, the
agent's answers and the rate arithmetic. Devices are spread over the interval by their
stable phase, as in production.

Goal: >= 1,000 devices-worth of interface tables per minute.

    python benchmarks/snmp.py [--devices 2000] [--interval 30] [--duration 60]
                              [--version 2c|3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time

import msgspec
import numpy as np

from watchkeeper.clock import SystemClock
from watchkeeper.collect.abc import JobSpec
from watchkeeper.collect.builtin.snmp import SnmpCollector, SnmpOptions
from watchkeeper.collect.scheduler import Job, PollOutcome, Scheduler
from watchkeeper.model import Device, Status
from watchkeeper.telemetry import SelfMetrics

V3 = {"version": 3, "user": "wkuser", "auth_key": "env:WK_BENCH_AUTH",
      "priv_key": "env:WK_BENCH_PRIV"}


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[PollOutcome] = []

    async def __call__(self, outcome: PollOutcome) -> None:
        self.outcomes.append(outcome)


async def run(devices: int, interval: float, duration: float, version: str,
              concurrency: int) -> dict[str, float]:
    options: dict[str, object] = {"port": 16161, "interfaces": True, "request_timeout": 2.0}
    if version == "3":
        os.environ.setdefault("WK_BENCH_AUTH", "wkauthpass123")
        os.environ.setdefault("WK_BENCH_PRIV", "wkprivpass123")
        options.update(V3)
    collector = SnmpCollector(msgspec.convert(options, SnmpOptions), name="snmp")
    sink = Recorder()
    scheduler = Scheduler(clock=SystemClock(), metrics=SelfMetrics(), sink=sink,
                          max_concurrency=concurrency)
    scheduler.reconcile([
        Job(collector, JobSpec(job_id=f"snmp:dev{i:05d}",
                               device=Device(name=f"dev{i:05d}", address="127.0.0.1"),
                               intervals=(interval,)), 10.0)
        for i in range(devices)
    ])
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(duration)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    elapsed = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    await collector.aclose()

    done = sink.outcomes
    poll_ms = np.array([(o.finished - o.started) * 1000 for o in done])
    late_ms = np.array([(o.started - o.scheduled) * 1000 for o in done])
    ok = sum(1 for o in done if o.result.status is Status.OK)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / elapsed * 100
    stats = scheduler.stats()
    return {
        "devices": devices, "interval_s": interval, "seconds": round(elapsed, 1),
        "polls": len(done), "ok": ok, "skipped": stats.skipped,
        "devices_per_min": round(len(done) / elapsed * 60),
        "distinct_devices": len({o.device.name for o in done}),
        "poll_p50_ms": round(float(np.percentile(poll_ms, 50)), 1) if len(done) else 0.0,
        "poll_p99_ms": round(float(np.percentile(poll_ms, 99)), 1) if len(done) else 0.0,
        "start_late_p99_ms": round(float(np.percentile(late_ms, 99)), 1) if len(done) else 0.0,
        "cpu_percent": round(cpu, 1),
        "values_per_poll": round(float(np.mean([len(o.result.measurements) for o in done])), 1)
        if done else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--version", choices=("2c", "3"), default="2c")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    report = asyncio.run(run(args.devices, args.interval, args.duration, args.version,
                             args.concurrency))
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
