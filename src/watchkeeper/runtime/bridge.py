"""From collector outcomes to pipeline events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.model import Event, Measurement, SeriesKey


def outcome_event(outcome: PollOutcome) -> Event:
    """A check event for one poll, carrying its measurements plus its status as a number.

    The status series (``<device>/<plugin>/check.status``: 0 OK, 1 WARNING, 2 CRITICAL,
    3 ERRORED) puts health into the same store as the measurements.
    """
    result = outcome.result
    status_point = Measurement(
        key=SeriesKey.make(outcome.device.name, outcome.plugin, "check.status"),
        ts=outcome.scheduled,
        value=float(result.status.exit_code),
    )
    return Event(
        event_type="check",
        component=outcome.device.name,
        resource=outcome.plugin,
        timestamp=outcome.scheduled,
        state=result.status.state,
        output=result.check.summary or result.status.value,
        measurements=(*result.measurements, status_point),
        families=result.families,
        attrs=_attrs(outcome),
    )


def _attrs(outcome: PollOutcome) -> dict[str, str]:
    attrs = {"status": outcome.result.status.value, "job": outcome.job_id}
    if outcome.saturated:  # watchkeeper was overloaded: the alarm may not be the device's
        attrs["poller_saturated"] = "true"
    if outcome.result.local_fault is not None:
        attrs["local_fault"] = outcome.result.local_fault
    return attrs


def outcome_sink(
    publish: Callable[[list[Event]], Awaitable[None]],
) -> Callable[[PollOutcome], Awaitable[None]]:
    """A scheduler sink that turns each outcome into an event and publishes it."""

    async def sink(outcome: PollOutcome) -> None:
        await publish([outcome_event(outcome)])

    return sink
