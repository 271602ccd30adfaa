"""Any Nagios / Monitoring Plugins check (``check_*``) as a collector.

::

    - name: http_nginx
      plugin: nagios
      interval: 30
      devices: [web1]
      options:
        command: [check_http, -H, $HOSTADDRESS$, -p, "8000", -w, "0.5", -c, "1"]

``command`` is the plugin and its arguments, run without a shell; a plugin named without a
``/`` is looked up in ``plugin_dir`` (Debian's ``/usr/lib/nagios/plugins``). Arguments may
carry macros from the device: ``$HOSTADDRESS$`` (or ``$ADDRESS$``: its address, else its
name), ``$HOSTNAME$`` (or ``$NAME$``), ``$TIMEOUT$`` (the poll's budget in whole seconds),
``$PROTOCOL.FIELD$`` for any field of the device's ``connections`` (``$SNMP.COMMUNITY$``;
``env:``/``file:`` references are resolved at run time and never logged), and ``$$`` for a
dollar sign. An unknown macro, or a plugin that is missing or not executable, is refused
when the configuration is checked.

The plugin API, exactly: exit code 0/1/2/3 is OK/WARNING/CRITICAL/UNKNOWN; any other
code, a signal, or running past the timeout is ERRORED with the reason. The first line of
output is the check message and the long output is kept as a second message; perfdata
items become measurements (see ``_nagios_output``): the metric is the item's label when
that is a valid metric name, else ``perfdata{label="..."}``; times are stored in seconds
and sizes in bytes; a ``c`` counter is stored as read plus ``<metric>.rate`` per second
(a decrease is a reset: no rate); the thresholds and bounds of an item, when it has any,
are kept as the object series ``<metric>.thresholds`` (``{"warn": "10:", "crit": ...}``).

Each run is its own process group, killed as a whole when the plugin exits, times out or
the poll is cancelled, so children that outlive the plugin die with it. Output past
``max_output`` bytes is read and thrown away (the message says so); bytes that are not
UTF-8 are decoded with replacement characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from collections.abc import Iterable, Iterator, Mapping

import msgspec

from watchkeeper.collect.abc import Collector, JobSpec, PollContext, PollResult
from watchkeeper.collect.builtin._nagios_output import PerfItem, parse_output
from watchkeeper.collect.credentials import is_reference, resolve_credential
from watchkeeper.collect.rates import CounterSample, counter_rate
from watchkeeper.errors import ConfigError
from watchkeeper.model import CheckResult, Device, Measurement, Message, SeriesKey, Status

DEFAULT_PLUGIN_DIR = "/usr/lib/nagios/plugins"
EXIT_STATUS = {0: Status.OK, 1: Status.WARNING, 2: Status.CRITICAL, 3: Status.UNKNOWN}
_MACRO = re.compile(r"\$([^$]*)\$")
_METRIC_NAME = re.compile(r"^[A-Za-z0-9_.:@-]+$")
_KILL_GRACE = 0.5  # seconds between SIGTERM and SIGKILL of a timed-out process group


class NagiosOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    command: list[str]  # the plugin, then its arguments (macros allowed in arguments)
    plugin_dir: str = DEFAULT_PLUGIN_DIR
    max_output: int = 65_536  # bytes of output kept; the rest is read and discarded

    def __post_init__(self) -> None:
        if not self.command or not self.command[0]:
            raise ValueError("command must name the plugin to run")
        if self.max_output < 256:
            raise ValueError("max_output must be at least 256 bytes")


class NagiosCollector(Collector):
    """Runs a Nagios plugin per device; its exit code is the status, its perfdata the data."""

    Options = NagiosOptions
    options: NagiosOptions

    def executable(self) -> str:
        """The plugin's path: as given when it has a '/', else found in ``plugin_dir``."""
        name = self.options.command[0]
        path = name if "/" in name else os.path.join(self.options.plugin_dir, name)
        if not os.path.isfile(path):
            found = None if "/" in name else shutil.which(name)
            if found is None:
                raise ConfigError(f"plugin {path!r} does not exist",
                                  key="options.command", value=name)
            path = found
        if not os.access(path, os.X_OK):
            raise ConfigError(f"plugin {path!r} is not executable",
                              key="options.command", value=name)
        return path

    def jobs(self, devices: Iterable[Device], intervals: tuple[float, ...]) -> Iterator[JobSpec]:
        """Refuses a missing plugin or an unknown macro before anything runs."""
        self.executable()
        for job in super().jobs(devices, intervals):
            for argument in self.options.command[1:]:
                expand(argument, job.device, timeout=1.0, reveal=False)
            yield job

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        argv = [self.executable()] + [
            expand(a, device, timeout=ctx.timeout, reveal=True) for a in self.options.command[1:]]
        budget = ctx.timeout * 0.9  # answer with our own reason before the poll's deadline
        run = await run_plugin(argv, timeout=budget, max_output=self.options.max_output)
        return result_of(run, ctx, plugin_name=os.path.basename(argv[0]))


class PluginRun(msgspec.Struct, frozen=True, kw_only=True):
    """How one plugin process ended and what it printed."""

    output: str
    returncode: int | None  # None: killed by us at the timeout
    kept: int = 0           # bytes of output read and kept
    truncated: int = 0      # bytes of output discarded past max_output
    timeout: float = 0.0


class _ExitAware(asyncio.subprocess.SubprocessStreamProtocol):
    """Tells when the process itself exits. ``Process.wait()`` also waits for every holder
    of its pipes to close them, which a child that outlives the plugin never does."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=65_536, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def run_plugin(argv: list[str], *, timeout: float, max_output: int) -> PluginRun:  # noqa: ASYNC109
    """Run ``argv`` in its own process group; the group is killed however this ends."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _ExitAware(loop), *argv, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    process = asyncio.subprocess.Process(transport, protocol, loop)
    kept = bytearray()
    discarded = 0

    async def read_all() -> None:
        nonlocal discarded
        assert process.stdout is not None
        while chunk := await process.stdout.read(65_536):
            room = max_output - len(kept)
            kept.extend(chunk[:room])
            discarded += max(0, len(chunk) - room)

    reader = asyncio.ensure_future(read_all())
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(protocol.exited)
        except TimeoutError:
            timed_out = True
            await _kill_group(process.pid, protocol.exited)
        # The plugin has exited: whatever it left behind in its group goes with it, which
        # also closes the pipe those children may hold, so the read below ends.
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await asyncio.shield(reader)
    finally:
        if not protocol.exited.done():  # cancelled: nothing of this run may outlive it
            _signal_group(process.pid, signal.SIGKILL)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        transport.close()
    text = kept.decode("utf-8", errors="replace")
    return PluginRun(output=text, returncode=None if timed_out else process.returncode,
                     kept=len(kept), truncated=discarded, timeout=timeout)


async def _kill_group(pgid: int, exited: asyncio.Future[None]) -> None:
    _signal_group(pgid, signal.SIGTERM)
    try:
        async with asyncio.timeout(_KILL_GRACE):
            await asyncio.shield(exited)
    except TimeoutError:
        _signal_group(pgid, signal.SIGKILL)
        await asyncio.shield(exited)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def expand(argument: str, device: Device, *, timeout: float, reveal: bool) -> str:
    """``argument`` with its macros replaced; ConfigError names an unknown one."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name:
            return "$"
        return macro_value(name, device, timeout=timeout, reveal=reveal)
    return _MACRO.sub(one, argument)


def macro_value(name: str, device: Device, *, timeout: float, reveal: bool) -> str:
    upper = name.upper()
    if upper in {"HOSTADDRESS", "ADDRESS"}:
        return device.address or device.name
    if upper in {"HOSTNAME", "NAME"}:
        return device.name
    if upper == "TIMEOUT":
        return str(max(1, int(timeout)))
    protocol, dot, field = name.partition(".")
    connections = {k.lower(): v for k, v in device.connections.items()}
    fields = connections.get(protocol.lower(), {}) if dot else {}
    values = {k.lower(): v for k, v in fields.items()} if isinstance(fields, Mapping) else {}
    if field.lower() not in values:
        raise ConfigError(
            f"device {device.name!r}: unknown macro ${name}$ (known: $HOSTADDRESS$, "
            "$HOSTNAME$, $TIMEOUT$, $PROTOCOL.FIELD$ of the device's connections)",
            key="options.command", value=f"${name}$")
    value = values[field.lower()]
    text = value if isinstance(value, str) else str(value)
    if reveal and is_reference(text):
        return resolve_credential(text).reveal()
    return text


def result_of(run: PluginRun, ctx: PollContext, *, plugin_name: str) -> PollResult:
    """The check result and measurements of one finished (or killed) plugin run."""
    parsed = parse_output(run.output)
    messages: list[str] = []
    if run.returncode is None:
        status = Status.ERRORED
        messages.append(f"{plugin_name} timed out after {run.timeout:g}s "
                        "(its process group was killed)")
    elif run.returncode < 0:
        status = Status.ERRORED
        messages.append(f"{plugin_name} was killed by signal "
                        f"{_signal_name(-run.returncode)}")
    elif run.returncode not in EXIT_STATUS:
        status = Status.ERRORED
        messages.append(f"{plugin_name} exited with {run.returncode}, which is not a plugin "
                        "status (0-3)")
    else:
        status = EXIT_STATUS[run.returncode]
    if parsed.text:
        messages.append(parsed.text)
    elif run.returncode in EXIT_STATUS:
        messages.append(f"{plugin_name} printed nothing")
    if parsed.long_output:
        messages.append(parsed.long_output)
    if run.truncated:
        messages.append(f"output cut at {run.kept} bytes "
                        f"({run.truncated} more discarded)")
    messages.extend(parsed.problems)
    measurements = list(_measurements(parsed.perfdata, ctx))
    check = CheckResult(status=status, messages=tuple(Message(ts=ctx.now, text=m)
                                                      for m in messages))
    return PollResult(check=check, measurements=tuple(measurements))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _measurements(items: Iterable[PerfItem], ctx: PollContext) -> Iterator[Measurement]:
    counters: dict[str, CounterSample] = ctx.state.setdefault("counters", {})
    for item in items:
        metric, labels = metric_of(item.label)
        if item.value is not None:
            yield ctx.measure(metric, item.value, unit=item.unit, labels=labels)
            if item.unit == "c":
                yield from _rate(item, metric, labels, counters, ctx)
        bounds = {name: value for name, value in (
            ("warn", item.warn), ("crit", item.crit),
            ("min", item.minimum), ("max", item.maximum)) if value not in ("", None)}
        if bounds:
            key = SeriesKey.make(ctx.device.name, ctx.plugin, f"{metric}.thresholds", labels)
            yield Measurement(key=key, ts=ctx.now, obj=bounds)


def _rate(item: PerfItem, metric: str, labels: dict[str, str],
          counters: dict[str, CounterSample], ctx: PollContext) -> Iterator[Measurement]:
    assert item.value is not None
    if not item.value.is_integer() or item.value < 0:
        return  # a counter reads whole non-negative numbers; anything else has no rate
    current = CounterSample(int(item.value), ctx.now)
    previous = counters.get(item.label)
    counters[item.label] = current
    if previous is not None:
        rate = counter_rate(previous, current)
        if rate is not None:
            yield ctx.measure(f"{metric}.rate", rate, unit="c/s", labels=labels)


def metric_of(label: str) -> tuple[str, dict[str, str]]:
    """The perfdata label as a metric name when it is one, else ``perfdata{label=...}``."""
    if _METRIC_NAME.match(label):
        return label, {}
    return "perfdata", {"label": label}
