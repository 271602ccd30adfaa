"""The pytest plugin: device health checked before and after each test module.

The counterpart of genie.telemetry's pyATS processors::

    pytest --watchkeeper-config wk.yaml [--watchkeeper-mode fail|annotate]
           [--watchkeeper-report out/health.yaml]

``wk.yaml`` is an ordinary watchkeeper configuration (``inventory`` and ``collectors``).
Before a module's first test every configured check runs once; after its last test they
run again. When a device got worse (some plugin's status on it is more severe than
before), the module fails (an error at the teardown of its last test, naming what got
worse) or, with ``annotate``, passes with the finding in its report sections, its last
test's ``user_properties`` and the terminal summary. A module may opt out with
``watchkeeper = False`` or pick checks with ``watchkeeper_plugins = ["name", ...]``.

``module:Class`` plugins in the configuration resolve from the directory pytest was started
in, as with ``watchkeeper`` itself: it goes first on ``sys.path``, as ``python -m pytest``
puts it (the plain ``pytest`` command does not, and the plugins load before any test
module's own directory is added).

Without ``--watchkeeper-config`` (or the ``watchkeeper_config`` ini value) the plugin does
nothing and imports nothing heavy. Checks run on one event loop in a thread of their own,
so they never meet the event loops of async tests.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from watchkeeper.collect.manager import Manager

T = TypeVar("T")
MODES = ("fail", "annotate")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("watchkeeper", "device health before and after test modules")
    group.addoption("--watchkeeper-config", metavar="FILE", default=None,
                    help="run this watchkeeper configuration's checks around each module")
    group.addoption("--watchkeeper-mode", choices=MODES, default=None,
                    help="when a device got worse: fail the module (default) or annotate it")
    group.addoption("--watchkeeper-report", metavar="PATH", default=None,
                    help="write every run's results to PATH (.yaml/.json, plus .html)")
    parser.addini("watchkeeper_config", "default for --watchkeeper-config", default="")
    parser.addini("watchkeeper_mode", "default for --watchkeeper-mode", default="fail")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("watchkeeper_config") or config.getini("watchkeeper_config")
    if not path:
        return
    mode = config.getoption("watchkeeper_mode") or config.getini("watchkeeper_mode")
    if mode not in MODES:
        raise pytest.UsageError(f"watchkeeper_mode must be one of {', '.join(MODES)}")
    start_dir = str(config.invocation_params.dir)
    if start_dir not in sys.path:
        sys.path.insert(0, start_dir)  # module:Class plugins resolve as under `python -m`
    config.pluginmanager.register(
        HealthWatch(str(path), mode=mode, report=config.getoption("watchkeeper_report")),
        "watchkeeper-health")


class _LoopThread:
    """One event loop in a daemon thread; coroutines are run on it and waited for."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="watchkeeper-checks",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class HealthWatch:
    """Runs the checks around modules and judges whether a device got worse."""

    def __init__(self, path: str, *, mode: str, report: str | None) -> None:
        from watchkeeper.errors import WatchkeeperError
        from watchkeeper.runtime.collect import build_manager
        from watchkeeper.runtime.config import read_settings

        self.mode = mode
        self.report = report
        self.findings: list[tuple[str, list[str]]] = []
        self._module: str | None = None
        self._loop = _LoopThread()
        try:
            settings, locator = read_settings(path, env={})
            self.manager: Manager = self._loop.run(_build(build_manager, settings, locator))
        except WatchkeeperError as exc:
            self._loop.close()
            raise pytest.UsageError(f"--watchkeeper-config: {exc}") from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        module = _module_id(item)
        if module != self._module:
            self._module = module
            enabled, plugins = _selection(item)
            if enabled:
                self._loop.run(self.manager.run(f"{module}:before", plugins=plugins))

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        module = _module_id(item)
        if nextitem is not None and _module_id(nextitem) == module:
            return
        if f"{module}:before" not in self.manager.results:
            return  # opted out
        self._loop.run(self.manager.run(f"{module}:after", plugins=_selection(item)[1]))
        worse = self.got_worse(module)
        if not worse:
            return
        self.findings.append((module, worse))
        text = "watchkeeper: devices got worse during this module:\n  " + "\n  ".join(worse)
        if self.mode == "fail":
            pytest.fail(text, pytrace=False)
        item.user_properties.append(("watchkeeper", worse))
        item.add_report_section("teardown", "watchkeeper", text)

    def got_worse(self, module: str) -> list[str]:
        """``plugin on device: before -> after`` for each check more severe after the module."""
        before = self.manager.results[f"{module}:before"]
        after = self.manager.results[f"{module}:after"]
        worse: list[str] = []
        for plugin, by_device in after.items():
            for device, result in by_device.items():
                was = before.get(plugin, {}).get(device)
                if was is not None and result.status.severity > was.status.severity:
                    why = "; ".join(m.text for m in result.messages)
                    worse.append(f"{plugin} on {device}: {was.status.value} -> "
                                 f"{result.status.value}" + (f" ({why})" if why else ""))
        return worse

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.findings:
            return
        terminalreporter.section("watchkeeper: devices that got worse")
        for module, worse in self.findings:
            terminalreporter.write_line(f"{module}:")
            for line in worse:
                terminalreporter.write_line(f"  {line}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        try:
            if self.report:
                self.manager.finalize_report(self.report)
            self._loop.run(self.manager.aclose())
        finally:
            self._loop.close()


async def _build(factory: Any, settings: Any, locator: Any) -> Manager:
    # Built on the checks' loop: collectors bind clients to the loop they first run on.
    manager: Manager = factory(settings, locator)
    return manager


def _module_id(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _selection(item: pytest.Item) -> tuple[bool, list[str] | None]:
    """Whether the module wants checks, and which (None: all configured)."""
    module = getattr(item, "module", None)
    if module is None:
        return True, None
    if getattr(module, "watchkeeper", True) is False:
        return False, None
    chosen = getattr(module, "watchkeeper_plugins", None)
    return True, list(chosen) if chosen is not None else None
