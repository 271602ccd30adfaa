"""The run report as one self-contained HTML page that stays usable at 1,000 devices.

Layout, top to bottom: the overall status with a count per status; the worst results
(errored first, then critical, warning, partial, unknown) and a count per collector;
then each run as one compact table, a row per device and collector, worst first. A row
carries the check's whole messages (an ERRORED row its whole reason), its duration, and
its measurements in human units (``22 GiB``, ``150 ms``, ``87.5 %``), the first few
inline and the rest one click away.

Filtering works without JavaScript: hidden radio buttons and CSS show the problems only
(the default), everything, or one status. A little inline script adds a collector choice
and a device search; it reads the rows' ``data-`` attributes and only hides rows, so all
content is rendered here, escaped, and nothing is built from text in the browser.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from typing import Any, Final

from watchkeeper.collect.units import human, significant

ORDER: Final = ("errored", "critical", "warning", "partial", "unknown", "ok")
"""Worst first: the order of rows, summaries and filters."""
_RANK: Final = {status: rank for rank, status in enumerate(ORDER)}
INLINE_MEASUREMENTS: Final = 4
WORST_SHOWN: Final = 15

_COLOURS: Final = {"ok": "#2e7d32", "partial": "#827717", "warning": "#e65100",
                   "critical": "#c62828", "errored": "#6a1b9a", "unknown": "#616161"}
_STYLE: Final = """
body{font:14px/1.35 system-ui,sans-serif;margin:1.2em 2em;color:#222}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.3em 0 1em}
td,th{border-bottom:1px solid #ddd;padding:.15em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}
td.n,th.n{text-align:right;white-space:nowrap}
.b{color:#fff;font-weight:600;font-size:.8em;text-transform:uppercase;padding:0 .4em;
border-radius:3px;white-space:nowrap}
.msg{white-space:pre-wrap;margin:0;font:inherit;max-width:42em;overflow-wrap:anywhere}
.m{white-space:nowrap;margin-right:.9em}.m i{color:#666;font-style:normal}
td.ms{min-width:36em;max-width:48em}
details{display:inline}summary{display:inline;white-space:nowrap;cursor:pointer;color:#1565c0}
.f{position:absolute;opacity:0}
.chips label{display:inline-block;border:1px solid #bbb;border-radius:1em;
padding:.1em .7em;margin:.1em .2em .1em 0;cursor:pointer}
.chips label:hover{outline:2px solid #1565c0}
#tools{margin:.4em 0}#tools[hidden]{display:none}
.summary{display:flex;gap:2.5em;flex-wrap:wrap}.summary table{margin-top:0}
.none{color:#666}
"""


def render_html(data: dict[str, Any]) -> str:
    """The page for report data (``report.report_data``'s shape)."""
    results = _results(data)
    counts = Counter(row["status"] for row in results)
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width'>",
        f"<title>watchkeeper report: {_esc(data['status'])}</title>",
        f"<style>{_STYLE}{_filter_css()}</style></head><body>",
        *_filter_radios(),
        f"<h1>watchkeeper report {_badge(data['status'])}</h1>",
        _overview(data, len(results)),
        _chips(counts, len(results)),
        _tools(results),
        "<div class='summary'>",
        _worst(results),
        _per_collector(results),
        "</div>",
    ]
    for uid, run in data["runs"].items():
        rows = [row for row in results if row["run"] == uid]
        out.append(f"<h2>run {_esc(uid)} {_badge(run['status'])}</h2>"
                   f"<p>{_esc(run['started'])} to {_esc(run['finished'])}; "
                   f"{_count_text(Counter(r['status'] for r in rows))}</p>")
        out.append(_table(rows))
    out.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(out)


def _overview(data: dict[str, Any], results: int) -> str:
    runs = len(data["runs"])
    return (f"<p>generated {_esc(data['generated'])}; {results:,} results, "
            f"{len(data.get('devices', {})):,} devices, {len(data.get('plugins', {})):,} "
            f"collectors, {runs} run{'s' if runs != 1 else ''}</p>")


def _results(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every result of every run as one flat row, worst first."""
    rows = [{**result, "run": uid, "plugin": plugin, "device": device}
            for uid, run in data["runs"].items()
            for plugin, by_device in run["results"].items()
            for device, result in by_device.items()]
    rows.sort(key=lambda r: (_RANK.get(r["status"], len(ORDER)), r["device"], r["plugin"]))
    return rows


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, _COLOURS["unknown"])
    return f"<span class='b' style='background:{colour}'>{_esc(status)}</span>"


def _count_text(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[s]:,} {s}" for s in ORDER if counts[s]) or "no results"


# -- filters: radio buttons + CSS (no script needed), then script for the rest ----------

_FILTERS: Final = ("problems", "all", *ORDER)


def _filter_radios() -> list[str]:
    return [f"<input type='radio' name='show' class='f' id='show-{name}'"
            f"{' checked' if name == 'problems' else ''}>" for name in _FILTERS]


def _filter_css() -> str:
    rules = ["#show-problems:checked~* tr.s-ok{display:none}"]
    rules += [f"#show-{s}:checked~* tr.r:not(.s-{s}){{display:none}}" for s in ORDER]
    rules += [f"#show-{name}:checked~.chips label[for=show-{name}]"
              "{background:#1565c0;color:#fff;border-color:#1565c0}" for name in _FILTERS]
    return "".join(rules)


def _chips(counts: Counter[str], total: int) -> str:
    problems = total - counts["ok"]
    labels = [f"<label for='show-problems'>problems {problems:,}</label>",
              f"<label for='show-all'>all {total:,}</label>"]
    labels += [f"<label for='show-{s}'>{_badge(s)} {counts[s]:,}</label>"
               for s in ORDER if counts[s]]
    return f"<p class='chips'>show: {''.join(labels)}</p>"


def _tools(results: list[dict[str, Any]]) -> str:
    plugins = sorted({row["plugin"] for row in results})
    options = "".join(f"<option>{_esc(p)}</option>" for p in plugins)
    return ("<p id='tools' hidden>collector <select id='plugin'><option value=''>all"
            f"</option>{options}</select> device <input id='device' type='search' "
            "placeholder='name contains...' size='24'> <span id='shown'></span></p>")


_SCRIPT: Final = """
(function(){
var tools=document.getElementById('tools'),plugin=document.getElementById('plugin'),
device=document.getElementById('device'),shown=document.getElementById('shown');
var rows=Array.prototype.slice.call(document.querySelectorAll('tr.r'));
tools.hidden=false;
function apply(){var p=plugin.value,d=device.value.toLowerCase(),n=0;
rows.forEach(function(r){var hide=(p&&r.dataset.plugin!==p)||
(d&&r.dataset.device.toLowerCase().indexOf(d)<0);r.hidden=hide;if(!hide)n++;});
shown.textContent=(p||d)?n+' rows match':'';}
plugin.addEventListener('change',apply);device.addEventListener('input',apply);
})();
"""


# -- summary --------------------------------------------------------------------------


def _worst(results: list[dict[str, Any]]) -> str:
    bad = [row for row in results if row["status"] != "ok"][:WORST_SHOWN]
    if not bad:
        return "<section><h2>worst results</h2><p class='none'>every check is OK</p></section>"
    lines = [f"<tr><td>{_badge(r['status'])}</td><td>{_esc(r['device'])}</td>"
             f"<td>{_esc(r['plugin'])}</td><td>{_esc(_first_line(r))}</td></tr>" for r in bad]
    more = sum(1 for row in results if row["status"] != "ok") - len(bad)
    tail = f"<p class='none'>and {more:,} more below</p>" if more > 0 else ""
    return ("<section><h2>worst results</h2><table><tr><th>status</th><th>device</th>"
            f"<th>collector</th><th>reason</th></tr>{''.join(lines)}</table>{tail}</section>")


def _first_line(row: dict[str, Any]) -> str:
    for message in row["messages"]:
        text = str(message["text"]).strip()
        if text:
            first = text.splitlines()[0]
            return first if len(first) <= 120 else first[:119] + "…"
    return ""


def _per_collector(results: list[dict[str, Any]]) -> str:
    by_plugin: dict[str, Counter[str]] = {}
    for row in results:
        by_plugin.setdefault(row["plugin"], Counter())[row["status"]] += 1
    present = [s for s in ORDER if any(c[s] for c in by_plugin.values())]
    ranked = sorted(by_plugin.items(), key=lambda item: (
        tuple(-item[1][s] for s in ORDER), item[0]))
    head = "".join(f"<th class='n'>{_badge(s)}</th>" for s in present)
    body = "".join(
        f"<tr><td>{_esc(name)}</td>"
        + "".join(f"<td class='n'>{c[s]:,}</td>" if c[s] else "<td class='n'></td>"
                  for s in present) + "</tr>"
        for name, c in ranked)
    return (f"<section><h2>per collector</h2><table><tr><th>collector</th>{head}</tr>"
            f"{body}</table></section>")


# -- the runs' tables -------------------------------------------------------------------


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("<table><tr><th>status</th><th>device</th><th>collector</th>"
            "<th class='n'>took</th><th>messages</th><th>measurements</th></tr>")
    return head + "".join(_row(row) for row in rows) + "</table>"


def _row(row: dict[str, Any]) -> str:
    text = "\n".join(str(m["text"]) for m in row["messages"])
    took = _duration_ms(row.get("duration_ms"))
    return (f"<tr class='r s-{_esc(row['status'])}' data-device='{_esc(row['device'])}' "
            f"data-plugin='{_esc(row['plugin'])}'><td>{_badge(row['status'])}</td>"
            f"<td>{_esc(row['device'])}</td><td>{_esc(row['plugin'])}</td>"
            f"<td class='n'>{took}</td>"
            f"<td>{f'<pre class=msg>{_esc(text)}</pre>' if text else ''}</td>"
            f"<td class='ms'>{_measurements(row)}</td></tr>")


def _duration_ms(value: object) -> str:
    if not isinstance(value, int | float):
        return ""
    return _esc(human(float(value), "ms"))


def _measurements(row: dict[str, Any]) -> str:
    prefix = f"{row['device']}/{row['plugin']}/"
    items = [_measurement(m, prefix) for m in row["measurements"]]
    if len(items) <= INLINE_MEASUREMENTS + 1:
        return " ".join(items)
    shown = " ".join(items[:INLINE_MEASUREMENTS])
    rest = " ".join(items[INLINE_MEASUREMENTS:])
    return (f"{shown} <details><summary>+{len(items) - INLINE_MEASUREMENTS} more"
            f"</summary>{rest}</details>")


def _measurement(m: dict[str, Any], prefix: str) -> str:
    series = str(m["series"])
    name = series[len(prefix):] if series.startswith(prefix) else series
    return f"<span class='m'><i>{_esc(name)}</i> {_esc(value_text(m['value'], m['unit']))}</span>"


def value_text(value: object, unit: str) -> str:
    """A measurement's value for people: numbers in human units, histograms as a bucket
    count and the total, other objects as JSON, cut at 80 characters."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return human(float(value), unit) if math.isfinite(value) else str(value)
    if isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
        total = sum(value.values())
        return f"histogram: {len(value)} buckets, {significant(float(total))} samples"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 80 else text[:79] + "…"
