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

A protocol collector names its ``protocol`` and a ``Connection`` struct: the settings
to reach a device (port, credentials by reference, ...). Their defaults come from the
collector's options (fields of the same name) and each device may override them under
``connections.<protocol>`` in the inventory; :meth:`Collector.connection` merges and
validates both, and the default :meth:`Collector.jobs` does so for every device at
start-up, so a bad inventory entry is refused before anything polls.

Intervals, most specific first: the device's ``connections.intervals.<collector name>``,
its ``connections.<protocol>.interval``, its ``interval``, then the collector's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, Protocol

import msgspec

from watchkeeper.collect.credentials import Credential, resolve_credential
from watchkeeper.errors import ConfigError
from watchkeeper.model import (
    CheckResult,
    Device,
    Families,
    Measurement,
    Message,
    SeriesKey,
    Status,
)

INTERVALS_KEY = "intervals"
"""``device.connections["intervals"]``: per-collector interval overrides, by collector name."""


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A collector without options."""


class PollResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one poll of one device produced."""

    check: CheckResult
    measurements: tuple[Measurement, ...] = ()
    # The local resource (an http pool, worker threads) whose exhaustion failed this poll:
    # watchkeeper's own saturation, reported as its health and never as the device's.
    local_fault: str | None = None
    # Metric families' metadata the poll read (the prometheus collector: an exporter's
    # # TYPE/# HELP/# UNIT), when it changed; it travels with the measurements (D46).
    families: Families = ()

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


class JobRun(msgspec.Struct, frozen=True, kw_only=True):
    """A job's latest finished poll. Times are clock seconds."""

    scheduled: float  # the slot (or retry) it ran for
    started: float
    finished: float
    lateness: float  # how long after it was due it started (a concurrency wait, a busy loop)
    result: PollResult


class JobState(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled job as its scheduler holds it now: a read-only snapshot for listings.

    Names only: the device's connections (which may hold secrets) are not in it.
    """

    job_id: str
    device: str
    collector: str  # the collector's name in the configuration
    intervals: tuple[float, ...]
    next_run: float  # the next slot, or the retry of an ERRORED poll when sooner (no jitter)
    running: bool
    skipped: int  # slots skipped since it was scheduled because its previous poll still ran
    failures: int  # ERRORED polls in a row
    last: JobRun | None  # None until its first poll finished


JobKey = tuple[str, str, str, Status | None]
"""``(device, collector, job_id, latest status)`` of a job (status None: not polled yet):
cheap to list for 100,000 jobs, to filter, count and order them before asking for states."""


class JobBoard(Protocol):
    """What a scheduler shows of its jobs (the jobs listing and report read it)."""

    def job_keys(self) -> list[JobKey]:
        """Every scheduled job now, in no particular order."""
        ...

    def job_states(self, job_ids: Iterable[str]) -> list[JobState]:
        """The states of these jobs, in that order (ids no longer scheduled left out)."""
        ...


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

    def credential(self, ref: str) -> Credential:
        """Resolve ``env:VAR`` / ``file:/path`` (or an inline value) now; see ``credentials``."""
        return resolve_credential(ref)

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
    protocol: ClassVar[str] = ""  # the key of ``device.connections`` this collector reads
    Connection: ClassVar[type[msgspec.Struct] | None] = None

    def __init__(self, options: Any, *, name: str) -> None:
        self.options = options
        self.name = name

    def jobs(
        self, devices: Iterable[Device], intervals: tuple[float, ...]
    ) -> Iterator[JobSpec]:
        """The jobs to schedule: one per device, at the device's interval if it sets one.

        Raises :class:`ConfigError` naming the device when its connection settings are bad.
        """
        for device in devices:
            if self.Connection is not None:
                self.connection(device)  # validate now: refused at start-up, not at poll time
            yield JobSpec(job_id=f"{self.name}:{device.name}", device=device,
                          intervals=self.intervals_for(device, intervals))

    def intervals_for(self, device: Device, default: tuple[float, ...]) -> tuple[float, ...]:
        """The most specific interval the inventory gives for this collector on ``device``."""
        per_collector = device.connections.get(INTERVALS_KEY, {}).get(self.name)
        per_protocol = device.connections.get(self.protocol, {}).get("interval") \
            if self.protocol else None
        for candidate in (per_collector, per_protocol, device.interval):
            if isinstance(candidate, int | float) and candidate > 0:
                return (float(candidate),)
        return default

    def connection(self, device: Device) -> Any:
        """``Connection`` from the options' same-named fields, overridden by the device's
        ``connections.<protocol>``; raises :class:`ConfigError` naming device and key."""
        model = self.Connection
        if model is None:
            raise TypeError(f"{type(self).__name__} declares no Connection")
        names = [f.name for f in msgspec.structs.fields(model)]
        merged: dict[str, Any] = {
            n: getattr(self.options, n) for n in names if hasattr(self.options, n)
        }
        overrides = device.connections.get(self.protocol, {}) if self.protocol else {}
        merged.update((k, v) for k, v in overrides.items() if k != "interval")
        try:
            return msgspec.convert(msgspec.to_builtins(merged), model, str_keys=True)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"device {device.name!r}: {exc}",
                              key=f"connections.{self.protocol}") from None

    def plan_capacity(self, jobs: int) -> int | None:
        """Told how many jobs the scheduler runs on this instance, whenever that changes,
        so a collector can size its pools from them. Returns how many polls of the instance
        may usefully run at once (more are shed by the scheduler), or None: no limit, as
        for most collectors, which hold no pool."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook; most collectors hold nothing
        """Release what polls opened (clients, engines); the runtime calls it at shutdown."""

    @abstractmethod
    def poll(self, device: Device, ctx: PollContext) -> Any:
        """Poll one device; return a PollResult or measurements (async or sync)."""
