"""Fixtures for the collect tests: a fake clock, fresh metrics, a recording sink, a scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.collect.fakes import START, MakeScheduler, Recorder
from watchkeeper.clock import FakeClock
from watchkeeper.collect.scheduler import Scheduler
from watchkeeper.telemetry import SelfMetrics


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def metrics() -> SelfMetrics:
    return SelfMetrics()


@pytest.fixture
def sink() -> Recorder:
    return Recorder()


@pytest.fixture
async def make_scheduler(
    clock: FakeClock, metrics: SelfMetrics, sink: Recorder
) -> AsyncIterator[MakeScheduler]:
    """Build a scheduler and run it in a task; the task is cancelled at teardown."""
    tasks: list[asyncio.Task[None]] = []

    def make(**kwargs: Any) -> Scheduler:
        kwargs.setdefault("shutdown_grace", 0.05)
        scheduler = Scheduler(clock=clock, metrics=metrics, sink=sink, **kwargs)
        tasks.append(asyncio.create_task(scheduler.run()))
        return scheduler

    yield make
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
