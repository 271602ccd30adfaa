"""Just enough of the DNS wire format (RFC 1035) to time one query: build it, read the answer.

Pure functions: :func:`build_query` and :func:`parse_response` do no I/O. A response is
checked against its query (id, question) so a stray datagram is never taken for it.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")


class DnsFormatError(ValueError):
    """The datagram is not a well-formed DNS response."""


class Answer(NamedTuple):
    name: str
    rtype: int
    ttl: int
    data: str  # addresses for A/AAAA, the target name for CNAME/NS/PTR, else hex


class Response(NamedTuple):
    ident: int
    rcode: int
    truncated: bool
    answers: list[Answer]


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not raw or len(raw) > 63:
            raise ValueError(f"bad DNS name {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out + b"\0")


def build_query(ident: int, name: str, rtype: int) -> bytes:
    """A recursive query (RD set) for ``name``/``rtype`` in class IN."""
    return _HEADER.pack(ident, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH",
                                                                                   rtype, 1)


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The (possibly compressed) name at ``offset`` and the offset just after it."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):  # bounds pointer loops
        if offset >= len(data):
            raise DnsFormatError("name runs past the end")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DnsFormatError("truncated name pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length == 0:
            return ".".join(labels) or ".", end if end is not None else offset + 1
        labels.append(data[offset + 1:offset + 1 + length].decode("ascii", errors="replace"))
        offset += 1 + length
    raise DnsFormatError("name pointer loop")


def parse_response(data: bytes, *, ident: int) -> Response:
    """Decode a response to query ``ident``; raises :class:`DnsFormatError` on garbage."""
    if len(data) < _HEADER.size:
        raise DnsFormatError("shorter than a DNS header")
    rid, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    if rid != ident or not flags & 0x8000:
        raise DnsFormatError("not the response to our query")
    offset = _HEADER.size
    for _ in range(qdcount):
        _, offset = read_name(data, offset)
        offset += 4
    answers: list[Answer] = []
    for _ in range(ancount):
        name, offset = read_name(data, offset)
        if offset + _RR.size > len(data):
            raise DnsFormatError("truncated resource record")
        rtype, _, ttl, length = _RR.unpack_from(data, offset)
        offset += _RR.size
        rdata = data[offset:offset + length]
        answers.append(Answer(name, rtype, ttl, _rdata(data, offset, rtype, rdata)))
        offset += length
    return Response(rid, flags & 0x000F, bool(flags & 0x0200), answers)


def _rdata(data: bytes, offset: int, rtype: int, rdata: bytes) -> str:
    if rtype == TYPES["A"] and len(rdata) == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == TYPES["AAAA"] and len(rdata) == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype in (TYPES["CNAME"], TYPES["NS"], TYPES["PTR"]):
        return read_name(data, offset)[0]
    return rdata.hex()
