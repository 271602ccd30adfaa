"""The values a PromQL expression evaluates to over the steps of a query, and its errors.

Time is in integer milliseconds (as in Prometheus), values are float64. An instant vector
over ``n`` steps is a list of :class:`Series`, each with a value and a presence flag per
step (NaN is a value in PromQL, so absence needs its own mask). A scalar is one float64
array of ``n``. A range vector, which only a function argument can be, is a
:class:`RangeArg`: raw samples and the window each step looks at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from watchkeeper.errors import QueryError
from watchkeeper.model.promlabels import STALE_BITS as _STALE

STALE_BITS: Final = np.uint64(_STALE)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Labels = dict[str, str]
NAME: Final = "__name__"
_T = TypeVar("_T", bound="np.generic[Any]")


@dataclass
class Series:
    """One series of an instant vector over the steps: ``values[i]`` counts where
    ``present[i]``. ``stamps`` (selector results only) holds each step's sample time."""

    labels: Labels
    values: Floats
    present: Mask
    stamps: Ints | None = None


@dataclass
class Raw:
    """Stored samples of one series, ascending in time (ms)."""

    labels: Labels
    ts: Ints
    values: Floats


@dataclass
class Samples:
    """Stored samples of several series laid end to end, as the archive reads them: series
    ``i`` (``labels[i]``) owns rows ``bounds[i]:bounds[i + 1]`` of ``ts`` and ``values``."""

    labels: list[Labels]
    ts: Ints
    values: Floats
    bounds: Ints
    bare: list[Labels] | None = None
    """Each series' labels without ``__name__``, when the selector already knows them."""

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def of(cls, raws: list[Raw]) -> Samples:
        bounds = np.zeros(len(raws) + 1, dtype=np.int64)
        np.cumsum([len(r.ts) for r in raws], out=bounds[1:])
        if not raws:
            return cls([], np.zeros(0, dtype=np.int64), np.zeros(0), bounds)
        return cls([r.labels for r in raws], np.concatenate([r.ts for r in raws]),
                   np.concatenate([r.values for r in raws]), bounds)

    def part(self, lo: int, hi: int) -> Samples:
        """Series ``lo`` to ``hi`` (views, no copy)."""
        base = self.bounds[lo]
        return Samples(self.labels[lo:hi], self.ts[base:self.bounds[hi]],
                       self.values[base:self.bounds[hi]], self.bounds[lo:hi + 1] - base,
                       None if self.bare is None else self.bare[lo:hi])

    @classmethod
    def joined(cls, parts: list[Samples]) -> Samples:
        """Several reads' samples, one after another."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls.of([])
        offsets = np.cumsum([0] + [len(p.ts) for p in parts])
        bounds = np.concatenate([[0]] + [p.bounds[1:] + int(o)
                                         for p, o in zip(parts, offsets[:-1].tolist(),
                                                         strict=True)])
        bare = None if any(p.bare is None for p in parts) else [
            labels for p in parts for labels in p.bare or ()]
        return cls([labels for p in parts for labels in p.labels],
                   np.concatenate([p.ts for p in parts]),
                   np.concatenate([p.values for p in parts]), bounds.astype(np.int64), bare)


    def fresh(self) -> Samples:
        """These samples without Prometheus' stale markers (a range function never sees
        one), and without the series left with none."""
        stale = self.values.view(np.uint64) == STALE_BITS
        if not stale.any():
            return self
        kept = np.concatenate(([0], np.cumsum(~stale)))[self.bounds]
        has = (np.diff(kept) > 0).tolist()
        bounds = kept[np.append(has, True)]
        return Samples([labels for labels, ok in zip(self.labels, has, strict=True) if ok],
                       self.ts[~stale], self.values[~stale], bounds.astype(np.int64),
                       None if self.bare is None
                       else [b for b, ok in zip(self.bare, has, strict=True) if ok])


@dataclass
class RangeArg:
    """A range vector argument: each step ``i`` looks at ``[ref[i] - range, ref[i]]``."""

    series: Samples
    range_ms: int
    ref: Ints
    matchers: tuple[tuple[str, str, str], ...] = field(default=())


def rows(arrays: list[npt.NDArray[_T]], n: int) -> npt.NDArray[_T]:
    """Arrays of ``n`` values each (a series' values or presence) as the rows of one 2-d
    array: ``np.stack`` checks each one's shape, 5x slower for 900 series."""
    return np.concatenate(arrays).reshape(len(arrays), n)


def key(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    """A hashable identity of a label set (no sort: it is computed for every series)."""
    return frozenset(labels.items())


def drop_name(labels: Labels) -> Labels:
    if NAME not in labels:
        return labels
    return {k: v for k, v in labels.items() if k != NAME}


def merge_same(series: list[Series]) -> list[Series]:
    """Series with equal labels joined into one, as Prometheus' result has one series per
    label set; two present at the same step is the error Prometheus reports."""
    groups: dict[frozenset[tuple[str, str]], Series] = {}
    out: list[Series] = []
    for s in series:
        k = key(s.labels)
        have = groups.get(k)
        if have is None:
            groups[k] = s
            out.append(s)
            continue
        if bool(np.any(have.present & s.present)):
            raise QueryError("vector cannot contain metrics with the same labelset")
        have.values = np.where(s.present, s.values, have.values)
        have.present = have.present | s.present
        have.stamps = None
    return out


def format_value(value: float) -> str:
    """A value as Prometheus writes it (Go's ``FormatFloat(v, 'f', -1, 64)``)."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text:
        return np.format_float_positional(value, trim="-")
    return text[:-2] if text.endswith(".0") else text


def format_values(values: Floats) -> list[str]:
    """:func:`format_value` of each value, fast: msgspec writes a whole array in one call
    (~20 ns a value against ~300 for ``repr``) with the same shortest digits, which are
    Go's text but for whole numbers (``1.0``), exponents (``1e-05``, ``1e16``) and
    NaN/Inf (``null``), fixed up here."""
    if not len(values):
        return []
    texts = msgspec.json.encode(values.tolist())[1:-1].decode().split(",")
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (values == np.trunc(values)) & (np.abs(values) < 1e16)
        odd = ~np.isfinite(values) | (np.abs(values) >= 1e16) | (
            (values != 0) & (np.abs(values) < 1e-4))
    at = np.flatnonzero(whole)
    if len(at):
        ints = values[at].astype(np.int64).tolist()
        negative_zero = (np.signbit(values[at]) & (values[at] == 0)).tolist()
        for i, n, nz in zip(at.tolist(), ints, negative_zero, strict=True):
            texts[i] = "-0" if nz else str(n)
    for i in np.flatnonzero(odd).tolist():
        texts[i] = format_value(float(values[i]))
    return texts


def format_times(ms: Ints) -> list[float | int]:
    """:func:`format_time` of each timestamp."""
    if not len(ms) or not (ms % 1000).any():
        return list((ms // 1000).tolist())
    return [format_time(t) for t in ms.tolist()]


def format_time(ms: int) -> float | int:
    """A timestamp in seconds as Prometheus writes it (milliseconds, no trailing zeros)."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000
