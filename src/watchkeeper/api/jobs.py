"""This server's collector jobs: what its scheduler runs, and each job's latest report.

* ``GET /api/v1/collect/jobs``: every scheduled (device, collector) job with its interval,
  next run, latest poll (status, reason, start, duration, lateness), skipped slots and
  ERRORED polls in a row; worst status first, then by device, collector and job id.
  Filters ``status`` (``pending``: not polled yet), ``collector`` and ``device``, each may
  repeat ("any of"); ``limit`` and ``offset`` page. The answer also counts every job by
  status and by collector, filters aside, for a page's filter choices.
* ``GET /api/v1/collect/report?device=D[&collector=C]``: the genie-style report
  (``collect/report.py``, version 1, one run named ``latest``) of the latest poll of the
  device's jobs (of collector ``C`` only, if given): statuses, messages, measurements.

Both are reads (``server.public_reads`` decides whether they need a token). What they show
comes from :class:`~watchkeeper.collect.abc.JobState`, which names devices and never holds
their connections; check outputs may quote a URL, so ``scheme://user:password@`` is answered
with the password redacted, as in alarms, and a measurement whose value is an object has
its secret-named keys redacted, as inventory attributes are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper.api.limits import whole_param
from watchkeeper.api.openapi import Param, operation, paging
from watchkeeper.api.redact import redact, redact_url_passwords
from watchkeeper.collect.abc import JobBoard, JobKey, JobState
from watchkeeper.collect.manager import LatestResults
from watchkeeper.errors import InvalidData, NotFound
from watchkeeper.model import Status
from watchkeeper.wire import CollectJob, CollectJobs, CollectReport

JSON: Final = "application/json"
PENDING: Final = "pending"
"""The status of a job not polled yet, in filters and counts."""
STATUSES: Final = (*(s.value for s in Status), PENDING)
DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 100_000
_RANK: Final[dict[Status | None, int]] = {**{s: s.severity for s in Status}, None: -1}
_STATUS: Final = itemgetter(3)
_COLLECTOR: Final = itemgetter(1)


def _name(status: Status | None) -> str:
    """A latest status as filters and counts name it (``pending``: not polled yet)."""
    return PENDING if status is None else status.value


def _worst_first(key: JobKey) -> int:
    return -_RANK[key[3]]


def _by_name(item: tuple[Status | None, int]) -> str:
    return _name(item[0])


def wire_job(state: JobState, plugin: str) -> CollectJob:
    """A job as the API answers it."""
    last = state.last
    common: dict[str, Any] = {
        "job": state.job_id, "device": state.device, "collector": state.collector,
        "plugin": plugin, "interval": min(state.intervals), "intervals": list(state.intervals),
        "next_run": state.next_run, "running": state.running, "skipped": state.skipped,
        "failures": state.failures}
    if last is None:
        return CollectJob(**common)
    return CollectJob(**common, status=last.result.status.value,
                      reason=last.result.check.summary, local_fault=last.result.local_fault,
                      last_scheduled=last.scheduled, last_started=last.started,
                      last_duration=last.finished - last.started, lateness=last.lateness)


def _choices(values: Sequence[str], allowed: Iterable[str], *, field: str) -> frozenset[str]:
    known = tuple(allowed)
    for value in values:
        if value not in known:
            raise InvalidData(f"expected one of {', '.join(known)}, not {value[:40]!r}",
                              field=field, value=value[:40])
    return frozenset(values)


def _redacted(encoded: bytes) -> Response:
    return Response(redact_url_passwords(encoded), media_type=JSON)


class JobsApi:
    """The jobs routes over a scheduler's :class:`JobBoard`. ``plugins`` maps collector
    names to the plugin each runs; ``now`` is the clock's time (epoch seconds)."""

    def __init__(self, board: JobBoard, *, plugins: Mapping[str, str],
                 now: Callable[[], float]) -> None:
        self._board = board
        self._plugins = dict(plugins)
        self._now = now

    def routes(self) -> Sequence[Route]:
        return [Route("/api/v1/collect/jobs", self.jobs, methods=["GET"]),
                Route("/api/v1/collect/report", self.report, methods=["GET"])]

    @operation("this server's scheduled jobs: interval, next run, latest status and reason, "
               "lateness, skipped slots; worst first, a page at a time", "read",
               answer=CollectJobs, errors=(400,),
               params=(Param("status", description="ok, partial, warning, critical, errored, "
                             "unknown or pending (not polled yet); may repeat (any of)",
                             enum=STATUSES),
                       Param("collector", description="a collector's name; may repeat"),
                       Param("device", description="a device's name; may repeat"),
                       *paging(DEFAULT_LIMIT, MAX_LIMIT)))
    async def jobs(self, request: Request) -> Response:
        params = request.query_params
        statuses = _choices(params.getlist("status"), STATUSES, field="status")
        collectors = frozenset(params.getlist("collector"))
        devices = frozenset(params.getlist("device"))
        limit = whole_param(params.get("limit"), field="limit", default=DEFAULT_LIMIT, low=1,
                            high=MAX_LIMIT)
        offset = whole_param(params.get("offset"), field="offset", default=0)
        keys = self._board.job_keys()
        by_status = Counter(map(_STATUS, keys))
        by_collector = Counter(map(_COLLECTOR, keys))
        if statuses or collectors or devices:
            keys = [k for k in keys if (not statuses or _name(k[3]) in statuses)
                    and (not collectors or k[1] in collectors)
                    and (not devices or k[0] in devices)]
        keys.sort()  # by device, collector, job id: tuples compared in C, ids are unique
        keys.sort(key=_worst_first)  # stable: that order stays within each status
        chosen = [k[2] for k in keys[offset:offset + limit]]
        page = [wire_job(state, self._plugins.get(state.collector, state.collector))
                for state in self._board.job_states(chosen)]
        return _redacted(msgspec.json.encode(CollectJobs(
            now=self._now(), total=len(keys), offset=offset, limit=limit,
            statuses={_name(k): n for k, n in sorted(by_status.items(), key=_by_name)},
            collectors=dict(sorted(by_collector.items())), jobs=page)))

    @operation("the genie-style report (version 1) of the latest poll of a device's jobs, "
               "or of one collector's on it", "read", answer=CollectReport, errors=(400, 404),
               params=(Param("device", required=True, description="the device's name"),
                       Param("collector", description="only this collector's jobs")))
    async def report(self, request: Request) -> Response:
        device = request.query_params.get("device", "")
        collector = request.query_params.get("collector") or None
        if not device:
            raise InvalidData("is required (a device's name)", field="device")
        states = self._board.job_states(
            k[2] for k in self._board.job_keys()
            if k[0] == device and (collector is None or k[1] == collector))
        if not states:
            what = f"collector {collector!r}" if collector else "any collector"
            raise NotFound(f"no job of {what} on device {device!r} is scheduled here")
        data = LatestResults.of_jobs(states).report(now=self._now())
        for run in data["runs"].values():
            for by_device in run["results"].values():
                for result in by_device.values():
                    for measurement in result["measurements"]:
                        measurement["value"] = redact(measurement["value"])
        return _redacted(msgspec.json.encode(data))
