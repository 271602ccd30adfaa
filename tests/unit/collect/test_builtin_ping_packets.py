"""ICMP echo packets built and parsed by hand, and how probe series become results."""

from __future__ import annotations

import struct

import msgspec
import pytest

from tests.unit.collect.fakes import START, spec
from watchkeeper.collect.abc import PollContext
from watchkeeper.collect.builtin.ping import (
    ECHO_REPLY,
    ECHO_REQUEST,
    PingOptions,
    checksum,
    echo_request,
    parse_echo_reply,
    summarise,
)
from watchkeeper.model import Status


def ctx() -> PollContext:
    return PollContext(plugin="ping", job=spec("ping:d1"), now=START, timeout=10.0,
                       affecting_intervals=(10.0,), state={})


def as_reply(packet: bytes) -> bytes:
    """What a peer sends back: the same packet with type 0 and a fixed-up checksum."""
    body = bytes([ECHO_REPLY]) + packet[1:2] + b"\0\0" + packet[4:]
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


def ipv4_header(payload_len: int, ihl: int = 5) -> bytes:
    return bytes([0x40 | ihl, 0]) + struct.pack("!H", 4 * ihl + payload_len) + bytes(4 * ihl - 4)


def test_checksum_matches_the_rfc_1071_example() -> None:
    """RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2, whose complement is 220d."""
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_checksum_pads_odd_lengths_with_a_zero_byte() -> None:
    assert checksum(b"\x01") == checksum(b"\x01\x00") == 0xFEFF


def test_checksum_folds_every_carry() -> None:
    assert checksum(b"\xff\xff" * 70_000) == 0x0000
    assert checksum(b"") == 0xFFFF


def test_an_echo_request_carries_its_fields_and_a_valid_checksum() -> None:
    packet = echo_request(0x1234, 7, b"payload!")
    kind, code, _, ident, seq = struct.unpack("!BBHHH", packet[:8])
    assert (kind, code, ident, seq) == (ECHO_REQUEST, 0, 0x1234, 7)
    assert packet[8:] == b"payload!"
    assert checksum(packet) == 0  # a packet including its own checksum sums to zero


def test_a_reply_is_parsed_with_and_without_the_ip_header() -> None:
    reply = as_reply(echo_request(0xBEEF, 3, b"token123"))
    parsed = parse_echo_reply(reply, ip_header=False)
    assert parsed is not None
    assert (parsed.ident, parsed.seq, parsed.payload) == (0xBEEF, 3, b"token123")
    assert parse_echo_reply(ipv4_header(len(reply)) + reply, ip_header=True) == parsed
    with_options = ipv4_header(len(reply), ihl=6) + reply
    assert parse_echo_reply(with_options, ip_header=True) == parsed


def test_requests_corrupt_and_short_packets_are_not_replies() -> None:
    request = echo_request(1, 1, b"x")
    assert parse_echo_reply(request, ip_header=False) is None  # raw sockets see our own
    reply = bytearray(as_reply(request))
    reply[-1] ^= 0xFF
    assert parse_echo_reply(bytes(reply), ip_header=False) is None
    assert parse_echo_reply(b"\0\0\0", ip_header=False) is None
    assert parse_echo_reply(b"\x60" + bytes(40), ip_header=True) is None  # not IPv4


@pytest.mark.parametrize(
    ("rtts", "status", "loss", "avg"),
    [
        ([1.0, 2.0, 3.0], Status.OK, 0.0, 2.0),
        ([1.0, None, 3.0], Status.WARNING, 100 / 3, 2.0),
        ([None, None], Status.CRITICAL, 100.0, None),
    ],
)
def test_loss_decides_the_status(
    rtts: list[float | None], status: Status, loss: float, avg: float | None
) -> None:
    result = summarise(ctx(), rtts, "icmp")
    values = {m.key.metric: m.value for m in result.measurements}
    assert result.status is status
    assert values["loss.percent"] == pytest.approx(loss)
    assert values.get("rtt.avg") == avg
    if avg is not None:
        assert (values["rtt.min"], values["rtt.max"]) == (1.0, 3.0)


def test_options_are_validated() -> None:
    assert msgspec.convert({}, PingOptions) == PingOptions()
    for bad in ({"mode": "udp"}, {"count": 0}, {"wait": 0}, {"cnt": 3}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, PingOptions)
