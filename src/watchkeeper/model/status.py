"""Check statuses, their one severity order, and check results.

Severity, lowest to highest: ``UNKNOWN < OK < PARTIAL < WARNING < CRITICAL < ERRORED``.
A roll-up takes the most severe status; UNKNOWN is neutral (it only wins when
nothing else is known). ERRORED means the check itself broke, which hides more
than a CRITICAL device does, so it ranks highest.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec


class Status(enum.Enum):
    """The health of a poll, a device, a plugin or a run."""

    UNKNOWN = "unknown"
    OK = "ok"
    PARTIAL = "partial"
    WARNING = "warning"
    CRITICAL = "critical"
    ERRORED = "errored"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def exit_code(self) -> int:
        """The Nagios-style process exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 ERRORED."""
        return _EXIT_CODE[self]

    @property
    def state(self) -> int:
        """The Canopsis event state: 0 info, 1 minor, 2 major, 3 critical."""
        return _STATE[self]

    @classmethod
    def rollup(cls, statuses: Iterable[Status]) -> Status:
        """The most severe of ``statuses``; UNKNOWN when there are none."""
        return max(statuses, key=_SEVERITY.__getitem__, default=cls.UNKNOWN)


_SEVERITY = {
    Status.UNKNOWN: 0,
    Status.OK: 1,
    Status.PARTIAL: 2,
    Status.WARNING: 3,
    Status.CRITICAL: 4,
    Status.ERRORED: 5,
}
_EXIT_CODE = {
    Status.UNKNOWN: 0,
    Status.OK: 0,
    Status.PARTIAL: 1,
    Status.WARNING: 1,
    Status.CRITICAL: 2,
    Status.ERRORED: 3,
}
_STATE = {
    Status.UNKNOWN: 0,
    Status.OK: 0,
    Status.PARTIAL: 1,
    Status.WARNING: 1,
    Status.CRITICAL: 3,
    Status.ERRORED: 2,
}


class Message(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One timestamped line of a check result."""

    ts: float
    text: str


class CheckResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The outcome of one check: a status and why."""

    status: Status
    messages: tuple[Message, ...] = ()

    @property
    def summary(self) -> str:
        return "; ".join(m.text for m in self.messages)

    @classmethod
    def of(cls, status: Status, text: str = "", *, ts: float) -> CheckResult:
        return cls(status=status, messages=(Message(ts=ts, text=text),) if text else ())
