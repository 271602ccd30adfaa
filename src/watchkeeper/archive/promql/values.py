"""The values a PromQL expression evaluates to over the steps of a query, and its errors.

Time is in integer milliseconds (as in Prometheus), values are float64. An instant vector
over ``n`` steps is a list of :class:`Series`, each with a value and a presence flag per
step (NaN is a value in PromQL, so absence needs its own mask). A scalar is one float64
array of ``n``. A range vector, which only a function argument can be, is a
:class:`RangeArg`: raw samples and the window each step looks at.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
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


class Samples:
    """Stored samples of several series laid end to end, as the archive reads them: series
    ``i`` (``labels[i]``) owns rows ``bounds[i]:bounds[i + 1]`` of ``ts`` and ``values``.

    Samples read as :meth:`apart` hold each series in arrays of its own (views of what the
    archive keeps decoded) and lay them end to end only when ``ts`` or ``values`` is
    asked for: ``rate`` and its kin read them where they lie (:meth:`pieces`), sparing a
    copy of every sample (a day of 900 series: 83 MB)."""

    __slots__ = ("_at", "_pieces", "_ts", "_values", "bare", "bounds", "labels")

    def __init__(self, labels: list[Labels], ts: Ints, values: Floats, bounds: Ints,
                 bare: list[Labels] | None = None) -> None:
        self.labels = labels
        self._ts: Ints | None = ts
        self._values: Floats | None = values
        self.bounds = bounds
        self.bare = bare
        """Each series' labels without ``__name__``, when the selector already knows them."""
        self._pieces: tuple[list[Ints], list[Floats]] | None = None
        self._at: Addresses | None = None

    @classmethod
    def apart(cls, labels: list[Labels], ts: list[Ints], values: list[Floats],
              bare: list[Labels] | None = None) -> Samples:
        """Series ``i``'s samples in ``ts[i]`` and ``values[i]`` (read, never written)."""
        bounds = np.zeros(len(ts) + 1, dtype=np.int64)
        np.cumsum([len(t) for t in ts], out=bounds[1:])
        made = cls(labels, np.empty(0, np.int64), np.empty(0), bounds, bare)
        made._ts = made._values = None
        made._pieces = (ts, values)
        return made

    @property
    def ts(self) -> Ints:
        if self._ts is None:
            self._ts = _joined(self.pieces()[0], np.int64)
        return self._ts

    @property
    def values(self) -> Floats:
        if self._values is None:
            self._values = _joined(self.pieces()[1], np.float64)
        return self._values

    def pieces(self) -> tuple[list[Ints], list[Floats]]:
        """Each series' ``ts`` and ``values`` arrays (views)."""
        if self._pieces is None:
            assert self._ts is not None
            assert self._values is not None
            cuts = self.bounds.tolist()
            ts, values = self._ts, self._values
            self._pieces = ([ts[lo:hi] for lo, hi in itertools.pairwise(cuts)],
                            [values[lo:hi] for lo, hi in itertools.pairwise(cuts)])
        return self._pieces

    def addresses(self) -> Addresses:
        """Where each series' arrays lie (:func:`addresses`), found once; arrays the
        loops cannot read as they are (strided, another type or byte order: not what the
        archives hand out) are copied first, and kept here while the loops read them."""
        if self._at is None:
            ts, values = self.pieces()
            try:
                self._at = addresses(ts, values)
            except ValueError:
                ts = [np.ascontiguousarray(t, dtype=np.int64) for t in ts]
                values = [np.ascontiguousarray(v, dtype=np.float64) for v in values]
                self._pieces = (ts, values)
                self._at = addresses(ts, values)
        return self._at

    def laid(self) -> Samples:
        """These samples laid end to end (a copy, unless they are already)."""
        if self.laid_out:
            return self
        return Samples(self.labels, self.ts, self.values, self.bounds, self.bare)

    @property
    def laid_out(self) -> bool:
        """Whether the samples lie end to end already (no copy to make for ``ts``)."""
        return self._ts is not None

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
        bare = None if self.bare is None else self.bare[lo:hi]
        if not self.laid_out:
            ts, values = self.pieces()
            part = Samples.apart(self.labels[lo:hi], ts[lo:hi], values[lo:hi], bare)
            if self._at is not None:
                part._at = (self._at[0][lo:hi], self._at[1][lo:hi], self._at[2][lo:hi])
            return part
        base = self.bounds[lo]
        return Samples(self.labels[lo:hi], self.ts[base:self.bounds[hi]],
                       self.values[base:self.bounds[hi]], self.bounds[lo:hi + 1] - base, bare)

    @classmethod
    def joined(cls, parts: list[Samples]) -> Samples:
        """Several reads' samples, one after another."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls.of([])
        bare = None if any(p.bare is None for p in parts) else [
            labels for p in parts for labels in p.bare or ()]
        labels = [labels for p in parts for labels in p.labels]
        if not any(p.laid_out for p in parts):
            return cls.apart(labels, [t for p in parts for t in p.pieces()[0]],
                             [v for p in parts for v in p.pieces()[1]], bare)
        offsets = np.cumsum([0] + [len(p.ts) for p in parts])
        bounds = np.concatenate([[0]] + [p.bounds[1:] + int(o)
                                         for p, o in zip(parts, offsets[:-1].tolist(),
                                                         strict=True)])
        return cls(labels, np.concatenate([p.ts for p in parts]),
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


Addresses = tuple[Ints, Ints, Ints]
"""Where series lie in memory: each one's ``ts`` and ``values`` address, and length."""


def addresses(ts: Sequence[Ints], values: Sequence[Floats]) -> Addresses:
    """Where each series' arrays lie in memory, and their lengths, for the compiled loops
    to read them in place (:mod:`kernels`)."""
    ts_at, lengths = where(ts, np.int64)
    values_at, value_lengths = where(values, np.float64)
    if not np.array_equal(lengths, value_lengths):
        raise ValueError("each series needs ts and values of one length")
    return ts_at, values_at, lengths


def where(arrays: Sequence[npt.NDArray[Any]], dtype: type[np.generic]) -> tuple[Ints, Ints]:
    """Each array's address and length; each must be 1-d, contiguous, of ``dtype`` (the
    loops read raw memory: anything else is refused here)."""
    typestr = np.dtype(dtype).str
    faces = [a.__array_interface__ for a in arrays]
    if any(f["typestr"] != typestr or f["strides"] is not None or len(f["shape"]) != 1
           for f in faces):
        raise ValueError(f"the loops read 1-d contiguous arrays of {np.dtype(dtype)}")
    return (np.array([f["data"][0] for f in faces], dtype=np.int64).reshape(-1),
            np.array([f["shape"][0] for f in faces], dtype=np.int64).reshape(-1))


def _joined(arrays: list[npt.NDArray[_T]], dtype: type[_T]) -> npt.NDArray[_T]:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays \
        else np.empty(0, dtype=dtype)


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
