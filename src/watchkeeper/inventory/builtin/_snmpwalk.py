"""Walking SNMP subtrees with pysnmp's asyncio API (v2c and v3), values made plain.

Only this module touches pysnmp (the optional ``[snmp]`` extra), and only when a build
runs, so watchkeeper imports without it.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from watchkeeper.errors import InventoryError

Oid = tuple[int, ...]

AuthProtocol = Literal["none", "MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["none", "DES", "3DES", "AES", "AES192", "AES256"]


class SnmpTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One agent: which device it describes and how to reach it."""

    device: str
    address: str
    port: int = 161
    version: Literal["2c", "3"] = "2c"
    community: str = "public"
    user: str = ""
    auth_protocol: AuthProtocol = "SHA"
    auth_key: str = ""
    priv_protocol: PrivProtocol = "AES"
    priv_key: str = ""
    request_timeout: float = 2.0
    retries: int = 1
    max_repetitions: int = 25

    @property
    def where(self) -> str:
        return f"{self.device} ({self.address}:{self.port})"


class Walker:
    """One SNMP session to one agent: ``await walker.walk(oid)``; ``close()`` when done."""

    def __init__(self, target: SnmpTarget) -> None:
        self.target = target
        self._engine: Any = None
        self._transport: Any = None
        self._auth: Any = None

    async def open(self) -> None:
        try:
            from pysnmp.hlapi.v3arch import asyncio as hlapi
        except ImportError:
            raise InventoryError("the snmp model collector needs pysnmp: "
                                 "pip install 'watchkeeper[snmp]'") from None
        target = self.target
        self._engine = hlapi.SnmpEngine()
        self._auth = _auth(hlapi, target)
        self._transport = await hlapi.UdpTransportTarget.create(
            (target.address, target.port), timeout=target.request_timeout,
            retries=target.retries)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    async def walk(self, oid: Oid) -> dict[Oid, Any]:
        """Every variable under ``oid`` by its index (the OID suffix), values made plain."""
        from pysnmp.hlapi.v3arch import asyncio as hlapi

        prefix = len(oid)
        found: dict[Oid, Any] = {}
        walking = hlapi.bulk_walk_cmd(
            self._engine, self._auth, self._transport, hlapi.ContextData(), 0,
            self.target.max_repetitions,
            hlapi.ObjectType(hlapi.ObjectIdentity(".".join(map(str, oid)))),
            lexicographicMode=False)
        async for error, status, index, var_binds in walking:
            if error:
                raise InventoryError(f"snmp {self.target.where}: {error}")
            if status:
                raise InventoryError(f"snmp {self.target.where}: {status.prettyPrint()} "
                                     f"at {index}")
            for name, value in var_binds:
                plain = _plain(value)
                if plain is not _MISSING:
                    found[tuple(name)[prefix:]] = plain
        return found


_MISSING = object()

_AUTH = {"MD5": "usmHMACMD5AuthProtocol", "SHA": "usmHMACSHAAuthProtocol",
         "SHA224": "usmHMAC128SHA224AuthProtocol", "SHA256": "usmHMAC192SHA256AuthProtocol",
         "SHA384": "usmHMAC256SHA384AuthProtocol", "SHA512": "usmHMAC384SHA512AuthProtocol",
         "none": "usmNoAuthProtocol"}
_PRIV = {"DES": "usmDESPrivProtocol", "3DES": "usm3DESEDEPrivProtocol",
         "AES": "usmAesCfb128Protocol", "AES192": "usmAesCfb192Protocol",
         "AES256": "usmAesCfb256Protocol", "none": "usmNoPrivProtocol"}


def _auth(hlapi: Any, target: SnmpTarget) -> Any:
    if target.version == "2c":
        return hlapi.CommunityData(target.community, mpModel=1)
    if not target.user:
        raise InventoryError(f"snmp {target.where}: SNMPv3 needs a `user`")
    return hlapi.UsmUserData(
        target.user,
        authKey=target.auth_key or None,
        privKey=target.priv_key or None,
        authProtocol=getattr(hlapi, _AUTH[target.auth_protocol]),
        privProtocol=getattr(hlapi, _PRIV[target.priv_protocol]),
    )


def _plain(value: Any) -> Any:
    """ints for numbers, bytes for strings, dotted text for OIDs; _MISSING for no value."""
    from pyasn1.type import univ  # type: ignore[import-untyped]  # comes with pysnmp, no stubs

    if isinstance(value, univ.OctetString):  # also IpAddress, Opaque
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(map(str, value.asTuple()))
    if hasattr(value, "get_oid"):  # an OID value comes back as an ObjectIdentity
        return ".".join(map(str, value.get_oid()))
    if isinstance(value, univ.Integer):  # also Counter*, Gauge32, TimeTicks
        return int(value)
    return _MISSING  # Null, noSuchObject, noSuchInstance, endOfMibView
