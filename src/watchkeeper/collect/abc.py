"""The collector contract: a small class with typed options and one ``poll`` method.

A 20-line plugin::

    class DiskFree(Collector):
        class Options(msgspec.Struct, frozen=True):
            path: str = "/"
            warn_below: float = 10.0

        async def poll(self, device: Device, ctx: PollContext) -> PollResult:
            usage = shutil.disk_usage(self.options.path)
            free = 100.0 * usage.free / usage.total
            status = Status.WARNING if free < self.options.warn_below else Status.OK
            return ctx.result([ctx.measure("free", free, unit="%")], status, f"{free:.1f}% free")

``poll`` may be ``async def`` or a plain ``def`` (run in a worker thread so it never
blocks the loop). It returns a :class:`PollResult`, or an iterable of measurements
(and optionally one check result); returning measurements alone means OK.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import msgspec

from watchkeeper.model import CheckResult, Device, Measurement, Message, SeriesKey, Status


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A collector without options."""


class PollResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one poll of one device produced."""

    check: CheckResult
    measurements: tuple[Measurement, ...] = ()

    @property
    def status(self) -> Status:
        return self.check.status


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled job: a stable id, the device, its intervals and its parameters.

    Jobs with the same id are the same job across reconciliations; when only their
    parameters change they keep their phase in the schedule.
    """

    job_id: str
    device: Device
    intervals: tuple[float, ...]
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class PollContext:
    """Everything a poll may need besides the device: time, its job, helpers for results."""

    __slots__ = ("affecting_intervals", "device", "job", "now", "plugin", "state", "timeout")

    def __init__(
        self,
        *,
        plugin: str,
        job: JobSpec,
        now: float,
        timeout: float,
        affecting_intervals: tuple[float, ...],
        state: dict[str, Any],
    ) -> None:
        self.plugin = plugin
        self.job = job
        self.device = job.device
        self.now = now
        self.timeout = timeout
        self.affecting_intervals = affecting_intervals
        self.state = state

    def measure(
        self,
        metric: str,
        value: float | None = None,
        *,
        histogram: Mapping[str, int] | None = None,
        unit: str = "",
        labels: Mapping[str, str] | None = None,
        subject: str | None = None,
    ) -> Measurement:
        """A measurement of this device by this plugin, timestamped at the poll's slot."""
        key = SeriesKey.make(subject or self.device.name, self.plugin, metric, labels)
        return Measurement(
            key=key,
            ts=self.now,
            value=None if value is None else float(value),
            histogram=dict(histogram) if histogram is not None else None,
            unit=unit,
        )

    def result(
        self, measurements: Iterable[Measurement], status: Status = Status.OK, text: str = ""
    ) -> PollResult:
        messages = (Message(ts=self.now, text=text),) if text else ()
        return PollResult(
            check=CheckResult(status=status, messages=messages), measurements=tuple(measurements)
        )


class Collector(ABC):
    """Base of every collector plugin.

    Subclasses set ``Options`` to a msgspec Struct (validated when the config loads)
    and implement :meth:`poll`. Construction must not do I/O. Instance state persists
    across polls (``ctx.state`` is per job), so counters and cursors can live in memory.
    """

    Options: ClassVar[type[msgspec.Struct]] = NoOptions

    def __init__(self, options: Any, *, name: str) -> None:
        self.options = options
        self.name = name

    def jobs(
        self, devices: Iterable[Device], intervals: tuple[float, ...]
    ) -> Iterator[JobSpec]:
        """The jobs to schedule: by default one per device, with a device's own interval."""
        for device in devices:
            own = (device.interval,) if device.interval else intervals
            yield JobSpec(job_id=f"{self.name}:{device.name}", device=device, intervals=own)

    @abstractmethod
    def poll(self, device: Device, ctx: PollContext) -> Any:
        """Poll one device; return a PollResult or measurements (async or sync)."""
