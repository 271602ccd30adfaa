"""SNMP v1/v2c/v3: GET and WALK of numeric OIDs, and interface traffic with rates.

Options (each connection field may be overridden per device under ``connections.snmp``
in the inventory; secrets are references, ``env:VAR`` or ``file:/path``)::

    version: 2c            # 1, 2c or 3
    port: 161
    community: public      # v1/v2c
    user: ""               # v3, with auth_protocol/auth_key and priv_protocol/priv_key
    objects:               # GET (or walk: true) of numeric OIDs; MIB names do not resolve
      - {name: sys.uptime, oid: 1.3.6.1.2.1.1.3.0}
    interfaces: true       # the IF-MIB tables: octets, errors, status, speed, with rates

Counters become per-second rates between polls of the same job (``rates`` handles
32/64-bit wrap and resets). The elapsed time is the agent's own ``sysUpTime``, read in
the same poll, so a late poll never skews a rate, and an agent restart (uptime going
back) drops the stale baselines instead of producing a bogus spike.

One pysnmp engine per collector instance is created on the first poll and closed by
:meth:`SnmpCollector.aclose`. An agent that does not answer is CRITICAL; an agent that
answers with an error (unknown user, bad digest) is ERRORED: the check is misconfigured.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.builtin._snmp import (
    AUTH_PROTOCOLS,
    OID,
    PRIV_PROTOCOLS,
    Session,
    SnmpTimeout,
    Value,
    auth_data,
    parse_oid,
)
from watchkeeper.collect.rates import CounterSample, counter_rate, uptime_reset
from watchkeeper.collect.thresholds import check_regex
from watchkeeper.model import Device, Measurement, Status

SYS_UPTIME: OID = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_TABLE: OID = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_TABLE: OID = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
# (column name, OID): ifTable and ifXTable columns the interface poll reads.
IF_COLUMNS: tuple[tuple[str, OID], ...] = (
    ("descr", (*IF_TABLE, 2)), ("speed", (*IF_TABLE, 5)), ("admin", (*IF_TABLE, 7)),
    ("oper", (*IF_TABLE, 8)), ("in_octets", (*IF_TABLE, 10)), ("in_errors", (*IF_TABLE, 14)),
    ("out_octets", (*IF_TABLE, 16)), ("out_errors", (*IF_TABLE, 20)),
    ("name", (*IFX_TABLE, 1)), ("hc_in_octets", (*IFX_TABLE, 6)),
    ("hc_out_octets", (*IFX_TABLE, 10)), ("high_speed", (*IFX_TABLE, 15)),
)
UP, DOWN = 1, 2


class _Round:
    """What one poll gathers: its context, the agent's uptime (s), measurements, notes."""

    __slots__ = ("ctx", "notes", "out", "uptime")

    def __init__(self, ctx: PollContext, uptime: float) -> None:
        self.ctx = ctx
        self.uptime = uptime
        self.out: list[Measurement] = []
        self.notes: list[tuple[Status, str]] = []

Version = Literal[1, 3, "1", "2c", "3"]


class SnmpConnection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to reach an agent; the inventory may override any of these per device."""

    address: str = ""  # default: the device's address, else its name
    port: int = 161
    version: Version = "2c"
    community: str = "public"  # a reference (env:/file:) or the community itself
    user: str = ""
    auth_protocol: Literal["none", "MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA"
    auth_key: str = ""  # reference
    priv_protocol: Literal["none", "DES", "3DES", "AES", "AES192", "AES256"] = "AES"
    priv_key: str = ""  # reference
    context: str = ""
    request_timeout: float = 1.0  # seconds per request, before retries
    retries: int = 1
    max_repetitions: int = 16  # GETBULK rows per request

    def __post_init__(self) -> None:
        if str(self.version) == "3" and not self.user:
            raise ValueError("SNMPv3 needs `user`")
        if not (0 < self.port < 65536 and self.request_timeout > 0 and self.retries >= 0
                and self.max_repetitions >= 1):
            raise ValueError("port, request_timeout, retries or max_repetitions out of range")


class OidSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One object to read: GET ``oid``, or walk the subtree under it (one series per row)."""

    name: str
    oid: str
    walk: bool = False
    rate: bool | None = None  # None: a rate for Counter32/Counter64 values, raw otherwise
    unit: str = ""

    def __post_init__(self) -> None:
        parse_oid(self.oid)


class SnmpOptions(SnmpConnection, frozen=True, kw_only=True, forbid_unknown_fields=True):
    objects: tuple[OidSpec, ...] = ()
    interfaces: bool = False
    interface_match: str | None = None  # a regex on the interface name; default: all
    down_status: Literal["ok", "warning", "critical"] = "warning"  # admin up, oper down

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.objects and not self.interfaces:
            raise ValueError("nothing to poll: give `objects` and/or `interfaces: true`")
        if self.interface_match is not None:
            check_regex(self.interface_match)


class SnmpCollector(Collector):
    """GET/WALK of OIDs and interface counters (``if.in_bps``, ``if.out_bps`` ...)."""

    Options = SnmpOptions
    options: SnmpOptions
    protocol = "snmp"
    Connection = SnmpConnection

    def __init__(self, options: Any, *, name: str) -> None:
        super().__init__(options, name=name)
        self._engine: Any = None
        self._targets: dict[tuple[str, int, float, int], Any] = {}

    async def aclose(self) -> None:
        engine, self._engine = self._engine, None
        self._targets.clear()
        if engine is not None:
            engine.close_dispatcher()

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        conn: SnmpConnection = self.connection(device)
        session = await self._session(device, conn, ctx)
        try:
            # Answer within the poll's budget: a silent agent is CRITICAL, not ERRORED.
            async with asyncio.timeout(ctx.timeout * 0.9):
                now = await self._fetch(session, ctx)
        except (SnmpTimeout, TimeoutError):
            return ctx.result([], Status.CRITICAL, f"no SNMP answer from {session.where}")
        status = Status.rollup(s for s, _ in now.notes) if now.notes else Status.OK
        summary = f"{session.where}: {len(now.out)} values"
        return ctx.result(now.out, status, "; ".join([summary, *(t for _, t in now.notes)]))

    async def _fetch(self, session: Session, ctx: PollContext) -> _Round:
        """Everything in as few round trips as possible: one GET (objects, with sysUpTime)
        and one multi-column walk (object subtrees and interface columns; it carries
        sysUpTime as a non-repeater when there was no GET), sized by the last poll."""
        gets = [spec for spec in self.options.objects if not spec.walk]
        walks = [spec for spec in self.options.objects if spec.walk]
        roots = [parse_oid(spec.oid) for spec in walks]
        if self.options.interfaces:
            roots += [oid for _, oid in IF_COLUMNS]
        got: dict[OID, Value] = {}
        uptime: Value | None = None
        if gets or not roots:
            got = await session.get([SYS_UPTIME, *(parse_oid(spec.oid) for spec in gets)])
            uptime = got.get(SYS_UPTIME)
        tables: dict[OID, list[tuple[OID, Value]]] = {}
        if roots:
            hint = ctx.state.get("rows")
            tables, extra = await session.walk(
                roots, repetitions=min(hint + 1, 64) if hint else None,
                after=[SYS_UPTIME[:-1]] if uptime is None else [])
            uptime = extra.get(SYS_UPTIME, uptime)
            ctx.state["rows"] = max((len(rows) for rows in tables.values()), default=0)
        now = _Round(ctx, self._uptime(uptime, ctx))
        for spec in gets:
            value = got.get(parse_oid(spec.oid))
            if value is None or value.missing:
                now.notes.append((Status.PARTIAL, f"{spec.name}: no such object {spec.oid}"))
                continue
            self._emit(now, spec, value, {})
        for spec in walks:
            rows = tables[parse_oid(spec.oid)]
            if not rows:
                now.notes.append((Status.PARTIAL, f"{spec.name}: nothing under {spec.oid}"))
            for index, value in rows:
                self._emit(now, spec, value, {"index": ".".join(map(str, index))})
        if self.options.interfaces:
            self._interfaces(tables, now)
        return now

    async def _session(self, device: Device, conn: SnmpConnection, ctx: PollContext) -> Session:
        from pysnmp.hlapi.v3arch.asyncio import ContextData, SnmpEngine, UdpTransportTarget

        if self._engine is None:
            self._engine = SnmpEngine()
        host = conn.address or device.address or device.name
        key = (host, conn.port, conn.request_timeout, conn.retries)
        target = self._targets.get(key)
        if target is None:
            target = await UdpTransportTarget.create((host, conn.port),
                                                     timeout=conn.request_timeout,
                                                     retries=conn.retries)
            self._targets[key] = target
        version = str(conn.version)
        secret = ctx.credential
        auth = auth_data(
            version,
            community=secret(conn.community).reveal() if version != "3" else "",
            user=conn.user, auth_protocol=conn.auth_protocol,
            auth_key=secret(conn.auth_key).reveal() if conn.auth_key else "",
            priv_protocol=conn.priv_protocol,
            priv_key=secret(conn.priv_key).reveal() if conn.priv_key else "",
        )
        context = ContextData(contextName=conn.context.encode()) if conn.context \
            else ContextData()
        return Session(self._engine, auth, target, context, version=version,
                       max_repetitions=conn.max_repetitions, where=f"{host}:{conn.port}")

    @staticmethod
    def _uptime(value: Value | None, ctx: PollContext) -> float:
        """Seconds on the agent's clock; resets the rate baselines when the agent restarted."""
        if value is None or value.number is None:
            return ctx.now  # no sysUpTime: fall back to the slot time
        ticks = int(value.number)
        previous = ctx.state.get("uptime")
        if previous is not None and uptime_reset(previous, ticks):
            ctx.state.pop("counters", None)  # the agent restarted: old baselines are void
        ctx.state["uptime"] = ticks
        return ticks / 100.0

    def _emit(self, now: _Round, spec: OidSpec, value: Value, labels: dict[str, str]) -> None:
        if value.number is None:
            return  # text values are not series
        want_rate = spec.rate if spec.rate is not None else value.counter_bits is not None
        if not want_rate:
            now.out.append(now.ctx.measure(spec.name, value.number, unit=spec.unit,
                                           labels=labels))
            return
        key = f"{spec.name}{sorted(labels.items())}"
        rate = _rate(now, key, int(value.number), bits=value.counter_bits or 64)
        if rate is not None:
            unit = f"{spec.unit}/s" if spec.unit else "/s"
            now.out.append(now.ctx.measure(spec.name, rate, unit=unit, labels=labels))

    def _interfaces(self, tables: dict[OID, list[tuple[OID, Value]]], now: _Round) -> None:
        rows: dict[tuple[int, ...], dict[str, Value]] = {}
        for column, oid in IF_COLUMNS:
            for index, value in tables[oid]:
                rows.setdefault(index, {})[column] = value
        pattern = re.compile(self.options.interface_match) if self.options.interface_match \
            else None
        for index, row in sorted(rows.items()):
            name = _text(row, "name") or _text(row, "descr") or ".".join(map(str, index))
            if pattern is not None and not pattern.search(name):
                continue
            self._interface(now, name, row)

    def _interface(self, now: _Round, name: str, row: dict[str, Value]) -> None:
        ctx, out = now.ctx, now.out
        labels = {"if": name}
        speed = _speed(row)
        if speed is not None:
            out.append(ctx.measure("if.speed", speed, unit="bit/s", labels=labels))
        oper, admin = _number(row, "oper"), _number(row, "admin")
        if oper is not None:
            out.append(ctx.measure("if.oper_status", oper, labels=labels))
            if admin == UP and oper == DOWN and self.options.down_status != "ok":
                now.notes.append((Status(self.options.down_status), f"{name} is down"))
        for direction in ("in", "out"):
            hc = row.get(f"hc_{direction}_octets")
            octets, bits = (hc, 64) if hc is not None and hc.number is not None \
                else (row.get(f"{direction}_octets"), 32)
            if octets is not None and octets.number is not None:
                # A 32-bit counter is ambiguous (wrap or reset): twice the link speed bounds it.
                ceiling = speed / 4 if bits == 32 and speed else None
                rate = _rate(now, f"{name}/{direction}", int(octets.number), bits=bits,
                             max_rate=ceiling)
                if rate is not None:
                    out.append(ctx.measure(f"if.{direction}_bps", rate * 8, unit="bit/s",
                                           labels=labels))
            errors = _number(row, f"{direction}_errors")
            if errors is not None:
                rate = _rate(now, f"{name}/{direction}_errors", int(errors), bits=32)
                if rate is not None:
                    out.append(ctx.measure(f"if.{direction}_errors", rate, unit="/s",
                                           labels=labels))


def _rate(now: _Round, key: str, value: int, *, bits: int,
          max_rate: float | None = None) -> float | None:
    """The counter's rate since the job's previous poll; None on its first sample."""
    counters: dict[str, CounterSample] = now.ctx.state.setdefault("counters", {})
    current = CounterSample(value, now.uptime)
    previous = counters.get(key)
    counters[key] = current
    if previous is None:
        return None  # the first sample of a counter only sets the baseline
    return counter_rate(previous, current, bits=bits, max_rate=max_rate)


def _text(row: dict[str, Value], column: str) -> str:
    value = row.get(column)
    return value.text if value is not None and not value.missing else ""


def _number(row: dict[str, Value], column: str) -> int | float | None:
    value = row.get(column)
    return value.number if value is not None else None


def _speed(row: dict[str, Value]) -> float | None:
    """Bits per second: ifHighSpeed (Mbit/s) when set, else ifSpeed (saturates at 4.29 G)."""
    high = _number(row, "high_speed")
    if high:
        return float(high) * 1_000_000
    speed = _number(row, "speed")
    return float(speed) if speed is not None else None


__all__ = ["AUTH_PROTOCOLS", "PRIV_PROTOCOLS", "OidSpec", "SnmpCollector", "SnmpConnection",
           "SnmpOptions"]
