"""Helpers for testing collectors: poll one once, and read its measurements back by name.

::

    result = await poll_once(SnmpCollector(options, name="snmp"), Device(name="r1", ...))
    assert values(result)["if.in_bps{if=\\"eth0\\"}"] >= 0
"""

from __future__ import annotations

import time
from typing import Any

from watchkeeper.collect.abc import Collector, JobSpec, PollResult
from watchkeeper.collect.poll import run_poll
from watchkeeper.model import Device

LOCALHOST = Device(name="localhost", address="127.0.0.1", tags=("self",))


async def poll_once(
    collector: Collector,
    device: Device = LOCALHOST,
    *,
    state: dict[str, Any] | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - handed to run_poll, which applies it
    now: float | None = None,
    intervals: tuple[float, ...] = (60.0,),
) -> PollResult:
    """One poll through :func:`run_poll` (so errors become statuses, as in production).

    Pass the same ``state`` dict to successive calls to keep the job's memory (rates,
    cursors) between them.
    """
    spec = JobSpec(job_id=f"{collector.name}:{device.name}", device=device, intervals=intervals)
    return await run_poll(
        collector, spec, now=time.time() if now is None else now, timeout=timeout,
        affecting_intervals=intervals, state=state if state is not None else {},
    )


def values(result: PollResult) -> dict[str, float | None]:
    """Measurements by ``metric{labels}`` (the series name without subject and plugin)."""
    return {str(m.key).split("/", 2)[2]: m.value for m in result.measurements}
