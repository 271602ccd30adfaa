"""The Nagios plugin output format, read without I/O: status text, long output, perfdata.

The Monitoring Plugins development guidelines define it::

    TEXT | perfdata                      <- the first line: the check message
    LONG TEXT ...                        <- long output, any number of lines
    LONG TEXT | perfdata                 <- a '|' on a later line starts more perfdata,
    perfdata ...                            and every line after it is perfdata too

Perfdata items are separated by spaces: ``'label'=value[UOM];[warn];[crit];[min];[max]``.
A label with spaces is quoted with ``'`` (``''`` is a quote inside it); ``U`` as the value
means the plugin could not determine it. Units: ``s ms us % B KB MB GB TB c`` (``c`` is a
continuous counter). Thresholds are Nagios ranges (``10``, ``10:``, ``~:10``, ``10:20``,
``@10:20``); they are kept as written, after a check that they parse.

A malformed item never fails the whole output: it is skipped and described in
``problems``, so the check stays valid.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
KNOWN_UNITS = frozenset({*TIME_UNITS, *BYTE_UNITS, "%", "c", ""})
_VALUE = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z%]*)$")
_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


class PerfItem(NamedTuple):
    """One perfdata item, its value in the base unit (seconds, bytes) with that unit."""

    label: str
    value: float | None  # None for 'U' (undetermined)
    unit: str            # 's', 'B', '%', 'c' or '' after normalising
    warn: str
    crit: str
    minimum: float | None
    maximum: float | None


class PluginOutput(NamedTuple):
    """A plugin's output, split as the format says."""

    text: str                 # the first line without its perfdata
    long_output: str          # the other lines of text, joined with newlines
    perfdata: tuple[PerfItem, ...]
    problems: tuple[str, ...]  # one sentence per perfdata item that could not be read


def parse_output(output: str) -> PluginOutput:
    """Split ``output`` into its text, long output and perfdata items."""
    lines = output.splitlines()
    first = lines[0] if lines else ""
    text, _, perf = first.partition("|")
    perf_parts = [perf]
    long_lines: list[str] = []
    in_perfdata = False
    for line in lines[1:]:
        if in_perfdata:
            perf_parts.append(line)
            continue
        before, bar, after = line.partition("|")
        long_lines.append(before.rstrip() if bar else line)
        if bar:
            perf_parts.append(after)
            in_perfdata = True
    items, problems = parse_perfdata(" ".join(perf_parts))
    long_output = "\n".join(long_lines).strip("\n")
    return PluginOutput(text.strip(), long_output, items, problems)


def parse_perfdata(perfdata: str) -> tuple[tuple[PerfItem, ...], tuple[str, ...]]:
    """Every item of a perfdata string, and a description of each one that is malformed."""
    items: list[PerfItem] = []
    problems: list[str] = []
    for raw in _split_items(perfdata):
        try:
            items.append(parse_item(raw))
        except ValueError as exc:
            problems.append(f"perfdata item {raw!r}: {exc}")
    return tuple(items), tuple(problems)


def _split_items(perfdata: str) -> list[str]:
    """Items separated by whitespace; a quoted label may hold spaces ('' is a quote)."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(perfdata):
        char = perfdata[i]
        if char == "'":
            if quoted and perfdata[i + 1:i + 2] == "'":
                current.append("''")
                i += 2
                continue
            quoted = not quoted
        if char.isspace() and not quoted:
            if current:
                items.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if current:
        items.append("".join(current))
    return items


def parse_item(raw: str) -> PerfItem:
    """One ``'label'=value[UOM];warn;crit;min;max`` item; ValueError says what is wrong."""
    label, value_part = _label_and_rest(raw)
    fields = value_part.split(";")
    if len(fields) > 5:
        raise ValueError("more than five ';'-separated fields")
    fields += [""] * (5 - len(fields))
    value_text, warn, crit, min_text, max_text = (f.strip() for f in fields)
    value, unit = _value(value_text)
    for name, threshold in (("warn", warn), ("crit", crit)):
        if threshold:
            check_range(threshold, name)
    scale = TIME_UNITS.get(unit) or BYTE_UNITS.get(unit) or 1
    return PerfItem(
        label=label,
        value=None if value is None else value * scale,
        unit=_base_unit(unit),
        warn=warn,
        crit=crit,
        minimum=_bound(min_text, "min", scale),
        maximum=_bound(max_text, "max", scale),
    )


def _label_and_rest(raw: str) -> tuple[str, str]:
    if raw.startswith("'"):
        end = raw.find("'=", 1)
        while end != -1 and raw[1:end].replace("''", "").count("'"):
            end = raw.find("'=", end + 1)
        if end == -1:
            raise ValueError("a quoted label must end with '= before the value")
        return raw[1:end].replace("''", "'"), raw[end + 2:]
    label, equals, rest = raw.partition("=")
    if not equals:
        raise ValueError("no '=' between label and value")
    if not label:
        raise ValueError("empty label")
    return label, rest


def _value(text: str) -> tuple[float | None, str]:
    if text == "U":
        return None, ""
    match = _VALUE.match(text)
    if not match:
        raise ValueError(f"value {text!r} is not a number with an optional unit")
    unit = match.group(2)
    if unit not in KNOWN_UNITS:
        raise ValueError(f"unit {unit!r} is not one of s ms us % B KB MB GB TB c")
    number = float(match.group(1))
    if not math.isfinite(number):
        raise ValueError(f"value {text!r} is not finite")
    return number, unit


def _bound(text: str, name: str, scale: float) -> float | None:
    if not text:
        return None
    if not _NUMBER.match(text):
        raise ValueError(f"{name} {text!r} is not a number")
    return float(text) * scale


def _base_unit(unit: str) -> str:
    if unit in TIME_UNITS:
        return "s"
    if unit in BYTE_UNITS:
        return "B"
    return unit


class Range(NamedTuple):
    """A Nagios threshold range: alert when the value is outside [low, high] (inside if
    ``inside``)."""

    low: float
    high: float
    inside: bool

    def alerts(self, value: float) -> bool:
        within = self.low <= value <= self.high
        return within if self.inside else not within


def check_range(text: str, name: str = "range") -> Range:
    """Parse a Nagios range (``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``)."""
    body = text[1:] if text.startswith("@") else text
    low_text, colon, high_text = body.partition(":")
    if not colon:
        low_text, high_text = "0", body
    low = -math.inf if low_text == "~" else (_range_number(low_text, text, name)
                                             if low_text else 0.0)
    high = _range_number(high_text, text, name) if high_text else math.inf
    if low > high:
        raise ValueError(f"{name} {text!r}: start is above end")
    return Range(low, high, inside=text.startswith("@"))


def _range_number(part: str, text: str, name: str) -> float:
    if not _NUMBER.match(part):
        raise ValueError(f"{name} {text!r} is not a Nagios range (10, 10:, ~:10, 10:20, @10:20)")
    return float(part)
