"""The Manager's report: plain data, written as YAML or JSON and as a readable HTML page.

Shape (``version: 1``)::

    version: 1
    generated: '2026-11-22T14:53:08Z'
    status: critical            # every run, rolled up by severity
    counts: {ok: 3, critical: 1}
    devices: {core1: critical}  # each device over every run
    plugins: {snmp: ok}
    runs:
      before:                   # the run uid
        started: ... finished: ...
        status: ok
        devices: {...}
        plugins: {...}
        results:
          snmp:                 # the collector's name in the config
            core1:
              status: ok
              messages: [{ts: '...', text: '...'}]
              measurements: [{series: core1/snmp/if.in_bps{if="eth0"}, value: 1.5, unit: bit/s}]

Messages and measurements are what the checks produced; credentials never reach them
(only references are configured, and :class:`Credential` never shows its value). The HTML
page next to the data file is :mod:`watchkeeper.collect.report_html`'s: worst first, a
summary on top, filters, human units.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from watchkeeper.collect.report_html import render_html
from watchkeeper.errors import ConfigError
from watchkeeper.model import Measurement, Status

if TYPE_CHECKING:
    from watchkeeper.collect.manager import DeviceResult, RunResults

REPORT_VERSION = 1


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def report_data(manager: RunResults, *, now: float | None = None) -> dict[str, Any]:
    """The report of ``manager``'s results; ``generated`` is ``now`` (default: the time)."""
    statuses = [r.status for run in manager.results.values() for by_device in run.values()
                for r in by_device.values()]
    runs: dict[str, Any] = {}
    for uid, run in manager.results.items():
        info = manager.runs[uid]
        runs[uid] = {
            "started": iso(info.started), "finished": iso(info.finished),
            "status": manager.status(uid).value,
            "devices": _values(manager.device_statuses(uid)),
            "plugins": _values(manager.plugin_statuses(uid)),
            "results": {plugin: {device: _result(r) for device, r in by_device.items()}
                        for plugin, by_device in run.items()},
        }
    return {
        "version": REPORT_VERSION,
        "generated": iso(datetime.now(UTC).timestamp() if now is None else now),
        "status": manager.status().value,
        "counts": dict(Counter(s.value for s in statuses)),
        "devices": _values(manager.device_statuses()),
        "plugins": _values(manager.plugin_statuses()),
        "runs": runs,
    }


def _values(statuses: dict[str, Status]) -> dict[str, str]:
    return {name: status.value for name, status in statuses.items()}


def _result(result: DeviceResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "started": iso(result.started),
        "duration_ms": round((result.finished - result.started) * 1000, 3),
        "messages": [{"ts": iso(m.ts), "text": m.text} for m in result.messages],
        "measurements": [
            {"series": str(m.key), "value": _value(m), "unit": m.unit}
            for m in result.measurements
        ],
    }


def _value(m: Measurement) -> Any:
    if m.value is not None:
        return m.value
    return m.histogram if m.histogram is not None else m.obj


def write_report(data: dict[str, Any], path: Path) -> list[Path]:
    """``path`` as YAML (``.yaml``/``.yml``) or JSON (``.json``), and ``path`` + ``.html``."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    elif suffix == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        raise ConfigError("a report file ends in .yaml, .yml or .json", value=str(path))
    page = path.with_suffix(".html")
    _write_atomically(path, text)
    _write_atomically(page, render_html(data))
    return [path, page]


def _write_atomically(path: Path, text: str) -> None:
    # Readers (a CI job, a browser) never see half a report.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
