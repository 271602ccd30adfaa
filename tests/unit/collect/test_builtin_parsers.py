"""Pure parts of the protocol collectors: options, OIDs, SNMP values, DNS wire, iperf3 reports,
thresholds and the traceback scanner."""

from __future__ import annotations

import re
import struct
from typing import Any

import msgspec
import pytest

from watchkeeper.collect.builtin._dnswire import (
    TYPES,
    DnsFormatError,
    build_query,
    parse_response,
    read_name,
)
from watchkeeper.collect.builtin._snmp import decode, parse_oid
from watchkeeper.collect.builtin.crashdumps import CrashdumpsOptions
from watchkeeper.collect.builtin.dns import DnsOptions
from watchkeeper.collect.builtin.iperf3 import Iperf3Collector, Iperf3Options, parse_report
from watchkeeper.collect.builtin.logscan import LogscanOptions, scan_lines
from watchkeeper.collect.builtin.snmp import SnmpCollector, SnmpOptions
from watchkeeper.collect.builtin.ssh import SshOptions
from watchkeeper.collect.thresholds import Threshold, judge
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Status

# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("model", "raw", "match"),
    [
        (SnmpOptions, {}, "nothing to poll"),
        (SnmpOptions, {"interfaces": True, "version": 3}, "needs `user`"),
        (SnmpOptions, {"objects": [{"name": "x", "oid": "IF-MIB::ifDescr"}]}, "numeric OID"),
        (SnmpOptions, {"interfaces": True, "version": "2"}, "Invalid enum value"),
        (SnmpOptions, {"interfaces": True, "port": 0}, "out of range"),
        (SshOptions, {}, "command"),
        (SshOptions, {"command": "x", "pattern": "(", }, "unterminated|missing"),
        (SshOptions, {"command": "x", "pattern": "a", "parser": "m:f"}, "not both"),
        (SshOptions, {"command": "x", "parser": "nocolon"}, "module:function"),
        (Iperf3Options, {"duration": 0}, "duration"),
        (DnsOptions, {"record_type": "AXFR"}, "record_type"),
        (LogscanOptions, {"paths": []}, "at least one path"),
        (LogscanOptions, {"paths": ["/x"], "patterns": ["("]}, "missing|unterminated"),
        (LogscanOptions, {"paths": ["/x"], "tracebacks": False}, "nothing to look for"),
        (CrashdumpsOptions, {"directories": ["/x"], "delete": True, "move_to": "/y"}, "not both"),
    ],
)
def test_bad_options_are_refused_with_a_reason(model: type[Any], raw: dict[str, Any],
                                               match: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=match):
        msgspec.convert(raw, model)


def test_snmp_versions_accept_yaml_numbers_and_strings() -> None:
    assert msgspec.convert({"interfaces": True, "version": 1}, SnmpOptions).version == 1
    assert msgspec.convert({"interfaces": True, "version": "2c"}, SnmpOptions).version == "2c"


def test_device_connection_overrides_options_and_is_validated() -> None:
    options = msgspec.convert({"interfaces": True, "community": "env:A"}, SnmpOptions)
    collector = SnmpCollector(options, name="snmp")
    device = Device(name="r1", connections={"snmp": {"port": 16161, "interval": 5}})
    conn = collector.connection(device)
    assert (conn.port, conn.community) == (16161, "env:A")
    assert collector.intervals_for(device, (60.0,)) == (5.0,)
    bad = Device(name="r2", connections={"snmp": {"port": "x"}})
    with pytest.raises(ConfigError, match="device 'r2'"):
        list(collector.jobs([bad], (60.0,)))


def test_per_collector_interval_override_wins() -> None:
    collector = SnmpCollector(msgspec.convert({"interfaces": True}, SnmpOptions), name="if")
    device = Device(name="r1", interval=30,
                    connections={"intervals": {"if": 300}, "snmp": {"interval": 5}})
    assert collector.intervals_for(device, (60.0,)) == (300.0,)
    assert collector.intervals_for(Device(name="r2", interval=30), (60.0,)) == (30.0,)
    assert collector.intervals_for(Device(name="r3"), (60.0,)) == (60.0,)


# ---------------------------------------------------------------- snmp values


@pytest.mark.parametrize(
    ("text", "oid"),
    [("1.3.6.1.2.1.1.3.0", (1, 3, 6, 1, 2, 1, 1, 3, 0)), (".1.3.6", (1, 3, 6))],
)
def test_parse_oid(text: str, oid: tuple[int, ...]) -> None:
    assert parse_oid(text) == oid


@pytest.mark.parametrize("text", ["sysUpTime.0", "1", "1..3", "1.3.x"])
def test_parse_oid_refuses_names(text: str) -> None:
    with pytest.raises(ValueError, match="numeric OID"):
        parse_oid(text)


def test_decode_snmp_values() -> None:
    from pysnmp.proto import rfc1902, rfc1905

    assert decode(rfc1902.Counter32(7)) == (7, "7", 32, False)
    assert decode(rfc1902.Counter64(2**40)).counter_bits == 64
    assert decode(rfc1902.Gauge32(5)).counter_bits is None
    assert decode(rfc1902.OctetString(b"eth0")).text == "eth0"
    assert decode(rfc1902.IpAddress("10.0.0.1")).text == "10.0.0.1"
    assert decode(rfc1905.NoSuchInstance()).missing


# ---------------------------------------------------------------- dns wire


def _answer(query: bytes, *records: tuple[int, bytes], rcode: int = 0) -> bytes:
    ident = struct.unpack("!H", query[:2])[0]
    header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(records), 0, 0)
    body = query[12:]
    for rtype, rdata in records:
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    return header + body


def test_dns_query_and_response_round_trip() -> None:
    query = build_query(0x1234, "example.org", TYPES["A"])
    assert query[:2] == b"\x12\x34"
    assert b"\x07example\x03org\x00" in query
    response = parse_response(
        _answer(query, (1, bytes([192, 0, 2, 1])), (28, bytes(15) + b"\x01"),
                (5, b"\xc0\x0c")),
        ident=0x1234)
    assert response.rcode == 0
    assert [a.data for a in response.answers] == ["192.0.2.1", "::1", "example.org"]


def test_dns_response_to_another_query_or_garbage_is_refused() -> None:
    query = build_query(1, "example.org", TYPES["A"])
    with pytest.raises(DnsFormatError):
        parse_response(_answer(query), ident=2)
    with pytest.raises(DnsFormatError):
        parse_response(b"\x00\x01", ident=1)
    with pytest.raises(DnsFormatError, match="loop"):
        read_name(b"\xc0\x00", 0)


def test_dns_rcode_is_reported() -> None:
    query = build_query(9, "nope.example", TYPES["A"])
    assert parse_response(_answer(query, rcode=3), ident=9).rcode == 3


# ---------------------------------------------------------------- iperf3 reports

TCP_REPORT: dict[str, Any] = {
    "start": {"test_start": {"protocol": "TCP", "num_streams": 1}},
    "end": {"sum_sent": {"bits_per_second": 9.5e9, "retransmits": 26},
            "sum_received": {"bits_per_second": 9.4e9},
            "streams": [{"sender": {"retransmits": 26}, "receiver": {"bits_per_second": 9.4e9}}]},
}
UDP_REPORT: dict[str, Any] = {
    "start": {"test_start": {"protocol": "UDP", "num_streams": 2}},
    "end": {"sum": {"bits_per_second": 1e6, "packets": 200, "lost_packets": 50},
            "streams": [{"udp": {"bits_per_second": 4e5}}, {"udp": {"bits_per_second": 6e5}}]},
}


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (TCP_REPORT, {"throughput": 9.4e9, "packet-retransmits": 26.0}),
        (UDP_REPORT, {"throughput": 1e6, "packet-count-sent": 200.0, "packet-count-lost": 50.0,
                      "packet-loss-rate": 0.25,
                      "streams-throughput{stream=0}": 4e5, "streams-throughput{stream=1}": 6e5}),
    ],
)
def test_iperf3_reports_map_to_esmond_event_types(report: dict[str, Any],
                                                  expected: dict[str, float]) -> None:
    parsed = parse_report(report)
    assert parsed.error is None
    got = {m.name + (f"{{stream={m.labels['stream']}}}" if m.labels else ""): m.value
           for m in parsed.metrics}
    assert got == expected


@pytest.mark.parametrize(
    ("report", "error"),
    [({"error": "unable to connect to server: Connection refused"}, "unable to connect"),
     ({"start": {}, "end": {}}, "no results")],
)
def test_iperf3_errors(report: dict[str, Any], error: str) -> None:
    assert error in (parse_report(report).error or "")


def test_iperf3_command_line() -> None:
    opts = msgspec.convert({"port": 15201, "duration": 1, "udp": True, "bandwidth": "10M",
                            "parallel": 2, "reverse": True}, Iperf3Options)
    assert Iperf3Collector(opts, name="bw").command("h") == [
        "iperf3", "-c", "h", "-p", "15201", "-J", "-t", "1", "--connect-timeout", "3000",
        "-u", "-b", "10M", "-P", "2", "-R"]


# ---------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    ("value", "status"),
    [(5.0, Status.OK), (10.0, Status.WARNING), (20.0, Status.CRITICAL), (1.0, Status.WARNING),
     (0.0, Status.CRITICAL)],
)
def test_thresholds(value: float, status: Status) -> None:
    limits = Threshold(warn_above=10, crit_above=20, warn_below=1, crit_below=0)
    assert judge("x", value, limits)[0] is status


def test_no_thresholds_is_ok() -> None:
    assert judge("x", 1e9, None) == (Status.OK, "")


# ---------------------------------------------------------------- traceback scanner

LOG = """\
INFO start
ERROR handler failed
Traceback (most recent call last):
  File "app.py", line 3, in <module>
    main()
ValueError: bad

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "app.py", line 5, in <module>
KeyError: 'x'
INFO after
WARNING disk nearly full
"""


def test_a_traceback_block_is_one_finding_named_by_its_exception() -> None:
    found = list(scan_lines(LOG.splitlines(), [re.compile("WARNING")], []))
    assert found == [(2, "KeyError: 'x' (traceback)"), (13, "WARNING disk nearly full")]


def test_excluded_findings_are_dropped_and_tracebacks_can_be_off() -> None:
    lines = LOG.splitlines()
    assert list(scan_lines(lines, [], [re.compile("KeyError")])) == []
    assert list(scan_lines(lines, [re.compile("ERROR")], [], tracebacks=False)) == [
        (1, "ERROR handler failed")]
