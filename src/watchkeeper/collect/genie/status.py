"""genie.telemetry's status objects, and their mapping onto watchkeeper's :class:`Status`.

A genie plugin returns a *health status*: ``OK``, ``WARNING``, ``CRITICAL``, ``ERRORED`` or
``PARTIAL``, usually rolled up (``status = OK; status += CRITICAL("core found")``) and
carrying *meta*, a dict of ISO-UTC timestamp to message. Plugins import them from
``genie.telemetry.status``; for plugins written without genie.telemetry installed, this
module offers objects with the same contract (``name``, ``code``, ``meta``, calling one
for a copy with meta, ``+`` to roll up, ``bool`` true only for OK, ``from_str``).

:func:`to_watchkeeper` reads either kind by its name, never by its class, so a plugin
keeps working whichever one it imported. One deliberate difference in the roll-up:
genie's ``NULL`` (no status) is neutral on either side here, where genie's table turns
``OK + NULL`` into WARNING but ``NULL + OK`` into OK.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from watchkeeper.model import Message, Status

# genie's codes; its roll-up order is by severity, which is not the code order.
_CODES = {"ok": 0, "warning": 1, "critical": 2, "errored": 3, "partial": 4, "null": 99}
_SEVERITY = {"null": 0, "ok": 1, "partial": 2, "warning": 3, "critical": 4, "errored": 5}
_TO_STATUS = {"ok": Status.OK, "warning": Status.WARNING, "critical": Status.CRITICAL,
              "errored": Status.ERRORED, "partial": Status.PARTIAL, "null": Status.UNKNOWN}


def _stamp() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _is_stamp(key: object) -> bool:
    if not isinstance(key, str):
        return False
    try:
        datetime.fromisoformat(key.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def massage_meta(meta: Any) -> dict[str, Any]:
    """Meta as genie keeps it: ``{iso_ts: value}``; anything else is put under a new stamp."""
    if isinstance(meta, Mapping) and meta and all(_is_stamp(k) for k in meta):
        return dict(meta)
    if isinstance(meta, Mapping) and not meta:
        return {}
    return {_stamp(): meta}


class HealthStatus:
    """One genie-style status with its meta; the module-level singletons are never altered."""

    __slots__ = ("_meta", "code", "name")

    def __init__(self, name: str, meta: Any = None) -> None:
        if name not in _CODES:
            raise ValueError(f"no genie status named {name!r} (known: {', '.join(_CODES)})")
        self.name = name
        self.code = _CODES[name]
        self._meta = massage_meta(meta) if meta is not None else {}

    @classmethod
    def from_str(cls, text: str) -> HealthStatus:
        return cls(text.lower())

    @property
    def meta(self) -> dict[str, Any]:
        return self._meta

    def __call__(self, meta: Any = None) -> HealthStatus:
        """``CRITICAL("why")``: a new status of this kind carrying ``meta``."""
        return HealthStatus(self.name, meta)

    def __add__(self, other: object) -> HealthStatus:
        if not isinstance(other, HealthStatus):
            other = HealthStatus("ok", other)  # genie too takes a bare dict or text as meta
        names = (self.name, other.name)
        worst = max(names, key=_SEVERITY.__getitem__)
        return HealthStatus(worst, {**self._meta, **other._meta} or None)

    def __radd__(self, other: object) -> HealthStatus:
        # sum() starts from 0: treat it as no status at all.
        if other == 0:
            return self
        return HealthStatus("ok", other) + self

    def __bool__(self) -> bool:
        return self.name == "ok"

    def __int__(self) -> int:
        return self.code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HealthStatus) and other.code == self.code

    def __hash__(self) -> int:
        return hash(self.code)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name.capitalize()


OK = HealthStatus("ok")
WARNING = HealthStatus("warning")
CRITICAL = HealthStatus("critical")
ERRORED = HealthStatus("errored")
PARTIAL = HealthStatus("partial")
NULL = HealthStatus("null")


def status_name(status: object) -> str | None:
    """The lower-case genie name of a status object of either library, or None."""
    name = getattr(status, "name", None)
    if not isinstance(name, str):
        name = str(status) if status is not None else None
    if name is None:
        return None
    name = name.lower()
    return name if name in _CODES else None


def to_watchkeeper(status: object, *, now: float) -> tuple[Status, tuple[Message, ...]]:
    """A plugin's return value as watchkeeper's status and messages (meta in time order).

    None, or something that is no genie status, is UNKNOWN with a message saying so.
    """
    name = status_name(status)
    if name is None:
        what = "no status" if status is None else f"{type(status).__name__}, not a status"
        return Status.UNKNOWN, (Message(ts=now, text=f"the plugin returned {what}"),)
    meta = getattr(status, "meta", None) or {}
    messages = [Message(ts=_ts(key, now), text=_text(value)) for key, value in
                (meta.items() if isinstance(meta, Mapping) else [(None, meta)])]
    messages.sort(key=lambda m: m.ts)
    return _TO_STATUS[name], tuple(messages)


def genie_code(status: object) -> int | None:
    """genie's numeric code of a status (0 ok .. 4 partial), None for no status."""
    name = status_name(status)
    return None if name is None or name == "null" else _CODES[name]


def _ts(key: object, default: float) -> float:
    if not _is_stamp(key):
        return default
    parsed = datetime.fromisoformat(str(key).replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError):  # pragma: no cover - default=str makes it always dump
        return str(value)
