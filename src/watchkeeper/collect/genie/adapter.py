"""A genie.telemetry plugin, unchanged, as a watchkeeper collector.

::

    collectors:
      - name: uname                       # the result key and the series' plugin part
        plugin: genie
        interval: 30
        timeout: 60                       # execution is blocking: it runs in a worker thread
        options:
          module: mypkg.plugins.uname     # the plugin's module (its class is `Plugin`)
          plugin_arguments: {uname_expect: Linux}
          testbed: /etc/lab/testbed.yaml  # not needed when inventory.file is this testbed

For each device the collector finds the pyATS device object (the testbed bound by the
compatibility :class:`~watchkeeper.collect.genie.manager.Manager`, else the testbed file),
makes one plugin instance, as genie does (the OS-specific ``Plugin`` found by genie's
abstraction lookup on ``device.os`` when the module declares one), gives it its arguments,
connects the device if it is not connected, and calls ``execution(device)`` in a worker
thread. The returned status becomes the poll's status (ok, warning, critical, errored,
partial; no status is UNKNOWN), its meta the poll's messages, and the series
``<device>/<name>/genie.code`` carries genie's code (0 ok, 1 warning, 2 critical,
3 errored, 4 partial) into the archive. An exception from the plugin is ERRORED with its
text, as in genie; a device that cannot be connected is CRITICAL and the plugin is not run.

Unlike genie.telemetry, a plugin instance lives as long as the collector, so what it keeps
on ``self`` survives between runs (genie runs each device in a forked child); a plugin
whose ``__supported_os__`` does not name the device's ``os`` gets no job on it.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

import msgspec

from watchkeeper.collect.abc import Collector, JobSpec, PollContext, PollResult
from watchkeeper.collect.genie.status import genie_code, to_watchkeeper
from watchkeeper.collect.genie.testbed import PYATS_KEY, load_testbed
from watchkeeper.errors import CollectError, ConfigError
from watchkeeper.model import CheckResult, Device, Message, Status


class GenieOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    module: str
    plugin_arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)  # Plugin(**arguments)
    argv: list[str] = msgspec.field(default_factory=list)  # a command line to parse too
    testbed: str | None = None
    connections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    connect: bool = True
    connection_timeout: float = 10.0


# pyATS device objects are not thread-safe: one call at a time on each, whichever
# collector makes it (two plugins on one bound testbed share the device and its session).
_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _device_lock(device: Any) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(device)
        if lock is None:
            lock = _LOCKS[device] = threading.Lock()
        return lock


class GeniePluginCollector(Collector):
    """Runs one genie.telemetry plugin on every selected device."""

    Options = GenieOptions

    def __init__(self, options: GenieOptions, *, name: str) -> None:
        super().__init__(options, name=name)
        self._module: ModuleType | None = None
        self._bound: Any = None
        self._testbeds: dict[str, Any] = {}
        self._plugins: dict[str, Any] = {}
        self._guard = threading.Lock()

    def bind(self, testbed: Any) -> None:
        """Use this loaded pyATS testbed's device objects (the user's own) for every poll."""
        self._bound = testbed

    # ---------------------------------------------------------------- start-up

    def module(self) -> ModuleType:
        """The plugin's module, imported once; ConfigError naming it when it cannot be."""
        if self._module is None:
            try:
                module = importlib.import_module(self.options.module)
            except ImportError as exc:
                raise ConfigError(f"collector {self.name!r}: cannot import the genie plugin "
                                  f"module: {exc}", key="options.module",
                                  value=self.options.module) from None
            if not isinstance(getattr(module, "Plugin", None), type):
                raise ConfigError(f"collector {self.name!r}: a genie plugin module defines a "
                                  "class `Plugin`", key="options.module",
                                  value=self.options.module)
            self._module = module
        return self._module

    def jobs(self, devices: Iterable[Device],
             intervals: tuple[float, ...]) -> Iterator[JobSpec]:
        """One job per device the plugin supports (``__supported_os__``; empty: any)."""
        supported = [str(s) for s in getattr(self.module().Plugin, "__supported_os__", ()) or ()]
        wanted = [d for d in devices if not supported or
                  d.connections.get(PYATS_KEY, {}).get("os") in supported]
        return super().jobs(wanted, intervals)

    # ---------------------------------------------------------------- polling

    def poll(self, device: Device, ctx: PollContext) -> PollResult:
        """Blocking (pyATS is): watchkeeper runs it in a worker thread."""
        target = self._pyats_device(device)
        lock = _device_lock(target)
        # Wait for the device at most half the budget: a call stuck on it (a plugin that
        # never returns) makes others ERRORED "busy" and never holds their threads for good.
        if not lock.acquire(timeout=ctx.timeout / 2):
            text = (f"{device.name} is busy: an earlier call on its pyATS device has not "
                    "returned")
            return _result(ctx, Status.ERRORED, (Message(ts=ctx.now, text=text),), None)
        try:
            if self.options.connect and not _connected(target):
                failure = self._connect(device.name, target)
                if failure is not None:
                    return _result(ctx, Status.CRITICAL, (Message(ts=ctx.now, text=failure),),
                                   None)
            plugin = self._plugin(device.name, target)
            try:
                returned = plugin.execution(target)
            except Exception as exc:  # noqa: BLE001 - genie: any exception is ERRORED with its text
                text = str(exc) or type(exc).__name__
                return _result(ctx, Status.ERRORED, (Message(ts=ctx.now, text=text),), 3)
        finally:
            lock.release()
        status, messages = to_watchkeeper(returned, now=ctx.now)
        return _result(ctx, status, messages, genie_code(returned))

    def _pyats_device(self, device: Device) -> Any:
        if self._bound is not None:
            testbed = self._bound
        else:
            path = self.options.testbed or device.connections.get(PYATS_KEY, {}).get("testbed")
            if not path:
                raise CollectError(f"device {device.name!r} has no pyATS testbed: use a pyATS "
                                   "testbed as inventory.file or set options.testbed")
            with self._guard:
                testbed = self._testbeds.get(path)
                if testbed is None:
                    testbed = self._testbeds[path] = load_testbed(path)
        name = device.connections.get(PYATS_KEY, {}).get("device", device.name)
        try:
            return testbed.devices[name]
        except KeyError:
            raise CollectError(f"device {name!r} is not in the pyATS testbed") from None

    def _connect(self, name: str, target: Any) -> str | None:
        settings = dict(self.options.connections.get(name, {}))
        timeout = settings.pop("timeout", self.options.connection_timeout)
        try:
            target.connect(timeout=timeout, **settings)
        except Exception as exc:  # noqa: BLE001 - unicon raises many kinds; the reason is what matters
            via = settings.get("via")
            return f"cannot connect to {name}{f' via {via}' if via else ''}: {exc}"
        return None

    def _plugin(self, name: str, target: Any) -> Any:
        """This device's plugin instance, made and given its arguments on first use."""
        plugin = self._plugins.get(name)
        if plugin is None:
            cls = plugin_class(self.module(), target)
            plugin = cls(**self.options.arguments)
            argv = list(self.options.argv)
            given = " ".join(argv)
            for key, value in self.options.plugin_arguments.items():
                if f"--{key}" not in given:  # a real command-line option wins, as in genie
                    argv += [f"--{key}", str(value)]
            plugin.parse_args(argv)
            self._plugins[name] = plugin
        return plugin


def plugin_class(module: ModuleType, device: Any) -> type:
    """The OS-specific ``Plugin`` via genie's abstraction lookup, else the module's own."""
    if getattr(device, "os", None):
        try:
            from genie.abstract import Lookup  # the optional extra

            custom = device.custom
            if "order" not in (custom.get("abstraction") or {}):
                custom.setdefault("abstraction", {})["order"] = ["os"]
            found = Lookup.from_device(device, packages={"plugin": module}).plugin.Plugin
            if isinstance(found, type):
                return found
        except Exception:  # noqa: BLE001, S110 - not an abstraction package: the module's Plugin
            pass
    plugin: type = module.Plugin
    return plugin


def _connected(target: Any) -> bool:
    try:
        return bool(target.is_connected())
    except Exception:  # noqa: BLE001 - a device object without a connection manager yet
        return False


def _result(ctx: PollContext, status: Status, messages: tuple[Message, ...],
            code: int | None) -> PollResult:
    measurements = [ctx.measure("genie.code", code)] if code is not None else []
    return PollResult(check=CheckResult(status=status, messages=messages),
                      measurements=tuple(measurements))
