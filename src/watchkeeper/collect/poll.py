"""Run one poll of one collector and turn whatever happened into a :class:`PollResult`.

``run_poll`` is the only place that calls ``Collector.poll``. It accepts every shape the
contract allows (coroutine, async generator, plain function, sync generator), bounds the
poll with its timeout and never raises except for cancellation, so the scheduler can treat
every poll alike:

* a PollResult is kept as is; measurements (with optional CheckResults, rolled up by
  severity) become one; ``None`` is OK with no measurements;
* a refused, reset, unresolvable or timed-out *connection* means the device is unreachable
  while the check itself worked: CRITICAL;
* anything else that goes wrong (an exception, our timeout, a return of the wrong type)
  means the check broke: ERRORED.

A plain ``def`` runs in :mod:`~watchkeeper.collect.workers`' threads: one that outlives its
timeout is abandoned and replaced, and its job is refused (ERRORED, without a thread)
until it returns, so a stuck plugin never takes capacity from the other jobs.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from watchkeeper.collect.abc import Collector, JobSpec, PollContext, PollResult
from watchkeeper.collect.workers import PollWorkers, default_workers
from watchkeeper.errors import CollectError, LocalSaturation
from watchkeeper.model import CheckResult, Device, Measurement, Message, Status

log = logging.getLogger(__name__)

_CONNECTION_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETUNREACH, errno.ENETDOWN,
    errno.EADDRNOTAVAIL, errno.ENOTCONN, errno.EPIPE,
})


async def run_poll(
    collector: Collector,
    job: JobSpec,
    *,
    now: float,
    timeout: float,  # noqa: ASYNC109 - the per-poll budget, applied with asyncio.timeout
    affecting_intervals: tuple[float, ...],
    state: dict[str, Any],
    workers: PollWorkers | None = None,
) -> PollResult:
    """Poll ``job.device`` with ``collector`` and classify the outcome; never raises.

    A plain-``def`` poll runs on ``workers`` (default: the process' shared pool).
    """
    ctx = PollContext(
        plugin=collector.name, job=job, now=now, timeout=timeout,
        affecting_intervals=affecting_intervals, state=state,
    )
    threads = (workers or default_workers()) if _is_sync(collector.poll) else None
    if threads is not None:
        refused = threads.refusal(collector, job.job_id, name=collector.name)
        if refused is not None:
            return _status(Status.ERRORED, refused, now)
    deadline = asyncio.timeout(timeout)
    started = threading.Event()
    try:
        async with deadline:
            raw = await _invoke(collector, job.device, ctx, threads, started)
        return normalise(raw, now=now)
    except TimeoutError as exc:
        if deadline.expired():
            if threads is not None and not started.is_set():
                # every worker thread was busy the whole time: watchkeeper's overload
                return _failure(LocalSaturation(
                    f"no worker thread free within {timeout:g}s (all {threads.size} busy "
                    f"with other sync polls); the device was not asked",
                    resource="poll-threads"), collector, job, now)
            return _status(Status.ERRORED, f"timed out after {timeout:g}s", now)
        return _failure(exc, collector, job, now)
    except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; it must not escape
        return _failure(exc, collector, job, now)


def normalise(raw: object, *, now: float) -> PollResult:
    """Turn what ``poll`` returned into a PollResult; garbage becomes ERRORED naming its type."""
    if isinstance(raw, PollResult):
        return raw
    if raw is None:
        raw = ()
    elif isinstance(raw, Measurement | CheckResult):
        raw = (raw,)
    elif isinstance(raw, str | bytes | bytearray | Mapping) or not isinstance(raw, Iterable):
        return _garbage(type(raw), now)
    measurements: list[Measurement] = []
    checks: list[CheckResult] = []
    for item in raw:
        if isinstance(item, Measurement):
            measurements.append(item)
        elif isinstance(item, CheckResult):
            checks.append(item)
        else:
            return _garbage(type(item), now, inside=type(raw))
    return PollResult(check=_rollup(checks), measurements=tuple(measurements))


def _is_sync(poll: Any) -> bool:
    return not (inspect.iscoroutinefunction(poll) or inspect.isasyncgenfunction(poll))


async def _invoke(collector: Collector, device: Device, ctx: PollContext,
                  threads: PollWorkers | None, started: threading.Event) -> object:
    poll = collector.poll
    if threads is not None:
        # A plain def may block (psutil, file reads): run it, and any generator it
        # returns, in a worker thread. On timeout the thread is abandoned and replaced.
        raw: object = await threads.run(collector, ctx.job.job_id, _call_sync, poll, device,
                                        ctx, started=started)
    elif inspect.iscoroutinefunction(poll):
        raw = await poll(device, ctx)
    else:
        raw = poll(device, ctx)
    if inspect.isawaitable(raw):
        raw = await raw
    if isinstance(raw, AsyncIterator):
        raw = [item async for item in raw]
    return raw


def _call_sync(poll: Any, device: Device, ctx: PollContext) -> object:
    raw = poll(device, ctx)
    if isinstance(raw, Iterator):
        return list(raw)
    return raw


def _rollup(checks: list[CheckResult]) -> CheckResult:
    if not checks:
        return CheckResult(status=Status.OK)
    if len(checks) == 1:
        return checks[0]
    status = Status.rollup(c.status for c in checks)
    messages: tuple[Message, ...] = tuple(m for c in checks for m in c.messages)
    return CheckResult(status=status, messages=messages)


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` says the peer could not be reached, not that the check is broken."""
    if isinstance(exc, CollectError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror | socket.herror):
        return True
    if isinstance(exc, ssl.SSLError):
        return True  # the peer answered with broken or untrusted TLS: the service is bad
    return isinstance(exc, OSError) and exc.errno in _CONNECTION_ERRNOS


def describe(exc: BaseException) -> str:
    """``"<ExcType>: <message>"``, or just the type when the message is empty."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _failure(exc: Exception, collector: Collector, job: JobSpec, now: float) -> PollResult:
    if is_connection_error(exc):
        log.debug("%s: %s unreachable: %s", collector.name, job.job_id, describe(exc))
        return _status(Status.CRITICAL, describe(exc), now)
    # The reason travels in the result (the daemons log it, rate-limited: collect.errorlog);
    # the traceback is for whoever debugs the plugin.
    if not isinstance(exc, CollectError):  # raised on purpose, with its reason: no traceback
        log.debug("%s: poll of %s failed", collector.name, job.job_id, exc_info=exc)
    if isinstance(exc, LocalSaturation):  # watchkeeper's overload: the scheduler counts it
        return PollResult(check=CheckResult.of(Status.ERRORED, describe(exc), ts=now),
                          local_fault=exc.resource)
    return _status(Status.ERRORED, describe(exc), now)


def _garbage(kind: type, now: float, *, inside: type | None = None) -> PollResult:
    what = f"{inside.__name__} containing {kind.__name__}" if inside else kind.__name__
    return _status(
        Status.ERRORED,
        f"poll returned {what}; expected a PollResult, Measurement/CheckResult items or None",
        now,
    )


def _status(status: Status, text: str, now: float) -> PollResult:
    return PollResult(check=CheckResult.of(status, text, ts=now))
