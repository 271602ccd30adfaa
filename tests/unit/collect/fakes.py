"""Fake collectors, a recording sink and job builders for the collect tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from watchkeeper.collect.abc import Collector, JobSpec, PollContext
from watchkeeper.collect.scheduler import Job, PollOutcome, Scheduler
from watchkeeper.model import Device, Measurement

START = 1_700_000_000.0

MakeScheduler = Callable[..., Scheduler]
"""Builds a Scheduler on the fake clock and runs it until the test ends (a fixture)."""


class Recorder:
    """A sink that keeps every outcome and lets a test wait for the n-th one."""

    def __init__(self) -> None:
        self.outcomes: list[PollOutcome] = []
        self._changed = asyncio.Event()

    async def __call__(self, outcome: PollOutcome) -> None:
        self.outcomes.append(outcome)
        self._changed.set()

    def of(self, job_id: str) -> list[PollOutcome]:
        return [o for o in self.outcomes if o.job_id == job_id]

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """Wait (in real time) until ``count`` outcomes arrived; for polls run in threads."""
        async with asyncio.timeout(timeout):
            while len(self.outcomes) < count:
                self._changed.clear()
                await self._changed.wait()


class Echo(Collector):
    """Returns one measurement and remembers every context it was polled with."""

    def __init__(self, name: str = "echo") -> None:
        super().__init__(None, name=name)
        self.calls: list[PollContext] = []

    async def poll(self, device: Device, ctx: PollContext) -> list[Measurement]:
        self.calls.append(ctx)
        return [ctx.measure("value", 1.0)]


class Gated(Collector):
    """Polls block until the test releases them; tracks concurrency per device and overall."""

    def __init__(self, name: str = "gated", active: dict[str, int] | None = None) -> None:
        super().__init__(None, name=name)
        self.active = active if active is not None else {}
        self.peak: dict[str, int] = {}
        self.started: list[str] = []
        self.gates: list[asyncio.Event] = []

    async def poll(self, device: Device, ctx: PollContext) -> None:
        gate = asyncio.Event()
        self.gates.append(gate)
        self.started.append(ctx.job.job_id)
        self.active[device.name] = self.active.get(device.name, 0) + 1
        self.peak[device.name] = max(self.peak.get(device.name, 0), self.active[device.name])
        try:
            await gate.wait()
        finally:
            self.active[device.name] -= 1

    def release_all(self) -> None:
        for gate in self.gates:
            gate.set()


def spec(
    job_id: str, intervals: tuple[float, ...] = (10.0,), device: str = "d1", **params: Any
) -> JobSpec:
    return JobSpec(
        job_id=job_id, device=Device(name=device, address="127.0.0.1"),
        intervals=intervals, params=params,
    )


def job(collector: Collector, job_id: str, intervals: tuple[float, ...] = (10.0,),
        device: str = "d1", timeout: float = 5.0, **params: Any) -> Job:
    return Job(collector, spec(job_id, intervals, device, **params), timeout)


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


