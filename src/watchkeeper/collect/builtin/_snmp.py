"""The SNMP wire layer of the snmp collector: sessions, GET and multi-column table walks.

Built on pysnmp's asyncio API (``get_cmd``, ``bulk_cmd``, ``next_cmd``) with MIB lookup
off: OIDs are numeric. A walk fetches several table columns at once (one GETBULK carries
every unfinished column; SNMPv1 uses GETNEXT), so an interface table of a dozen columns
costs one or two round trips, not one walk per column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from watchkeeper.errors import CollectError

OID = tuple[int, ...]
_OID_TEXT = re.compile(r"^\.?\d+(\.\d+)+$")

AUTH_PROTOCOLS = {
    "none": "USM_AUTH_NONE", "MD5": "USM_AUTH_HMAC96_MD5", "SHA": "USM_AUTH_HMAC96_SHA",
    "SHA224": "USM_AUTH_HMAC128_SHA224", "SHA256": "USM_AUTH_HMAC192_SHA256",
    "SHA384": "USM_AUTH_HMAC256_SHA384", "SHA512": "USM_AUTH_HMAC384_SHA512",
}
PRIV_PROTOCOLS = {
    "none": "USM_PRIV_NONE", "DES": "USM_PRIV_CBC56_DES", "3DES": "USM_PRIV_CBC168_3DES",
    "AES": "USM_PRIV_CFB128_AES", "AES192": "USM_PRIV_CFB192_AES",
    "AES256": "USM_PRIV_CFB256_AES",
}
COUNTER_BITS = {"Counter32": 32, "Counter64": 64}


class SnmpTimeout(CollectError, TimeoutError):
    """The agent did not answer: it is unreachable (or refuses our community silently)."""


class SnmpFailure(CollectError):
    """The agent answered with an error, or the request could not be made."""


class _V1End(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def parse_oid(text: str) -> OID:
    """``"1.3.6.1.2.1.1.3.0"`` (a leading dot allowed) as a tuple; ValueError otherwise."""
    if not _OID_TEXT.match(text):
        raise ValueError(f"{text!r} is not a numeric OID (MIB names are not resolved)")
    return tuple(int(part) for part in text.lstrip(".").split("."))


def oid_text(oid: OID) -> str:
    return ".".join(map(str, oid))


class Value(NamedTuple):
    """A decoded SNMP value: a number (with counter width if it is a counter) or text."""

    number: int | float | None
    text: str
    counter_bits: int | None  # 32 or 64 for Counter32/Counter64
    missing: bool = False  # noSuchObject / noSuchInstance / endOfMibView


def decode(value: Any) -> Value:
    kind = type(value).__name__
    if kind in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return Value(None, kind, None, missing=True)
    if kind in ("OctetString", "DisplayString", "Opaque"):
        raw = bytes(value)
        return Value(None, raw.decode("utf-8", errors="replace"), None)
    if kind == "IpAddress":
        return Value(None, ".".join(str(b) for b in bytes(value)), None)
    if kind in {"ObjectIdentifier", "ObjectName"}:
        return Value(None, oid_text(tuple(value)), None)
    try:
        number = int(value)
    except (TypeError, ValueError):
        return Value(None, str(value), None)
    return Value(number, str(number), COUNTER_BITS.get(kind))


class Session:
    """One agent as seen from one collector: engine, credentials, transport target."""

    def __init__(self, engine: Any, auth: Any, target: Any, context: Any, *,
                 version: str, max_repetitions: int, where: str) -> None:
        self.engine = engine
        self.auth = auth
        self.target = target
        self.context = context
        self.version = version
        self.max_repetitions = max_repetitions
        self.where = where

    async def get(self, oids: Sequence[OID]) -> dict[OID, Value]:
        """GET ``oids`` in one request."""
        from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType, get_cmd

        binds = [ObjectType(ObjectIdentity(oid_text(oid))) for oid in oids]
        result = await get_cmd(self.engine, self.auth, self.target, self.context, *binds,
                               lookupMib=False)
        try:
            table = self._check(result, "GET")
        except _V1End as end:
            raise SnmpFailure(f"GET {self.where}: noSuchName at index {end.index}") from None
        return {tuple(name): decode(value) for name, value in table}

    async def walk(
        self, roots: Sequence[OID], *, repetitions: int | None = None,
        after: Sequence[OID] = (),
    ) -> tuple[dict[OID, list[tuple[OID, Value]]], dict[OID, Value]]:
        """Every row under each root, as ``(index suffix, value)``; all roots walked at once.

        ``after`` are extra OIDs whose *next* object is fetched once, in the first request
        (GETBULK non-repeaters: ``sysUpTime`` costs no extra round trip); their values come
        back second, by the OID they turned out to be. ``repetitions`` overrides the rows
        asked per request (a table's known size plus one finishes it in one round trip).
        """
        cursors = list(roots)
        rows: dict[OID, list[tuple[OID, Value]]] = {root: [] for root in roots}
        active = list(range(len(roots)))
        extra: dict[OID, Value] = {}
        if after and self.version == "1":  # GETNEXT has no non-repeaters: one more request
            table = await self._next(list(after), 0, 1)
            extra = {tuple(name): decode(value) for name, value in table}
            after = ()
        while active:
            try:
                table = await self._next([*after, *(cursors[i] for i in active)], len(after),
                                         repetitions or self.max_repetitions)
            except _V1End as end:  # SNMPv1 fails the whole request when one column ends
                active.pop(min(max(end.index - 1, 0), len(active) - 1))
                continue
            if after:
                extra = {tuple(name): decode(value) for name, value in table[:len(after)]}
                table = table[len(after):]
                after = ()
            finished: set[int] = set()
            advanced: set[int] = set()
            for position, (name, raw) in enumerate(table):
                column = active[position % len(active)]
                if column in finished:
                    continue
                oid, root = tuple(name), roots[column]
                value = decode(raw)
                if value.missing or oid[:len(root)] != root or oid <= cursors[column]:
                    finished.add(column)  # left the column, end of MIB, or not increasing
                    continue
                rows[root].append((oid[len(root):], value))
                cursors[column] = oid
                advanced.add(column)
            active = [i for i in active if i not in finished and i in advanced]
        return rows, extra

    async def _next(self, cursors: Sequence[OID], non_repeaters: int,
                    repetitions: int) -> Sequence[Any]:
        from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType, bulk_cmd, next_cmd

        binds = [ObjectType(ObjectIdentity(oid_text(oid))) for oid in cursors]
        if self.version == "1":
            result = await next_cmd(self.engine, self.auth, self.target, self.context, *binds,
                                    lookupMib=False)
            return self._check(result, "GETNEXT")
        result = await bulk_cmd(self.engine, self.auth, self.target, self.context,
                                non_repeaters, repetitions, *binds, lookupMib=False)
        return self._check(result, "GETBULK")

    def _check(self, result: Any, what: str) -> Sequence[Any]:
        indication, status, index, table = result
        if indication:
            text = str(indication)
            if "timeout" in text.lower() or "no snmp response" in text.lower():
                raise SnmpTimeout(f"{what} {self.where}: {text}")
            raise SnmpFailure(f"{what} {self.where}: {text}")
        if status and int(status) != 0:
            if self.version == "1" and str(status.prettyPrint()) == "noSuchName":
                raise _V1End(int(index))  # SNMPv1 says "end of this walk" this way
            raise SnmpFailure(f"{what} {self.where}: {status.prettyPrint()} at index {index}")
        return list(table)


def auth_data(version: str, *, community: str, user: str, auth_protocol: str,
              auth_key: str, priv_protocol: str, priv_key: str) -> Any:
    """pysnmp credentials for ``version``; keys are already resolved secrets."""
    from pysnmp.hlapi.v3arch import asyncio as hl

    if version in ("1", "2c"):
        return hl.CommunityData(community, mpModel=0 if version == "1" else 1)
    auth_proto = getattr(hl, AUTH_PROTOCOLS[auth_protocol])
    priv_proto = getattr(hl, PRIV_PROTOCOLS[priv_protocol])
    return hl.UsmUserData(
        user, authKey=auth_key or None, privKey=priv_key or None,
        authProtocol=auth_proto, privProtocol=priv_proto,
    )
