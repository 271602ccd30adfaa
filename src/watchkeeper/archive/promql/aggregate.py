"""Aggregation operators (``sum``, ``topk``, ``quantile``, ``count_values``...) over an
instant vector, step by step, grouped ``by``/``without`` labels as Prometheus groups."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.promql.ranges import nan_losing, quantiles
from watchkeeper.archive.promql.values import (
    NAME,
    Floats,
    Labels,
    Mask,
    Series,
    format_value,
    key,
    rows,
)
from watchkeeper.errors import BadQuery

SUPPORTED: Final = frozenset({"sum", "avg", "count", "min", "max", "stddev", "stdvar",
                              "group", "topk", "bottomk", "quantile", "count_values"})
_LABEL: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def grouping(labels: Labels, names: Sequence[str], without: bool) -> Labels:
    """The labels a series is grouped by (``without`` also drops ``__name__``)."""
    if without:
        drop = {*names, NAME}
        return {k: v for k, v in labels.items() if k not in drop}
    return {k: labels[k] for k in names if k in labels}


def aggregate(op: str, series: list[Series], *, names: Sequence[str], without: bool, n: int,
              param: Floats | str | None) -> list[Series]:
    """``op`` over ``series`` (each ``n`` steps); ``param`` is k, φ or the label name."""
    if not series:
        return aggregate_rows(op, [], np.zeros((0, n)), np.zeros((0, n), dtype=bool),
                              names=names, without=without, param=param)
    return aggregate_rows(op, [s.labels for s in series], rows([s.values for s in series], n),
                          rows([s.present for s in series], n), names=names, without=without,
                          param=param)


def aggregate_rows(op: str, labels: list[Labels], values: Floats, present: Mask, *,
                   names: Sequence[str], without: bool,
                   param: Floats | str | None) -> list[Series]:
    """``op`` over an instant vector held as rows: series ``i`` has ``labels[i]`` and its
    steps' values and presence in row ``i`` of ``values`` and ``present`` (a range
    function's answer, which then never becomes a :class:`Series` each). Groups keep the
    order of their first member, members their order: sums add up as Prometheus adds."""
    if op not in SUPPORTED:
        raise BadQuery(f"aggregation {op!r} is not supported")
    n = values.shape[1]
    groups: dict[frozenset[tuple[str, str]], tuple[Labels, list[int]]] = {}
    found: list[tuple[Labels, npt.NDArray[np.intp] | None]]
    if not names and not without:  # one group, without labels, every row in order
        found = [({}, None)] if len(labels) else []
    else:
        for i, series_labels in enumerate(labels):
            g = grouping(series_labels, names, without)
            groups.setdefault(key(g), (g, []))[1].append(i)
        found = [(g, np.array(members, dtype=np.intp)) for g, members in groups.values()]
    out: list[Series] = []
    for group, members in found:
        mine = range(len(labels)) if members is None else members.tolist()
        vals = values if members is None else values[members]
        pres = present if members is None else present[members]
        if op in ("topk", "bottomk"):
            assert isinstance(param, np.ndarray)
            out.extend(_top([labels[i] for i in mine], vals, pres, param, op == "topk"))
        elif op == "count_values":
            assert isinstance(param, str)
            out.extend(_count_values(group, vals, pres, param, n))
        else:
            assert not isinstance(param, str)
            value = _reduce(op, vals, pres, param)
            out.append(Series(group, value, np.asarray(pres.any(axis=0), dtype=bool)))
    return out


def _reduce(op: str, values: Floats, present: Mask, param: Floats | None) -> Floats:
    with np.errstate(all="ignore"):
        if op == "quantile":
            assert param is not None
            return quantiles(values.T, present.T, param)
        return _REDUCERS[op](values, present)


def _sum(values: Floats, present: Mask) -> Floats:
    total: Floats = np.where(present, values, 0.0).sum(axis=0)
    return total


def _avg(values: Floats, present: Mask) -> Floats:
    count: Floats = present.sum(axis=0).astype(np.float64)
    return _sum(values, present) / count


def _stdvar(values: Floats, present: Mask) -> Floats:
    dev = np.where(present, values - _avg(values, present), 0.0)
    count: Floats = present.sum(axis=0).astype(np.float64)
    squares: Floats = (dev * dev).sum(axis=0)
    return squares / count


_REDUCERS: Final[dict[str, Callable[[Floats, Mask], Floats]]] = {
    "sum": _sum,
    "avg": _avg,
    "count": lambda values, present: present.sum(axis=0).astype(np.float64),
    "group": lambda values, present: np.ones(values.shape[1]),
    "min": nan_losing(np.min, np.inf, axis=0),
    "max": nan_losing(np.max, -np.inf, axis=0),
    "stdvar": _stdvar,
    "stddev": lambda values, present: np.sqrt(_stdvar(values, present)),
}


def _top(labels: list[Labels], values: Floats, present: Mask, k: Floats,
         largest: bool) -> list[Series]:
    """topk/bottomk: each step keeps the k largest (smallest) present values; NaN last."""
    m = len(labels)
    with np.errstate(invalid="ignore"):
        kk = np.where(np.isnan(k), 0, np.clip(k, 0, m)).astype(np.int64)
    sortable = np.where(np.isnan(values), -np.inf if largest else np.inf, values)
    score = np.where(present, -sortable if largest else sortable, np.inf)
    rank = np.argsort(np.argsort(score, axis=0, kind="stable"), axis=0, kind="stable")
    keep = present & (rank < kk[None, :])
    return [Series(labels[i], values[i], keep[i])
            for i in np.flatnonzero(keep.any(axis=1)).tolist()]


def _count_values(labels: Labels, values: Floats, present: Mask, label: str,
                  n: int) -> list[Series]:
    if not _LABEL.match(label):
        raise BadQuery(f"invalid label name {label!r}")
    counts: dict[str, Floats] = {}
    for i in range(values.shape[0]):
        for step in np.flatnonzero(present[i]):
            text = format_value(float(values[i, step]))
            counts.setdefault(text, np.zeros(n))[step] += 1
    return [Series({**labels, label: text}, c, c > 0) for text, c in counts.items()]
