"""This host's CPU, memory, swap, disks, load and required processes, through psutil.

``poll`` is a plain ``def``: psutil reads ``/proc`` synchronously, so it runs in a worker
thread. CPU use is measured between two polls of the same job (its baseline lives in
``ctx.state``), so the first poll of a job primes it and reports no ``cpu.percent``; unlike
``psutil.cpu_percent(interval=None)`` this keeps two jobs (or other psutil users in the
process) from resetting each other's baseline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import psutil  # type: ignore[import-untyped]  # psutil ships no stubs

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.model import Device, Measurement, Status


class SystemOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mounts: tuple[str, ...] = ("/",)
    processes: tuple[str, ...] = ()  # names that must be running, else CRITICAL
    cpu_warn: float = 90.0
    cpu_crit: float = 98.0
    mem_warn: float = 90.0
    mem_crit: float = 98.0
    disk_warn: float = 90.0
    disk_crit: float = 95.0


def grade(value: float, warn: float, crit: float) -> Status:
    """OK, WARNING at or above ``warn``, CRITICAL at or above ``crit``."""
    if value >= crit:
        return Status.CRITICAL
    if value >= warn:
        return Status.WARNING
    return Status.OK


def cpu_busy_percent(before: Any, after: Any) -> float | None:
    """Busy share of CPU time between two ``psutil.cpu_times()``; None if no time passed."""
    def split(times: Any) -> tuple[float, float]:
        total = sum(times)
        # guest time is already counted in user time on Linux; iowait is idle.
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        return total, idle

    total0, idle0 = split(before)
    total1, idle1 = split(after)
    elapsed = total1 - total0
    if elapsed <= 0:
        return None
    busy = elapsed - (idle1 - idle0)
    return min(100.0, max(0.0, 100.0 * busy / elapsed))


class SystemCollector(Collector):
    """CPU, memory, swap, disk and load of the machine watchkeeper runs on."""

    Options = SystemOptions
    options: SystemOptions

    def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        out: list[Measurement] = []
        checks: list[tuple[Status, str]] = []

        times = psutil.cpu_times()
        cpu = cpu_busy_percent(ctx.state["cpu_times"], times) if "cpu_times" in ctx.state else None
        ctx.state["cpu_times"] = times
        if cpu is not None:
            out.append(ctx.measure("cpu.percent", cpu, unit="%"))
            checks.append((grade(cpu, opts.cpu_warn, opts.cpu_crit), f"cpu {cpu:.1f}%"))

        mem = psutil.virtual_memory()
        out.append(ctx.measure("memory.percent", mem.percent, unit="%"))
        out.append(ctx.measure("memory.available", mem.available, unit="B"))
        checks.append((grade(mem.percent, opts.mem_warn, opts.mem_crit),
                       f"memory {mem.percent:.1f}%"))
        out.append(ctx.measure("swap.percent", psutil.swap_memory().percent, unit="%"))

        checks.extend(self._disks(ctx, out))
        for minutes, value in zip((1, 5, 15), psutil.getloadavg(), strict=True):
            out.append(ctx.measure(f"load.{minutes}", value))
        checks.extend(self._processes(ctx, out))

        status = Status.rollup(s for s, _ in checks)
        noted = [text for s, text in checks if s is not Status.OK] or [t for _, t in checks]
        return ctx.result(out, status, ", ".join(noted))

    def _disks(self, ctx: PollContext, out: list[Measurement]) -> Iterator[tuple[Status, str]]:
        for mount in self.options.mounts:
            try:
                used = psutil.disk_usage(mount).percent
            except OSError as exc:
                yield Status.CRITICAL, f"disk {mount}: {exc.strerror or exc}"
                continue
            out.append(ctx.measure("disk.percent", used, unit="%", labels={"mount": mount}))
            yield grade(used, self.options.disk_warn, self.options.disk_crit), \
                f"disk {mount} {used:.1f}%"

    def _processes(
        self, ctx: PollContext, out: list[Measurement]
    ) -> Iterator[tuple[Status, str]]:
        if not self.options.processes:
            return
        counts = dict.fromkeys(self.options.processes, 0)
        for proc in psutil.process_iter(["name"]):
            name = proc.info["name"]
            if name in counts:
                counts[name] += 1
        for name, count in counts.items():
            out.append(ctx.measure("process.count", count, labels={"name": name}))
            if not count:
                yield Status.CRITICAL, f"process {name} not running"
