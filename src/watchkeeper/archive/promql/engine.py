"""The PromQL engine: parse with ``promql-parser`` (decision D33), select series from
the archive through the one Prometheus mapping (:mod:`watchkeeper.model.promlabels`), and
evaluate the tree in numpy over all the steps of a query at once.

Semantics are Prometheus 2.x's: a 5-minute lookback delta, windows closed at both ends,
step timestamps ``start + i * step`` (no alignment), subquery steps aligned to multiples
of their step, ``@`` and ``offset`` moving the reference time. What is not implemented is
refused (:class:`BadQuery`, ``bad_data``) naming the function, never answered wrongly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import numpy as np
import promql_parser as pp

from watchkeeper.archive.abc import Archive
from watchkeeper.archive.promql import aggregate, binary, functions, ranges
from watchkeeper.archive.promql.sharing import CORES
from watchkeeper.archive.promql.values import (
    NAME,
    STALE_BITS,
    Floats,
    Ints,
    Labels,
    Mask,
    RangeArg,
    Raw,
    Samples,
    Series,
    drop_name,
    merge_same,
)
from watchkeeper.errors import BadQuery, QueryTimeout, QueryTooLarge
from watchkeeper.model import SeriesKey, promlabels

LOOKBACK_MS: Final = 300_000
SUBQUERY_STEP_MS: Final = 60_000  # Prometheus' default evaluation interval
_READ_BATCH: Final = 1024  # series per archive trip (the archive thread also serves writes)
_APART_SPAN_MS: Final = 3_600_000
"""Reads spanning this long or longer are left where the archive keeps them (D51)."""
_SELECTIONS: Final = 4096  # selectors whose series are remembered
_OFFLOAD_CELLS: Final = 200_000
"""Windows (series x steps) from which the numpy work runs in a worker thread, so a big
query does not hold the event loop (and remote writes) for its whole computation."""
_PARALLEL_CELLS: Final = 250_000  # windows per worker thread, at least
_T = TypeVar("_T")
Value = Floats | list[Series] | str | RangeArg
Matcher = tuple[str, str, str]

_RANGE_FUNCTIONS: Final = frozenset({
    "rate", "increase", "delta", "irate", "idelta", "deriv", "predict_linear", "changes",
    "resets", "quantile_over_time", "holt_winters", "double_exponential_smoothing",
    "absent_over_time", *ranges.OVER_TIME})


@dataclass(frozen=True)
class Limits:
    """What one query may cost before it is refused (documented in docs/promql.md)."""

    max_series: int = 100_000
    """Series all the query's selectors may match together (422 ``execution``)."""
    max_samples: int = 50_000_000
    """Samples loaded plus points computed (Prometheus' ``--query.max-samples``)."""
    timeout: float = 120.0
    """Seconds (Prometheus' ``--query.timeout``); a request's ``timeout`` may lower it."""


@dataclass
class Result:
    """A query's value: ``kind`` is Prometheus' resultType."""

    kind: str  # "scalar" | "vector" | "matrix" | "string"
    steps: Ints
    series: list[Series] = field(default_factory=list)
    scalar: Floats | None = None
    text: str = ""
    raw: list[Raw] = field(default_factory=list)  # a range vector asked for directly
    ordered: bool = False  # sort()/sort_desc(): keep this order in an instant answer


@dataclass
class _Context:
    steps: Ints
    start: int
    end: int
    deadline: float
    limits: Limits
    index: list[tuple[Labels, SeriesKey]]
    by_name: dict[str, list[int]]
    series: int = 0
    samples: int = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise QueryTimeout("query timed out in expression evaluation")

    def spend(self, samples: int) -> None:
        self.samples += samples
        if self.samples > self.limits.max_samples:
            raise QueryTooLarge("query processing would load too many samples into memory in "
                                f"query execution (limit {self.limits.max_samples})")

    def at(self, steps: Ints) -> _Context:
        return _Context(steps, self.start, self.end, self.deadline, self.limits, self.index,
                        self.by_name, self.series, self.samples)


@dataclass
class _Selection:
    """The series a selector matches, and their labels without the metric name (made at
    the first use: a range function drops the name of every series it reads)."""

    series: list[tuple[Labels, SeriesKey]]
    bare: list[Labels] | None = None

    def without_name(self) -> list[Labels]:
        if self.bare is None:
            self.bare = [drop_name(labels) for labels, _ in self.series]
        return self.bare


@functools.cache
def _prometheus_2_functions() -> None:
    """Teach the parser ``holt_winters``, Prometheus 2's name of what 3 calls
    ``double_exponential_smoothing`` (once, at the first parse)."""
    matrix, scalar = pp.ValueType.Matrix, pp.ValueType.Scalar
    pp.register_extra_functions([pp.Function(name="holt_winters",
                                              arg_types=[matrix, scalar, scalar], variadic=0,
                                              return_type=pp.ValueType.Vector)])


def parse(text: str) -> Any:
    """The syntax tree of ``text``; BadQuery with the parser's message when it is not PromQL."""
    _prometheus_2_functions()
    try:
        return pp.parse(text)
    except ValueError as exc:
        raise BadQuery(f"invalid parameter \"query\": {exc}") from None
    except BaseException as exc:  # the Rust parser's panics derive from BaseException
        if not is_panic(exc):
            raise
        raise BadQuery(f"invalid parameter \"query\": {exc}") from None


def is_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a panic of a Rust extension (pyo3's PanicException)."""
    return type(exc).__name__ == "PanicException"


class Engine:
    """Evaluates PromQL over one archive."""

    def __init__(self, archive: Archive, *, limits: Limits | None = None) -> None:
        self._archive = archive
        self.limits = limits or Limits()
        self._known: tuple[int, list[tuple[Labels, SeriesKey]], dict[str, list[int]]] | None \
            = None
        self._selections: dict[tuple[Matcher, ...], _Selection] = {}

    async def query(self, text: str, *, start: int, end: int, step: int,
                    time_limit: float | None = None) -> Result:
        """Evaluate ``text`` at ``start, start + step, ... <= end`` (milliseconds)."""
        tree = parse(text)
        began = time.monotonic()
        budget = self.limits.timeout if time_limit is None else min(time_limit,
                                                                    self.limits.timeout)
        steps = np.arange(start, end + 1, step, dtype=np.int64)
        index, by_name = await self._index()
        ctx = _Context(steps, start, end, began + budget, self.limits, index, by_name)
        ctx.spend(len(steps))
        node = _unwrap(tree)
        with np.errstate(all="ignore"):
            value = await self._eval(tree, ctx)
        if isinstance(value, str):
            return Result("string", steps, text=value)
        if isinstance(value, RangeArg):
            return Result("matrix", steps, raw=_window_samples(value))
        if isinstance(value, list):
            ordered = isinstance(node, pp.Call) and node.func.name in ("sort", "sort_desc")
            return Result("vector", steps, series=value, ordered=ordered)
        return Result("scalar", steps, scalar=value)

    async def select(self, matchers: Sequence[Matcher], start: float | None = None,
                     end: float | None = None) -> list[tuple[Labels, SeriesKey]]:
        """Series (labels and key) matching every matcher, whose stored span meets
        ``[start, end]`` (seconds; either may be None)."""
        metas, _ = await self._archive.list_series()
        out = []
        compiled = [_compile(m) for m in matchers]
        for meta in metas:
            if meta.kind != "float" or meta.first_ts is None:
                continue
            if start is not None and meta.last_ts is not None and meta.last_ts < start:
                continue
            if end is not None and meta.first_ts > end:
                continue
            labels = _labels(meta.key)
            if all(test(labels) for test in compiled):
                out.append((labels, meta.key))
        return out

    async def _index(self) -> tuple[list[tuple[Labels, SeriesKey]], dict[str, list[int]]]:
        """Every float series' labels, and their positions by metric name. Series are
        never removed (a delete removes points), so an unchanged count is an unchanged
        set: the index is kept from query to query until the count moves."""
        total = await self._archive.series_count()
        if self._known is not None and self._known[0] == total:
            return self._known[1], self._known[2]
        metas, total = await self._archive.list_series()
        index = [(_labels(m.key), m.key) for m in metas if m.kind == "float"]
        by_name: dict[str, list[int]] = {}
        for i, (labels, _) in enumerate(index):
            by_name.setdefault(labels[NAME], []).append(i)
        self._known = (total, index, by_name)
        self._selections.clear()
        return index, by_name

    # -- evaluation -------------------------------------------------------------------

    async def _eval(self, node: Any, ctx: _Context) -> Value:
        ctx.tick()
        if isinstance(node, pp.NumberLiteral):
            return np.full(len(ctx.steps), float(node.val))
        if isinstance(node, pp.StringLiteral):
            return str(node.val)
        if isinstance(node, pp.ParenExpr):
            return await self._eval(node.expr, ctx)
        if isinstance(node, pp.UnaryExpr):
            return _negate(await self._eval(node.expr, ctx))
        for kind, method in self._evaluators.items():
            if isinstance(node, kind):
                return await method(node, ctx)
        raise BadQuery(f"expression {type(node).__name__} is not supported")

    @functools.cached_property
    def _evaluators(self) -> dict[type, Callable[[Any, _Context], Awaitable[Value]]]:
        return {pp.VectorSelector: self._instant, pp.MatrixSelector: self._matrix,
                pp.SubqueryExpr: self._subquery, pp.Call: self._call,
                pp.AggregateExpr: self._aggregate, pp.BinaryExpr: self._binary}

    def _ref(self, at: Any, offset: dt.timedelta | None, ctx: _Context) -> Ints:
        """Each step's reference time after ``@`` and ``offset``."""
        base = ctx.steps
        if at is not None:
            kind = at.type
            if kind == pp.AtModifierType.Start:
                fixed = ctx.start
            elif kind == pp.AtModifierType.End:
                fixed = ctx.end
            else:
                fixed = _ms(_attr(at, "at").timestamp())
                if abs(fixed) >= 1 << 53:
                    raise BadQuery(f"@ timestamp out of range: {fixed / 1000}")
            base = np.full(len(ctx.steps), fixed, dtype=np.int64)
        return base - (_duration_ms(offset) if offset is not None else 0)

    def _selected(self, matchers: tuple[Matcher, ...], ctx: _Context) -> _Selection:
        """The series of the index meeting every matcher, remembered until the index changes
        (a dashboard asks the same selectors over and over)."""
        chosen = self._selections.get(matchers)
        if chosen is None:
            compiled = [_compile(m) for m in matchers]
            name = next((v for k, op, v in matchers if k == NAME and op == "="), None)
            candidates = (ctx.by_name.get(name, []) if name is not None
                          else range(len(ctx.index)))
            chosen = _Selection([ctx.index[i] for i in candidates
                                 if all(test(ctx.index[i][0]) for test in compiled)])
            if len(self._selections) >= _SELECTIONS:
                self._selections.clear()
            self._selections[matchers] = chosen
        return chosen

    async def _fetch(self, vs: Any, start: int, end: int, ctx: _Context) -> Samples:
        selection = self._selected(_matchers(vs), ctx)
        chosen = selection.series
        ctx.series += len(chosen)
        if ctx.series > ctx.limits.max_series:
            raise QueryTooLarge(f"the query selects more than {ctx.limits.max_series} series "
                                f"(the limit); narrow its selectors")
        bare = selection.without_name()
        parts = []
        for at in range(0, len(chosen), _READ_BATCH):
            batch = chosen[at:at + _READ_BATCH]
            keys = [key for _, key in batch]
            if end - start < _APART_SPAN_MS:
                # a short span (an instant query's window): a few samples a series, cheaper
                # laid end to end by the archive than read in place, which costs a look-up
                # of each array's address
                runs = await self._archive.read_floats(keys, start, end)
                ctx.tick()
                has = (np.diff(runs.bounds) > 0).tolist()  # a series without samples: out
                part = Samples([labels for (labels, _), ok in zip(batch, has, strict=True)
                                if ok], runs.ts, runs.values, runs.bounds[np.append(has, True)],
                               [b for b, ok in zip(bare[at:at + _READ_BATCH], has, strict=True)
                                if ok])
            else:  # each series' samples apart, where the archive keeps them (no copy)
                read = await self._archive.read_float_pieces(keys, start, end)
                ctx.tick()
                kept = [i for i, ts in enumerate(read.ts) if len(ts)]
                part = Samples.apart([batch[i][0] for i in kept], [read.ts[i] for i in kept],
                                     [read.values[i] for i in kept],
                                     [bare[at + i] for i in kept])
            ctx.spend(int(part.bounds[-1]))
            parts.append(part)
        return Samples.joined(parts)

    async def _instant(self, vs: Any, ctx: _Context) -> list[Series]:
        ref = self._ref(vs.at, _attr(vs, "offset"), ctx)
        samples = await self._fetch(vs, int(ref.min()) - LOOKBACK_MS, int(ref.max()), ctx)
        # the latest sample in [ref - lookback, ref] is the last of that window
        w = await _offload(len(samples) * len(ref),
                           functools.partial(ranges.windows, samples, ref, LOOKBACK_MS))
        n = len(ref)
        last = np.maximum(w.hi - 1, 0)
        values = w.values[last].reshape(w.series, n) if len(w.values) else np.zeros((0, n))
        # a series whose latest sample is a stale marker has ended (Prometheus' staleness)
        present = (w.hi > w.lo).reshape(w.series, n) & (values.view(np.uint64) != STALE_BITS)
        stamps = w.ts[last].reshape(w.series, n) if len(w.ts) else np.zeros((0, n), np.int64)
        out = [Series(samples.labels[i], values[i], present[i], stamps[i])
               for i in np.flatnonzero(present.any(axis=1)).tolist()]
        ctx.spend(len(out) * n)
        return out

    async def _matrix(self, ms: Any, ctx: _Context) -> RangeArg:
        vs = ms.vector_selector
        ref = self._ref(vs.at, _attr(vs, "offset"), ctx)
        range_ms = _duration_ms(_attr(ms, "range"))
        samples = await self._fetch(vs, int(ref.min()) - range_ms, int(ref.max()), ctx)
        return RangeArg(ranges.fresh(samples), range_ms, ref, _matchers(vs))

    async def _subquery(self, sq: Any, ctx: _Context) -> RangeArg:
        ref = self._ref(sq.at, _attr(sq, "offset"), ctx)
        range_ms = _duration_ms(_attr(sq, "range"))
        step = _duration_ms(_attr(sq, "step")) if _attr(sq, "step") else SUBQUERY_STEP_MS
        if step <= 0:
            raise BadQuery("zero or negative subquery step")
        low = int(ref.min()) - range_ms
        first = step * (low // step)
        if first < low:
            first += step
        inner_steps = np.arange(first, int(ref.max()) + 1, step, dtype=np.int64)
        inner = ctx.at(inner_steps)
        ctx.spend(len(inner_steps))
        value = await self._eval(sq.expr, inner)
        ctx.series, ctx.samples = inner.series, inner.samples
        if isinstance(value, np.ndarray):
            value = [Series({}, value, np.ones(len(inner_steps), dtype=bool))]
        if not isinstance(value, list):
            raise BadQuery("subqueries take an instant vector or a scalar")
        raws = [Raw(s.labels, inner_steps[s.present], s.values[s.present]) for s in value]
        return RangeArg(Samples.of(raws), range_ms, ref)

    async def _scalar_arg(self, node: Any, ctx: _Context) -> Floats:
        value = await self._eval(node, ctx)
        assert isinstance(value, np.ndarray)
        return value

    async def _vector_arg(self, node: Any, ctx: _Context) -> list[Series]:
        value = await self._eval(node, ctx)
        assert isinstance(value, list)
        return value

    async def _call(self, call: Any, ctx: _Context) -> Value:
        name = call.func.name
        args = list(call.args)
        if name in _RANGE_FUNCTIONS:
            return await self._range_call(name, args, ctx)
        handler = _math if name in functions.MATH else _INSTANT.get(name)
        if handler is None:
            raise BadQuery(f"function {name!r} is not supported by watchkeeper")
        values = [await self._eval(arg, ctx) for arg in args]
        return handler(_Call(name, args, values, ctx.steps))

    async def _range_call(self, name: str, args: list[Any], ctx: _Context) -> Value:
        found = await self._range_rows(name, args, ctx)
        if not isinstance(found, _Rows):
            return found
        rows, flags = list(found.values), list(found.present)  # each row's view, at C speed
        return [Series(labels, row, flag)
                for labels, row, flag in zip(found.labels, rows, flags, strict=True)]

    async def _range_rows(self, name: str, args: list[Any], ctx: _Context
                          ) -> _Rows | list[Series]:
        """A range function's answer as rows (an aggregation takes them so, no
        :class:`Series` each), or as series where it is not one row per series read."""
        position = 1 if name == "quantile_over_time" else 0
        arg = await self._eval(args[position], ctx)
        if not isinstance(arg, RangeArg):
            raise BadQuery(f"function {name!r} takes a range vector")
        n = len(ctx.steps)
        if name == "absent_over_time":
            w = await _offload(len(arg.series) * n, functools.partial(
                ranges.windows, arg.series, arg.ref, arg.range_ms))
            seen: Mask = np.asarray((w.hi > w.lo).reshape(w.series, n).any(axis=0), dtype=bool)
            target = _unwrap(args[0])
            labels = functions.absent_labels(_matchers(target.vector_selector)) \
                if isinstance(target, pp.MatrixSelector) else {}
            return [Series(labels, np.ones(n), ~seen)] if (~seen).any() else []
        extra = [await self._scalar_arg(a, ctx) for i, a in enumerate(args) if i != position]
        ctx.tick()
        fn = _range_fn(name, extra, ctx)

        def evaluate(part: Samples) -> tuple[Floats, Mask]:
            return fn(part, arg.ref, arg.range_ms)

        values, present = await _by_parts(arg.series, n, evaluate)
        values = values.reshape(len(arg.series), n)
        present = present.reshape(len(arg.series), n)
        names = arg.series.labels
        keep = name == "last_over_time"
        named = names if keep else arg.series.bare or [drop_name(n) for n in names]
        shown = present.any(axis=1)
        if not shown.all():
            at = np.flatnonzero(shown)
            named = [named[i] for i in at.tolist()]
            values, present = values[at], present[at]
        ctx.spend(len(named) * n)
        # a selector's series differ in their labels: without the metric name, only those
        # of different names can meet
        if keep or len({labels.get(NAME) for labels in names}) <= 1:
            return _Rows(named, values, present)
        return merge_same([Series(labels, row, flag) for labels, row, flag in
                           zip(named, list(values), list(present), strict=True)])

    async def _aggregate(self, node: Any, ctx: _Context) -> list[Series]:
        op = str(node.op)
        inner = _unwrap(node.expr)
        vec: list[Series] | _Rows
        if isinstance(inner, pp.Call) and inner.func.name in _RANGE_FUNCTIONS:
            vec = await self._range_rows(inner.func.name, list(inner.args), ctx)
        else:
            vec = await self._vector_arg(node.expr, ctx)
        param: Floats | str | None = None
        if node.param is not None:
            value = await self._eval(node.param, ctx)
            if isinstance(value, list | RangeArg):
                raise BadQuery(f"the parameter of {op} must be a scalar or a string")
            param = value
        names: Sequence[str] = ()
        without = False
        if node.modifier is not None:
            names = list(node.modifier.labels)
            without = node.modifier.type == pp.AggModifierType.Without
        if isinstance(vec, _Rows):
            out = aggregate.aggregate_rows(op, vec.labels, vec.values, vec.present, names=names,
                                           without=without, param=param)
        else:
            out = aggregate.aggregate(op, vec, names=names, without=without,
                                      n=len(ctx.steps), param=param)
        ctx.spend(len(out) * len(ctx.steps))
        return out

    async def _binary(self, node: Any, ctx: _Context) -> Value:
        op = str(node.op)
        lhs = await self._eval(node.lhs, ctx)
        rhs = await self._eval(node.rhs, ctx)
        modifier = node.modifier
        want_bool = bool(modifier is not None and modifier.return_bool)
        if isinstance(lhs, np.ndarray) and isinstance(rhs, np.ndarray):
            return binary.scalar_scalar(op, lhs, rhs)
        if isinstance(lhs, list) and isinstance(rhs, np.ndarray):
            return binary.vector_scalar(op, lhs, rhs, scalar_left=False, bool_=want_bool)
        if isinstance(lhs, np.ndarray) and isinstance(rhs, list):
            return binary.vector_scalar(op, rhs, lhs, scalar_left=True, bool_=want_bool)
        assert isinstance(lhs, list)
        assert isinstance(rhs, list)
        return binary.vector_vector(op, lhs, rhs, _matching(modifier, op), len(ctx.steps))


@dataclass(frozen=True)
class _Rows:
    """An instant vector as rows: series ``i`` is ``labels[i]`` with row ``i`` of
    ``values`` and ``present`` (each present at one step at least)."""

    labels: list[Labels]
    values: Floats
    present: Mask


@dataclass(frozen=True)
class _Call:
    """An instant function's call: its name, syntax (for selectors) and evaluated args."""

    name: str
    nodes: list[Any]
    args: list[Value]
    steps: Ints

    def vector(self, i: int) -> list[Series]:
        value = self.args[i]
        assert isinstance(value, list)
        return value

    def scalar(self, i: int, default: float | None = None) -> Floats:
        if i >= len(self.args) and default is not None:
            return np.full(len(self.steps), default)
        value = self.args[i]
        assert isinstance(value, np.ndarray)
        return value

    def string(self, i: int) -> str:
        value = self.args[i]
        if not isinstance(value, str):
            raise BadQuery(f"argument {i + 1} of {self.name} must be a string")
        return value

    def always(self) -> Mask:
        return np.ones(len(self.steps), dtype=bool)


def _math(c: _Call) -> Value:
    return functions.apply_math(c.name, c.vector(0))


def _timestamp(c: _Call) -> Value:
    selector = isinstance(_unwrap(c.nodes[0]), pp.VectorSelector)
    return merge_same([Series(drop_name(s.labels),
                              (s.stamps if selector and s.stamps is not None else c.steps)
                              / 1000.0, s.present) for s in c.vector(0)])


def _time_part(c: _Call) -> Value:
    vec = c.vector(0) if c.args else [Series({}, c.steps / 1000.0, c.always())]
    return functions.mapped(vec, lambda v: functions.time_part(c.name, v))


def _absent_call(c: _Call) -> Value:
    target = _unwrap(c.nodes[0])
    labels = functions.absent_labels(_matchers(target)) \
        if isinstance(target, pp.VectorSelector) else {}
    return _absent(c.vector(0), labels, len(c.steps))


def _round(c: _Call) -> Value:
    nearest = c.scalar(1, 1.0)
    return functions.mapped(c.vector(0), lambda v: functions.round_to(v, nearest))


_INSTANT: Final[dict[str, Callable[[_Call], Value]]] = {
    "time": lambda c: c.steps / 1000.0,
    "pi": lambda c: np.full(len(c.steps), np.pi),
    "vector": lambda c: [Series({}, c.scalar(0), c.always())],
    "scalar": lambda c: functions.scalar_of(c.vector(0), len(c.steps)),
    "sort": lambda c: _sorted(c.vector(0), descending=False),
    "sort_desc": lambda c: _sorted(c.vector(0), descending=True),
    "timestamp": _timestamp,
    "round": _round,
    "clamp": lambda c: functions.clamp(c.vector(0), c.scalar(1), c.scalar(2)),
    "clamp_min": lambda c: functions.mapped(c.vector(0), lambda v: np.maximum(c.scalar(1), v)),
    "clamp_max": lambda c: functions.mapped(c.vector(0), lambda v: np.minimum(c.scalar(1), v)),
    **dict.fromkeys(functions.TIME_PARTS, _time_part),
    "label_replace": lambda c: functions.label_replace(
        c.vector(0), c.string(1), c.string(2), c.string(3), c.string(4)),
    "label_join": lambda c: functions.label_join(
        c.vector(0), c.string(1), c.string(2), [c.string(i) for i in range(3, len(c.args))]),
    "absent": _absent_call,
    "histogram_quantile": lambda c: functions.histogram_quantile(
        c.scalar(0), c.vector(1), len(c.steps)),
}


def _matching(modifier: Any, op: str) -> binary.Matching:
    if modifier is None:
        return binary.Matching(card="many-to-many" if op in binary.SETS else "one-to-one")
    card = {"OneToOne": "one-to-one", "ManyToOne": "many-to-one", "OneToMany": "one-to-many",
            "ManyToMany": "many-to-many"}[str(modifier.card).rsplit(".", 1)[-1]]
    if op in binary.SETS:
        card = "many-to-many"
    on, labels = False, ()
    if modifier.matching is not None:
        on = modifier.matching.type == pp.LabelModifierType.Include
        labels = tuple(modifier.matching.labels)
    include = tuple(modifier.group_labels or ())
    return binary.Matching(on=on, labels=labels, card=card, include=include,
                           bool_=bool(modifier.return_bool))


RangeFn = Callable[[Samples, Ints, int], tuple[Floats, Mask]]
"""A range function over samples, the steps' times and the range (ms)."""
WindowFn = Callable[[ranges.Windows], tuple[Floats, Mask]]


def _range_fn(name: str, extra: list[Floats], ctx: _Context) -> RangeFn:
    if name in ("rate", "increase", "delta"):
        counter, per_second = name != "delta", name == "rate"
        return functools.partial(ranges.extrapolated, counter=counter, per_second=per_second)
    fn = _window_fn(name, extra, ctx)
    return lambda samples, ref, range_ms: fn(ranges.windows(samples, ref, range_ms))


def _window_fn(name: str, extra: list[Floats], ctx: _Context) -> WindowFn:
    if name in ("irate", "idelta"):
        return lambda w: ranges.instant_rate(w, per_second=name == "irate")
    if name in ("deriv", "predict_linear"):
        def linear(w: ranges.Windows) -> tuple[Floats, Mask]:
            if name == "deriv":
                slope, _, ok = ranges.regression(w, None)
                return slope, ok
            slope, icept, ok = ranges.regression(w, np.tile(ctx.steps, w.series))
            return icept + slope * w.tile(extra[0]), ok
        return linear
    if name in ("holt_winters", "double_exponential_smoothing"):
        sf, tf = float(extra[0][0]), float(extra[1][0])
        return lambda w: ranges.holt_winters(w, sf, tf)
    others: dict[str, WindowFn] = {
        "quantile_over_time": lambda w: ranges.quantile_over_time(w, w.tile(extra[0])),
        "changes": ranges.changes,
        "resets": ranges.resets,
    }
    return others.get(name, lambda w: ranges.over_time(name, w))


async def _by_parts(samples: Samples, steps: int,
                   evaluate: Callable[[Samples], tuple[Floats, Mask]]) -> tuple[Floats, Mask]:
    """``evaluate`` over the series of ``samples``: on the loop when small, in a worker
    thread when big, and split into as many parts of series as there are cores when
    bigger still (numpy releases the GIL: two cores, ~1.7x faster)."""
    cells = len(samples) * steps
    if cells < _OFFLOAD_CELLS:
        return evaluate(samples)
    parts = max(1, min(CORES, cells // _PARALLEL_CELLS, len(samples)))
    cuts = [len(samples) * i // parts for i in range(parts + 1)]
    done = await asyncio.gather(*(asyncio.to_thread(_quiet, functools.partial(
        evaluate, samples.part(lo, hi))) for lo, hi in itertools.pairwise(cuts)))
    if len(done) == 1:
        return done[0]
    return (np.concatenate([values for values, _ in done]),
            np.concatenate([present for _, present in done]))


async def _offload(cells: int, work: Callable[[], _T]) -> _T:
    """``work()``, in a worker thread when it is big (numpy releases the GIL there)."""
    if cells < _OFFLOAD_CELLS:
        return work()
    return await asyncio.to_thread(_quiet, work)


def _quiet(work: Callable[[], _T]) -> _T:
    with np.errstate(all="ignore"):  # as on the loop: NaN and Inf are PromQL values
        return work()


def _negate(value: Value) -> Value:
    if isinstance(value, np.ndarray):
        return -value
    if not isinstance(value, list):
        raise BadQuery("unary minus takes a scalar or an instant vector")
    return merge_same([Series(drop_name(s.labels), -s.values, s.present) for s in value])


def _absent(vec: list[Series], labels: Labels, n: int) -> list[Series]:
    seen = np.zeros(n, dtype=bool)
    for s in vec:
        seen |= s.present
    return [Series(labels, np.ones(n), ~seen)] if (~seen).any() else []


def _sorted(vec: list[Series], *, descending: bool) -> list[Series]:
    def score(s: Series) -> tuple[bool, float]:
        v = float(s.values[0]) if s.present[0] else float("nan")
        return (math.isnan(v), -v if descending else v)
    return sorted(vec, key=score)


def _window_samples(arg: RangeArg) -> list[Raw]:
    """The samples of each series inside the (single) window: an instant query of a range."""
    w = ranges.windows(arg.series, arg.ref[:1], arg.range_ms)
    return [Raw(labels, w.ts[lo:hi], w.values[lo:hi])
            for labels, lo, hi in zip(arg.series.labels, w.lo.tolist(), w.hi.tolist(),
                                      strict=True)
            if hi > lo]


def _attr(node: Any, name: str) -> Any:
    """A syntax node's time attribute; BadQuery when it does not fit Python's types (the
    parser reads ``x[99999999y]``, Python's timedelta cannot hold it)."""
    try:
        return getattr(node, name)
    except (ValueError, OverflowError) as exc:
        raise BadQuery(f"{name} out of range: {exc}") from None


def _unwrap(node: Any) -> Any:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def _string(node: Any) -> str:
    node = _unwrap(node)
    if not isinstance(node, pp.StringLiteral):
        raise BadQuery("expected a string literal")
    return str(node.val)


_OPS: Final = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _matchers(vs: Any) -> tuple[Matcher, ...]:
    if vs.matchers.or_matchers:
        raise BadQuery("'or' inside a selector's braces is not supported")
    out: list[Matcher] = []
    if vs.name:
        out.append((NAME, "=", str(vs.name)))
    for m in vs.matchers.matchers:
        op = _OPS[str(m.op).rsplit(".", 1)[-1]]
        if m.name == NAME and op == "=" and vs.name == m.value:
            continue
        out.append((str(m.name), op, str(m.value)))
    return tuple(out)


def _compile(matcher: Matcher) -> Callable[[Labels], bool]:
    name, op, value = matcher
    if op == "=":
        return lambda labels: labels.get(name, "") == value
    if op == "!=":
        return lambda labels: labels.get(name, "") != value
    pattern = _regex(value)
    if op == "=~":
        return lambda labels: pattern.fullmatch(labels.get(name, "")) is not None
    return lambda labels: pattern.fullmatch(labels.get(name, "")) is None


@functools.lru_cache(maxsize=1024)
def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text, re.DOTALL)
    except re.error as exc:
        raise BadQuery(f"invalid regular expression {text!r}: {exc}") from None


@functools.lru_cache(maxsize=262_144)
def _labels_cached(key: SeriesKey) -> tuple[tuple[str, str], ...]:
    return tuple(promlabels.to_labels(key).items())


def _labels(key: SeriesKey) -> Labels:
    return dict(_labels_cached(key))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _duration_ms(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def selector_matchers(text: str) -> tuple[Matcher, ...]:
    """The matchers of a series selector (``match[]``); BadQuery for anything else."""
    node = _unwrap(parse(text))
    if not isinstance(node, pp.VectorSelector):
        raise BadQuery(f'invalid parameter "match[]": {text!r} is not a series selector')
    return _matchers(node)
