"""iperf3 results to archive writes, as ``esmond-ps-pipe`` does it. No I/O.

Input is either what ``bwctl -T iperf3 --parsable --verbose |&`` prints (bwctl lines
naming the tool and the two remote endpoints, the iperf3 JSON between
``bwctl: start_tool:`` and ``bwctl: stop_tool:``) or plain ``iperf3 -J`` JSON. Unlike
the original, the iperf3 ``time`` strings may end in ``GMT`` or ``UTC`` (newer iperf3):
they are not needed. :func:`extract` finds the pieces, :func:`plan` builds the metadata
and the one bulk write; both raise :class:`PipeError` naming what could not be found.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from watchkeeper.client import BulkData, NewMetadata


class PipeError(ValueError):
    """The input does not hold what is needed; the message names what is missing."""


@dataclass(slots=True)
class Extracted:
    """The pieces of the input: tool, endpoints (None for plain JSON) and the result."""

    tool_name: str | None
    input_source: str | None
    input_destination: str | None
    result: dict[str, Any]
    bwctl: bool


def extract(lines: Iterable[str]) -> Extracted:
    """Find tool name, endpoints and iperf3 JSON in bwctl output, or take plain JSON."""
    lines = list(lines)
    text = "".join(lines).strip()
    if text.startswith("{"):
        return Extracted(None, None, None, _load(text, "iperf3 JSON"), bwctl=False)
    tool = source = destination = None
    block: list[str] = []
    started = stopped = False
    for line in lines:
        stripped = line.strip()
        if not stripped or (not started and not line.startswith("bwctl:")):
            continue
        if line.startswith("bwctl: Using tool:"):
            words = line.split()
            tool = words[3] if len(words) > 3 else None
        if stripped.endswith("as the address for remote sender"):
            source = line.split()[2]
        if stripped.endswith("as the address for remote receiver"):
            destination = line.split()[2]
        if line.startswith("bwctl: stop_tool:"):
            stopped = True
            break
        if started:
            block.append(line)
        if line.startswith("bwctl: start_tool:"):
            started = True
    missing = [name for name, value in (("the tool name ('bwctl: Using tool:')", tool),
                                        ("the remote sender address (run bwctl --verbose)",
                                         source),
                                        ("the remote receiver address (run bwctl --verbose)",
                                         destination)) if not value]
    if not started:
        missing.append("the iperf3 JSON ('bwctl: start_tool:' line; run bwctl --verbose)")
    if missing:
        raise PipeError("could not extract " + ", ".join(missing))
    if not stopped:
        raise PipeError("the iperf3 JSON is truncated (no 'bwctl: stop_tool:' line)")
    return Extracted(tool, source, destination, _load("".join(block), "the iperf3 JSON"),
                     bwctl=True)


def _load(text: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PipeError(f"could not parse {what}: {exc}") from None
    if not isinstance(doc, dict):
        raise PipeError(f"{what} is not a JSON object")
    if "error" in doc and "end" not in doc:
        raise PipeError(f"iperf3 reported an error: {doc['error']}")
    return doc


def _at(doc: Any, path: str) -> Any:
    """``doc`` at a dotted path (``start.connected.0.local_host``), or PipeError naming it."""
    node = doc
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise PipeError(f"the iperf3 JSON has no {path}")
    return node


def _opt(doc: Any, path: str) -> Any:
    try:
        return _at(doc, path)
    except PipeError:
        return None


def local_address_towards(host: str) -> str:
    """The address this host would use to reach ``host`` (UDP connect, nothing is sent)."""
    infos = socket.getaddrinfo(host, 80, 0, socket.SOCK_DGRAM)
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        return str(sock.getsockname()[0])


@dataclass(slots=True)
class Plan:
    metadata: NewMetadata
    bulk: BulkData
    ts: int


def plan(found: Extracted, *, tool_name: str | None = None,
         measurement_agent: str | None = None,
         agent_for: Callable[[str], str] = local_address_towards) -> Plan:
    """The metadata and the bulk write of one iperf3 result (event types of the original)."""
    if found.bwctl and found.tool_name != "iperf3":
        raise PipeError(f"there is no handler for input type: {found.tool_name} (only iperf3)")
    doc = found.result
    protocol = _at(doc, "start.test_start.protocol")
    if protocol not in ("TCP", "UDP"):
        raise PipeError(f"unknown iperf3 protocol {protocol!r} (expected TCP or UDP)")
    streams = _at(doc, "start.test_start.num_streams")
    source = _at(doc, "start.connected.0.local_host")
    destination = _at(doc, "start.connected.0.remote_host")
    ts = _at(doc, "start.timestamp.timesecs")
    if not isinstance(ts, int) or not isinstance(streams, int):
        raise PipeError("the iperf3 JSON has a non-integer start.timestamp.timesecs or "
                        "start.test_start.num_streams")
    input_source = found.input_source or source
    input_destination = found.input_destination or destination
    if measurement_agent is None:
        try:
            measurement_agent = agent_for(input_destination) if found.bwctl else source
        except OSError:
            measurement_agent = source
    meta = NewMetadata(
        source=source, destination=destination, measurement_agent=measurement_agent,
        tool_name=tool_name or (f"bwctl/{found.tool_name}" if found.bwctl else "iperf3"),
        input_source=input_source, input_destination=input_destination)
    meta.parameters["ip-transport-protocol"] = protocol
    duration = _opt(doc, "start.test_start.duration")
    if duration:
        meta.parameters["time-duration"] = duration
    meta.parameters["bw-parallel-streams"] = streams
    meta.parameters["bw_ignore_first_seconds"] = _opt(doc, "start.test_start.omit")
    if meta.parameters["bw_ignore_first_seconds"] is None:
        del meta.parameters["bw_ignore_first_seconds"]
    for event_type in _event_types(protocol, streams):
        meta.add_event_type(event_type)
    return Plan(meta, _bulk(doc, protocol, streams, ts), ts)


def _event_types(protocol: str, streams: int) -> list[str]:
    names = ["throughput", "throughput-subintervals", "packet-retransmits-subintervals"]
    if streams > 1:
        names += ["streams-packet-retransmits", "streams-packet-retransmits-subintervals",
                  "streams-throughput", "streams-throughput-subintervals"]
    names += ["packet-retransmits"] if protocol == "TCP" else [
        "packet-count-lost", "packet-count-sent", "packet-loss-rate"]
    return names


def _bulk(doc: dict[str, Any], protocol: str, streams: int, ts: int) -> BulkData:
    bulk = BulkData()
    intervals = _opt(doc, "intervals") or []
    tput = _at(doc, "end.sum_received.bits_per_second" if protocol == "TCP"
               else "end.sum.bits_per_second")
    bulk.add("throughput", ts, tput)
    bulk.add("throughput-subintervals", ts, [
        {"start": _opt(i, "sum.start"), "duration": _opt(i, "sum.seconds"),
         "val": _opt(i, "sum.bits_per_second")} for i in intervals])
    if protocol == "UDP":
        lost, sent = _opt(doc, "end.sum.lost_packets"), _opt(doc, "end.sum.packets")
        if lost is not None:
            bulk.add("packet-count-lost", ts, lost)
        if sent is not None:
            bulk.add("packet-count-sent", ts, sent)
        if lost is not None and sent is not None:
            bulk.add("packet-loss-rate", ts, {"numerator": lost, "denominator": sent})
    else:
        bulk.add("packet-retransmits", ts, _at(doc, "end.sum_sent.retransmits"))
    bulk.add("packet-retransmits-subintervals", ts, [
        {"start": _opt(i, "sum.start"), "duration": _opt(i, "sum.seconds"),
         "val": _opt(i, "sum.retransmits")} for i in intervals])
    if streams > 1:
        ends = _opt(doc, "end.streams") or []
        bulk.add("streams-packet-retransmits", ts,
                 [_opt(s, "sender.retransmits") for s in ends])
        bulk.add("streams-packet-retransmits-subintervals", ts, [
            [{"start": s.get("start"), "duration": s.get("seconds"),
              "retransmits": s.get("retransmits")} for s in i.get("streams") or []]
            for i in intervals])
        # TCP streams end with sender and receiver halves; UDP ones with one `udp` object.
        per_stream = "receiver.bits_per_second" if protocol == "TCP" else "udp.bits_per_second"
        bulk.add("streams-throughput", ts, [_opt(s, per_stream) for s in ends])
        bulk.add("streams-throughput-subintervals", ts, [
            [{"start": s.get("start"), "duration": s.get("seconds"),
              "throughput": s.get("bits_per_second")} for s in i.get("streams") or []]
            for i in intervals])
    return bulk
