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
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper.api.limits import whole_param
from watchkeeper.api.openapi import Param, operation, paging
from watchkeeper.api.redact import redact, redact_url_passwords
from watchkeeper.collect.abc import JobBoard, JobState
from watchkeeper.collect.manager import LatestResults
from watchkeeper.errors import InvalidData, NotFound
from watchkeeper.model import Status
from watchkeeper.wire import CollectJob, CollectJobs

JSON: Final = "application/json"
PENDING: Final = "pending"
"""The status of a job not polled yet, in filters and counts."""
STATUSES: Final = (*(s.value for s in Status), PENDING)
DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 100_000
_RANK: Final = {**{s.value: s.severity for s in Status}, PENDING: -1}


def status_of(state: JobState) -> str:
    """The job's latest status, ``pending`` before its first poll ended."""
    return PENDING if state.last is None else state.last.result.status.value


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
        by_status: Counter[str] = Counter()
        by_collector: Counter[str] = Counter()
        chosen: list[tuple[str, JobState]] = []
        for state in self._board.job_states():
            status = status_of(state)
            by_status[status] += 1
            by_collector[state.collector] += 1
            if ((not statuses or status in statuses)
                    and (not collectors or state.collector in collectors)
                    and (not devices or state.device in devices)):
                chosen.append((status, state))
        chosen.sort(key=lambda pair: (-_RANK[pair[0]], pair[1].device, pair[1].collector,
                                      pair[1].job_id))
        page = [wire_job(state, self._plugins.get(state.collector, state.collector))
                for _, state in chosen[offset:offset + limit]]
        return _redacted(msgspec.json.encode(CollectJobs(
            now=self._now(), total=len(chosen), offset=offset, limit=limit,
            statuses=dict(sorted(by_status.items())),
            collectors=dict(sorted(by_collector.items())), jobs=page)))

    @operation("the genie-style report (version 1) of the latest poll of a device's jobs, "
               "or of one collector's on it", "read", answer=Any, errors=(400, 404),
               params=(Param("device", required=True, description="the device's name"),
                       Param("collector", description="only this collector's jobs")))
    async def report(self, request: Request) -> Response:
        device = request.query_params.get("device", "")
        collector = request.query_params.get("collector") or None
        if not device:
            raise InvalidData("is required (a device's name)", field="device")
        states = [s for s in self._board.job_states() if s.device == device
                  and (collector is None or s.collector == collector)]
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
