"""run_poll: every shape a poll may take, and every way it may fail, becomes a PollResult."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.unit.collect.fakes import START, spec
from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.poll import describe, is_connection_error, normalise, run_poll
from watchkeeper.errors import PollTimeout
from watchkeeper.model import CheckResult, Device, Measurement, Status

MAIN = threading.get_ident()


class Fn(Collector):
    """A collector whose poll is the given function (sync, async or a generator of either)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__(None, name="fn")
        self.poll = fn  # type: ignore[method-assign]

    def poll(self, device: Device, ctx: PollContext) -> Any:  # replaced per instance
        raise NotImplementedError


async def poll_with(fn: Callable[..., Any], *, timeout: float = 2.0, **kw: Any) -> PollResult:
    kw.setdefault("affecting_intervals", (10.0,))
    kw.setdefault("state", {})
    return await run_poll(Fn(fn), spec("fn:d1"), now=START, timeout=timeout, **kw)


def m(ctx: PollContext, value: float = 1.0) -> Measurement:
    return ctx.measure("x", value)


async def test_a_poll_result_is_kept_as_is() -> None:
    """A returned PollResult is passed through untouched."""
    made: list[PollResult] = []

    async def poll(device: Device, ctx: PollContext) -> PollResult:
        made.append(ctx.result([m(ctx)], Status.WARNING, "hot"))
        return made[0]

    assert await poll_with(poll) is made[0]


async def test_the_context_carries_the_job_time_and_state() -> None:
    """The poll sees the slot time, its timeout, the due intervals and the job's state."""
    seen: list[PollContext] = []
    state: dict[str, Any] = {"cursor": 3}

    async def poll(device: Device, ctx: PollContext) -> None:
        seen.append(ctx)

    await poll_with(poll, timeout=7.0, affecting_intervals=(10.0, 60.0), state=state)
    ctx = seen[0]
    assert (ctx.plugin, ctx.job.job_id, ctx.device.name) == ("fn", "fn:d1", "d1")
    assert (ctx.now, ctx.timeout, ctx.affecting_intervals) == (START, 7.0, (10.0, 60.0))
    assert ctx.state is state


async def test_measurements_alone_mean_ok() -> None:
    """A list of measurements becomes an OK result carrying them, timestamped at the slot."""

    async def poll(device: Device, ctx: PollContext) -> list[Measurement]:
        return [m(ctx, 1), m(ctx, 2)]

    result = await poll_with(poll)
    assert result.status is Status.OK
    assert [x.value for x in result.measurements] == [1.0, 2.0]
    assert {x.ts for x in result.measurements} == {START}


async def test_several_check_results_roll_up_by_severity() -> None:
    """Check results among the measurements roll up to the most severe, messages kept."""

    async def poll(device: Device, ctx: PollContext) -> list[object]:
        return [
            CheckResult.of(Status.WARNING, "disk", ts=ctx.now),
            m(ctx),
            CheckResult.of(Status.CRITICAL, "cpu", ts=ctx.now),
            CheckResult.of(Status.OK, ts=ctx.now),
        ]

    result = await poll_with(poll)
    assert result.status is Status.CRITICAL
    assert result.check.summary == "disk; cpu"
    assert len(result.measurements) == 1


async def test_none_means_ok_without_measurements() -> None:
    async def poll(device: Device, ctx: PollContext) -> None:
        return None

    result = await poll_with(poll)
    assert (result.status, result.measurements) == (Status.OK, ())


async def test_an_async_generator_is_collected() -> None:
    async def poll(device: Device, ctx: PollContext) -> AsyncIterator[Measurement]:
        for i in range(3):
            await asyncio.sleep(0)
            yield m(ctx, i)

    result = await poll_with(poll)
    assert [x.value for x in result.measurements] == [0.0, 1.0, 2.0]


async def test_a_plain_function_runs_in_a_worker_thread() -> None:
    """A sync poll never runs on the event loop's thread."""
    threads: list[int] = []

    def poll(device: Device, ctx: PollContext) -> list[Measurement]:
        threads.append(threading.get_ident())
        return [m(ctx)]

    result = await poll_with(poll)
    assert result.status is Status.OK
    assert threads
    assert threads[0] != MAIN


async def test_a_sync_generator_is_exhausted_in_the_thread() -> None:
    """A sync generator's body (where the blocking work is) runs in the worker thread too."""
    threads: list[int] = []

    def poll(device: Device, ctx: PollContext) -> Iterator[Measurement]:
        for i in range(2):
            threads.append(threading.get_ident())
            yield m(ctx, i)

    result = await poll_with(poll)
    assert len(result.measurements) == 2
    assert threads
    assert MAIN not in threads


@pytest.mark.parametrize(
    ("returned", "named"),
    [(42, "int"), ("text", "str"), ({"a": 1}, "dict"), ([1.5], "list containing float")],
)
async def test_garbage_is_errored_naming_the_type(returned: object, named: str) -> None:
    async def poll(device: Device, ctx: PollContext) -> object:
        return returned

    result = await poll_with(poll)
    assert result.status is Status.ERRORED
    assert f"poll returned {named};" in result.check.summary


async def test_an_exception_is_errored_with_its_type_and_message() -> None:
    async def poll(device: Device, ctx: PollContext) -> None:
        raise ValueError("boom")

    result = await poll_with(poll)
    assert result.status is Status.ERRORED
    assert result.check.summary == "ValueError: boom"
    assert result.check.messages[0].ts == START


async def test_an_exception_in_a_thread_is_errored_too() -> None:
    def poll(device: Device, ctx: PollContext) -> None:
        raise KeyError("k")

    result = await poll_with(poll)
    assert (result.status, result.check.summary) == (Status.ERRORED, "KeyError: 'k'")


async def test_exceeding_the_timeout_is_errored() -> None:
    async def poll(device: Device, ctx: PollContext) -> None:
        await asyncio.sleep(30)

    result = await poll_with(poll, timeout=0.05)
    assert result.status is Status.ERRORED
    assert result.check.summary == "timed out after 0.05s"


async def test_a_sync_poll_that_hangs_times_out_too() -> None:
    release = threading.Event()

    def poll(device: Device, ctx: PollContext) -> None:
        release.wait(5)

    try:
        result = await poll_with(poll, timeout=0.05)
    finally:
        release.set()
    assert result.check.summary == "timed out after 0.05s"


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        socket.gaierror(-2, "Name or service not known"),
        TimeoutError("connect timed out"),
        ConnectionResetError(104, "reset by peer"),
        OSError(113, "No route to host"),
    ],
)
async def test_connection_errors_mean_the_device_is_critical(exc: OSError) -> None:
    """The check worked; the device did not answer: CRITICAL, with the error text."""

    async def poll(device: Device, ctx: PollContext) -> None:
        raise exc

    result = await poll_with(poll)
    assert result.status is Status.CRITICAL
    assert result.check.summary == describe(exc)
    assert type(exc).__name__ in result.check.summary


@pytest.mark.parametrize(
    "exc", [FileNotFoundError(2, "No such file"), PermissionError(13, "denied"), PollTimeout()]
)
async def test_other_os_errors_are_errored(exc: Exception) -> None:
    async def poll(device: Device, ctx: PollContext) -> None:
        raise exc

    result = await poll_with(poll)
    assert result.status is Status.ERRORED
    assert not is_connection_error(exc)


async def test_cancellation_propagates() -> None:
    """Cancelling the polling task cancels the poll; it is not turned into a result."""
    started = asyncio.Event()

    async def poll(device: Device, ctx: PollContext) -> None:
        started.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(poll_with(poll))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_normalise_accepts_a_lone_check_result() -> None:
    check = CheckResult.of(Status.WARNING, "meh", ts=START)
    assert normalise(check, now=START).check is check
