"""Prometheus' HTTP query API under ``/prometheus/api/v1/``: what Grafana's Prometheus data
source calls (``query``, ``query_range``, ``series``, ``labels``, ``label/<name>/values``,
``metadata``, ``status/buildinfo``, ``query_exemplars``), GET or form POST, with
Prometheus' envelopes (``{"status": "success", "data": ...}``, values as strings) and
error types (``bad_data`` 400, ``execution`` 422, ``timeout`` 503).

PromQL itself is :mod:`watchkeeper.archive.promql`; series are named by
:mod:`watchkeeper.model.promlabels`, the mapping remote write and ``/federate`` use.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec
import numpy as np
import promql_parser as pp
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper._version import __version__
from watchkeeper.api.ingest.metadata import MetadataStore, MetricMetadata, covering
from watchkeeper.api.openapi import Param, operation
from watchkeeper.archive import Archive
from watchkeeper.archive.promql import (
    BadQuery,
    Engine,
    Limits,
    QueryError,
    Result,
    Series,
    format_time,
    format_times,
    format_value,
    format_values,
    kernels,
)
from watchkeeper.archive.promql.engine import is_panic, selector_matchers
from watchkeeper.archive.promql.values import rows
from watchkeeper.errors import InvalidData

PREFIX: Final = "/prometheus/api/v1"
READ_POSTS: Final = (f"{PREFIX}/query", f"{PREFIX}/series", f"{PREFIX}/labels")
"""Paths where a POST is a read (Grafana posts its queries as forms)."""
MAX_POINTS: Final = 11_000
_COMPILED_PAIRS: Final = 256
"""Values of a range answer from which a compiled loop lays them out: 2.4x faster than
Python's per-value text at 1,441 values (a day's panel at step 60 s: 0.25 against 0.60 ms),
still faster at 100; a small answer spares a process that needs no other compiled loop
numba's import (half a second, once)."""
PROMETHEUS_VERSION: Final = "2.42.0"
"""The Prometheus whose query API and PromQL semantics these routes follow (Debian 12's):
Grafana reads buildinfo to choose the features it uses."""
_FORM: Final = "application/x-www-form-urlencoded"
_MIN_TIME: Final = -(2**63) // 1_000_000 // 1000  # what Prometheus calls minTime, in s
_MAX_TIME: Final = (2**63 - 1) // 1_000_000 // 1000

Handler = Callable[[Request], Awaitable[Response]]
_QUERY_PARAMS: Final = (Param("query", required=True, description="PromQL expression"),
                        Param("time", description="unix seconds or RFC 3339; default now"),
                        Param("timeout", description="duration"))
_RANGE_PARAMS: Final = (Param("query", required=True, description="PromQL expression"),
                        Param("start", required=True), Param("end", required=True),
                        Param("step", required=True, description="duration or seconds"),
                        Param("timeout", description="duration"))
_MATCH_PARAMS: Final = (Param("match[]", description="series selector, repeatable"),
                        Param("start"), Param("end"))


class PrometheusQueryApi:
    """The routes over one archive; ``now`` (by default the archive's clock) is the time
    of an instant query sent without one."""

    def __init__(self, archive: Archive, *, limits: Limits | None = None,
                 now: Callable[[], float] | None = None,
                 metadata: MetadataStore | None = None) -> None:
        self.engine = Engine(archive, limits=limits)
        self._now = now or archive.clock.time
        self._metadata = metadata if metadata is not None else MetadataStore()

    def routes(self) -> Sequence[Route]:
        both = ["GET", "POST"]
        return [
            Route(f"{PREFIX}/query", self.query, methods=both),
            Route(f"{PREFIX}/query_range", self.query_range, methods=both),
            Route(f"{PREFIX}/series", self.series, methods=both),
            Route(f"{PREFIX}/labels", self.labels, methods=both),
            Route(f"{PREFIX}/label/{{name}}/values", self.label_values, methods=["GET"]),
            Route(f"{PREFIX}/metadata", self.metadata, methods=["GET"]),
            Route(f"{PREFIX}/status/buildinfo", self.buildinfo, methods=["GET"]),
            Route(f"{PREFIX}/query_exemplars", self.exemplars, methods=both),
        ]

    @operation("PromQL instant query (Prometheus' API)", "read", params=_QUERY_PARAMS,
               errors=(400, 401, 422, 503))
    async def query(self, request: Request) -> Response:
        async def run(form: dict[str, list[str]]) -> Any:
            text = _one(form, "query")
            at = _time(form, "time") if _one(form, "time") else _ms(self._now())
            result = await self.engine.query(text, start=at, end=at, step=1,
                                             time_limit=_timeout(form))
            return _instant(result, at)
        return await _answer(request, run)

    @operation("PromQL range query (Prometheus' API)", "read", params=_RANGE_PARAMS,
               errors=(400, 401, 422, 503))
    async def query_range(self, request: Request) -> Response:
        async def run(form: dict[str, list[str]]) -> Any:
            text = _one(form, "query")
            start, end = _time(form, "start"), _time(form, "end")
            if end < start:
                raise BadQuery('invalid parameter "end": end timestamp must not be before '
                               "start time")
            step = _duration(form, "step")
            if step <= 0:
                raise BadQuery('invalid parameter "step": zero or negative query resolution '
                               "step widths are not accepted. Try a positive integer")
            if (end - start) // step > MAX_POINTS:
                raise BadQuery("exceeded maximum resolution of 11,000 points per timeseries. "
                               "Try decreasing the query resolution (?step=XX)")
            result = await self.engine.query(text, start=start, end=end, step=step,
                                             time_limit=_timeout(form))
            return _range(result)
        return await _answer(request, run)

    @operation("series matching match[] selectors (Prometheus' API)", "read",
               params=_MATCH_PARAMS, errors=(400, 401))
    async def series(self, request: Request) -> Response:
        async def run(form: dict[str, list[str]]) -> Any:
            selectors = form.get("match[]", [])
            if not selectors:
                raise BadQuery("no match[] parameter provided")
            return await self._matching(form, selectors)
        return await _answer(request, run)

    @operation("label names (Prometheus' API)", "read", params=_MATCH_PARAMS,
               errors=(400, 401))
    async def labels(self, request: Request) -> Response:
        async def run(form: dict[str, list[str]]) -> Any:
            names: set[str] = set()
            for labels in await self._matching(form, form.get("match[]", [])):
                names.update(labels)
            return sorted(names)
        return await _answer(request, run)

    @operation("values of one label (Prometheus' API)", "read",
               params=(Param("name", where="path", required=True), *_MATCH_PARAMS),
               errors=(400, 401))
    async def label_values(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def run(form: dict[str, list[str]]) -> Any:
            if not _label_name(name):
                raise BadQuery(f'invalid label name: "{name}"')
            values = {labels[name] for labels in await self._matching(form,
                                                                      form.get("match[]", []))
                      if labels.get(name)}
            return sorted(values)
        return await _answer(request, run)

    @operation("metric metadata (Prometheus' API): type, help and unit by metric family, as "
               "remote write sent them; other metrics held, type unknown", "read",
               params=(Param("metric"), Param("limit", type="integer")), errors=(400, 401))
    async def metadata(self, request: Request) -> Response:
        async def run(form: dict[str, list[str]]) -> Any:
            wanted = _one(form, "metric")
            limit = _one(form, "limit")
            count = -1
            if limit:
                try:
                    count = int(limit)
                except ValueError:
                    raise BadQuery(f'invalid parameter "limit": {limit}') from None
            families = await run_in_threadpool(self._metadata.families)
            unknown = MetricMetadata("unknown", "", "")
            found: dict[str, MetricMetadata] = dict(families)
            for labels in await self._matching(form, []):  # held but never described
                name = labels["__name__"]
                if covering(name, families) is None:
                    found.setdefault(name, unknown)
            names = sorted(found) if not wanted else [wanted] if wanted in found else []
            if count >= 0:
                names = names[:count]
            return {n: [msgspec.structs.asdict(found[n])] for n in names}
        return await _answer(request, run)

    @operation("build information (Prometheus' API; Grafana reads the version)", "read",
               errors=(401,))
    async def buildinfo(self, request: Request) -> Response:
        return _success({"version": PROMETHEUS_VERSION, "revision": f"watchkeeper-{__version__}",
                         "branch": "", "buildUser": "", "buildDate": "", "goVersion": ""})

    @operation("exemplars (Prometheus' API): watchkeeper stores none", "read",
               params=_QUERY_PARAMS, errors=(400, 401))
    async def exemplars(self, request: Request) -> Response:
        async def run(form: dict[str, list[str]]) -> Any:
            return []
        return await _answer(request, run)

    async def _matching(self, form: dict[str, list[str]],
                        selectors: Sequence[str]) -> list[dict[str, str]]:
        start = _time(form, "start") / 1000 if _one(form, "start") else None
        end = _time(form, "end") / 1000 if _one(form, "end") else None
        if not selectors:
            return [labels for labels, _ in await self.engine.select((), start, end)]
        seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for text in selectors:
            for labels, _ in await self.engine.select(selector_matchers(text), start, end):
                seen.setdefault(tuple(sorted(labels.items())), labels)
        return [seen[k] for k in sorted(seen)]


async def _answer(request: Request, run: Callable[[dict[str, list[str]]],
                                                   Awaitable[Any]]) -> Response:
    try:
        form = await _form(request)
        return _success(await run(form))
    except QueryError as exc:
        return _error(exc.error_type, str(exc), exc.status)
    except InvalidData as exc:
        return _error("bad_data", str(exc), 400)


async def _form(request: Request) -> dict[str, list[str]]:
    """Query string and, for a form POST, the body's fields (Prometheus reads both)."""
    form: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        form.setdefault(name, []).append(value)
    if request.method == "POST":
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind and kind != _FORM:
            raise BadQuery(f"unsupported content type {kind!r}: send {_FORM}")
        body = await request.body()
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise BadQuery("the form is not UTF-8") from None
        for name, value in pairs:
            form.setdefault(name, []).append(value)
    return form


def _success(data: Any) -> Response:
    return Response(msgspec.json.encode({"status": "success", "data": data}),
                    media_type="application/json")


def _error(kind: str, message: str, status: int) -> Response:
    return Response(msgspec.json.encode({"status": "error", "errorType": kind,
                                         "error": message}),
                    status_code=status, media_type="application/json")


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[-1] if values else ""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _time(form: dict[str, list[str]], name: str) -> int:
    """A Prometheus timestamp parameter (unix seconds or RFC 3339) in milliseconds."""
    text = _one(form, name)
    if text in ("-292273086-05-16T16:47:06Z", "minTime"):
        return _MIN_TIME * 1000
    if text in ("292277025-08-18T07:12:54.999999999Z", "maxTime"):
        return _MAX_TIME * 1000
    seconds = math.nan
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                seconds = moment.timestamp()
        except ValueError:
            pass
    if _MIN_TIME <= seconds <= _MAX_TIME:  # NaN, Inf and the far past or future are not
        whole = math.floor(seconds)
        return whole * 1000 + round((seconds - whole) * 1000)
    raise BadQuery(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')


def _duration(form: dict[str, list[str]], name: str) -> int:
    """A Prometheus duration parameter (seconds or ``1m30s``) in milliseconds."""
    text = _one(form, name)
    millis: int | None = None
    try:
        seconds = float(text)
        if abs(seconds) <= _MAX_TIME:  # Prometheus refuses what overflows int64 ns
            millis = round(seconds * 1000)
    except ValueError:
        try:
            delta = pp.parse_duration(text)
            millis = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
        except (ValueError, OverflowError):
            pass
        except BaseException as exc:  # the Rust parser panics on some inputs
            if not is_panic(exc):
                raise
    if millis is None or abs(millis) > _MAX_TIME * 1000:
        raise BadQuery(f'invalid parameter "{name}": cannot parse "{text}" to a valid '
                       "duration")
    return millis


def _timeout(form: dict[str, list[str]]) -> float | None:
    return _duration(form, "timeout") / 1000 if _one(form, "timeout") else None


def _label_name(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and all(
        c.isalnum() or c == "_" for c in name) and name.isascii()


def _instant(result: Result, at: int) -> dict[str, Any]:
    t = format_time(at)
    if result.kind == "scalar":
        assert result.scalar is not None
        return {"resultType": "scalar", "result": [t, format_value(float(result.scalar[0]))]}
    if result.kind == "string":
        return {"resultType": "string", "result": [t, result.text]}
    if result.kind == "matrix":
        return {"resultType": "matrix", "result": [
            {"metric": raw.labels, "values": list(zip(format_times(raw.ts),
                                                      format_values(raw.values), strict=True))}
            for raw in sorted(result.raw, key=lambda r: sorted(r.labels.items()))]}
    series = [s for s in result.series if s.present[0]]
    if not result.ordered:
        series.sort(key=lambda s: sorted(s.labels.items()))
    return {"resultType": "vector", "result": [
        {"metric": s.labels, "value": [t, format_value(float(s.values[0]))]} for s in series]}


def _range(result: Result) -> dict[str, Any]:
    if result.kind == "scalar":
        assert result.scalar is not None
        ones = np.ones(len(result.steps), dtype=bool)
        return {"resultType": "matrix", "result": msgspec.Raw(_matrix(
            [Series({}, result.scalar, ones)], result.steps))}
    if result.kind != "vector":
        kind = "range vector" if result.kind == "matrix" else result.kind
        raise BadQuery(f'invalid expression type "{kind}" for range query, must be Scalar or '
                       "instant Vector")
    series = sorted((s for s in result.series if s.present.any()),
                    key=lambda s: sorted(s.labels.items()))
    return {"resultType": "matrix", "result": msgspec.Raw(_matrix(series, result.steps))}


def _matrix(series: list[Series], steps: np.ndarray) -> bytes:
    """The JSON of a range answer's series (each present at one step at least), as
    msgspec writes ``[{"metric": labels, "values": [[t, "v"], ...]}, ...]``, fast: every
    value written as a number in one call, which is Go's text where msgspec's shortest
    digits are (finite values from 1e-4 to 1e16) once ``.0`` is cut from whole numbers,
    then laid out with the times by a compiled pass (a big answer) or quoted by byte
    replacements (a small one). A series with any other value is written value by value."""
    if not series:
        return b"[]"
    present = rows([s.present for s in series], len(steps))
    values = rows([s.values for s in series], len(steps))[present]
    size = np.abs(values)
    plain = bool(((size >= 1e-4) & (size < 1e16) | (values == 0)).all())  # NaN: False
    times = msgspec.json.encode(format_times(steps))[1:-1].split(b",")
    labels = [b'{"metric":' + msgspec.json.encode(s.labels) + b',"values":' for s in series]
    if plain and len(values) >= _COMPILED_PAIRS:
        counts = present.sum(axis=1)
        text, ends = kernels.pairs_json(msgspec.json.encode(values.tolist()), times,
                                        np.nonzero(present)[1], counts)
        starts = [0, *ends[:-1]]
        return b"[" + b",".join(head + text[lo:hi] + b"}" for head, lo, hi in zip(
            labels, starts, ends, strict=True)) + b"]"
    stamps = np.array(times, dtype=object)
    out = []
    for head, s in zip(labels, series, strict=True):
        mine = s.values[s.present]
        out.append(head + _pairs(stamps[s.present].tolist(), mine) + b"}")
    return b"[" + b",".join(out) + b"]"


def _pairs(times: list[bytes], values: np.ndarray) -> bytes:
    """``[[t, "v"], ...]`` of one series' present steps (``times`` written already)."""
    return b"[" + b",".join(b"[" + t + b',"' + v.encode() + b'"]' for t, v in zip(
        times, format_values(values), strict=True)) + b"]"
