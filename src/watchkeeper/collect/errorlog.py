"""The daemons' log of ERRORED polls: every reason reaches the log, at a bounded rate.

A check that broke (an exception, a timeout, a wrong return value, a refused stuck job)
is logged the first time with its reason; while the job keeps failing, one line every
``every`` seconds gives how many more times and the latest reason; its first good poll
after that is logged once too. So an operator sees every broken job, and a job failing
every second for a day writes a few hundred lines, not 86,400.
"""

from __future__ import annotations

import logging

from watchkeeper.clock import Clock
from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.model import Status

log = logging.getLogger("watchkeeper.collect.errors")

DEFAULT_EVERY = 300.0


class _Failing:
    __slots__ = ("logged_at", "reason", "since_log", "total")

    def __init__(self, now: float, reason: str) -> None:
        self.logged_at = now
        self.reason = reason
        self.since_log = 0  # ERRORED polls not logged yet
        self.total = 1


class ErrorLog:
    """Logs ERRORED outcomes per job: the first at once, then a count every ``every`` s."""

    def __init__(self, clock: Clock, *, every: float = DEFAULT_EVERY) -> None:
        self._clock = clock
        self._every = every
        self._failing: dict[str, _Failing] = {}

    def note(self, outcome: PollOutcome) -> None:
        """Look at one finished poll; log what the rules above say."""
        if outcome.result.local_fault is not None:
            return  # watchkeeper's own overload: collect.saturation logs it, once for all jobs
        job = outcome.job_id
        state = self._failing.get(job)
        if outcome.result.status is not Status.ERRORED:
            if state is not None:
                del self._failing[job]
                log.info("%s: %s polls again (%s) after %d ERRORED", outcome.plugin, job,
                         outcome.result.status.value, state.total)
            return
        reason = outcome.result.check.summary or "no reason given"
        now = self._clock.time()
        if state is None:
            self._failing[job] = _Failing(now, reason)
            log.warning("%s: %s ERRORED: %s", outcome.plugin, job, reason)
            return
        state.total += 1
        state.since_log += 1
        state.reason = reason
        if now - state.logged_at >= self._every:
            log.warning("%s: %s ERRORED %d more times in %.0fs (%d in a row); latest: %s",
                        outcome.plugin, job, state.since_log, now - state.logged_at,
                        state.total, reason)
            state.logged_at = now
            state.since_log = 0

    def failing(self) -> int:
        """Jobs whose last poll ERRORED."""
        return len(self._failing)
