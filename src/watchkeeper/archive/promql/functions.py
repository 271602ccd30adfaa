"""PromQL functions over instant vectors and scalars (math, clamps, time, labels,
``histogram_quantile``, ``absent``); the range-vector ones are in :mod:`.ranges`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.promql.values import (
    NAME,
    Floats,
    Labels,
    Mask,
    Series,
    drop_name,
    key,
    merge_same,
    rows,
)
from watchkeeper.errors import BadQuery

_LABEL: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TEMPLATE: Final = re.compile(r"\$(\$|\{([^}]*)\}|([a-zA-Z0-9_]+))")

MATH: Final[dict[str, Callable[[Floats], Floats]]] = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "exp": np.exp, "ln": np.log,
    "log2": np.log2, "log10": np.log10, "sqrt": np.sqrt, "sgn": np.sign,
    "acos": np.arccos, "acosh": np.arccosh, "asin": np.arcsin, "asinh": np.arcsinh,
    "atan": np.arctan, "atanh": np.arctanh, "cos": np.cos, "cosh": np.cosh, "sin": np.sin,
    "sinh": np.sinh, "tan": np.tan, "tanh": np.tanh, "deg": np.degrees, "rad": np.radians,
}
TIME_PARTS: Final = frozenset({"day_of_month", "day_of_week", "day_of_year", "days_in_month",
                               "hour", "minute", "month", "year"})


def apply_math(name: str, vec: list[Series]) -> list[Series]:
    fn = MATH[name]
    with np.errstate(all="ignore"):
        out = [Series(drop_name(s.labels), fn(s.values), s.present) for s in vec]
    return merge_same(out)


def mapped(vec: list[Series], fn: Callable[[Floats], Floats]) -> list[Series]:
    """``fn`` over each series' values, the metric name dropped (clamp, round, ...)."""
    with np.errstate(all="ignore"):
        return merge_same([Series(drop_name(s.labels), fn(s.values), s.present) for s in vec])


def round_to(values: Floats, nearest: Floats) -> Floats:
    inverse = 1.0 / nearest
    return np.floor(values * inverse + 0.5) / inverse


def clamp(vec: list[Series], low: Floats, high: Floats) -> list[Series]:
    """Prometheus' clamp: nothing at a step where ``high < low``."""
    ok = ~(high < low)
    with np.errstate(all="ignore"):
        out = [Series(drop_name(s.labels), np.maximum(low, np.minimum(high, s.values)),
                      s.present & ok) for s in vec]
    return merge_same([s for s in out if s.present.any()])


def time_part(name: str, seconds: Floats) -> Floats:
    """The UTC calendar field ``name`` of each timestamp (seconds)."""
    finite = np.isfinite(seconds)
    secs = np.trunc(np.where(finite, seconds, 0)).astype(np.int64).astype("datetime64[s]")
    days = secs.astype("datetime64[D]")
    months = secs.astype("datetime64[M]")
    years = secs.astype("datetime64[Y]")
    if name == "year":
        out = years.astype(np.int64) + 1970
    elif name == "month":
        out = (months - years).astype(np.int64) + 1
    elif name == "day_of_month":
        out = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "day_of_year":
        out = (days - years.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "day_of_week":
        out = (days.astype(np.int64) + 4) % 7
    elif name == "days_in_month":
        out = ((months + 1).astype("datetime64[D]") - months.astype("datetime64[D]")).astype(
            np.int64)
    elif name == "hour":
        out = (secs - days.astype("datetime64[s]")).astype(np.int64) // 3600
    else:
        out = (secs - days.astype("datetime64[s]")).astype(np.int64) // 60 % 60
    return np.where(finite, out.astype(np.float64), np.nan)


def label_replace(vec: list[Series], dst: str, replacement: str, src: str,
                  regex: str) -> list[Series]:
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise BadQuery(f"invalid regular expression in label_replace(): {regex}: {exc}") \
            from None
    if not _LABEL.match(dst):
        raise BadQuery(f"invalid destination label name in label_replace(): {dst}")
    out = []
    for s in vec:
        found = pattern.fullmatch(s.labels.get(src, ""))
        if found is None:
            out.append(s)
            continue
        value = _expand(replacement, found)
        labels = {k: v for k, v in s.labels.items() if k != dst}
        if value:
            labels[dst] = value
        out.append(Series(labels, s.values, s.present, s.stamps))
    return merge_same(out)


def _expand(template: str, found: re.Match[str]) -> str:
    """Go's regexp Expand: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    def one(m: re.Match[str]) -> str:
        if m.group(1) == "$":
            return "$"
        name = m.group(2) if m.group(2) is not None else m.group(3)
        if name.isdigit():
            index = int(name)
            return (found.group(index) or "") if index <= (found.re.groups) else ""
        try:
            return found.group(name) or ""
        except IndexError:
            return ""
    return _TEMPLATE.sub(one, template)


def label_join(vec: list[Series], dst: str, sep: str, srcs: Sequence[str]) -> list[Series]:
    if not _LABEL.match(dst):
        raise BadQuery(f"invalid destination label name in label_join(): {dst}")
    for src in srcs:
        if not _LABEL.match(src):
            raise BadQuery(f"invalid source label name in label_join(): {src}")
    out = []
    for s in vec:
        value = sep.join(s.labels.get(src, "") for src in srcs)
        labels = {k: v for k, v in s.labels.items() if k != dst}
        if value:
            labels[dst] = value
        out.append(Series(labels, s.values, s.present, s.stamps))
    return merge_same(out)


def absent_labels(matchers: Sequence[tuple[str, str, str]]) -> Labels:
    """The labels ``absent`` answers with: the selector's equality matchers (a label named
    twice is left out; ``__name__`` never)."""
    labels: Labels = {}
    twice: set[str] = set()
    for name, op, value in matchers:
        if op != "=" or name == NAME:
            continue
        if name in labels:
            twice.add(name)
        labels[name] = value
    return {k: v for k, v in labels.items() if k not in twice}


def scalar_of(vec: list[Series], n: int) -> Floats:
    count = np.zeros(n, dtype=np.int64)
    value = np.full(n, np.nan)
    for s in vec:
        count += s.present
        value = np.where(s.present, s.values, value)
    return np.where(count == 1, value, np.nan)


def histogram_quantile(q: Floats, vec: list[Series], n: int) -> list[Series]:
    """Prometheus' bucketQuantile over classic ``le`` buckets, grouped by every other
    label (the metric name dropped)."""
    groups: dict[frozenset[tuple[str, str]], tuple[Labels, list[tuple[float, Series]]]] = {}
    for s in vec:
        le = s.labels.get("le")
        if le is None:
            continue
        try:
            bound = float(le)
        except ValueError:
            continue
        labels = {k: v for k, v in s.labels.items() if k not in ("le", NAME)}
        groups.setdefault(key(labels), (labels, []))[1].append((bound, s))
    out = []
    for labels, members in groups.values():
        members.sort(key=lambda pair: pair[0])
        bounds = np.array([b for b, _ in members])
        counts = rows([s.values for _, s in members], n)
        present = rows([s.present for _, s in members], n)
        any_present: Mask = np.asarray(present.any(axis=0), dtype=bool)
        value = np.full(n, np.nan)
        for pattern, steps in _patterns(present):
            if pattern.any():
                value[steps] = _bucket_quantile(q[steps], bounds[pattern],
                                                counts[pattern][:, steps])
        out.append(Series(labels, value, any_present))
    return out


def _patterns(present: Mask) -> list[tuple[Mask, npt.NDArray[np.intp]]]:
    """The distinct columns of ``present`` (which buckets each step has) and the steps of
    each; the columns read as integers when there are few buckets (np.unique of bool
    rows sorts them as records, ~4 ms for 1,440 steps)."""
    if present.all():
        return [(present[:, 0], np.arange(present.shape[1]))]
    if present.shape[0] <= 62:
        codes = (present.T.astype(np.int64) << np.arange(present.shape[0])).sum(axis=1)
        found, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        return [(present[:, first[p]], np.flatnonzero(inverse == p)) for p in range(len(found))]
    patterns, inverse = np.unique(present.T, axis=0, return_inverse=True)
    return [(pattern, np.flatnonzero(inverse.reshape(-1) == p))
            for p, pattern in enumerate(patterns)]


def _bucket_quantile(q: Floats, bounds: Floats, counts: Floats) -> Floats:
    k = counts.shape[1]
    # equal bounds (le="1" and le="1.0") are one bucket
    unique = np.unique(bounds)
    if len(unique) != len(bounds):
        merged = np.zeros((len(unique), k))
        np.add.at(merged, np.searchsorted(unique, bounds), counts)
        bounds, counts = unique, merged
    with np.errstate(all="ignore"):
        counts = np.fmax.accumulate(counts, axis=0)
        m = len(bounds)
        if bounds[-1] != np.inf or m < 2:
            result = np.full(k, np.nan)
        else:
            total = counts[-1]
            rank = q * total
            reached = counts[:-1] >= rank[None, :]
            b = np.where(reached.any(axis=0), np.argmax(reached, axis=0), m - 1)
            cols = np.arange(k)
            prev = np.where(b > 0, counts[np.maximum(b - 1, 0), cols], 0.0)
            start = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
            end = bounds[b]
            inside = start + (end - start) * ((rank - prev) / (counts[b, cols] - prev))
            result = np.where(b == m - 1, bounds[m - 2],
                              np.where((b == 0) & (bounds[0] <= 0), bounds[0], inside))
            result = np.where(total == 0, np.nan, result)
    result = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, result))
    return np.where(np.isnan(q), np.nan, result)
