"""Scheduler throughput, start lateness and memory per job, on the real clock.

Scenarios (defaults; ``--scale 0.1`` shortens the runs for a smoke test):

* ``spread``: 100,000 jobs, intervals spread over 10-300 s, for 30 s;
* ``1s``: 10,000 jobs at a 1 s interval, for 20 s (10,000 polls/s expected).

The poll is trivial (``async def`` returning None) and the sink only records the start
lateness (started - scheduled), so the figures are the scheduler's own cost.
Goals: >= 10,000 polls/s with p99 lateness <= 10 ms; <= 500 B of scheduler memory per job.

    python benchmarks/scheduler.py [--scale 1.0] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import psutil  # type: ignore[import-untyped]

from watchkeeper.clock import SystemClock
from watchkeeper.collect.abc import Collector, JobSpec, PollContext
from watchkeeper.collect.scheduler import Job, PollOutcome, Scheduler
from watchkeeper.model import Device
from watchkeeper.telemetry import SelfMetrics

WARMUP = 2.0  # seconds after start-up excluded from the steady-state columns


class Trivial(Collector):
    async def poll(self, device: Device, ctx: PollContext) -> None:
        return None


@dataclass
class Report:
    name: str
    jobs: int
    seconds: float
    polls: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    steady_p99_ms: float
    steady_max_ms: float
    cpu_percent: float
    sched_bytes_per_job: float
    rss_bytes_per_job: float
    full_gcs: int
    full_gc_max_ms: float


class LatenessSink:
    """Appends the slot and ``started - scheduled`` per poll: about the cheapest sink possible."""

    def __init__(self) -> None:
        self.scheduled: list[float] = []
        self.lateness: list[float] = []

    async def __call__(self, outcome: PollOutcome) -> None:
        self.scheduled.append(outcome.scheduled)
        self.lateness.append(outcome.started - outcome.scheduled)


def make_jobs(count: int, intervals: list[float]) -> list[Job]:
    collector = Trivial(None, name="trivial")
    return [
        Job(collector, JobSpec(job_id=f"trivial:dev{i}", device=Device(name=f"dev{i}"),
                               intervals=(intervals[i],)), 5.0)
        for i in range(count)
    ]


def scheduler_bytes_per_job(jobs: list[Job]) -> float:
    """Memory the scheduler itself allocates per job on reconcile (jobs already built)."""

    async def sink(outcome: PollOutcome) -> None:
        return None

    scheduler = Scheduler(clock=SystemClock(), metrics=SelfMetrics(), sink=sink)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    scheduler.reconcile(jobs)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return grown / len(jobs)


class GcPauses:
    """Times every full (generation 2) garbage collection while installed."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.full.append(time.perf_counter() - self._t0)

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)


async def scenario(
    name: str, count: int, intervals: list[float], seconds: float, *, freeze: bool
) -> Report:
    rss = psutil.Process().memory_info().rss
    jobs = make_jobs(count, intervals)
    sched_bytes = scheduler_bytes_per_job(jobs)
    sink = LatenessSink()
    scheduler = Scheduler(clock=SystemClock(), metrics=SelfMetrics(), sink=sink)
    gc.collect()
    if freeze:
        gc.freeze()  # what a runtime may do after start-up: long-lived objects leave the GC
    # Reconcile right before run: slots are computed from "now", so any delay in between
    # would show up as start lateness of the first polls.
    scheduler.reconcile(jobs)
    rss_per_job = (psutil.Process().memory_info().rss - rss) / count
    pauses = GcPauses()
    task = asyncio.create_task(scheduler.run())
    started, t0, cpu = time.perf_counter(), time.time(), time.process_time()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    cpu_share = (time.process_time() - cpu) / elapsed
    polls = len(sink.lateness)
    pauses.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gc.unfreeze()
    late = np.array(sink.lateness[:polls] or [0.0]) * 1000
    slots = np.array(sink.scheduled[:polls] or [t0])
    steady = late[slots >= t0 + WARMUP] if (slots >= t0 + WARMUP).any() else late
    return Report(
        name=name, jobs=count, seconds=elapsed, polls=polls,
        p50_ms=float(np.percentile(late, 50)), p99_ms=float(np.percentile(late, 99)),
        max_ms=float(late.max()), steady_p99_ms=float(np.percentile(steady, 99)),
        steady_max_ms=float(steady.max()), cpu_percent=100 * cpu_share,
        sched_bytes_per_job=sched_bytes, rss_bytes_per_job=rss_per_job,
        full_gcs=len(pauses.full), full_gc_max_ms=max(pauses.full, default=0.0) * 1000,
    )


async def main(scale: float, freeze: bool) -> list[Report]:
    rng = random.Random(42)
    spread = [float(rng.randint(10, 300)) for _ in range(100_000)]
    reports = [await scenario("100k jobs, 10-300 s", 100_000, spread, 30 * scale, freeze=freeze)]
    gc.collect()
    reports.append(
        await scenario("10k jobs @ 1 s", 10_000, [1.0] * 10_000, 20 * scale, freeze=freeze)
    )
    return reports


def render(reports: list[Report], loop: str, freeze: bool) -> None:
    print(f"\nscheduler benchmark (loop: {loop}, gc.freeze: {freeze}; "
          "goal >= 10,000 polls/s, p99 <= 10 ms, <= 500 B/job)\n")
    head = (f"{'scenario':<22} {'jobs':>8} {'secs':>6} {'polls':>9} {'polls/s':>9} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'p99*':>6} {'max*':>6} "
            f"{'CPU %':>5} {'full GCs':>8} {'GC max ms':>9} "
            f"{'sched B/job':>11} {'RSS B/job':>9}")
    print(head)
    print("-" * len(head))
    for r in reports:
        print(f"{r.name:<22} {r.jobs:>8,} {r.seconds:>6.1f} {r.polls:>9,} "
              f"{r.polls / r.seconds:>9,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.max_ms:>7.1f} "
              f"{r.steady_p99_ms:>6.2f} {r.steady_max_ms:>6.1f} "
              f"{r.cpu_percent:>5.0f} {r.full_gcs:>8} {r.full_gc_max_ms:>9.1f} "
              f"{r.sched_bytes_per_job:>11.0f} {r.rss_bytes_per_job:>9.0f}")
    print(f"\n* = steady state: polls whose slot is {WARMUP:g} s or more after start-up (the")
    print("  reconcile of all jobs at start-up blocks the loop once, incl. a full GC).")
    print("CPU %: process CPU time over wall time during the run (100 = one core busy).")
    print("full GCs: generation-2 collections during the run, and the longest one.")
    print("sched B/job: tracemalloc growth during reconcile (entry, heap item, index);")
    print("RSS B/job: process growth for building the Job/JobSpec/Device values plus reconcile.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the run times")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--freeze", action="store_true",
                        help="gc.freeze() after building the jobs, as a runtime may at start-up")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        results = uvloop.run(main(args.scale, args.freeze))
    else:
        results = asyncio.run(main(args.scale, args.freeze))
    render(results, args.loop, args.freeze)
