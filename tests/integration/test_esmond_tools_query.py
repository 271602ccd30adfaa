"""esmond-ps-get-endpoints / -get against the real server: the captured requests and output.

Each scenario loads, into a fresh watchkeeper server, data from which the server computes
what the recording server answered, then runs the command with the captured options and
compares the requests (metadata key put back to the captured one) and what it printed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.esmond_client_app import LiveEsmond
from tests.unit.client.esmond_replay import CAPTURED, KEY, captured_requests, comparable
from watchkeeper.cli.archive import run_tool
from watchkeeper.cli.archive_query import Context
from watchkeeper.client import ArchiveClient, BulkData, NewMetadata

QUERY = ["--ip", "-S", "2014-04-30", "-E", "2014-05-02"]
PAIR = ["-s", "127.0.0.1", "-d", "127.0.0.2"]


def metadata() -> NewMetadata:
    meta = NewMetadata(source="127.0.0.1", destination="127.0.0.2",
                       measurement_agent="127.0.0.1", tool_name="bwctl/iperf3",
                       input_source="localhost", input_destination="127.0.0.2",
                       parameters={"time-duration": 20})
    meta.add_event_type("throughput", [("average", 86400)])
    meta.add_event_type("histogram-owdelay", [("statistics", 0)])
    meta.add_event_type("packet-trace")
    return meta


def csv_data(bulk: BulkData) -> None:
    bulk.add("throughput", 1398816005, 9.0e9).add("throughput", 1398816065, 8.5e9)


def average_data(bulk: BulkData) -> None:
    # esmond's own test values: their daily average is the captured 6575755000.0
    for i, value in enumerate((5978580000, 5413040000, 7964590000, 6946810000)):
        bulk.add("throughput", 1398902400 + 7200 * i, value)


def histogram_data(bulk: BulkData) -> None:
    bulk.add("histogram-owdelay", 1398965989, {"41.00": 98, "41.10": 2})


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveEsmond]:
    with LiveEsmond(tmp_path) as server:
        yield server


def load(live: LiveEsmond, fill: Callable[[BulkData], None]) -> str:
    with ArchiveClient(live.url, token=live.token, transport=live.transport()) as client:
        key = client.create_metadata(metadata()).metadata_key
        assert key
        bulk = BulkData()
        fill(bulk)
        client.post_bulk(key, bulk)
    return key


def run(live: LiveEsmond, tool: str, argv: list[str],
        log: list[dict[str, object]]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_tool(tool, ["--url", live.url, *argv],
                    Context(stdout=out, stderr=err, transport=live.transport(log)))
    return code, out.getvalue(), err.getvalue()


def requests_of(log: list[dict[str, object]], key: str) -> list[dict[str, object]]:
    found = [comparable(r) for r in log]  # type: ignore[arg-type]
    for request in found:
        request["path"] = str(request["path"]).replace(key, KEY)
    return found


@pytest.mark.parametrize(("scenario", "tool", "argv", "fill"), [
    ("cli_get_endpoints", "get-endpoints", QUERY, csv_data),
    ("cli_get_throughput_csv", "get", [*QUERY, *PAIR, "-e", "throughput", "-o", "csv"],
     csv_data),
    ("cli_get_summary_average", "get",
     [*QUERY, *PAIR, "-e", "throughput", "-T", "average", "-W", "86400"], average_data),
    ("cli_get_histogram_stats_json", "get",
     [*QUERY, *PAIR, "-e", "histogram-owdelay", "-T", "statistics", "-W", "0", "-o", "json"],
     histogram_data),
])
def test_query_tool_against_the_server(live: LiveEsmond, scenario: str, tool: str,
                                       argv: list[str],
                                       fill: Callable[[BulkData], None]) -> None:
    key = load(live, fill)
    log: list[dict[str, object]] = []
    code, out, err = run(live, tool, argv, log)
    assert (code, err) == (0, "")
    assert requests_of(log, key) == [comparable(r) for r in captured_requests(scenario)]
    expected = (CAPTURED / f"{scenario}.stdout").read_bytes().decode()
    if scenario.endswith("_json"):
        got, want = json.loads(out)[0], json.loads(expected)[0]
        assert got.keys() == want.keys()
        # The recording server's percentile-95 (41.1) was made up; by esmond's (N+1)p rule
        # 95 of these 100 samples are 41.0, which is what the server computes.
        want["percentile_95"] = 41.0
        for name, value in want.items():
            assert got[name] == (pytest.approx(value, abs=1e-3)
                                 if isinstance(value, float) else value), name
    elif scenario == "cli_get_endpoints":
        # event types come in the server's order (esmond's was Python 2 dict order)
        def normal(text: str) -> list[str]:
            return [line.partition(": ")[0] + ": " + ", ".join(
                sorted(line.partition(": ")[2].split(", "))) for line in text.splitlines()]
        assert normal(out) == normal(expected)
    else:
        assert out == expected


def test_get_over_http_with_table_and_free_form_times(live: LiveEsmond) -> None:
    load(live, csv_data)
    out, err = io.StringIO(), io.StringIO()
    native_pair = ["--src" if a == "-s" else "--dest" if a == "-d" else a for a in PAIR]
    code = run_tool("get", ["--server", live.url, *native_pair, "--event-type", "throughput",
                            "--ip", "--start", "April 30 2014", "--end", "1398988800"],
                    Context(stdout=out, stderr=err), compat=False)
    assert (code, err.getvalue()) == (0, "")
    table = out.getvalue()
    assert "9000000000.0" in table
    assert "2014-04-30 00:01:05" in table
    assert "│" in table  # a Rich table


def test_unknown_event_type_and_bad_time_are_usage_errors(live: LiveEsmond) -> None:
    for argv, message in ((["-e", "throughputs"], "throughputs is not a valid event type"),
                          (["-e", "throughput", "-S", "someday"], "could not parse")):
        err = io.StringIO()
        code = run_tool("get", ["-u", live.url, *PAIR, *argv],
                        Context(stdout=io.StringIO(), stderr=err))
        assert code == 2
        assert message in err.getvalue()
        assert len(err.getvalue().splitlines()) == 1


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    err = io.StringIO()
    code = run_tool("get-endpoints", ["-u", "http://127.0.0.1:9", "--ip"],
                    Context(stdout=io.StringIO(), stderr=err))
    assert code == 1
    assert err.getvalue().startswith("esmond-ps-get-endpoints: cannot reach http://127.0.0.1:9")
    assert len(err.getvalue().splitlines()) == 1
