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
(only references are configured, and :class:`Credential` never shows its value).
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from watchkeeper.errors import ConfigError
from watchkeeper.model import Status

if TYPE_CHECKING:
    from watchkeeper.collect.manager import DeviceResult, Manager

REPORT_VERSION = 1


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def report_data(manager: Manager) -> dict[str, Any]:
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
        "generated": iso(datetime.now(UTC).timestamp()),
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
            {"series": str(m.key), "value": m.value if m.value is not None else m.histogram,
             "unit": m.unit}
            for m in result.measurements
        ],
    }


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


_COLOURS = {"ok": "#2e7d32", "partial": "#9e9d24", "warning": "#ef6c00", "critical": "#c62828",
            "errored": "#6a1b9a", "unknown": "#616161"}
_STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}.s{color:#fff;font-weight:600;text-transform:uppercase}
pre{margin:0;white-space:pre-wrap}details{margin:.2em 0}"""


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, "#616161")
    shown = html.escape(status)
    return f'<span class="s" style="background:{colour};padding:0 .4em">{shown}</span>'


def render_html(data: dict[str, Any]) -> str:
    """A self-contained page: the overall status, then per run a device x plugin grid."""
    esc = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>watchkeeper report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>watchkeeper report {_badge(data['status'])}</h1>",
        f"<p>generated {esc(data['generated'])}; "
        + ", ".join(f"{esc(k)}: {v}" for k, v in sorted(data["counts"].items())) + "</p>",
    ]
    for uid, run in data["runs"].items():
        plugins = list(run["results"])
        devices = list(run["devices"])
        out.append(f"<h2>run {esc(uid)} {_badge(run['status'])}</h2>"
                   f"<p>{esc(run['started'])} to {esc(run['finished'])}</p>")
        out.append("<table><tr><th>device</th>"
                   + "".join(f"<th>{esc(p)} {_badge(run['plugins'].get(p, 'unknown'))}</th>"
                             for p in plugins) + "</tr>")
        for device in devices:
            cells = [f"<td>{esc(device)} {_badge(run['devices'][device])}</td>"]
            for plugin in plugins:
                result = run["results"][plugin].get(device)
                cells.append(f"<td>{_cell(result)}</td>" if result else "<td>-</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _cell(result: dict[str, Any]) -> str:
    esc = html.escape
    text = "\n".join(m["text"] for m in result["messages"])
    points = "\n".join(f"{m['series']} = {m['value']} {m['unit']}".rstrip()
                       for m in result["measurements"])
    parts = [_badge(result["status"])]
    if text:
        parts.append(f"<pre>{esc(text)}</pre>")
    if points:
        parts.append(f"<details><summary>{len(result['measurements'])} measurements</summary>"
                     f"<pre>{esc(points)}</pre></details>")
    return "".join(parts)
