"""bwctl/iperf3 output to archive writes; what cannot be extracted is named."""

from __future__ import annotations

import json

import pytest

from tests.unit.client.esmond_replay import SYNTHETIC
from watchkeeper.loaders.iperf3 import PipeError, extract, plan


def bwctl(protocol: str) -> list[str]:
    return (SYNTHETIC / f"bwctl-iperf3-{protocol}-parsable-verbose.txt").read_text() \
        .splitlines(True)


def agent(host: str) -> str:
    return "192.0.2.1"


def test_tcp_two_streams() -> None:
    found = extract(bwctl("tcp"))
    assert (found.tool_name, found.input_source, found.input_destination) == (
        "iperf3", "127.0.0.1", "127.0.0.2")
    result = plan(found, agent_for=agent)
    payload = result.metadata.to_payload()
    assert payload["measurement-agent"] == "192.0.2.1"
    assert payload["tool-name"] == "bwctl/iperf3"
    assert payload["ip-transport-protocol"] == "TCP"
    values = {v["event-type"]: v["val"] for v in result.bulk.to_payload()["data"][0]["val"]}
    assert values["throughput"] == 8660000000.0
    assert values["packet-retransmits"] == 9
    assert values["streams-throughput"] == [4080000000.0, 4580000000.0]
    assert len(values) == 8


def test_udp_header_with_utc_time_is_accepted() -> None:
    """Newer iperf3 prints '... UTC'; the original tool failed on it."""
    lines = [line.replace(" GMT", " UTC") for line in bwctl("udp")]
    result = plan(extract(lines), agent_for=agent)
    values = {v["event-type"]: v["val"] for v in result.bulk.to_payload()["data"][0]["val"]}
    assert values["packet-loss-rate"] == {"numerator": 2, "denominator": 45}
    assert values["packet-count-sent"] == 45


def test_plain_iperf3_json() -> None:
    text = "".join(bwctl("tcp"))
    doc = text[text.index("{"):text.index("bwctl: stop_tool")]
    result = plan(extract([doc]))
    payload = result.metadata.to_payload()
    assert (payload["input-source"], payload["input-destination"]) == ("127.0.0.1", "127.0.0.2")
    assert payload["measurement-agent"] == "127.0.0.1"
    assert payload["tool-name"] == "iperf3"


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda t: t.replace("bwctl: Using tool: iperf3\n", ""), "the tool name"),
    (lambda t: t.replace("as the address for remote sender", "as the address for local sender"),
     "remote sender"),
    (lambda t: t.replace("bwctl: start_tool", "bwctl: begin_tool"), "iperf3 JSON"),
    (lambda t: t[:t.index("bwctl: stop_tool")], "truncated"),
    (lambda t: t.replace('"end": {', '"end": {,'), "could not parse the iperf3 JSON"),
    (lambda t: t.replace("Using tool: iperf3", "Using tool: nuttcp"), "no handler"),
    (lambda t: t.replace('"sum_received"', '"sum_recv"'), "end.sum_received.bits_per_second"),
    (lambda t: t.replace('"protocol": "TCP"', '"protocol": "SCTP"'), "unknown iperf3 protocol"),
])
def test_what_cannot_be_extracted_is_named(mangle: object, message: str) -> None:
    text = mangle("".join(bwctl("tcp")))  # type: ignore[operator]
    with pytest.raises(PipeError, match=message):
        plan(extract(text.splitlines(True)), agent_for=agent)


def test_iperf3_error_output() -> None:
    with pytest.raises(PipeError, match="iperf3 reported an error: unable to connect"):
        extract([json.dumps({"start": {}, "error": "unable to connect to server"})])


def test_udp_streams_carry_their_own_throughput() -> None:
    """A multi-stream UDP result (real iperf3 3.12 output) stores each stream's
    `udp.bits_per_second`: UDP streams have no `receiver` half to read."""
    doc = json.loads((SYNTHETIC / "iperf3-udp-2streams.json").read_text())
    result = plan(extract([json.dumps(doc)]))
    values = {v["event-type"]: v["val"] for v in result.bulk.to_payload()["data"][0]["val"]}
    expected = [s["udp"]["bits_per_second"] for s in doc["end"]["streams"]]
    assert len(expected) == 2
    assert None not in expected
    assert values["streams-throughput"] == expected
    assert values["throughput"] == doc["end"]["sum"]["bits_per_second"]
    assert values["packet-count-sent"] == doc["end"]["sum"]["packets"]
    assert [[s["throughput"] for s in i] for i in values["streams-throughput-subintervals"]] \
        == [[s["bits_per_second"] for s in i["streams"]] for i in doc["intervals"]]
