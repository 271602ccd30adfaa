"""Collector plugins the Manager, CLI and pytest-plugin tests load by ``module:Class``."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import msgspec

from watchkeeper.collect import Collector, PollContext, PollResult
from watchkeeper.model import Device, Status


class Fixed(Collector):
    """Reports a fixed status, or one per device (``by_device``), or one read from a file."""

    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        status: str = "ok"
        by_device: dict[str, str] = msgspec.field(default_factory=dict)
        status_file: str | None = None  # a file holding the status: tests flip it mid-run
        text: str = ""

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        status = opts.by_device.get(device.name, opts.status)
        if opts.status_file and os.path.exists(opts.status_file):
            status = Path(opts.status_file).read_text().strip() or status
        return ctx.result([ctx.measure("value", 1.0)], Status(status),
                          opts.text or f"{device.name} is {status}")


class Counting(Collector):
    """Counts its polls per job in ``ctx.state``: proves state survives between runs."""

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        return ctx.result([ctx.measure("polls", ctx.state["n"])])


class Broken(Collector):
    """Raises, hangs or returns garbage, as told."""

    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        mode: str = "raise"

    async def poll(self, device: Device, ctx: PollContext) -> object:
        if self.options.mode == "raise":
            raise RuntimeError("plugin bug")
        if self.options.mode == "hang":
            await asyncio.sleep(3600)
        return "garbage"


class SleepySync(Collector):
    """A plain-``def`` poll that sleeps (a hung plugin that no timeout can interrupt)."""

    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        seconds: float = 60.0

    def poll(self, device: Device, ctx: PollContext) -> PollResult:
        time.sleep(self.options.seconds)
        return ctx.result([ctx.measure("slept", self.options.seconds)])


class Tally(Collector):
    """Appends each poll's slot to a file as it returns: the record of what was polled."""

    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        log: str

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        with open(self.options.log, "a", encoding="utf-8") as handle:
            handle.write(f"{ctx.now:.3f}\n")
        return ctx.result([ctx.measure("polls", 1.0)])


class SleepyThread(Collector):
    """An ``async def`` poll that waits on a blocking call in the loop's default executor."""

    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        seconds: float = 60.0

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        await asyncio.to_thread(time.sleep, self.options.seconds)
        return ctx.result([ctx.measure("slept", self.options.seconds)])


class LeavesAThread(Collector):
    """Starts a (non-daemon) thread that outlives the poll: the interpreter would wait."""

    class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        seconds: float = 60.0

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        threading.Thread(target=time.sleep, args=(self.options.seconds,),
                         name="plugin-sleeper").start()
        return ctx.result([ctx.measure("started", 1.0)])
