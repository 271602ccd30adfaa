"""Where notifications go: a webhook, Alertmanager, or mail.

Each target turns an alarm event into payloads to queue (``rows``) and sends one payload
(``deliver``). A payload is rendered when it is queued, so what is delivered after a
restart is exactly what would have been delivered before it. ``deliver`` raises
:class:`Undelivered`, saying whether trying again can help.
"""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline.engines.notifier import render
from watchkeeper.pipeline.engines.notifier.outbox import Outbox

FIRING_STATUSES = frozenset({"ongoing", "stealthy", "flapping"})


class Undelivered(Exception):
    """A payload was not delivered; ``retry`` is False when the receiver refused it."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class _Target(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
              tag_field="kind"):
    name: str

    def rows(self, event: Event, outbox: Outbox, now: float) -> list[tuple[str, bytes]]:
        """``(queue name, payload)`` pairs to queue for ``event``."""
        raise NotImplementedError

    async def deliver(self, queue: str, payload: bytes, client: httpx.AsyncClient) -> None:
        raise NotImplementedError


def _http_failure(method: str, url: str, response: httpx.Response) -> Undelivered:
    text = f"{method} {url}: HTTP {response.status_code} {response.text[:200]}"
    # 4xx (but 408 and 429) says the receiver will never take this payload: do not retry.
    retry = response.status_code >= 500 or response.status_code in {408, 429}
    return Undelivered(text, retry=retry)


async def _post(client: httpx.AsyncClient, url: str, body: bytes,
                headers: dict[str, str]) -> None:
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise Undelivered(f"POST {url}: {exc!r}", retry=True) from None
    if response.status_code >= 300:
        raise _http_failure("POST", url, response)


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One event as a plain webhook receives it (a JSON array of these)."""

    id: str
    event_type: str
    entity_id: str
    component: str
    resource: str
    state: int
    output: str
    timestamp: float
    attrs: dict[str, str]


_json = msgspec.json.Encoder()


class WebhookTarget(_Target, frozen=True, tag="webhook"):
    """POSTs a JSON array of notifications, or ``template`` rendered (``slack``,
    ``mattermost``, or a JSON text with ``$field`` placeholders)."""

    url: str
    template: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if self.template is not None and self.template not in render.CHAT_TEMPLATES:
            render.check_template(self.template, "template")

    def rows(self, event: Event, outbox: Outbox, now: float) -> list[tuple[str, bytes]]:
        if self.template is None:
            body = _json.encode([Notification(
                id=event.id, event_type=event.event_type, entity_id=event.entity_id,
                component=event.component, resource=event.resource, state=event.state,
                output=event.output, timestamp=event.timestamp, attrs=event.attrs)])
        else:
            template = render.CHAT_TEMPLATES.get(self.template, self.template)
            text = render.render(template, render.fields(event), render.json_string)
            body = text.encode()
        return [(self.name, body)]

    async def deliver(self, queue: str, payload: bytes, client: httpx.AsyncClient) -> None:
        await _post(client, self.url, payload,
                    {"content-type": "application/json", **self.headers})


class AlertmanagerTarget(_Target, frozen=True, tag="alertmanager"):
    """Alerts to Alertmanager's v2 API, on every URL of an HA group.

    While an alarm holds it is re-sent every ``resend_every`` seconds with ``endsAt`` four
    periods ahead (as Prometheus does), so Alertmanager never resolves it by timeout; when
    it clears, ``endsAt`` is now. Labels: ``alertname``, ``entity``, ``component``,
    ``resource``, ``severity``, and every attribute that did not come from the alarms engine
    (the inventory's, added by enrich); annotations: the message, the step, its author.
    """

    urls: list[str]
    resend_every: float = 60.0
    alertname: str = "watchkeeper"
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    generator_url: str = ""

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("urls must name at least one Alertmanager")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"url {url!r} must start with http:// or https://")
        if self.resend_every <= 0:
            raise ValueError("resend_every must be positive")

    def queue(self, url: str) -> str:
        return f"{self.name}@{url}"

    def alert(self, event: Event, now: float) -> dict[str, Any]:
        values = render.fields(event)
        labels = {"alertname": self.alertname, "entity": event.entity_id,
                  "component": event.component, "severity": values["alarm_state"],
                  **self.labels}
        if event.resource:
            labels["resource"] = event.resource
        for name, value in event.attrs.items():
            if name not in render.ALARM_ATTRS and value:
                labels.setdefault(_label_name(name), value)
        annotations = {"summary": event.output, "step": values["step"],
                       "author": values["author"], "status": values["status"],
                       "alarm": values["alarm"]}
        if event.long_output:
            annotations["description"] = event.long_output
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations,
                                 "startsAt": render.iso(event.timestamp)}
        if self.generator_url:
            alert["generatorURL"] = self.generator_url
        return alert

    def rows(self, event: Event, outbox: Outbox, now: float) -> list[tuple[str, bytes]]:
        alarm = event.attrs.get("alarm") or event.entity_id
        previous = outbox.firing(self.name).get(alarm)
        old = json.loads(previous) if previous else None
        alert = self.alert(event, now)
        if old is not None:
            alert["startsAt"] = old["startsAt"]  # one alarm, one start: the first step's
        sent: list[dict[str, Any]] = []
        if firing(event):
            if old is not None and old["labels"] != alert["labels"]:
                sent.append({**old, "endsAt": render.iso(now)})  # its identity changed
            alert["endsAt"] = render.iso(now + 4 * self.resend_every)
            outbox.set_firing(self.name, alarm, json.dumps(alert).encode())
            sent.append(alert)
        elif old is not None:  # cleared: end the alert Alertmanager holds, labels and all
            outbox.set_firing(self.name, alarm, None)
            sent.append({**old, "endsAt": render.iso(now)})
        if not sent:
            return []  # a step of an alarm that never fired: nothing to tell
        body = json.dumps(sent).encode()
        return [(self.queue(url), body) for url in self.urls]

    def resend(self, outbox: Outbox, now: float) -> bytes | None:
        """Every firing alert, its ``endsAt`` moved ahead; None when nothing fires."""
        alerts = [json.loads(a) for a in outbox.firing(self.name).values()]
        if not alerts:
            return None
        for alert in alerts:
            alert["endsAt"] = render.iso(now + 4 * self.resend_every)
        return json.dumps(alerts).encode()

    async def deliver(self, queue: str, payload: bytes, client: httpx.AsyncClient) -> None:
        url = queue.partition("@")[2].rstrip("/")
        await _post(client, f"{url}/api/v2/alerts", payload,
                    {"content-type": "application/json"})


def firing(event: Event) -> bool:
    """An alarm event whose alarm holds: not OK, and neither off nor cancelled."""
    status = event.attrs.get("status", "ongoing")
    return event.state > 0 and status in FIRING_STATUSES


def _label_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


class MailTarget(_Target, frozen=True, tag="mail"):
    """One mail per alarm step, over SMTP (STARTTLS or implicit TLS, optional login).

    ``subject``, ``text`` and ``html`` are templates (``$component``, ``$alarm_state``,
    ...); the HTML part is sent beside the text when ``html`` is set, with every value
    HTML-escaped. ``password`` may be a reference, ``env:VAR`` or ``file:/path``, read
    when a mail is sent.
    """

    host: str
    sender: str
    to: list[str]
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = None
    verify_tls: bool = True
    timeout: float = 30.0
    subject: str = render.DEFAULT_SUBJECT
    text: str = render.DEFAULT_TEXT
    html: str | None = render.DEFAULT_HTML

    def __post_init__(self) -> None:
        if not self.to:
            raise ValueError("to must name at least one recipient")
        for what, template in (("subject", self.subject), ("text", self.text),
                               ("html", self.html or "")):
            render.check_template(template, what)

    def rows(self, event: Event, outbox: Outbox, now: float) -> list[tuple[str, bytes]]:
        values = render.fields(event)
        message = EmailMessage()
        message["Subject"] = render.render(self.subject, values).replace("\n", " ")
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message.set_content(render.render(self.text, values))
        if self.html:
            message.add_alternative(render.render(self.html, values, render.html_text),
                                    subtype="html")
        return [(self.name, bytes(message))]

    async def deliver(self, queue: str, payload: bytes, client: httpx.AsyncClient) -> None:
        await asyncio.to_thread(self._send, payload)

    def _send(self, payload: bytes) -> None:
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port,
                                                      timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.username:
                    _login(smtp, self.username, secret(self.password or ""))
                smtp.sendmail(self.sender, self.to, payload)
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error
            text = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
            raise Undelivered(f"SMTP {self.host}:{self.port}: {exc.smtp_code} {text}",
                              retry=exc.smtp_code >= 400 and exc.smtp_code < 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Undelivered(f"SMTP {self.host}:{self.port}: {exc!r}", retry=True) from None


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """PLAIN when offered (one round trip, and a refusal is a plain 535), else whatever
    ``login`` picks."""
    smtp.ehlo_or_helo_if_needed()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" not in offered:
        smtp.login(username, password)
        return
    smtp.user, smtp.password = username, password
    code, answer = smtp.auth("PLAIN", smtp.auth_plain)
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, answer)


def secret(ref: str) -> str:
    """A password given as itself, as ``env:VAR`` or as ``file:/path`` (read now)."""
    kind, _, where = ref.partition(":")
    if kind == "env" and where:
        if where not in os.environ:
            raise PipelineError(f"mail password {ref}: environment variable {where} is not set")
        return os.environ[where]
    if kind == "file" and where:
        return Path(where).read_text(encoding="utf-8").removesuffix("\n")
    return ref


Target = WebhookTarget | AlertmanagerTarget | MailTarget
