"""Checking posted values against their event type's data type, as esmond's validators do.

Pure functions. :func:`coerce` turns what a client posted into the value stored, or
raises :class:`~watchkeeper.errors.InvalidData` whose message starts with esmond's own
text (clients print it) and then says where: which event type, which field, what came.

Coercion follows esmond (``int()``/``float()`` of the value), with three fixes recorded
in docs/decisions_esmond.md: booleans, NaN and infinities are refused, histogram counts
must not be negative, and an empty histogram is refused (esmond crashed on it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from watchkeeper.archive.esmond.types import DataType
from watchkeeper.errors import InvalidData

MIN_TS: Final = 0
MAX_TS: Final = 253_402_300_799  # 9999-12-31T23:59:59Z: the client cannot show later times
_MAX_COUNT: Final = 2**63 - 1


class Percentage(NamedTuple):
    """A percentage point: ``numerator / denominator``."""

    numerator: int
    denominator: int

    @property
    def ratio(self) -> float:
        return self.numerator / self.denominator


Value = int | float | Percentage | dict[str, int] | list[Any] | Any
"""A checked value: int, float, Percentage, histogram, subintervals or any JSON value."""


def coerce(data_type: DataType, value: object, *, where: str) -> Value:
    """The value to store for a point of ``data_type``; ``where`` names it in errors."""
    return _COERCERS[data_type](value, where)


def timestamp(value: object, *, where: str) -> int:
    """A point's ``ts`` as whole seconds (fractions dropped, as esmond does)."""
    try:
        ts = _integer(value)
    except (TypeError, ValueError, OverflowError):
        raise _invalid("Time must be a unix timestamp", where, value) from None
    if not MIN_TS <= ts <= MAX_TS:
        raise _invalid(f"Time must be a unix timestamp between {MIN_TS} and {MAX_TS}",
                       where, value)
    return ts


def _invalid(text: str, where: str, value: object) -> InvalidData:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidData(f"{text} ({where}: got {shown})")


def _integer(value: object) -> int:
    """``int()`` as esmond applies it, minus booleans and non-finite floats."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)  # truncates toward zero; OverflowError/ValueError on inf/NaN
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"{type(value).__name__} is not a number")


def _integer_value(value: object, where: str) -> int:
    try:
        number = _integer(value)
    except (TypeError, ValueError, OverflowError):
        raise _invalid("Value must be an integer", where, value) from None
    if abs(number) > _MAX_COUNT:
        raise _invalid("Value must be an integer within ±2**63", where, value)
    return number


def _to_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def _float_value(value: object, where: str) -> float:
    number = _to_float(value)
    if number is None:
        raise _invalid("Value must be a floating point number", where, value)
    if not math.isfinite(number):
        raise _invalid("Value must be a finite floating point number", where, value)
    return number


def _percentage_value(value: object, where: str) -> Percentage:
    if not isinstance(value, Mapping):
        raise _invalid("Missing required field 'numerator'", where, value)
    for name in ("numerator", "denominator"):
        if name not in value:
            raise _invalid(f"Missing required field '{name}'", where, value)
    parts = {}
    for name in ("numerator", "denominator"):
        try:
            parts[name] = _integer(value[name])
        except (TypeError, ValueError, OverflowError):
            raise _invalid(f"The field '{name}' must be an integer", where, value) from None
    if parts["denominator"] <= 0:
        raise _invalid("The field 'denominator' must be greater than 0", where, value)
    if parts["numerator"] < 0:
        raise _invalid("The field 'numerator' cannot be negative", where, value)
    if max(parts.values()) > _MAX_COUNT:
        raise _invalid("The fields of a percentage must be below 2**63", where, value)
    return Percentage(parts["numerator"], parts["denominator"])


def _histogram_value(value: object, where: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise _invalid("Invalid histogram provided", where, value)
    if not value:
        raise _invalid("Invalid histogram provided: it has no buckets", where, value)
    histogram: dict[str, int] = {}
    for bucket, count in value.items():
        try:
            number = _integer(count)
        except (TypeError, ValueError, OverflowError):
            raise _invalid(f"Value of histogram must be an integer (bucket {bucket!r})",
                           where, value) from None
        if not 0 <= number <= _MAX_COUNT:
            raise _invalid(f"Value of histogram must be a count from 0 to 2**63-1 "
                           f"(bucket {bucket!r})", where, value)
        histogram[str(bucket)] = number
    return histogram


def _subinterval_value(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid("Invalid subintervals provided", where, value)
    if not value:
        raise _invalid("Empty subinterval provided", where, value)
    for position, interval in enumerate(value, start=1):
        if not isinstance(interval, Mapping):
            raise _invalid("Invalid subintervals provided", where, value)
        for name in ("start", "duration", "val"):
            if name not in interval:
                raise _invalid(f"Interval must contain '{name}' field at position {position}",
                               where, value)
        for name in ("start", "duration"):
            try:
                _float_value(interval[name], where)
            except InvalidData:
                raise _invalid("Subinterval 'start' and 'duration' must be floating point "
                               f"numbers (position {position})", where, value) from None
    return value


def _json_value(value: object, where: str) -> Any:
    if value is None:
        raise _invalid("Value must be valid JSON other than null", where, value)
    return value


_COERCERS: Final[Mapping[DataType, Callable[[object, str], Value]]] = {
    "integer": _integer_value,
    "float": _float_value,
    "percentage": _percentage_value,
    "histogram": _histogram_value,
    "subinterval": _subinterval_value,
    "json": _json_value,
}
