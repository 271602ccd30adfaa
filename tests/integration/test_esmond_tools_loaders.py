"""esmond-ps-load-gridftp and esmond-ps-pipe against the real server.

The writes must be the ones the original tools made (captured requests, with the
server's metadata keys and our token put back to the captured ones), and what was written
must be readable back. Also: resuming, rotation, interruption and bad input.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.esmond_client_app import LiveEsmond
from tests.unit.client.esmond_replay import (
    KEY,
    SYNTHETIC,
    captured_requests,
    comparable,
)
from watchkeeper.cli.archive import run_tool
from watchkeeper.cli.archive_query import Context
from watchkeeper.client import ArchiveClient

NETLOGGER = SYNTHETIC / "gridftp-transfer.netlogger.log"
JSONLOG = SYNTHETIC / "gridftp-transfer.json.log"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveEsmond]:
    with LiveEsmond(tmp_path / "server") as server:
        yield server


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(live: LiveEsmond | None, tool: str, argv: list[str],
        log: list[dict[str, Any]] | None = None, stdin: str = "",
        url: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    transport = live.transport(log) if live is not None else None
    target = url or (live.url if live is not None else "")
    token = live.token if live is not None else "x"
    code = run_tool(tool, [*argv, "-U", f"{target}/esmond", "-u", "someone", "-k", token],
                    Context(stdin=io.StringIO(stdin), stdout=out, stderr=err,
                            transport=transport))
    return code, out.getvalue(), err.getvalue()


def points(live: LiveEsmond, event_type: str) -> dict[str, list[tuple[int, Any]]]:
    """Every point of ``event_type`` in the archive, by source."""
    found: dict[str, list[tuple[int, Any]]] = {}
    with ArchiveClient(live.url, transport=live.transport()) as client:
        for meta in client.metadata(event_type=event_type, time_start=0):
            etype = meta.get_event_type(event_type)
            assert etype is not None
            data = etype.get_data(time_start=0, time_end=2_000_000_000)
            found.setdefault(str(meta.source), []).extend((p.ts_epoch, p.val) for p in data)
    return found


def _metadata_keys(live: LiveEsmond) -> set[str]:
    with ArchiveClient(live.url, transport=live.transport()) as client:
        return {str(m.metadata_key) for m in client.metadata()}


def normalised(log: list[dict[str, Any]], live: LiveEsmond) -> list[dict[str, Any]]:
    """The server gives each metadata its own key (the recording server gave one) and we
    use our own token."""
    keys = _metadata_keys(live)
    found = [comparable(r) for r in log]
    for request in found:
        for key in keys:
            request["path"] = request["path"].replace(key, KEY)
        request["authorization"] = "Token KEY123"
    return found


@pytest.mark.parametrize(("scenario", "argv"), [
    ("load_gridftp_netlogger", ["-f", str(NETLOGGER), "-d", "-F", "-N", "-V"]),
    ("load_gridftp_json", ["-J", "-f", str(JSONLOG), "-d"]),
])
def test_load_gridftp_writes_what_the_original_wrote(live: LiveEsmond, scenario: str,
                                                     argv: list[str]) -> None:
    log: list[dict[str, Any]] = []
    code, out, err = run(live, "load-gridftp", argv, log)
    assert (code, err) == (0, "")
    assert normalised(log, live) == [comparable(r) for r in captured_requests(scenario)]
    assert out.splitlines()[-1].endswith("Loaded 2 records" if "netlogger" in scenario
                                         else "Loaded 1 records")
    throughput = points(live, "throughput")
    assert throughput["127.0.0.1"] == [(1428418776, pytest.approx(93923380.35881314, abs=1))]
    if "netlogger" in scenario:
        assert points(live, "failures")["127.0.0.3"] == [
            (1428418860, {"error": "426 Connection closed; transfer aborted."})]


def test_transfer_stats_lines_of_the_main_log_load(live: LiveEsmond) -> None:
    code, _, err = run(live, "load-gridftp",
                       ["-f", str(SYNTHETIC / "gridftp-main.transfer-stats-prefixed.log"), "-d"])
    assert (code, err) == (0, "")
    assert points(live, "throughput")["127.0.0.1"][0][0] == 1428418776


def _line(n: int) -> str:
    return (f"DATE=20150407{n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}.900000 HOST=10.0.0.1 "
            f"PROG=globus-gridftp-server NL.EVNT=FTP_INFO "
            f"START=20150407{n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}.000000 USER=u "
            f"FILE=/f BUFFER=1 BLOCK=1 NBYTES={1000 * (n + 1)} VOLUME=/ STREAMS=1 STRIPES=1 "
            f"DEST=[10.0.0.2] TYPE=RETR CODE=226\n")


def test_resume_interruption_and_rotation(live: LiveEsmond, tmp_path: Path) -> None:
    logfile = tmp_path / "gridftp.log"
    logfile.write_text("".join(_line(n) for n in range(3)))
    state = tmp_path / "state.json"
    base = ["-f", str(logfile), "-p", str(state)]

    assert run(live, "load-gridftp", [*base, "-S"])[0] == 0  # one record, then stop
    assert json.loads(state.read_text())["loaded"] == 1
    # the server goes away: nothing loaded, state untouched, one line on stderr
    before = state.read_text()
    code, _, err = run(None, "load-gridftp", base, url="http://127.0.0.1:9")
    assert code == 1
    assert err.startswith("esmond-ps-load-gridftp: load-gridftp stopped: cannot reach")
    assert len(err.splitlines()) == 1
    assert state.read_text() == before
    assert run(live, "load-gridftp", base)[0] == 0  # the two others
    # new lines, then rotation, then a new file
    with logfile.open("a") as handle:
        handle.write(_line(3))
    os.rename(logfile, tmp_path / "gridftp.log.1")
    logfile.write_text(_line(4) + _line(5))
    code, out, err = run(live, "load-gridftp", base)
    assert (code, err) == (0, "")
    assert "log rotated: finishing" in out
    assert out.splitlines()[-1].endswith("Loaded 3 records")
    assert run(live, "load-gridftp", base)[1].splitlines()[-1].endswith("Loaded 0 records")
    # one metadata per transfer (bytes transferred is a metadata parameter)
    stamps = sorted(ts for ts, _ in points(live, "throughput")["10.0.0.1"])
    assert stamps == [1428364800 + n for n in range(6)]


def test_malformed_lines_are_counted_and_good_ones_loaded(live: LiveEsmond,
                                                          tmp_path: Path) -> None:
    logfile = tmp_path / "gridftp.log"
    logfile.write_text(_line(0) + "garbage line\n" + _line(1) + "DATE=bad TYPE=RETR\n" +
                       _line(2))
    code, _out, err = run(live, "load-gridftp", ["-f", str(logfile), "-d"])
    assert code == 3
    assert err == ("esmond-ps-load-gridftp: load-gridftp: Loaded 3 records, 2 malformed lines "
                   f"skipped; first: {logfile}@{len(_line(0))}: not a KEY=VALUE transfer "
                   "record (starts with 'garbage')\n")
    assert len(points(live, "throughput")["10.0.0.1"]) == 3


def test_wrong_token_stops_the_loader(live: LiveEsmond, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run_tool("load-gridftp", ["-f", str(NETLOGGER), "-U", f"{live.url}/esmond",
                                     "-k", "wrong", "-p", str(tmp_path / "s.json")],
                    Context(stdout=out, stderr=err, transport=live.transport()))
    assert code == 1
    assert "HTTP 401" in err.getvalue()
    assert "Invalid token." in err.getvalue()
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_pipe_writes_what_the_original_wrote(live: LiveEsmond, protocol: str) -> None:
    log: list[dict[str, Any]] = []
    text = (SYNTHETIC / f"bwctl-iperf3-{protocol}-parsable-verbose.txt").read_text()
    code, _, err = run(live, "pipe", [], log, stdin=text)
    assert (code, err) == (0, "")
    assert normalised(log, live) == [comparable(r)
                                     for r in captured_requests(f"pipe_iperf3_{protocol}")]
    expected = 8660000000.0 if protocol == "tcp" else 1000000.0
    assert points(live, "throughput")["127.0.0.1"] == [(pytest.approx(1445366230, abs=100),
                                                        expected)]


def test_pipe_stores_each_udp_stream_throughput(live: LiveEsmond) -> None:
    """Real iperf3 -u -P 2 -J output: every stream's throughput is stored, none null."""
    text = (SYNTHETIC / "iperf3-udp-2streams.json").read_text()
    code, _, err = run(live, "pipe", [], stdin=text)
    assert (code, err) == (0, "")
    streams = [s["udp"]["bits_per_second"] for s in json.loads(text)["end"]["streams"]]
    [(_, stored)] = points(live, "streams-throughput")["127.0.0.1"]
    assert stored == pytest.approx(streams)


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda t: t[: t.index('"end"')], "truncated"),
    (lambda t: t.replace("bwctl: Using tool: iperf3\n", ""), "could not extract the tool name"),
    (lambda t: "", "could not extract"),
])
def test_pipe_bad_input_is_one_line(live: LiveEsmond, mangle: Any, message: str) -> None:
    text = mangle((SYNTHETIC / "bwctl-iperf3-tcp-parsable-verbose.txt").read_text())
    code, _, err = run(live, "pipe", [], stdin=text)
    assert code == 1
    assert message in err
    assert len(err.splitlines()) == 1
