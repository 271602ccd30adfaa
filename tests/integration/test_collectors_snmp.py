"""The snmp collector against the real snmpd from ``scripts/services`` (udp 127.0.0.1:16161)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from watchkeeper.collect.builtin.snmp import SnmpCollector, SnmpOptions
from watchkeeper.collect.testing import poll_once, values
from watchkeeper.model import Device, Status

pytestmark = pytest.mark.external_service

AGENT = Device(name="agent", address="127.0.0.1", connections={"snmp": {"port": 16161}})
V3 = {"version": 3, "user": "wkuser", "auth_protocol": "SHA", "auth_key": "env:WK_SNMP_AUTH",
      "priv_protocol": "AES", "priv_key": "env:WK_SNMP_PRIV"}
UPTIME = {"name": "sys.uptime", "oid": "1.3.6.1.2.1.1.3.0"}

Make = Callable[..., SnmpCollector]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[SnmpCollector] = []

    def _make(**options: Any) -> SnmpCollector:
        made.append(SnmpCollector(msgspec.convert(options, SnmpOptions), name="snmp"))
        return made[-1]

    yield _make
    for collector in made:
        await collector.aclose()


@pytest.fixture
def v3_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_SNMP_AUTH", "wkauthpass123")
    monkeypatch.setenv("WK_SNMP_PRIV", "wkprivpass123")


async def test_v2c_get_and_walk(make: Make) -> None:
    collector = make(objects=[UPTIME, {"name": "if.mtu", "oid": "1.3.6.1.2.1.2.2.1.4",
                                       "walk": True}])
    result = await poll_once(collector, AGENT)
    assert result.status is Status.OK, result.check.summary
    got = values(result)
    assert got["sys.uptime"] is not None
    assert got["sys.uptime"] > 0
    assert got['if.mtu{index="1"}'] == 65536  # lo


async def test_interfaces_give_status_speed_and_rates_from_the_second_poll(make: Make) -> None:
    collector = make(interfaces=True)
    state: dict[str, Any] = {}
    first = await poll_once(collector, AGENT, state=state)
    assert first.status is Status.OK, first.check.summary
    got = values(first)
    assert got['if.oper_status{if="lo"}'] == 1
    assert 'if.speed{if="eth0"}' in got
    assert not any("bps" in name for name in got)  # the first poll only sets baselines
    await asyncio.sleep(1.1)  # sysUpTime counts hundredths; let it move
    second = values(await poll_once(collector, AGENT, state=state))
    for name in ('if.in_bps{if="lo"}', 'if.out_bps{if="lo"}', 'if.in_errors{if="lo"}'):
        rate = second[name]
        assert rate is not None
        assert rate >= 0


async def test_walked_counters_become_rates(make: Make) -> None:
    collector = make(objects=[{"name": "if.in_octets", "oid": "1.3.6.1.2.1.31.1.1.1.6",
                               "walk": True, "unit": "B"}])
    state: dict[str, Any] = {}
    assert values(await poll_once(collector, AGENT, state=state)) == {}
    await asyncio.sleep(1.1)
    result = await poll_once(collector, AGENT, state=state)
    assert {m.unit for m in result.measurements} == {"B/s"}
    assert len(result.measurements) >= 2  # lo, eth0, ...


async def test_interface_filter(make: Make) -> None:
    result = await poll_once(make(interfaces=True, interface_match="^lo$"), AGENT)
    assert {dict(m.key.labels)["if"] for m in result.measurements} == {"lo"}


@pytest.mark.usefixtures("v3_secrets")
async def test_v3_auth_priv_with_credentials_by_reference(
        make: Make, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = await poll_once(make(objects=[UPTIME], **V3), AGENT)
    assert result.status is Status.OK, result.check.summary
    assert values(result)["sys.uptime"] is not None
    assert "wkprivpass123" not in caplog.text
    assert "wkauthpass123" not in caplog.text


@pytest.mark.usefixtures("v3_secrets")
async def test_v3_wrong_key_is_errored_without_showing_it(
        make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_SNMP_AUTH", "wrong-password-sentinel")
    result = await poll_once(make(objects=[UPTIME], request_timeout=0.5, **V3), AGENT,
                             timeout=5)
    assert result.status is Status.ERRORED  # the agent answered: our settings are wrong
    assert "Wrong SNMP PDU digest" in result.check.summary
    assert "wrong-password-sentinel" not in result.check.summary


async def test_missing_credential_is_errored_naming_the_reference(make: Make) -> None:
    result = await poll_once(make(objects=[UPTIME], community="env:WK_UNSET_COMMUNITY"), AGENT)
    assert result.status is Status.ERRORED
    assert "WK_UNSET_COMMUNITY is not set" in result.check.summary


async def test_a_silent_agent_is_critical(make: Make) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never answers
        port = sock.getsockname()[1]
        collector = make(objects=[UPTIME], request_timeout=0.3, retries=0)
        device = Device(name="mute", address="127.0.0.1", connections={"snmp": {"port": port}})
        result = await poll_once(collector, device, timeout=3)
    assert result.status is Status.CRITICAL
    assert "no SNMP answer" in result.check.summary


async def test_wrong_community_reads_as_unreachable(make: Make) -> None:
    result = await poll_once(make(objects=[UPTIME], community="not-public", request_timeout=0.3,
                                  retries=0), AGENT, timeout=3)
    assert result.status is Status.CRITICAL


async def test_a_missing_object_is_partial(make: Make) -> None:
    result = await poll_once(make(objects=[UPTIME, {"name": "nope", "oid": "1.3.6.1.4.1.9.9.9.0"}]),
                             AGENT)
    assert result.status is Status.PARTIAL
    assert "no such object" in result.check.summary


async def test_snmpv1_walks_with_getnext(make: Make) -> None:
    result = await poll_once(make(version=1, objects=[{"name": "if.mtu",
                                                       "oid": "1.3.6.1.2.1.2.2.1.4",
                                                       "walk": True}]), AGENT)
    assert result.status is Status.OK, result.check.summary
    assert values(result)['if.mtu{index="1"}'] == 65536
