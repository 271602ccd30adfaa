"""GridFTP transfer logs to archive writes, as ``esmond-ps-load-gridftp`` does it. No I/O.

Two formats:

* the classic ("netlogger") transfer log, one ``KEY=VALUE ...`` line per transfer, also
  when it appears in the main ``gridftp.log`` prefixed by ``[pid] date :: Transfer stats:``
  (which crashes the original tool); a token without ``=`` continues the previous value,
  so file names with spaces survive;
* the JSON log (``--json``): one object per line, only ``Transfer-End`` records count.

:func:`parse_line` turns one line into a :class:`Plan` (the metadata to register and the
points to write), ``None`` for lines that are not transfers (blank, ``LIST``,
``Transfer-Start`` ...), or raises :class:`BadRecord` naming what is wrong.
"""

from __future__ import annotations

import calendar
import functools
import json
import math
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TOOL_NAME = "gridftp"
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.]*\Z")
# The fields in the order globus-gridftp-server writes them: one match, no tokenizing.
_CANONICAL = re.compile(
    r"\s*DATE=(?P<date>\S+) HOST=(?P<host>\S+) PROG=(?P<prog>\S+) NL\.EVNT=(?P<nl_evnt>\S+) "
    r"START=(?P<start>\S+) USER=(?P<user>\S*) FILE=(?P<file>\S*) BUFFER=(?P<buffer>\S*) "
    r"BLOCK=(?P<block>\S*) NBYTES=(?P<nbytes>\S*) VOLUME=(?P<volume>\S*) "
    r"STREAMS=(?P<streams>\S*) STRIPES=(?P<stripes>\S*) DEST=(?P<dest>\S*) TYPE=(?P<type>\S*) "
    r"CODE=(?P<code>\S*)(?: TASKID=(?P<taskid>\S*))?(?: retrans=(?P<retrans>\S*))?\s*\Z")
_PLAIN = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9_.]*=\S*(?:\s+|\Z))+\Z")
STATS_MARKER = "Transfer stats:"

FTP_CODES = {
    200: "Command okay.",
    202: "Command not implemented, superfluous at this site.",
    211: "System status, or system help reply.",
    212: "Directory status.",
    213: "File status.",
    214: "Help message.",
    215: "NAME system type.",
    220: "Service ready for new user.",
    221: "Service closing control connection.",
    225: "Data connection open; no transfer in progress.",
    226: "Closing data connection.",
    227: "Entering Passive Mode (h1,h2,h3,h4,p1,p2).",
    230: "User logged in, proceed.",
    250: "Requested file action okay, completed.",
    257: '"PATHNAME" created.',
    331: "User name okay, need password.",
    332: "Need account for login.",
    350: "Requested file action pending further information.",
    421: "Service not available, closing control connection.",
    425: "Cant open data connection.",
    426: "Connection closed; transfer aborted.",
    450: "Requested file action not taken.",
    451: "Requested action aborted: local error in processing.",
    452: "Requested action not taken.",
    500: "Syntax error, command unrecognized.",
    501: "Syntax error in parameters or arguments.",
    502: "Command not implemented.",
    503: "Bad sequence of commands.",
    504: "Command not implemented for that parameter.",
    530: "Not logged in.",
    532: "Need account for storing files.",
    550: "Requested action not taken.",
    551: "Requested action aborted: page type unknown.",
    552: "Requested file action aborted.",
    553: "Requested action not taken.",
}

Resolver = Callable[[str, int], str]


class BadRecord(ValueError):
    """A log line that looks like a transfer but cannot be loaded; says why."""


@dataclass(frozen=True, slots=True)
class Options:
    """What to send: the privacy flags (``-F``, ``-N``, ``-V``) and the log format."""

    json: bool = False
    file_attr: bool = False
    name_attr: bool = False
    volume_attr: bool = False


@dataclass(slots=True)
class Plan:
    """The archive writes for one transfer: register ``metadata``, then write the points.

    ``metadata`` is the JSON body of the metadata ``POST``. Successful transfers carry
    ``bulk``, the body of one ``PUT``; failed ones ``failure`` (one point of ``failures``
    posted alone, as the original does).
    """

    metadata: dict[str, Any]
    ts: int
    bulk: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    summary: str = ""


def resolve_host(host: str, family: int) -> str:
    """First address of ``host`` (any family for 0, else that family), as esmond did."""
    infos = socket.getaddrinfo(host, None, family)
    return str(infos[0][4][0])


def parse_line(line: str, options: Options, resolve: Resolver = resolve_host) -> Plan | None:
    """The plan for one log line, ``None`` if it is not a transfer to load."""
    text = line.strip()
    if not text:
        return None
    if options.json:
        return _plan_json(text, options)
    return _plan_netlogger(text, options, resolve)


# -- netlogger ---------------------------------------------------------------------------


def split_fields(text: str) -> dict[str, str]:
    """``KEY=VALUE`` tokens to ``{key: value}`` (key lower-cased, ``.`` to ``_``).

    A token that is not ``NAME=...`` continues the previous value (a file name with
    spaces, or with ``=`` after a ``/``).
    """
    marker = text.find(STATS_MARKER)
    if marker >= 0:
        text = text[marker + len(STATS_MARKER):]
    canonical = _CANONICAL.match(text)
    if canonical is not None:
        return {k: v for k, v in canonical.groupdict().items() if v is not None}
    if _PLAIN.match(text):  # every token is NAME=VALUE
        plain: dict[str, str] = {}
        for token in text.split():
            key, _, value = token.partition("=")
            plain[key.lower().replace(".", "_")] = value
        return plain
    fields: dict[str, str] = {}
    last: str | None = None
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and _KEY.match(key):
            last = key.lower().replace(".", "_")
            fields[last] = value
        elif last is not None:
            fields[last] = f"{fields[last]} {token}"  # a value with spaces (file names)
        else:
            raise BadRecord(f"not a KEY=VALUE transfer record (starts with {token[:40]!r})")
    return fields


def _micros(stamp: str, name: str) -> int:
    """``YYYYmmddHHMMSS.ffffff`` (UTC) to microseconds since the epoch."""
    date, _, frac = stamp.partition(".")
    if len(date) != 14 or not date.isdigit() or not (frac.isdigit() or not frac):
        raise BadRecord(f"{name}={stamp!r} is not a YYYYmmddHHMMSS.ffffff time")
    seconds = _seconds(date)
    if seconds is None:
        raise BadRecord(f"{name}={stamp!r} is not a valid time")
    micros = int((frac + "000000")[:6]) if frac else 0
    return seconds * 1_000_000 + micros


@functools.lru_cache(maxsize=4096)
def _day_seconds(day: str) -> int | None:
    year, month, mday = int(day[:4]), int(day[4:6]), int(day[6:8])
    if not (1 <= month <= 12 and 1 <= mday <= calendar.monthrange(year, month)[1]):
        return None
    return calendar.timegm((year, month, mday, 0, 0, 0, 0, 0, 0))


def _seconds(date: str) -> int | None:
    """``YYYYmmddHHMMSS`` (digits) to unix seconds, None if not a valid time."""
    day = _day_seconds(date[:8])
    hour, minute, second = int(date[8:10]), int(date[10:12]), int(date[12:14])
    if day is None or hour > 23 or minute > 59 or second > 60:
        return None
    return day + hour * 3600 + minute * 60 + second


def _value(raw: str | None) -> Any:
    """Numeric-looking values become ints (as esmond's LogEntryDataObject)."""
    if raw is None:
        return None
    digits = raw[1:] if raw[:1] in "+-" else raw
    return int(raw) if digits.isdigit() and digits.isascii() else raw


def _require(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise BadRecord(f"missing {name.upper()}=")
    return value


def _ip_version(text: str) -> int:
    """4 or 6 for an IP address literal, 0 otherwise (inet_pton: fast, strict)."""
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        try:
            socket.inet_pton(family, text)
        except OSError:
            continue
        return version
    return 0


def _host_ip(host: str, dest: str, resolve: Resolver) -> str:
    version = _ip_version(dest)
    if version == 0:
        raise BadRecord(f"DEST={dest!r} is not an IP address")
    family = socket.AF_INET6 if version == 6 else 0
    try:
        return resolve(host, family)
    except (OSError, IndexError) as exc:
        raise BadRecord(f"cannot resolve HOST={host!r}: {exc}") from None


_NETLOGGER_EVENT_TYPES = ({"event-type": "throughput", "summaries": []},
                          {"event-type": "streams-packet-retransmits", "summaries": []},
                          {"event-type": "failures", "summaries": []})
_JSON_EVENT_TYPES = _NETLOGGER_EVENT_TYPES[:2]
_NETLOGGER_PARAMETERS = (("bw-parallel-streams", "streams"), ("bw-stripes", "stripes"),
                         ("gridftp-program", "prog"), ("gridftp-block-size", "block"),
                         ("tcp-window-size", "buffer"), ("gridftp-bytes-transferred", "nbytes"))


def _subject(host: str, dest: str, xfer: str, host_ip: str) -> dict[str, Any]:
    """The metadata payload's subject (as esmond's MetadataPost sends it)."""
    if xfer == "RETR":
        source, destination, input_source, input_destination = host_ip, dest, host, dest
    else:
        source, destination, input_source, input_destination = dest, host_ip, dest, host
    return {"subject-type": "point-to-point", "source": source, "destination": destination,
            "tool-name": TOOL_NAME, "measurement-agent": host_ip,
            "input-source": input_source, "input-destination": input_destination}


def _freeform(meta: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "":
        meta[key] = value


def _throughput(nbytes: Any, micros: int) -> float | None:
    """``8 * bytes / seconds`` exactly as ``timedelta.total_seconds()`` gave it; None at 0 s."""
    if micros == 0 or not isinstance(nbytes, int):
        return None
    return 8 * nbytes / (micros / 10**6)


def _plan_netlogger(text: str, options: Options, resolve: Resolver) -> Plan | None:
    fields = split_fields(text)
    xfer = fields.get("type")
    if xfer not in ("RETR", "STOR"):
        return None
    start = _micros(_require(fields, "start"), "START")
    end = _micros(_require(fields, "date"), "DATE")
    host = _require(fields, "host")
    dest = _require(fields, "dest").lstrip("[").rstrip("]")
    code = _value(_require(fields, "code"))
    if not isinstance(code, int):
        raise BadRecord(f"CODE={code!r} is not a number")
    meta = _subject(host, dest, xfer, _host_ip(host, dest, resolve))
    for key, name in _NETLOGGER_PARAMETERS:
        _freeform(meta, key, _value(fields.get(name)))
    for flag, key, name in ((options.file_attr, "gridftp-file", "file"),
                            (options.name_attr, "gridftp-user", "user"),
                            (options.volume_attr, "gridftp-volume", "volume")):
        if flag:
            _freeform(meta, key, _value(fields.get(name)))
    meta["event-types"] = list(_NETLOGGER_EVENT_TYPES)
    ts = start // 1_000_000
    summary = f"{xfer} {host} -> {dest} code {code}"
    if code != 226:
        failure = {"error": f"{code} {FTP_CODES.get(code)}"}
        return Plan(meta, ts, failure=failure, summary=summary)
    values: list[dict[str, Any]] = []
    tput = _throughput(_value(fields.get("nbytes")), end - start)
    if tput is not None:
        values.append({"event-type": "throughput", "val": tput})
    raw = fields.get("retrans")
    try:
        retrans = [int(x) for x in raw.split(",")] if raw else []
    except ValueError:
        raise BadRecord(f"retrans={raw!r} is not a list of numbers") from None
    values.append({"event-type": "streams-packet-retransmits", "val": retrans})
    return Plan(meta, ts, bulk={"data": [{"ts": ts, "val": values}]}, summary=summary)


# -- JSON --------------------------------------------------------------------------------


def _sanitize(section: Any) -> dict[str, Any]:
    """Keys lower-cased, ``/`` to ``_``, ``%`` dropped (``Blk_read/s`` -> ``blk_read_s``)."""
    if not isinstance(section, dict):
        return {}
    return {_sane_key(k): v for k, v in section.items()}


@functools.lru_cache(maxsize=1024)
def _sane_key(key: object) -> str:
    return str(key).lower().replace("/", "_").replace("%", "")


def _json_micros(record: dict[str, Any], name: str) -> int:
    """Unix seconds (number or text) to microseconds, rounded like ``utcfromtimestamp``."""
    try:
        seconds = float(record[name])
    except KeyError:
        raise BadRecord(f"missing {name}") from None
    except (TypeError, ValueError):
        raise BadRecord(f"{name}={record[name]!r} is not a unix time") from None
    if not math.isfinite(seconds):
        raise BadRecord(f"{name}={record[name]!r} is not a unix time")
    frac, whole = math.modf(seconds)
    return int(whole) * 1_000_000 + round(frac * 1e6)


def _plan_json(text: str, options: Options) -> Plan | None:
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise BadRecord(f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    if record.get("event_type") != "Transfer-End":
        return None
    xfer = record.get("cmd_type")
    if xfer not in ("RETR", "STOR"):
        return None
    host = str(record.get("host") or "").strip()
    dest = str(record.get("dest") or "").strip()
    if not host or not dest:
        raise BadRecord(f"missing {'host' if not host else 'dest'}")
    start = _json_micros(record, "start_timestamp")
    end = _json_micros(record, "end_timestamp")
    streams = [s for s in record.get("streams") or [] if isinstance(s, dict)]
    meta = _subject(host, dest, xfer, host)
    stripes = max([0, *(int(s["stripe"]) for s in streams if isinstance(s.get("stripe"), int))])
    _freeform(meta, "bw-parallel-streams", record.get("nstreams"))
    _freeform(meta, "bw-stripes", stripes + 1)
    for key, name in (("gridftp-program", "prog"), ("gridftp-block-size", "globus_blocksize"),
                      ("tcp-window-size", "tcp_bufsize"),
                      ("gridftp-bytes-transferred", "nbytes")):
        _freeform(meta, key, record.get(name))
    for flag, key, name in ((options.file_attr, "gridftp-file", "file"),
                            (options.name_attr, "gridftp-user", "user"),
                            (options.volume_attr, "gridftp-volume", "volume")):
        if flag:
            _freeform(meta, key, record.get(name))
    meta["event-types"] = list(_JSON_EVENT_TYPES)
    ts = start // 1_000_000
    values: list[dict[str, Any]] = []
    tput = _throughput(record.get("nbytes"), end - start)
    if tput is not None:
        values.append({"event-type": "throughput", "val": tput})
    tcpinfo = [{**s, "TCPinfo": _sanitize(s.get("TCPinfo"))} for s in streams]
    values += [
        {"event-type": "streams-packet-retransmits",
         "val": [s["TCPinfo"].get("total_retrans") for s in tcpinfo]},
        # Not registered on the metadata: esmond accepts and drops them (reference §6.3).
        {"event-type": "iostat", "val": _sanitize(record.get("iostat"))},
        {"event-type": "mpstat", "val": _sanitize(record.get("mpstat"))},
        {"event-type": "rusage", "val": _sanitize(record.get("getrusage"))},
        {"event-type": "streams-tcpinfo", "val": tcpinfo},
    ]
    summary = f"{xfer} {host} -> {dest} id {record.get('transferID')}"
    return Plan(meta, ts, bulk={"data": [{"ts": ts, "val": values}]}, summary=summary)
