"""Numbers for people: a measurement's value in the unit a reader expects, to 3 digits.

``human(23607435264.0, "B")`` is ``22 GiB``, ``human(149.92183399999703, "ms")`` is
``150 ms``, ``human(0.000512, "s")`` is ``512 µs``, ``human(9.4e9, "bit/s")`` is ``9.4
Gbit/s``, ``human(1234567, "")`` is ``1,234,567``. Bytes scale by 1024 (KiB, MiB ...),
bits and other rates by 1000 (k, M, G ...), time moves between µs, ms, s, min, h and d.
Pure functions: the HTML report and any table may use them.
"""

from __future__ import annotations

import math
from typing import Final

_BINARY: Final = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL: Final = ("", "k", "M", "G", "T", "P", "E")
_TIME: Final = (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3),
                ("µs", 1e-6), ("ns", 1e-9))
_SECONDS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0,
                   "h": 3_600.0, "d": 86_400.0}
_SCALED: Final = {"B": (1024.0, _BINARY), "B/s": (1024.0, _BINARY),
                  "bit/s": (1000.0, _DECIMAL), "bps": (1000.0, _DECIMAL),
                  "Hz": (1000.0, _DECIMAL), "pps": (1000.0, _DECIMAL)}


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, without an exponent or trailing zeros;
    whole numbers of ``10 ** digits`` and more keep all their digits, grouped by commas."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{round(value):,}"
    text = f"{value:.{digits - 1 - magnitude}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def human(value: float, unit: str) -> str:
    """``value`` of ``unit`` as a person reads it (see the module's examples)."""
    if unit in _SECONDS:
        return _duration(value * _SECONDS[unit])
    if unit in _SCALED:
        base, prefixes = _SCALED[unit]
        return _scaled(value, unit, base, prefixes)
    if unit == "%":
        return f"{significant(value)} %"
    if not unit:
        return significant(value) if value != round(value) else f"{round(value):,}"
    return f"{significant(value)} {unit}"


def _scaled(value: float, unit: str, base: float, prefixes: tuple[str, ...]) -> str:
    step = 0
    while abs(value) >= base and step < len(prefixes) - 1:
        value /= base
        step += 1
    return f"{significant(value)} {prefixes[step]}{unit}"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds == 0:
        return f"{significant(seconds)} s"
    name, size = _TIME[-1]
    for name, size in _TIME:  # noqa: B007 - the last pair is the answer for tiny values
        if abs(seconds) >= size:
            break
    return f"{significant(seconds / size)} {name}"
