"""Aggregation operators (``sum``, ``topk``, ``quantile``, ``count_values``...) over an
instant vector, step by step, grouped ``by``/``without`` labels as Prometheus groups."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np

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
    if op not in SUPPORTED:
        raise BadQuery(f"aggregation {op!r} is not supported")
    groups: dict[frozenset[tuple[str, str]], tuple[Labels, list[Series]]] = {}
    if not names and not without:  # one group, without labels
        groups[frozenset()] = ({}, series)
    for s in series if names or without else ():
        g = grouping(s.labels, names, without)
        groups.setdefault(key(g), (g, []))[1].append(s)
    out: list[Series] = []
    for labels, members in groups.values():
        values = rows([m.values for m in members], n)
        present = rows([m.present for m in members], n)
        if op in ("topk", "bottomk"):
            assert isinstance(param, np.ndarray)
            out.extend(_top(members, values, present, param, op == "topk"))
        elif op == "count_values":
            assert isinstance(param, str)
            out.extend(_count_values(labels, values, present, param, n))
        else:
            assert not isinstance(param, str)
            value = _reduce(op, values, present, param)
            out.append(Series(labels, value, np.asarray(present.any(axis=0), dtype=bool)))
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


def _top(members: list[Series], values: Floats, present: Mask, k: Floats,
         largest: bool) -> list[Series]:
    """topk/bottomk: each step keeps the k largest (smallest) present values; NaN last."""
    m = len(members)
    with np.errstate(invalid="ignore"):
        kk = np.where(np.isnan(k), 0, np.clip(k, 0, m)).astype(np.int64)
    sortable = np.where(np.isnan(values), -np.inf if largest else np.inf, values)
    score = np.where(present, -sortable if largest else sortable, np.inf)
    rank = np.argsort(np.argsort(score, axis=0, kind="stable"), axis=0, kind="stable")
    keep = present & (rank < kk[None, :])
    return [Series(members[i].labels, members[i].values, keep[i])
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
