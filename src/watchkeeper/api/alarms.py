"""``/api/v1/alarms`` (list, read, act) and ``/api/v1/events/canopsis`` (event import)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from watchkeeper.api.limits import check_depth, decode_json, whole_param
from watchkeeper.api.openapi import Param, operation
from watchkeeper.api.redact import redact_url_passwords
from watchkeeper.errors import InvalidData
from watchkeeper.model import Event
from watchkeeper.pipeline.canopsis import EventFormatError, from_canopsis_json
from watchkeeper.pipeline.engines.alarms import STATE_NAMES, AlarmNotFound, Alarms
from watchkeeper.pipeline.engines.alarms.view import Action

JSON = "application/json"
ACTIONS: tuple[str, ...] = get_args(Action)
Publish = Callable[[Sequence[Event]], Awaitable[None]]
SETTABLE_STATES: tuple[int, ...] = (0, 1, 2, 3)
"""What ``changestate`` may set: ok to critical. "no data" (4) is the engine's to decide."""
MAX_ALARMS = 100_000


class ActionBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/v1/alarms/{key}/{action}``."""

    author: str = "api"
    message: str = ""
    duration: float | None = None
    ticket: str | None = None
    state: int | None = None


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    ids: list[str]


def _json(payload: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type=JSON)


def _redacted(payload: object) -> Response:
    """Alarms quote check outputs (steps' messages): URL passwords in them are hidden."""
    return Response(redact_url_passwords(msgspec.json.encode(payload)), media_type=JSON)


def alarm_routes(alarms: Alarms) -> list[BaseRoute]:
    """Routes over one alarms engine."""

    @operation("open alarms (and resolved ones with resolved=true)", "read", answer=Any,
               params=(Param("status", description="a status name"),
                       Param("resolved", "boolean"), Param("snoozed", "boolean"),
                       Param("limit", "integer", minimum=0, maximum=MAX_ALARMS)))
    async def list_alarms(request: Request) -> Response:
        params = request.query_params
        limit = whole_param(params.get("limit"), field="limit", default=1000, high=MAX_ALARMS)
        found = alarms.list(status=params.get("status") or None,
                            resolved=params.get("resolved") in ("1", "true", "yes"),
                            include_snoozed=params.get("snoozed", "true") != "false",
                            limit=limit)
        return _redacted(found)

    @operation("one alarm with its steps", "read", answer=Any, errors=(404,))
    async def get_alarm(request: Request) -> Response:
        key = request.path_params["key"]
        return _redacted(alarms.get(key))  # AlarmNotFound is a LookupError: 404

    @operation("act on an alarm: " + ", ".join(ACTIONS), "write", body=ActionBody,
               answer=Accepted, status=202, errors=(400, 401, 403, 404))
    async def act(request: Request) -> Response:
        key, action = request.path_params["key"], request.path_params["action"]
        if action not in ACTIONS:
            raise InvalidData(f"must be one of {', '.join(ACTIONS)}", field="action",
                              value=action)
        raw = await request.body()
        body = decode_json(raw, ActionBody) if raw.strip() else ActionBody()
        if action == "changestate":
            _check_state(body.state)
        try:
            event = await alarms.act(key, action, author=body.author,
                                     message=body.message, duration=body.duration,
                                     ticket=body.ticket, state=body.state)
        except AlarmNotFound:
            raise
        except ValueError as exc:
            raise InvalidData(str(exc), field="duration", value=body.duration) from None
        return _json(Accepted(accepted=1, ids=[event.id]), status=202)

    return [
        Route("/api/v1/alarms", list_alarms, methods=["GET"]),
        Route("/api/v1/alarms/{key:path}/{action:str}", act, methods=["POST"]),
        Route("/api/v1/alarms/{key:path}", get_alarm, methods=["GET"]),
    ]


def _check_state(state: int | None) -> None:
    if state not in SETTABLE_STATES:
        allowed = ", ".join(f"{s} ({STATE_NAMES[s]})" for s in SETTABLE_STATES)
        raise InvalidData(f"changestate needs a state, one of {allowed}", field="state",
                          value=state)


def event_routes(publish: Publish, *, now: Callable[[], float] = time.time) -> list[BaseRoute]:
    """The Canopsis-format importer: existing Canopsis connectors can POST here."""

    @operation("import Canopsis events (one object or an array)", "write", body=Any,
               answer=Accepted, status=202, errors=(400, 401, 403, 413))
    async def import_canopsis(request: Request) -> Response:
        raw = await request.body()
        check_depth(raw)
        try:
            events = from_canopsis_json(raw, now=now())
        except EventFormatError as exc:
            raise InvalidData(exc.reason, field=exc.field, value=exc.value) from None
        await publish(events)
        return _json(Accepted(accepted=len(events), ids=[e.id for e in events]), status=202)

    return [Route("/api/v1/events/canopsis", import_canopsis, methods=["POST"])]
