"""The genie-style Manager: run every selected check once, now, and keep the results by run.

For Python code and test frameworks (the pytest plugin uses it)::

    manager = Manager(devices, config)           # plugins loaded, options validated: no I/O
    await manager.run("before", plugins=["snmp"])
    manager.results["before"]["snmp"]["core1"].status   # or ["status"], .get("status")
    manager.status("before")                     # the run's roll-up; device/plugin ones too
    manager.finalize_report("out/report.yaml")   # + out/report.html
    await manager.aclose()

Unlike genie.telemetry's Manager: checks run concurrently (bounded globally and per
device, never a process per device), a job's state (rate baselines, log cursors) persists
between runs, the config name of a collector is the key in results and reports, roll-ups
are by severity, and finalizing a report never alters the results, so it may be written
at any time, as often as wanted.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from watchkeeper.clock import Clock, SystemClock
from watchkeeper.collect.abc import JobState, PollResult
from watchkeeper.collect.build import CollectorPool, close_collectors
from watchkeeper.collect.poll import run_poll
from watchkeeper.collect.report import report_data, write_report
from watchkeeper.collect.scheduler import Job, PollOutcome
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Measurement, Message, Status
from watchkeeper.settings import CollectorSettings, Locator


class DeviceResult(msgspec.Struct, frozen=True, kw_only=True):
    """One plugin on one device in one run (its jobs merged when it has several)."""

    plugin: str
    device: str
    status: Status
    messages: tuple[Message, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    started: float
    finished: float

    # genie.telemetry's results are dicts, and code written for it reads them as such.
    def __getitem__(self, field: str) -> Any:
        """``result["status"]``: a field by name; KeyError for any other name."""
        if field not in self.__struct_fields__:
            raise KeyError(field)
        return getattr(self, field)

    def get(self, field: str, default: Any = None) -> Any:
        """``result.get("status")``: a field by name, or ``default``."""
        return getattr(self, field) if field in self.__struct_fields__ else default


class RunInfo(msgspec.Struct, frozen=True, kw_only=True):
    uid: str
    started: float
    finished: float
    plugins: tuple[str, ...]


Outcomes = Callable[[PollOutcome], Awaitable[None]]


class RunResults:
    """Results by run, plugin and device, their roll-ups and the report over them."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, dict[str, DeviceResult]]] = {}
        self.runs: dict[str, RunInfo] = {}

    def status(self, uid: str | None = None) -> Status:
        """The roll-up of one run, or of every run so far."""
        return Status.rollup(r.status for r in self._results(uid))

    def device_statuses(self, uid: str | None = None) -> dict[str, Status]:
        """Each device's roll-up over its plugins (in one run or every run)."""
        out: dict[str, list[Status]] = {}
        for result in self._results(uid):
            out.setdefault(result.device, []).append(result.status)
        return {name: Status.rollup(statuses) for name, statuses in out.items()}

    def plugin_statuses(self, uid: str | None = None) -> dict[str, Status]:
        """Each plugin's roll-up over its devices (in one run or every run)."""
        out: dict[str, list[Status]] = {}
        for result in self._results(uid):
            out.setdefault(result.plugin, []).append(result.status)
        return {name: Status.rollup(statuses) for name, statuses in out.items()}

    def _results(self, uid: str | None) -> list[DeviceResult]:
        runs = [self.results[uid]] if uid is not None else list(self.results.values())
        return [r for run in runs for by_device in run.values() for r in by_device.values()]

    def report(self, *, now: float | None = None) -> dict[str, Any]:
        """The report as plain data (what :meth:`finalize_report` writes), generated at
        ``now`` (default: the time)."""
        return report_data(self, now=now)

    def finalize_report(self, path: str | Path) -> list[Path]:
        """Write the report as YAML or JSON (by ``path``'s extension) plus an HTML page next
        to it; returns both paths. Results are left as they are: call it any time."""
        return write_report(self.report(), Path(path))


class LatestResults(RunResults):
    """A daemon's last result of every job, as one run named ``latest`` (``--report``)."""

    UID = "latest"

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, PollOutcome] = {}

    async def __call__(self, outcome: PollOutcome) -> None:
        """Keep ``outcome`` as its job's latest (a scheduler sink)."""
        self._last[outcome.job_id] = outcome

    def refresh(self) -> None:
        """Rebuild ``results`` and ``runs`` from the latest outcomes."""
        self._fill(_Polled(o.plugin, o.device.name, o.started, o.finished, o.result)
                   for o in self._last.values())

    @classmethod
    def of_jobs(cls, states: Iterable[JobState]) -> LatestResults:
        """The latest poll of each job in ``states`` (a scheduler's snapshot) as the run
        ``latest``: the report of ``/api/v1/collect/report``. Jobs never polled are left
        out; several jobs of one collector on one device merge, as in every report."""
        latest = cls()
        latest._fill(_Polled(s.collector, s.device, s.last.started, s.last.finished,
                             s.last.result) for s in states if s.last is not None)
        return latest

    def _fill(self, polled: Iterable[_Polled]) -> None:
        merged: dict[str, dict[str, DeviceResult]] = {}
        started, finished = math.inf, -math.inf
        for poll in polled:
            by_device = merged.setdefault(poll.plugin, {})
            by_device[poll.device] = _merge(by_device.get(poll.device), poll)
            started, finished = min(started, poll.started), max(finished, poll.finished)
        self.results = {self.UID: merged} if merged else {}
        self.runs = {self.UID: RunInfo(uid=self.UID, started=started, finished=finished,
                                       plugins=tuple(sorted(merged)))} if merged else {}


class Manager(RunResults):
    """Runs configured collectors once per :meth:`run` against the selected devices."""

    def __init__(
        self,
        devices: Iterable[Device],
        config: Sequence[CollectorSettings],
        *,
        locator: Locator | None = None,
        clock: Clock | None = None,
        max_concurrency: int = 64,
        per_device_concurrency: int = 1,
        sink: Outcomes | None = None,
    ) -> None:
        if max_concurrency < 1 or per_device_concurrency < 1:
            raise ConfigError("concurrency limits must be at least 1", key="manager")
        super().__init__()
        self.devices = list(devices)
        self._pool = CollectorPool()
        self._jobs, _ = self._pool.build(config, self.devices, locator=locator)
        self.plugins = tuple(dict.fromkeys(spec.name for spec in config))
        self._clock = clock or SystemClock()
        self._max = max_concurrency
        self._per_device = per_device_concurrency
        self._sink = sink
        self._state: dict[str, dict[str, Any]] = {}

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    async def run(
        self, uid: str, plugins: Sequence[str] | None = None,
        devices: Sequence[str] | None = None,
    ) -> dict[str, dict[str, DeviceResult]]:
        """Run the selected plugins (config names) once on the selected devices (selectors).

        No ``plugins`` (None or empty, as in genie.telemetry) runs every configured one.
        Results land in ``results[uid][plugin][device]``; a second run with the same
        ``uid`` replaces the first. Never raises for a failing check: that is its status;
        raises :class:`ConfigError` for a plugin or device selector that selects nothing.
        """
        wanted = set(plugins) if plugins else set(self.plugins)
        unknown = wanted - set(self.plugins)
        if unknown:
            raise ConfigError(f"no configured plugin {', '.join(sorted(unknown))} "
                              f"(configured: {', '.join(self.plugins) or 'none'})")
        if devices is not None:
            self._check_selectors(devices)
        jobs = [j for j in self._jobs if j.collector.name in wanted and (
            devices is None or any(j.spec.device.matches(s) for s in devices))]
        started = self._clock.time()
        limit = asyncio.Semaphore(self._max)
        gates: dict[str, asyncio.Semaphore] = {}
        outcomes = await asyncio.gather(*(self._one(job, limit, gates) for job in jobs))
        merged: dict[str, dict[str, DeviceResult]] = {name: {} for name in self.plugins
                                                       if name in wanted}
        for outcome in outcomes:
            by_device = merged[outcome.plugin]
            by_device[outcome.device.name] = _merge(by_device.get(outcome.device.name),
                                                    _Polled.of(outcome))
        self.results[uid] = merged
        self.runs[uid] = RunInfo(uid=uid, started=started, finished=self._clock.time(),
                                 plugins=tuple(name for name in self.plugins if name in wanted))
        return merged

    def _check_selectors(self, selectors: Sequence[str]) -> None:
        for selector in selectors:
            if not any(d.matches(selector) for d in self.devices):
                names = ", ".join(d.name for d in self.devices) or "none"
                raise ConfigError(f"no device matches {selector!r} (devices: {names})")

    async def _one(self, job: Job, limit: asyncio.Semaphore,
                   gates: dict[str, asyncio.Semaphore]) -> PollOutcome:
        gate = gates.setdefault(job.spec.device.name, asyncio.Semaphore(self._per_device))
        async with gate, limit:
            started = self._clock.time()
            result = await run_poll(
                job.collector, job.spec, now=started, timeout=job.timeout,
                affecting_intervals=job.spec.intervals,
                state=self._state.setdefault(job.spec.job_id, {}),
            )
            outcome = PollOutcome(
                plugin=job.collector.name, job_id=job.spec.job_id, device=job.spec.device,
                scheduled=started, started=started, finished=self._clock.time(), result=result,
            )
        if self._sink is not None:
            await self._sink(outcome)
        return outcome

    # ---------------------------------------------------------------- lifecycle

    async def aclose(self) -> None:
        await close_collectors(self._pool.collectors())

    async def __aenter__(self) -> Manager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Polled(NamedTuple):
    """One finished poll, as a report needs it."""

    plugin: str
    device: str
    started: float
    finished: float
    result: PollResult

    @classmethod
    def of(cls, outcome: PollOutcome) -> _Polled:
        return cls(outcome.plugin, outcome.device.name, outcome.started, outcome.finished,
                   outcome.result)


def _merge(previous: DeviceResult | None, polled: _Polled) -> DeviceResult:
    result = polled.result
    if previous is None:
        return DeviceResult(
            plugin=polled.plugin, device=polled.device, status=result.status,
            messages=result.check.messages, measurements=result.measurements,
            started=polled.started, finished=polled.finished,
        )
    return msgspec.structs.replace(
        previous, status=Status.rollup((previous.status, result.status)),
        messages=previous.messages + result.check.messages,
        measurements=previous.measurements + result.measurements,
        started=min(previous.started, polled.started),
        finished=max(previous.finished, polled.finished),
    )
