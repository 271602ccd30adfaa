"""The notifier engine: durable outbox, de-duplication by step id, retries with back-off,
dead letters, templates, and the Alertmanager firing/resolve cycle (receivers mocked here;
tests/integration/test_notifier_peers.py runs the real Alertmanager and an SMTP server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event
from watchkeeper.pipeline import Engine, Services
from watchkeeper.pipeline.engines import notifier
from watchkeeper.runtime.assemble import build_engines
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics


def make(options: dict[str, Any], clock: FakeClock, data_dir: Path | None = None,
         metrics: SelfMetrics | None = None) -> Engine:
    definition = notifier.ENGINE
    return Engine(name="notify", services=Services(clock=clock, metrics=metrics or SelfMetrics(),
                                                   data_dir=data_dir),
                  event_task=None, batch_task=definition.batch_task,
                  beat_task=definition.beat_task,
                  options=msgspec.convert(options, definition.options))


def alarm(step: str = "stateinc", *, index: int = 1, state: int = 3, status: str = "ongoing",
          alarm_id: str = "a1", **attrs: str) -> Event:
    return Event(event_type="alarm", component="web1", resource="http", timestamp=5.0,
                 state=state, output="HTTP 503", id=f"{alarm_id}#{index}",
                 attrs={"step": step, "alarm": alarm_id, "status": status,
                        "alarm_state": ["ok", "minor", "major", "critical"][state],
                        "author": "system", **attrs})


class Receiver:
    """An httpx MockTransport that answers from a script and records what it got."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.bodies: list[Any] = []
        self.urls: list[str] = []

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            self.bodies.append(json.loads(request.content))
            self.urls.append(str(request.url))
            return httpx.Response(self.answers.pop(0) if self.answers else 200, text="nope")
        return httpx.MockTransport(handler)


async def test_posts_alarm_steps_and_retries_at_beats_with_backoff() -> None:
    """A 500 then a 429 are retried at the beats after 0.5 s and 1 s; the third try lands,
    and only the wanted steps were queued."""
    clock, receiver = FakeClock(), Receiver(500, 429, 200)
    engine = make({"url": "http://hook.test/x", "steps": ["stateinc"]}, clock)
    engine.state["transport"] = receiver.transport()
    other = Event(event_type="check", component="web1", timestamp=1)
    batch = [other, alarm(), alarm("ack", index=2)]
    assert await engine.process(batch) == batch
    assert len(receiver.bodies) == 1
    await engine.beat()
    assert len(receiver.bodies) == 1  # not due yet
    await clock.advance(0.5)
    await engine.beat()
    await clock.advance(1.0)
    await engine.beat()
    assert len(receiver.bodies) == 3
    [sent] = receiver.bodies[-1]
    assert (sent["entity_id"], sent["attrs"]["step"], sent["state"]) == (
        "resource/web1/http", "stateinc", 3)
    assert engine.take_dead_letters() == []


@pytest.mark.parametrize(("status", "posts"), [(400, 1), (503, 3)])
async def test_gives_up_and_dead_letters(status: int, posts: int) -> None:
    """A 4xx is final at once; a 5xx is tried `attempts` times; both are dead-lettered."""
    clock, receiver = FakeClock(), Receiver(*[status] * 5)
    engine = make({"url": "http://hook.test/x", "attempts": 3}, clock)
    engine.state["transport"] = receiver.transport()
    await engine.process([alarm()])
    for _ in range(5):
        await clock.advance(60)
        await engine.beat()
    assert len(receiver.bodies) == posts
    [letter] = engine.take_dead_letters()
    assert f"HTTP {status} nope" in letter.error
    assert letter.event.id == "a1#1"


async def test_a_redelivered_step_is_notified_once() -> None:
    """The bus delivers at least once: the same step id twice is one notification."""
    clock, receiver = FakeClock(), Receiver()
    engine = make({"url": "http://hook.test/x"}, clock)
    engine.state["transport"] = receiver.transport()
    await engine.process([alarm()])
    await engine.process([alarm(), alarm("statedec", index=2, state=1)])
    assert [b[0]["id"] for b in receiver.bodies] == ["a1#1", "a1#2"]


async def test_undelivered_notifications_survive_a_restart(tmp_path: Path) -> None:
    """Queued while the receiver is down, delivered by a new engine on the same data dir;
    and what was delivered before the restart is not sent again."""
    clock = FakeClock()
    down = Receiver(503, 503, 503)
    first = make({"url": "http://hook.test/x"}, clock, tmp_path)
    first.state["transport"] = down.transport()
    await first.process([alarm(), alarm("statedec", index=2, state=1)])
    assert len(down.bodies) == 1  # the second waits behind the first, in order
    up = Receiver()
    second = make({"url": "http://hook.test/x"}, clock, tmp_path)
    second.state["transport"] = up.transport()
    await clock.advance(60)
    await second.beat()
    assert [b[0]["id"] for b in up.bodies] == ["a1#1", "a1#2"]
    await second.process([alarm()])  # redelivered after the restart: already sent
    assert len(up.bodies) == 2


async def test_chat_templates_escape_values_as_json() -> None:
    """The Slack/Mattermost template is a JSON body; quotes and newlines in the message
    stay inside the string."""
    clock, receiver = FakeClock(), Receiver()
    engine = make({"targets": [{"kind": "webhook", "name": "chat", "url": "http://chat.test/h",
                                "template": "mattermost"}]}, clock)
    engine.state["transport"] = receiver.transport()
    event = msgspec.structs.replace(alarm(), output='said "no"\nand left')
    await engine.process([event])
    [body] = receiver.bodies
    assert body["username"] == "watchkeeper"
    assert 'said "no"\nand left' in body["text"]
    assert "*critical* web1 http" in body["text"]


async def test_alertmanager_fires_resends_and_resolves() -> None:
    """A firing alarm goes to every URL with endsAt four resend periods ahead, is re-sent
    while it holds, and is sent with endsAt = now when it clears; inventory attributes
    added by enrich become labels."""
    clock, receiver = FakeClock(0.0), Receiver()
    engine = make({"targets": [{"kind": "alertmanager", "name": "am", "resend_every": 60,
                                "urls": ["http://am1.test", "http://am2.test/"]}]}, clock)
    engine.state["transport"] = receiver.transport()
    await engine.process([alarm(site="paris")])
    assert receiver.urls == ["http://am1.test/api/v2/alerts", "http://am2.test/api/v2/alerts"]
    [alert] = receiver.bodies[0]
    assert alert["labels"] == {"alertname": "watchkeeper", "entity": "resource/web1/http",
                               "component": "web1", "resource": "http",
                               "severity": "critical", "site": "paris"}
    assert alert["annotations"]["summary"] == "HTTP 503"
    assert alert["endsAt"] == "1970-01-01T00:04:00Z"
    await clock.advance(61)
    await engine.beat()
    assert len(receiver.bodies) == 4  # re-sent to both
    assert receiver.bodies[-1][0]["endsAt"] == "1970-01-01T00:05:01Z"
    await engine.process([alarm("statedec", index=2, state=0, status="off", site="paris")])
    resolved = receiver.bodies[-1]
    assert [a["endsAt"] for a in resolved] == ["1970-01-01T00:01:01Z"]
    assert resolved[0]["labels"]["severity"] == "critical"  # the alert it held, ended


async def test_a_severity_change_ends_the_alert_of_the_old_labels() -> None:
    """Alertmanager identifies an alert by its labels: when the severity changes, the old
    alert is ended in the same request that starts the new one."""
    clock, receiver = FakeClock(0.0), Receiver()
    engine = make({"targets": [{"kind": "alertmanager", "name": "am",
                                "urls": ["http://am.test"]}]}, clock)
    engine.state["transport"] = receiver.transport()
    await engine.process([alarm(state=1)])
    await clock.advance(10)
    await engine.process([alarm("stateinc", index=2, state=3)])
    old, new = receiver.bodies[-1]
    assert (old["labels"]["severity"], old["endsAt"]) == ("minor", "1970-01-01T00:00:10Z")
    assert new["labels"]["severity"] == "critical"
    assert new["startsAt"] == old["startsAt"]


async def test_metrics_count_delivered_failed_and_pending() -> None:
    """/metrics carries the notifier's counts per target."""
    clock, metrics = FakeClock(), SelfMetrics()
    engine = make({"url": "http://hook.test/x", "attempts": 1}, clock, metrics=metrics)
    engine.state["transport"] = Receiver(200, 400).transport()
    await engine.process([alarm(), alarm("ack", index=2)])
    text = metrics.exposition().decode()
    assert ('watchkeeper_notifications_total{engine="notify",outcome="delivered",'
            'target="webhook"} 1.0') in text
    assert ('watchkeeper_notifications_total{engine="notify",outcome="failed",'
            'target="webhook"} 1.0') in text
    assert 'watchkeeper_notifications_pending{engine="notify"} 0.0' in text


@pytest.mark.parametrize(("target", "message"), [
    ({"kind": "webhook", "name": "w", "url": "ftp://x"}, "http:// or https://"),
    ({"kind": "alertmanager", "name": "a", "urls": []}, "at least one Alertmanager"),
    ({"kind": "mail", "name": "m", "host": "h", "sender": "a@b", "to": []}, "recipient"),
    ({"kind": "mail", "name": "m", "host": "h", "sender": "a@b", "to": ["c@d"],
      "subject": "${oops"}, "subject: bad template"),
    ({"kind": "pager", "name": "p"}, "Invalid value 'pager'"),
])
def test_bad_targets_are_refused_at_start_up(target: dict[str, Any], message: str) -> None:
    """A bad target is a configuration error naming the file, the line and what is wrong."""
    text = json.dumps({"engines": [{"name": "notify", "engine": "notifier",
                                    "options": {"targets": [target]}}]})
    settings, locator = load_settings(text, env={}, source="wk.yaml")
    services = Services(clock=FakeClock(), metrics=SelfMetrics())
    with pytest.raises(ConfigError, match=message.replace("$", r"\$").replace("{", r"\{")):
        build_engines(settings, locator, services)
