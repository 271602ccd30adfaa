"""``watchkeeper alarms list|show|ack|unack|snooze|unsnooze|cancel|uncancel``.

Alarms live in the process that runs the alarms engine (``watchkeeper up``, or an
``engine`` process of a scaled deployment); ``serve`` has none, and says so. States are
shown in the one status vocabulary of checks (see :mod:`watchkeeper.cli.render`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from watchkeeper.cli.options import (
    add_client,
    duration,
    output_of,
    server_url,
    token_of,
)
from watchkeeper.cli.render import Level, state_level, table, utc
from watchkeeper.client import Client
from watchkeeper.errors import HTTPStatusError, UsageError
from watchkeeper.wire import AlarmInfo, AlarmStep

# verb -> the API's action; the old spellings stay.
WRITES = {"ack": "ack", "unack": "ackremove", "ackremove": "ackremove", "snooze": "snooze",
          "unsnooze": "unsnooze", "cancel": "cancel", "uncancel": "uncancel"}
VERBS = ("list", "show", *WRITES)
_STATE_STEPS = ("stateinc", "statedec", "changestate")
_STATUS_STEPS = ("statusinc", "statusdec")
STATUS_NAMES = ("off", "ongoing", "stealthy", "flapping", "cancelled")


def add_commands(commands: Any) -> None:
    text = "list, show and act on alarms (served by `up` and engine processes)"
    alarms = commands.add_parser("alarms", help=text, description=text + ". VERB is "
                                 "list (the default), show, ack, unack, snooze, unsnooze, "
                                 "cancel or uncancel; all but list take the alarm's KEY.")
    alarms.add_argument("verb", nargs="?", default="list", choices=VERBS, metavar="VERB",
                        help="list (default), show, ack, unack, snooze, unsnooze, cancel, "
                             "uncancel")
    alarms.add_argument("key", nargs="?", metavar="KEY",
                        help="entity id (resource/COMPONENT/RESOURCE) or alarm id, for every "
                             "verb but list")
    alarms.add_argument("--status", help="list: only alarms with this status (ongoing, "
                                         "stealthy, flapping, cancelled)")
    alarms.add_argument("--resolved", action="store_true", help="list: include resolved alarms")
    alarms.add_argument("--author", default=os.environ.get("USER", "cli"),
                        help="who acts, logged with the step (default $USER)")
    alarms.add_argument("--message", "-m", default="",
                        help="why, logged with the step (ack, snooze, cancel ...)")
    alarms.add_argument("--duration", type=duration, metavar="DURATION",
                        help="snooze: how long (300, 5m, 2h)")
    add_client(alarms, write=True)
    alarms.set_defaults(handler=_alarms)


def _alarms(args: argparse.Namespace) -> int:
    if args.verb != "list" and not args.key:
        raise UsageError(f"alarms {args.verb}: KEY is required (an entity id or alarm id; "
                         "`watchkeeper alarms` lists them)")
    if args.verb == "snooze" and args.duration is None:
        raise UsageError("alarms snooze: --duration is required (e.g. --duration 1h)")
    # Reads send the token too when one is given: public_reads may be off.
    with Client(server_url(args), token=token_of(args), verify=not args.insecure) as client:
        try:
            return _run(args, client)
        except HTTPStatusError as exc:
            raise _no_alarms_here(exc) from None


def _run(args: argparse.Namespace, client: Client) -> int:
    fmt = output_of(args)
    if args.verb == "list":
        found = client.alarms(status=args.status, resolved=args.resolved)
        rows: list[list[object]] = [
            [a.entity_id, state_level(a.state), Level(a.status_name), "yes" if a.ack else "",
             utc(a.opened), utc(a.last_change)] for a in found]
        table(["entity", "state", "status", "acked", "opened (UTC)", "changed (UTC)"],
              rows, fmt=fmt, title=f"{len(found)} alarms", hint="--status ongoing lists fewer")
        return 0
    if args.verb == "show":
        alarm = client.alarm(args.key)
        steps = [[utc(s.t), s.type, s.author, step_value(s), s.message] for s in alarm.steps]
        table(["time (UTC)", "step", "author", "value", "message"], steps, fmt=fmt,
              title=alarm_title(alarm), important=4)
        return 0
    body: dict[str, object] = {"author": args.author, "message": args.message}
    if args.duration is not None:
        body["duration"] = args.duration
    sent = client.act(args.key, WRITES[args.verb], **body)
    print(f"{args.verb} sent for {args.key} (event {sent.ids[0]})")
    return 0


def step_value(step: AlarmStep) -> object:
    """A step's value by name: a state or status change names it, not its code."""
    if step.val is None:
        return None
    code = int(step.val)
    if step.type in _STATE_STEPS:
        return state_level(code)
    if step.type in _STATUS_STEPS and 0 <= code < len(STATUS_NAMES):
        return Level(STATUS_NAMES[code])
    return step.val


def alarm_title(alarm: AlarmInfo) -> str:
    title = f"{alarm.entity_id}: {state_level(alarm.state)}, {alarm.status_name}"
    return f"{title} (caused by {alarm.caused_by})" if alarm.caused_by else title


def _no_alarms_here(exc: HTTPStatusError) -> HTTPStatusError:
    # A 404 from the router (not "no alarm KEY") means this server runs no alarms engine.
    if exc.status == 404 and exc.detail.strip().lower() == "not found":
        return HTTPStatusError(404, "this server has no alarms: alarms live in `watchkeeper "
                               "up` (or the process running the alarms engine), not in "
                               "`watchkeeper serve`", url=exc.url)
    return exc
