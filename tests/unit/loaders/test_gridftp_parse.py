"""GridFTP log lines to archive writes: both formats, odd lines, bad lines."""

from __future__ import annotations

import json

import pytest

from tests.unit.client.esmond_replay import SYNTHETIC
from watchkeeper.loaders.gridftp import BadRecord, Options, parse_line

RETR = ("DATE=20150407145945.113944 HOST=127.0.0.1 PROG=globus-gridftp-server NL.EVNT=FTP_INFO "
        "START=20150407145936.596363 USER=anonymous FILE=/data1/100M.dat BUFFER=87380 "
        "BLOCK=262144 NBYTES=100000000 VOLUME=/ STREAMS=5 STRIPES=1 DEST=[127.0.0.2] TYPE=RETR "
        "CODE=226 TASKID=none retrans=36,17,27,25,61")


def no_dns(host: str, family: int) -> str:
    raise AssertionError(f"no DNS lookup expected for {host}")


def fake_dns(host: str, family: int) -> str:
    return {"gridftp.example.net": "10.1.1.1"}[host]


def test_retr_line_gives_metadata_and_bulk() -> None:
    plan = parse_line(RETR, Options(), lambda host, family: host)
    assert plan is not None
    payload = plan.metadata
    assert payload["source"] == "127.0.0.1"
    assert payload["destination"] == "127.0.0.2"
    assert payload["bw-parallel-streams"] == 5
    assert "gridftp-file" not in payload
    assert [e["event-type"] for e in payload["event-types"]] == [
        "throughput", "streams-packet-retransmits", "failures"]
    assert plan.bulk is not None
    assert plan.bulk == {"data": [{"ts": 1428418776, "val": [
        {"event-type": "throughput", "val": 93923380.35881314},
        {"event-type": "streams-packet-retransmits", "val": [36, 17, 27, 25, 61]}]}]}


def test_transfer_stats_prefix_of_the_main_log_is_understood() -> None:
    line = (SYNTHETIC / "gridftp-main.transfer-stats-prefixed.log").read_text()
    plan = parse_line(line, Options(), lambda host, family: host)
    assert plan is not None
    assert plan.bulk is not None
    assert plan.bulk["data"][0]["ts"] == 1428418776


def test_file_names_with_spaces_and_equals_signs_survive() -> None:
    line = RETR.replace("FILE=/data1/100M.dat", "FILE=/data 1/a=b c.dat")
    plan = parse_line(line, Options(file_attr=True), lambda host, family: host)
    assert plan is not None
    assert plan.metadata["gridftp-file"] == "/data 1/a=b c.dat"


def test_stor_reverses_the_direction_and_failures_are_single_points() -> None:
    line = RETR.replace("TYPE=RETR", "TYPE=STOR").replace("CODE=226", "CODE=451") \
        .replace("HOST=127.0.0.1", "HOST=gridftp.example.net")
    plan = parse_line(line, Options(), fake_dns)
    assert plan is not None
    payload = plan.metadata
    assert (payload["source"], payload["destination"], payload["measurement-agent"]) == (
        "127.0.0.2", "10.1.1.1", "10.1.1.1")
    assert (payload["input-source"], payload["input-destination"]) == (
        "127.0.0.2", "gridftp.example.net")
    assert plan.bulk is None
    assert plan.failure == {"error": "451 Requested action aborted: local error in processing."}


def test_zero_duration_has_no_throughput_point() -> None:
    line = RETR.replace("START=20150407145936.596363", "START=20150407145945.113944")
    plan = parse_line(line, Options(), lambda host, family: host)
    assert plan is not None
    assert plan.bulk is not None
    assert [v["event-type"] for v in plan.bulk["data"][0]["val"]] == [
        "streams-packet-retransmits"]


@pytest.mark.parametrize("line", ["", "   ", RETR.replace("TYPE=RETR", "TYPE=LIST"),
                                  RETR.replace("TYPE=RETR", "TYPE=NLST")])
def test_lines_that_are_not_transfers_are_skipped(line: str) -> None:
    assert parse_line(line, Options(), no_dns) is None


@pytest.mark.parametrize(("line", "reason"), [
    ("garbage without equals", "not a KEY=VALUE"),
    (RETR.replace("START=20150407145936.596363 ", ""), "missing START="),
    (RETR.replace("20150407145936.596363", "2015-04-07"), "START="),
    (RETR.replace("DEST=[127.0.0.2]", "DEST=somewhere"), "not an IP address"),
    (RETR.replace("CODE=226", "CODE=ok"), "CODE="),
    (RETR.replace("retrans=36,17,27,25,61", "retrans=1,x"), "retrans="),
    (RETR.replace("DATE=20150407145945.113944", "DATE=20151307145945.113944"), "DATE="),
])
def test_bad_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        parse_line(line, Options(), lambda host, family: host)


def test_unresolvable_host_is_a_bad_record() -> None:
    def failing(host: str, family: int) -> str:
        raise OSError("Name or service not known")

    with pytest.raises(BadRecord, match="cannot resolve HOST"):
        parse_line(RETR.replace("HOST=127.0.0.1", "HOST=nowhere.invalid"), Options(), failing)


def test_json_transfer_end_record() -> None:
    lines = (SYNTHETIC / "gridftp-transfer.json.log").read_text().splitlines()
    assert parse_line(lines[0], Options(json=True), no_dns) is None  # Transfer-Start
    plan = parse_line(lines[1], Options(json=True, file_attr=True, name_attr=True), no_dns)
    assert plan is not None
    payload = plan.metadata
    assert payload["source"] == "127.0.0.1"  # host, stripped of its newline, no DNS
    assert payload["gridftp-file"] == "/data1/100M.dat"  # -F works in JSON mode here
    assert payload["gridftp-user"] == "anonymous"
    assert payload["bw-stripes"] == 1
    assert plan.bulk is not None
    values = {v["event-type"]: v["val"] for v in plan.bulk["data"][0]["val"]}
    assert values["throughput"] == 93923380.35881314
    assert values["streams-packet-retransmits"] == [7, 3]
    assert values["iostat"] == {"dev": "sda", "tps": 12.5, "blk_read_s": 100.0,
                                "blk_wrtn_s": 20.0}
    assert values["mpstat"]["usr"] == 1.5


@pytest.mark.parametrize(("line", "reason"), [
    (('{"event_type": "Transfer-End", "cmd_type": "RETR", "host": "h", "dest": "d", '
     '"start_timestamp": "1"'), "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"event_type": "Transfer-End", "cmd_type": "RETR", "host": "h", "dest": "d",
                 "start_timestamp": "x", "end_timestamp": "2"}), "start_timestamp"),
    (json.dumps({"event_type": "Transfer-End", "cmd_type": "RETR", "dest": "d"}), "missing host"),
])
def test_bad_json_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        parse_line(line, Options(json=True), no_dns)
