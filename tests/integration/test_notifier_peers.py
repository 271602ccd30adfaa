"""The notifier against real receivers on 127.0.0.1: Debian's prometheus-alertmanager
(installed by scripts/services, started here on a free port) and an SMTP server with
STARTTLS and AUTH (aiosmtpd, started here)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.support.serve import free_port
from watchkeeper.clock import SystemClock
from watchkeeper.model import Event
from watchkeeper.pipeline import Engine, Services
from watchkeeper.pipeline.engines import notifier
from watchkeeper.telemetry import SelfMetrics

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def make(options: dict[str, Any], data_dir: Path) -> Engine:
    definition = notifier.ENGINE
    return Engine(name="notify", services=Services(clock=SystemClock(), metrics=SelfMetrics(),
                                                   data_dir=data_dir),
                  event_task=None, batch_task=definition.batch_task,
                  beat_task=definition.beat_task,
                  options=msgspec.convert(options, definition.options))


def alarm(index: int, *, state: int, status: str, output: str = "HTTP 503") -> Event:
    return Event(event_type="alarm", component="web1", resource="http", timestamp=time.time(),
                 state=state, output=output, id=f"al-1#{index}",
                 attrs={"step": "stateinc" if state else "statedec", "alarm": "al-1",
                        "status": status, "author": "system", "site": "paris",
                        "alarm_state": ["ok", "minor", "major", "critical"][state]})


# ------------------------------------------------------------------ Alertmanager

@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if ALERTMANAGER is None:
        pytest.skip("prometheus-alertmanager is not installed (scripts/services up)")
    config = tmp_path / "am.yml"
    config.write_text("route: {receiver: blackhole, group_wait: 1s, group_interval: 1s}\n"
                      "receivers: [{name: blackhole}]\n")
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager did not start: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def alerts(url: str, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{url}/api/v2/alerts", params=params)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()
    return [a for a in found if a["labels"].get("entity") == "resource/web1/http"]


async def test_an_alarm_fires_is_silenced_and_resolves_in_alertmanager(
        alertmanager: str, tmp_path: Path) -> None:
    """The alarm appears in Alertmanager with its labels (the inventory's site among them);
    a silence made in Alertmanager silences it; clearing the alarm resolves it there."""
    engine = make({"targets": [{"kind": "alertmanager", "name": "am",
                                "urls": [alertmanager]}]}, tmp_path)
    await engine.process([alarm(1, state=3, status="ongoing")])
    [alert] = await alerts(alertmanager)
    assert alert["labels"] == {"alertname": "watchkeeper", "entity": "resource/web1/http",
                               "component": "web1", "resource": "http",
                               "severity": "critical", "site": "paris"}
    assert alert["annotations"]["summary"] == "HTTP 503"
    assert alert["status"]["state"] == "active"

    silence = {"matchers": [{"name": "component", "value": "web1", "isRegex": False}],
               "startsAt": "2000-01-01T00:00:00Z", "endsAt": "2100-01-01T00:00:00Z",
               "createdBy": "test", "comment": "maintenance"}
    async with httpx.AsyncClient() as client:
        made = await client.post(f"{alertmanager}/api/v2/silences", json=silence)
    made.raise_for_status()
    silence_id = made.json()["silenceID"]
    for _ in range(50):  # Alertmanager marks alerts silenced when it next looks at them
        [alert] = await alerts(alertmanager)
        if alert["status"]["state"] == "suppressed":
            break
        await asyncio.sleep(0.1)
    assert alert["status"]["silencedBy"] == [silence_id]

    await engine.process([alarm(2, state=0, status="off", output="HTTP 200")])
    assert await alerts(alertmanager) == []
    assert engine.take_dead_letters() == []


async def test_an_ha_pair_gets_every_alert_even_when_one_is_down(
        alertmanager: str, tmp_path: Path) -> None:
    """Two Alertmanager URLs: the live one gets the alert at once; the one that is down is
    retried on its own queue without holding the live one back."""
    dead = f"http://127.0.0.1:{free_port()}"
    engine = make({"targets": [{"kind": "alertmanager", "name": "am",
                                "urls": [dead, alertmanager]}]}, tmp_path)
    await engine.process([alarm(1, state=2, status="ongoing")])
    [alert] = await alerts(alertmanager)
    assert alert["labels"]["severity"] == "major"


# ------------------------------------------------------------------ mail

@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.original_content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@pytest.fixture
async def smtp(tls_files: tuple[Path, Path]) -> AsyncIterator[tuple[int, Mailbox]]:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str,
              auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login in ("wk", b"wk")
              and auth_data.password in ("s3cret", b"s3cret"))
        return AuthResult(success=ok, handled=False)  # the server answers 235 or 535

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    mailbox = Mailbox()
    port = free_port()
    controller = controller_mod.Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=check, auth_require_tls=True)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


async def test_mail_over_starttls_with_auth_and_templates(
        smtp: tuple[int, Mailbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One mail per alarm step through STARTTLS and AUTH (password from env:), with the
    subject and both parts rendered from the alarm; HTML-escaped in the HTML part."""
    port, mailbox = smtp
    monkeypatch.setenv("WK_TEST_SMTP_PASSWORD", "s3cret")
    engine = make({"targets": [{
        "kind": "mail", "name": "noc", "host": "127.0.0.1", "port": port,
        "security": "starttls", "verify_tls": False, "username": "wk",
        "password": "env:WK_TEST_SMTP_PASSWORD", "sender": "wk@example.org",
        "to": ["noc@example.org", "oncall@example.org"],
        "subject": "[$alarm_state] $component $resource"}]}, tmp_path)
    await engine.process([alarm(1, state=3, status="ongoing", output="5xx <b>spike</b>")])
    assert engine.take_dead_letters() == []
    [message] = mailbox.messages
    assert message["Subject"] == "[critical] web1 http"
    assert mailbox.envelopes == [("wk@example.org", ["noc@example.org", "oncall@example.org"])]
    text, html = (part.get_payload(decode=True).decode() for part in message.walk()
                  if part.get_content_maintype() == "text")
    assert "5xx <b>spike</b>" in text
    assert "5xx &lt;b&gt;spike&lt;/b&gt;" in html


async def test_a_wrong_mail_password_is_final(smtp: tuple[int, Mailbox], tmp_path: Path) -> None:
    """535 (authentication failed) is not retried: dead-lettered with the server's answer."""
    port, mailbox = smtp
    engine = make({"targets": [{
        "kind": "mail", "name": "noc", "host": "127.0.0.1", "port": port,
        "security": "starttls", "verify_tls": False, "username": "wk", "password": "wrong",
        "timeout": 10,
        "sender": "wk@example.org", "to": ["noc@example.org"]}]}, tmp_path)
    await engine.process([alarm(1, state=3, status="ongoing")])
    [letter] = engine.take_dead_letters()
    assert "535" in letter.error
    assert mailbox.messages == []
