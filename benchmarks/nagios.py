"""Nagios plugins as collectors: 1,000 real ``check_tcp`` checks a minute through the scheduler.

Each check is Debian's ``/usr/lib/nagios/plugins/check_tcp`` run by the ``nagios`` collector
(its own process group, output read, perfdata parsed) against a TCP listener in a separate
process on 127.0.0.1, scheduled by watchkeeper's scheduler at a 60 s interval per job.

Reported:

* start lateness (started - scheduled) p50/p99/max over every check; goal p99 <= 50 ms;
* the checks' wall time (spawn, run, reap) p50/p99, and watchkeeper's own CPU per check;
* zombies: this process' defunct children, sampled every second (goal: never any);
* the baseline beside it: the same plugin spawned by a bare ``asyncio`` loop (no
  collector, no scheduler), so the collector's own cost per check is the difference.

    python benchmarks/nagios.py [--jobs 1000] [--seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil  # type: ignore[import-untyped]

from watchkeeper.clock import SystemClock
from watchkeeper.collect.builtin.nagios import DEFAULT_PLUGIN_DIR, NagiosCollector, NagiosOptions
from watchkeeper.collect.scheduler import Job, PollOutcome, Scheduler
from watchkeeper.model import Device, Status
from watchkeeper.telemetry import SelfMetrics

CHECK_TCP = Path(DEFAULT_PLUGIN_DIR) / "check_tcp"
LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(1024)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.close()
"""


@dataclass
class Figures:
    checks: int
    ok: int
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    wall_p50_ms: float
    wall_p99_ms: float
    cpu_ms_per_check: float
    zombies_max: int


class Sink:
    def __init__(self) -> None:
        self.outcomes: list[PollOutcome] = []

    async def __call__(self, outcome: PollOutcome) -> None:
        self.outcomes.append(outcome)


async def count_zombies(stop: asyncio.Event, seen: list[int]) -> None:
    me = psutil.Process()
    while not stop.is_set():
        zombies = 0
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                zombies += child.status() == psutil.STATUS_ZOMBIE
        seen.append(zombies)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()


async def scheduled(port: int, jobs: int, seconds: float) -> Figures:
    collector = NagiosCollector(NagiosOptions(command=[
        "check_tcp", "-H", "$HOSTADDRESS$", "-p", str(port), "-w", "1", "-c", "2"]),
        name="check_tcp")
    devices = [Device(name=f"dev{i}", address="127.0.0.1") for i in range(jobs)]
    work = [Job(collector, spec, 10.0) for spec in collector.jobs(devices, (60.0,))]
    sink = Sink()
    scheduler = Scheduler(clock=SystemClock(), metrics=SelfMetrics(), sink=sink)
    stop, zombies = asyncio.Event(), [0]
    watcher = asyncio.create_task(count_zombies(stop, zombies))
    scheduler.reconcile(work)
    cpu = time.process_time()
    runner = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    stop.set()
    await watcher
    done = sink.outcomes
    late = np.array([o.started - o.scheduled for o in done] or [0.0]) * 1000
    wall = np.array([o.finished - o.started for o in done] or [0.0]) * 1000
    return Figures(
        checks=len(done), ok=sum(o.result.status is Status.OK for o in done),
        late_p50_ms=float(np.percentile(late, 50)), late_p99_ms=float(np.percentile(late, 99)),
        late_max_ms=float(late.max()), wall_p50_ms=float(np.percentile(wall, 50)),
        wall_p99_ms=float(np.percentile(wall, 99)),
        cpu_ms_per_check=1000 * cpu / max(1, len(done)), zombies_max=max(zombies))


async def bare(port: int, checks: int) -> tuple[float, float]:
    """The same plugin spawned back to back by a bare asyncio loop: wall and CPU ms each."""
    walls = []
    cpu = time.process_time()
    for _ in range(checks):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            str(CHECK_TCP), "-H", "127.0.0.1", "-p", str(port), "-w", "1", "-c", "2",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        await process.communicate()
        walls.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    return float(np.median(walls)) * 1000, 1000 * cpu / checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="checks per minute (one job each)")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to run")
    args = parser.parse_args()
    if not CHECK_TCP.exists():
        sys.exit(f"{CHECK_TCP} is missing: run scripts/services up (installs monitoring-plugins)")
    listener = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE,
                                text=True)
    try:
        assert listener.stdout is not None
        port = int(listener.stdout.readline())
        figures = asyncio.run(scheduled(port, args.jobs, args.seconds))
        base_wall, base_cpu = asyncio.run(bare(port, 200))
    finally:
        listener.kill()
        listener.wait()
    f = figures
    print(f"\nnagios benchmark: {args.jobs:,} check_tcp jobs at 60 s for {args.seconds:g} s "
          "(goal: p99 start lateness <= 50 ms, no zombies)\n")
    print(f"checks run        {f.checks:,} ({f.ok:,} OK), "
          f"{60 * f.checks / args.seconds:,.0f} per minute")
    print(f"start lateness    p50 {f.late_p50_ms:.2f} ms   p99 {f.late_p99_ms:.2f} ms   "
          f"max {f.late_max_ms:.1f} ms")
    print(f"check wall time   p50 {f.wall_p50_ms:.2f} ms   p99 {f.wall_p99_ms:.2f} ms   "
          f"(bare asyncio spawn of the same plugin: median {base_wall:.2f} ms)")
    print(f"CPU per check     {f.cpu_ms_per_check:.2f} ms in watchkeeper's process "
          f"(bare asyncio spawn: {base_cpu:.2f} ms)")
    print(f"zombies           at most {f.zombies_max} at any sample (sampled every second)")


if __name__ == "__main__":
    main()
