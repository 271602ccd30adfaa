"""What a notification says: the fields of an alarm event, and templates over them.

Templates are :class:`string.Template` texts (``$component``, ``${alarm_state}``): they can
name fields and nothing else, so a template from the configuration cannot reach into
Python objects. Every value is escaped for where it goes: JSON string content for webhook
bodies, HTML for the HTML part of a mail, nothing for plain text.
"""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Callable, Mapping
from string import Template

from watchkeeper.model import Event

ALARM_ATTRS = frozenset({"alarm", "step", "status", "alarm_state", "author", "val"})
"""Attributes the alarms engine sets; every other attribute came from elsewhere (enrich)."""

STATE_NAMES = ("ok", "minor", "major", "critical")

DEFAULT_SUBJECT = "[watchkeeper] $alarm_state: $component $resource ($step)"
DEFAULT_TEXT = """$component $resource is $alarm_state ($status).

$output

step:      $step by $author at $time
alarm:     $alarm
entity:    $entity
"""
DEFAULT_HTML = """<p><b>$component $resource</b> is <b>$alarm_state</b> ($status).</p>
<p>$output</p>
<table>
<tr><td>step</td><td>$step by $author at $time</td></tr>
<tr><td>alarm</td><td>$alarm</td></tr>
<tr><td>entity</td><td>$entity</td></tr>
</table>
"""
CHAT_TEXT = ":rotating_light: *$alarm_state* $component $resource: $output ($step, $time)"
CHAT_TEMPLATES = {
    "slack": '{"text": "' + CHAT_TEXT + '"}',
    "mattermost": '{"text": "' + CHAT_TEXT + '", "username": "watchkeeper"}',
}
"""Ready bodies for Slack- and Mattermost-compatible incoming webhooks."""


def fields(event: Event) -> dict[str, str]:
    """The names a template may use, for one alarm event."""
    attrs = event.attrs
    state = attrs.get("alarm_state") or STATE_NAMES[min(max(event.state, 0), 3)]
    values = {
        "component": event.component,
        "resource": event.resource,
        "entity": event.entity_id,
        "state": str(event.state),
        "alarm_state": state,
        "status": attrs.get("status", ""),
        "step": attrs.get("step", event.event_type),
        "author": attrs.get("author", ""),
        "alarm": attrs.get("alarm", ""),
        "val": attrs.get("val", ""),
        "output": event.output,
        "long_output": event.long_output,
        "time": iso(event.timestamp),
        "timestamp": f"{event.timestamp:.3f}",
        "id": event.id,
    }
    for name, value in attrs.items():
        values.setdefault(name, value)
    return values


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def render(template: str, values: Mapping[str, str],
           escape: Callable[[str], str] = str) -> str:
    """``template`` with each ``$name`` replaced by its escaped value (unknown names stay)."""
    return Template(template).safe_substitute({k: escape(v) for k, v in values.items()})


def json_string(value: str) -> str:
    """``value`` as the inside of a JSON string."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def html_text(value: str) -> str:
    return html.escape(value, quote=True)


def check_template(template: str, what: str) -> None:
    """A template must parse (``$$`` for a dollar sign); ValueError names the option."""
    try:
        Template(template).substitute(dict.fromkeys(_identifiers(template), ""))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{what}: bad template ({exc})") from None


def _identifiers(template: str) -> list[str]:
    return Template(template).get_identifiers()
