"""The esmond-ps-* tools send the captured requests and print the captured output.

Pure replay against the recording server's answers (MockTransport); the same commands
run against the real watchkeeper app in tests/integration/test_esmond_tools_*.py.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from tests.unit.client.esmond_replay import (
    CAPTURED,
    SYNTHETIC,
    ReplayServer,
    captured_requests,
    comparable,
)
from watchkeeper.cli.archive import run_tool
from watchkeeper.cli.archive_query import Context

URL = "http://127.0.0.1:18080"
QUERY = ["--url", URL, "--ip", "-S", "2014-04-30", "-E", "2014-05-02"]


def run(tool: str, argv: list[str], server: ReplayServer, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdin=io.StringIO(stdin), stdout=out, stderr=err,
                  transport=server.transport())
    code = run_tool(tool, argv, ctx)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("scenario", "tool", "argv"), [
    ("cli_get_endpoints", "get-endpoints", QUERY),
    ("cli_get_throughput_csv", "get",
     [*QUERY, "-s", "127.0.0.1", "-d", "127.0.0.2", "-e", "throughput", "-o", "csv"]),
    ("cli_get_summary_average", "get",
     [*QUERY, "-s", "127.0.0.1", "-d", "127.0.0.2", "-e", "throughput", "-T", "average",
      "-W", "86400"]),
    ("cli_get_histogram_stats_json", "get",
     [*QUERY, "-s", "127.0.0.1", "-d", "127.0.0.2", "-e", "histogram-owdelay",
      "-T", "statistics", "-W", "0", "-o", "json"]),
])
def test_query_tools_match_the_capture(scenario: str, tool: str, argv: list[str]) -> None:
    server = ReplayServer()
    code, out, err = run(tool, argv, server)
    assert (code, err) == (0, "")
    assert [comparable(r) for r in server.requests] == \
        [comparable(r) for r in captured_requests(scenario)]
    expected = (CAPTURED / f"{scenario}.stdout").read_bytes().decode()
    if scenario.endswith("_json"):
        assert json.loads(out) == json.loads(expected)
        assert out.startswith("[{")
        assert out.endswith("}]\n")
    else:
        assert out == expected


@pytest.mark.parametrize(("scenario", "argv"), [
    ("load_gridftp_netlogger", ["-f", str(SYNTHETIC / "gridftp-transfer.netlogger.log"),
                                "-d", "-F", "-N", "-V"]),
    ("load_gridftp_json", ["-J", "-f", str(SYNTHETIC / "gridftp-transfer.json.log"), "-d"]),
])
def test_load_gridftp_writes_what_the_original_wrote(scenario: str, argv: list[str],
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = ReplayServer()
    code, out, err = run("load-gridftp", [*argv, "-U", f"{URL}/esmond", "-u", "gridftp",
                                          "-k", "KEY123"], server)
    assert (code, err) == (0, "")
    assert [comparable(r) for r in server.requests] == \
        [comparable(r) for r in captured_requests(scenario)]
    assert out.splitlines()[-1].endswith(
        (CAPTURED / f"{scenario}.stdout").read_text().splitlines()[-1].split(" ", 4)[4])
    assert not list(tmp_path.iterdir()), "--dont_write leaves no state file"


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_pipe_writes_what_the_original_wrote(protocol: str) -> None:
    server = ReplayServer()
    text = (SYNTHETIC / f"bwctl-iperf3-{protocol}-parsable-verbose.txt").read_text()
    code, out, err = run("pipe", ["-U", f"{URL}/esmond", "-u", "user1", "-k", "KEY123"],
                         server, stdin=text)
    assert (code, err) == (0, "")
    assert [comparable(r) for r in server.requests] == \
        [comparable(r) for r in captured_requests(f"pipe_iperf3_{protocol}")]
    assert log_events(out) == log_events(
        (CAPTURED / f"pipe_iperf3_{protocol}.stdout").read_text())


def log_events(text: str) -> list[str]:
    """esmond's log lines without their time and run id: ``event=... message``."""
    return [re.sub(r"^ts=\S+ \S+ (event=\S+) id=\d+ ", r"\1 ", line)
            for line in text.splitlines()]


def test_get_metadata_extended_prints_every_key() -> None:
    code, out, err = run("get-metadata", [*QUERY, "-M"], ReplayServer())
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:6] == ["source: 127.0.0.1", "destination: 127.0.0.2",
                         "measurement_agent: 127.0.0.1", "input_source: localhost",
                         "input_destination: 127.0.0.2", "tool_name: bwctl/iperf3"]
    assert "time_duration: 20" in lines
    assert not any(line.startswith(("event_types", "uri:", "metadata_key")) for line in lines)


def test_packet_trace_human_layout() -> None:
    code, out, err = run("get", [*QUERY, "-s", "127.0.0.1", "-d", "127.0.0.2",
                                 "-e", "packet-trace"], ReplayServer())
    assert (code, err) == (0, "")
    assert out == ("source: 127.0.0.1\ndestination: 127.0.0.2\nevent_type: packet-trace\n"
                   "tool: bwctl/iperf3\nsummary_type: base\nsummary_window: 0\n"
                   "timestamp: 2014-05-01 17:39:49\n= + = + = + = + = + =\n"
                   "ttl: 1\nquery: 1\nsuccess: 1\nip: 10.0.0.1\nrtt: 0.2\nmtu: 9000\n"
                   "error_message: None\n\n")


def test_csv_with_extended_metadata_is_refused() -> None:
    code, _, err = run("get-metadata", [*QUERY, "-M", "-o", "csv"], ReplayServer())
    assert code == 2
    assert err == ("esmond-ps-get-metadata: --output-format csv can not be used with "
                   "--metadata-extended\n")
