"""A complete collector plugin: free space on a path, with a warning threshold."""

from __future__ import annotations

import shutil

import msgspec

from watchkeeper.collect import Collector, PollContext, PollResult
from watchkeeper.model import Device, Status


class DiskFree(Collector):
    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        path: str = "/"
        warn_below: float = 10.0  # percent

    def poll(self, device: Device, ctx: PollContext) -> PollResult:
        usage = shutil.disk_usage(self.options.path)
        free = 100.0 * usage.free / usage.total
        status = Status.WARNING if free < self.options.warn_below else Status.OK
        return ctx.result([ctx.measure("free", free, unit="%", labels={"path": self.options.path})],
                          status, f"{free:.1f}% free on {self.options.path}")
