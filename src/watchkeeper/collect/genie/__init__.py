"""pyATS and genie.telemetry users keep their files: testbeds, configurations, plugins.

* :class:`Manager`: genie.telemetry's Manager for programs written against it (change the
  import line only);
* :class:`GeniePluginCollector` (plugin name ``genie``): one genie plugin, unchanged, as a
  watchkeeper collector;
* :func:`read_pyats_inventory`: a pyATS testbed, read by pyATS' loader, as watchkeeper's
  devices (``inventory.file`` may be one);
* :func:`read_genie_config`: a genie.telemetry configuration YAML as it is;
* the status objects (``OK`` ... ``PARTIAL``) and :class:`BasePlugin`, for plugins written
  without genie.telemetry installed.

pyATS and genie come with the ``pyats`` extra; they are imported only when a testbed is
loaded or a plugin's OS lookup runs. See docs/genie.md.
"""

from __future__ import annotations

from watchkeeper.collect.genie.adapter import GeniePluginCollector
from watchkeeper.collect.genie.config import (
    GenieConfig,
    PluginEntry,
    collector_settings,
    parse_genie_config,
    read_genie_config,
)
from watchkeeper.collect.genie.manager import Manager, telemetry_report
from watchkeeper.collect.genie.plugin import BasePlugin, classproperty
from watchkeeper.collect.genie.status import (
    CRITICAL,
    ERRORED,
    OK,
    PARTIAL,
    WARNING,
    HealthStatus,
    to_watchkeeper,
)
from watchkeeper.collect.genie.testbed import (
    devices_from_testbed,
    load_testbed,
    looks_like_pyats,
    read_pyats_inventory,
)

__all__ = [
    "CRITICAL",
    "ERRORED",
    "OK",
    "PARTIAL",
    "WARNING",
    "BasePlugin",
    "GenieConfig",
    "GeniePluginCollector",
    "HealthStatus",
    "Manager",
    "PluginEntry",
    "classproperty",
    "collector_settings",
    "devices_from_testbed",
    "load_testbed",
    "looks_like_pyats",
    "parse_genie_config",
    "read_genie_config",
    "read_pyats_inventory",
    "telemetry_report",
    "to_watchkeeper",
]
