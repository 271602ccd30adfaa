"""Thresholds on a measured value: the one place that turns numbers into statuses.

A :class:`Threshold` has optional ``warn_above``/``crit_above`` (too high is bad) and
``warn_below``/``crit_below`` (too low is bad) limits; values *at* a limit count as past it.
"""

from __future__ import annotations

import re

import msgspec

from watchkeeper.model import Status


class Threshold(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    warn_above: float | None = None
    crit_above: float | None = None
    warn_below: float | None = None
    crit_below: float | None = None


def judge(name: str, value: float, limits: Threshold | None, unit: str = "") -> tuple[Status, str]:
    """The status of ``value`` against ``limits`` and a note saying why (empty when OK)."""
    if limits is None:
        return Status.OK, ""
    shown = f"{name} {value:g}{unit}"
    for status, above, below in (
        (Status.CRITICAL, limits.crit_above, limits.crit_below),
        (Status.WARNING, limits.warn_above, limits.warn_below),
    ):
        if above is not None and value >= above:
            return status, f"{shown} >= {above:g}{unit}"
        if below is not None and value <= below:
            return status, f"{shown} <= {below:g}{unit}"
    return Status.OK, ""


def check_regex(pattern: str) -> None:
    """Raise ValueError (which option validation reports) when ``pattern`` does not compile."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
