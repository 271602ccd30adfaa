"""The iperf3 collector against the real ``iperf3 -s`` from ``scripts/services`` (port 15201)."""

from __future__ import annotations

import socket
from typing import Any

import msgspec
import pytest

from watchkeeper.collect.builtin.iperf3 import Iperf3Collector, Iperf3Options
from watchkeeper.collect.testing import poll_once, values
from watchkeeper.model import Status

pytestmark = pytest.mark.external_service


def iperf3(**options: Any) -> Iperf3Collector:
    options = {"port": 15201, "duration": 1, "busy_retries": 5, **options}
    return Iperf3Collector(msgspec.convert(options, Iperf3Options), name="iperf3")


async def test_tcp_throughput_and_retransmits() -> None:
    result = await poll_once(iperf3(), timeout=30)
    assert result.status is Status.OK, result.check.summary
    got = values(result)
    assert got["throughput"] is not None
    assert got["throughput"] > 1e6
    assert "packet-retransmits" in got
    assert {m.unit for m in result.measurements if m.key.metric == "throughput"} == {"bit/s"}


async def test_udp_loss_and_parallel_streams() -> None:
    result = await poll_once(iperf3(udp=True, bandwidth="10M", parallel=2), timeout=30)
    assert result.status is Status.OK, result.check.summary
    got = values(result)
    assert {"throughput", "packet-count-sent", "packet-count-lost", "packet-loss-rate",
            'streams-throughput{stream="0"}', 'streams-throughput{stream="1"}'} <= got.keys()
    rate = got["packet-loss-rate"]
    assert rate is not None
    assert 0.0 <= rate <= 1.0


async def test_throughput_threshold() -> None:
    result = await poll_once(iperf3(thresholds={"throughput": {"warn_below": 1e18}}), timeout=30)
    assert result.status is Status.WARNING
    assert "throughput" in result.check.summary


async def test_no_server_is_critical() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await poll_once(iperf3(port=port), timeout=30)
    assert result.status is Status.CRITICAL
    assert "unable to connect" in result.check.summary


async def test_missing_binary_is_errored() -> None:
    result = await poll_once(iperf3(binary="/nonexistent/iperf3"))
    assert result.status is Status.ERRORED
