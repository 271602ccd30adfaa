"""Binary operators: arithmetic, comparisons (filtering or ``bool``) and the set operators,
between scalars and vectors, with ``on``/``ignoring`` and ``group_left``/``group_right``
matching as Prometheus does it, step by step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from watchkeeper.archive.promql.values import (
    NAME,
    Floats,
    Labels,
    Mask,
    Series,
    drop_name,
    merge_same,
)
from watchkeeper.errors import BadQuery, QueryError

ARITHMETIC: Final[dict[str, Callable[[Floats, Floats], Floats]]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
    "%": np.fmod, "^": np.power, "atan2": np.arctan2,
}
COMPARISON: Final[dict[str, Callable[[Floats, Floats], np.ndarray]]] = {
    "==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less,
    ">=": np.greater_equal, "<=": np.less_equal,
}
SETS: Final = frozenset({"and", "or", "unless"})
DROPS_NAME: Final = frozenset({"+", "-", "*", "/", "%", "^"})
"""Operators whose result loses the metric name (Prometheus 2.x keeps it for atan2)."""


@dataclass(frozen=True)
class Matching:
    """How two vectors' series are paired (``on``/``ignoring``, ``group_*``)."""

    on: bool = False
    labels: tuple[str, ...] = ()
    card: str = "one-to-one"  # many-to-one (group_left), one-to-many (group_right), many-to-many
    include: tuple[str, ...] = ()
    bool_: bool = False


def elementwise(op: str, lhs: Floats, rhs: Floats) -> tuple[Floats, np.ndarray]:
    """The value and whether to keep it: comparisons keep the left value where true."""
    with np.errstate(all="ignore"):
        if op in ARITHMETIC:
            return ARITHMETIC[op](lhs, rhs), np.ones(np.broadcast(lhs, rhs).shape, dtype=bool)
        if op in COMPARISON:
            return np.broadcast_to(lhs, np.broadcast(lhs, rhs).shape).astype(np.float64), \
                COMPARISON[op](lhs, rhs)
    raise BadQuery(f"operator {op!r} is not supported")


def scalar_scalar(op: str, lhs: Floats, rhs: Floats) -> Floats:
    value, keep = elementwise(op, lhs, rhs)
    return keep.astype(np.float64) if op in COMPARISON else value


def vector_scalar(op: str, vec: list[Series], scalar: Floats, *, scalar_left: bool,
                  bool_: bool) -> list[Series]:
    out = []
    for s in vec:
        lhs, rhs = (scalar, s.values) if scalar_left else (s.values, scalar)
        value, keep = elementwise(op, lhs, rhs)
        if op in COMPARISON and scalar_left:
            value = s.values
        labels = s.labels
        if bool_:
            value, keep = keep.astype(np.float64), np.ones_like(keep)
        if op in DROPS_NAME or bool_:
            labels = drop_name(labels)
        present = s.present & keep
        if present.any():
            out.append(Series(labels, value, present))
    return merge_same(out) if op in DROPS_NAME or bool_ else out


def _signature(labels: Labels, m: Matching) -> tuple[tuple[str, str], ...]:
    if m.on:
        return tuple(sorted((k, labels[k]) for k in m.labels if k in labels))
    drop = {*m.labels, NAME}
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def vector_vector(op: str, lhs: list[Series], rhs: list[Series], m: Matching,
                  n: int) -> list[Series]:
    if op in SETS:
        return _set_op(op, lhs, rhs, m, n)
    many, one = (rhs, lhs) if m.card == "one-to-many" else (lhs, rhs)
    ones = _one_side(one, m)
    out: list[Series] = []
    taken: dict[tuple[tuple[str, str], ...], Mask] = {}
    for s in many:
        sig = _signature(s.labels, m)
        for partner in ones.get(sig, ()):
            both = s.present & partner.present
            if not both.any():
                continue
            if m.card == "one-to-one":
                seen = taken.setdefault(sig, np.zeros(n, dtype=bool))
                if (seen & both).any():
                    raise QueryError("multiple matches for labels: many-to-one matching must be "
                                     "explicit (group_left/group_right)")
                seen |= both
            paired = _pair(op, s, partner, both, m)
            if paired is not None:
                out.append(paired)
    try:
        return merge_same(out)
    except QueryError:
        if m.card == "one-to-one":
            raise
        raise QueryError("multiple matches for labels: grouping labels must ensure unique "
                         "matches") from None


def _one_side(one: list[Series], m: Matching) -> dict[tuple[tuple[str, str], ...], list[Series]]:
    """The "one" side by signature; two of a signature present at once is an error."""
    ones: dict[tuple[tuple[str, str], ...], list[Series]] = {}
    for s in one:
        ones.setdefault(_signature(s.labels, m), []).append(s)
    for sig, group in ones.items():
        if len(group) > 1 and _overlap(group):
            side = "left" if m.card == "one-to-many" else "right"
            raise QueryError(f"found duplicate series for the match group {_show(sig)} on the "
                             f"{side} hand-side of the operation; many-to-many matching not "
                             "allowed: matching labels must be unique on one side")
    return ones


def _pair(op: str, many: Series, one: Series, both: Mask, m: Matching) -> Series | None:
    """``many op one`` (sides swapped back for group_right) where both are present."""
    lv, rv = (one.values, many.values) if m.card == "one-to-many" else (many.values, one.values)
    value, keep = elementwise(op, lv, rv)
    if m.bool_:
        value, keep = keep.astype(np.float64), np.ones_like(keep)
    present = both & keep
    if not present.any():
        return None
    return Series(_result_labels(many.labels, one.labels, op, m), value, present)


def _result_labels(many: Labels, one: Labels, op: str, m: Matching) -> Labels:
    labels = dict(many)
    if op in DROPS_NAME or m.bool_:
        labels.pop(NAME, None)
    if m.card == "one-to-one":
        if m.on:
            labels = {k: v for k, v in labels.items() if k in m.labels}
        else:
            for name in m.labels:
                labels.pop(name, None)
    for name in m.include:
        if one.get(name):
            labels[name] = one[name]
        else:
            labels.pop(name, None)
    return labels


def _overlap(group: Sequence[Series]) -> bool:
    total = np.zeros_like(group[0].present, dtype=np.int64)
    for s in group:
        total += s.present
    return bool((total > 1).any())


def _presence(series: list[Series], m: Matching, n: int) -> dict[tuple[tuple[str, str], ...],
                                                                  np.ndarray]:
    out: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
    for s in series:
        sig = _signature(s.labels, m)
        have = out.get(sig)
        out[sig] = s.present.copy() if have is None else have | s.present
    return out


def _set_op(op: str, lhs: list[Series], rhs: list[Series], m: Matching, n: int) -> list[Series]:
    none = np.zeros(n, dtype=bool)
    if op == "and":
        right = _presence(rhs, m, n)
        return [Series(s.labels, s.values, keep, s.stamps) for s in lhs
                if (keep := s.present & right.get(_signature(s.labels, m), none)).any()]
    if op == "unless":
        right = _presence(rhs, m, n)
        return [Series(s.labels, s.values, keep, s.stamps) for s in lhs
                if (keep := s.present & ~right.get(_signature(s.labels, m), none)).any()]
    left = _presence(lhs, m, n)
    out = list(lhs)
    for s in rhs:
        keep = s.present & ~left.get(_signature(s.labels, m), none)
        if keep.any():
            out.append(Series(s.labels, s.values, keep, s.stamps))
    return merge_same(out)


def _show(sig: tuple[tuple[str, str], ...]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sig) + "}"

