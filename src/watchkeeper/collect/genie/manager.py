"""genie.telemetry's ``Manager``, for programs written against it: change the import only.

::

    from pyats.topology import loader
    from watchkeeper.collect.genie import Manager      # was: from genie.telemetry import Manager

    configuration = Manager.parser.parse_args(sys.argv[1:]).configuration  # --genietelemetry
    manager = Manager(loader.load("testbed.yaml"), runinfo_dir="out",
                      configuration=configuration)
    manager.run("before", plugins=["uname"])            # no plugins: every configured one
    for plugin, devices in manager.results.get("before", {}).items():
        for device, result in devices.items():
            print(plugin, device, result.get("status").name)
    manager.finalize_report()                           # out/telemetry.yaml (+ report.yaml/.html)

It is a synchronous face over watchkeeper's own Manager (:mod:`watchkeeper.collect.manager`)
with its collectors made by :func:`~watchkeeper.collect.genie.config.collector_settings` and
bound to the very testbed object given, so plugins see the user's pyATS devices. Results are
watchkeeper's (``result["status"]`` is a :class:`~watchkeeper.model.Status`, whose ``name``
is ``OK``...), keyed by the configuration's plugin key, not the plugin's display name.
As in genie, ``run`` does not connect devices: ``setup()`` or the plugins do. Checks run
in worker threads of this process, one at a time per device, never in forked children;
``run`` must not be called from inside a running event loop (use the async Manager there).
``telemetry.yaml`` keeps genie's shape: run, plugin, device, ``status`` (capitalised)
and ``result`` (ISO-UTC timestamp to message).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from watchkeeper.collect.genie.adapter import GeniePluginCollector
from watchkeeper.collect.genie.config import (
    Configuration,
    GenieConfig,
    collector_settings,
    read_genie_config,
)
from watchkeeper.collect.genie.plugin import classproperty
from watchkeeper.collect.genie.testbed import devices_from_testbed
from watchkeeper.collect.manager import DeviceResult
from watchkeeper.collect.manager import Manager as _Manager
from watchkeeper.errors import ConfigError
from watchkeeper.model import Status

log = logging.getLogger(__name__)

STATUS_KEYS = ("ok", "warning", "critical", "errored", "partial")

Results = dict[str, dict[str, dict[str, DeviceResult]]]


class _PropagatingParser(argparse.ArgumentParser):
    """Leaves options it does not know for others (the plugins' parsers), as pyATS does."""

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        known, _ = self.parse_known_args(args, namespace)
        return known


class Manager:
    """Runs the configuration's genie plugins on a pyATS testbed, run by run."""

    report_file = "telemetry.yaml"

    @classproperty
    def parser(cls) -> argparse.ArgumentParser:  # noqa: N805 - a classproperty
        """``--genietelemetry FILE`` (dest ``configuration``); other options are left."""
        parser = _PropagatingParser(add_help=False)
        parser.add_argument("--genietelemetry", metavar="FILE", dest="configuration",
                            help="genie.telemetry configuration file")
        return parser

    def __init__(  # noqa: PLR0917 - genie's own signature, positional arguments included
        self,
        testbed: Any,
        instance: Any = None,
        runinfo_dir: str | Path | None = None,
        configuration: Configuration | None = None,
        plugins: Any = None,  # genie's PluginManager class: not used here
        timeout: float = 300,
        connection_timeout: float = 10,
    ) -> None:
        argv = list(sys.argv[1:])
        configuration = configuration or self.parser.parse_args(argv).configuration
        if not configuration:
            raise ConfigError("no genie.telemetry configuration: pass configuration= or "
                              "--genietelemetry FILE", key="configuration")
        self.testbed = testbed
        self.devices = testbed.devices
        self.instance = instance
        self.runinfo_dir = runinfo_dir
        self.timeout = timeout
        self.connection_timeout = connection_timeout
        self.configuration: GenieConfig = read_genie_config(configuration)
        specs = collector_settings(self.configuration, timeout=float(timeout),
                                   connection_timeout=float(connection_timeout),
                                   connect=False, argv=argv)
        self._manager = _Manager(devices_from_testbed(testbed), specs)
        for job in self._manager.jobs:
            if isinstance(job.collector, GeniePluginCollector):
                job.collector.bind(testbed)
        self._runner: asyncio.Runner | None = None

    @property
    def manager(self) -> _Manager:
        """watchkeeper's Manager underneath (roll-ups, its report)."""
        return self._manager

    @property
    def results(self) -> Results:
        """``results[uid][plugin][device]``: each a result read as a dict or by field."""
        return self._manager.results

    def run(self, tag: Any, *args: Any, plugins: Sequence[str] | None = None,
            **kwargs: Any) -> dict[str, dict[str, DeviceResult]]:
        """Run the selected plugins (configuration keys; none: all) once on every device.

        ``tag`` is the run's uid (or an object with ``uid``, as an aetest section).
        """
        uid = str(getattr(tag, "uid", tag))
        if self._runner is None:
            self._runner = asyncio.Runner()
        merged = self._runner.run(self._manager.run(uid, plugins=list(plugins or ()) or None))
        post_run = getattr(self.instance, "post_run", None)
        if callable(post_run):
            for plugin, by_device in merged.items():
                for device, result in by_device.items():
                    post_run(device, plugin, result)
        return merged

    @property
    def status(self) -> Status:
        """Every run so far rolled up by severity."""
        return self._manager.status()

    @property
    def statuses(self) -> dict[str, int]:
        """How many devices are ok, warning, critical, errored, partial (over every run)."""
        counts = Counter(s.value for s in self._manager.device_statuses().values())
        return {key: counts.get(key, 0) for key in STATUS_KEYS}

    def setup(self) -> None:
        """Connect every device as the configuration's ``connections`` say (genie's setup)."""
        for name, device in self.devices.items():
            settings = dict(self.configuration.connections.get(name, {}))
            timeout = settings.pop("timeout", self.connection_timeout)
            if not device.is_connected(alias=settings.get("alias")):
                device.connect(timeout=timeout, **settings)

    def takedown(self) -> None:
        """Disconnect every connected device and release the checks; failures are logged."""
        for name, device in self.devices.items():
            alias = self.configuration.connections.get(name, {}).get("alias")
            try:
                if device.is_connected(alias=alias):
                    device.disconnect(alias=alias)
            except Exception:
                log.exception("disconnecting %s failed", name)
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.run(self._manager.aclose())
            runner.close()

    def finalize_report(self, runinfo_dir: str | Path | None = None) -> str:
        """Write ``telemetry.yaml`` (genie's shape) and watchkeeper's ``report.yaml`` and
        ``report.html`` into the run-info directory; return the telemetry YAML. Results are
        left as they are, so it may be called at any time, as often as wanted."""
        text = yaml.safe_dump(telemetry_report(self.results), sort_keys=False,
                              allow_unicode=True, default_flow_style=False)
        directory = runinfo_dir or self.runinfo_dir
        if directory is None or not Path(directory).is_dir():
            log.error("no run-info directory %s: the telemetry report is not written",
                      directory)
            return text
        (Path(directory) / self.report_file).write_text(text, encoding="utf-8")
        self._manager.finalize_report(Path(directory) / "report.yaml")
        return text


def telemetry_report(results: Results) -> dict[str, Any]:
    """genie's report data: run, plugin, device, ``{status: Ok, result: {ts: message}}``."""
    return {
        uid: {plugin: {device: {"result": {_iso(m.ts): m.text for m in r.messages},
                                "status": r.status.value.capitalize()}
                       for device, r in by_device.items()}
              for plugin, by_device in run.items()}
        for uid, run in results.items()
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
