"""Run a command over SSH and turn its output into measurements and a status.

The output is parsed either by ``pattern``, a regular expression whose named groups
become metrics (``(?P<load1>[\\d.]+)`` gives ``load1``), or by ``parser``, a
``module:function`` called as ``function(output, ctx)`` that returns a mapping of metric
to number or anything a poll may return (a PollResult, measurements, check results).

Credentials are references resolved at poll time: ``key: file:/path/id_ed25519`` (the
private key's text), ``passphrase``/``password: env:VAR``. The host key is checked
against ``known_hosts`` (a file; default ``~/.ssh/known_hosts``); ``known_hosts: ignore``
turns the check off and must be said explicitly. One connection per device is kept open
between polls and replaced when it breaks.

A device that cannot be reached, or whose host key is not trusted, is CRITICAL; refused
credentials are ERRORED (the check is misconfigured); a command that exits with an
unexpected status or whose output does not match is CRITICAL.
"""

from __future__ import annotations

import asyncio
import re
import time
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import msgspec

from watchkeeper import plugins
from watchkeeper.collect.abc import Collector, PollContext
from watchkeeper.collect.poll import describe
from watchkeeper.collect.thresholds import Threshold, check_regex, judge
from watchkeeper.errors import CollectError, ConfigError, PluginError
from watchkeeper.model import Device, Measurement, Status

PARSERS = "watchkeeper.ssh_parsers"  # the group named in errors about `parser`


def _asyncssh() -> ModuleType:
    """asyncssh, imported on first use (it is an optional extra).

    asyncssh imports its DSA support whether or not a DSA key is ever used, and newer
    cryptography releases warn about DSA at that import; the warning says nothing about
    the user's keys, so it is not passed on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DSA is deprecated")
        import asyncssh
    return asyncssh


class SshConnection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to log in; the inventory may override any of these per device."""

    address: str = ""  # default: the device's address, else its name
    port: int = 22
    username: str = ""  # default: the local user name
    key: str = ""  # reference to the private key text: file:/path or env:VAR
    passphrase: str = ""  # reference
    password: str = ""  # reference
    known_hosts: str | None = None  # a known_hosts file; None: ~/.ssh/known_hosts; "ignore"
    connect_timeout: float = 5.0


class SshOptions(SshConnection, frozen=True, kw_only=True, forbid_unknown_fields=True):
    command: str
    pattern: str | None = None
    parser: str | None = None  # module:function(output: str, ctx) -> mapping or poll result
    expect_exit: int | None = 0  # None: any exit status is fine
    thresholds: dict[str, Threshold] = msgspec.field(default_factory=dict)
    keep_connection: bool = True

    def __post_init__(self) -> None:
        if self.pattern is not None and self.parser is not None:
            raise ValueError("give `pattern` or `parser`, not both")
        if self.pattern is not None:
            check_regex(self.pattern)
        if self.parser is not None and ":" not in self.parser:
            raise ValueError("`parser` must be module:function")


class SshCollector(Collector):
    """``ssh.exit_status``, ``ssh.duration`` (ms) and the metrics parsed from the output."""

    Options = SshOptions
    options: SshOptions
    protocol = "ssh"
    Connection = SshConnection

    def __init__(self, options: Any, *, name: str) -> None:
        super().__init__(options, name=name)
        self._parser: Callable[[str, PollContext], Any] | None = None
        self._connections: dict[str, Any] = {}

    def jobs(self, devices: Any, intervals: tuple[float, ...]) -> Any:
        self._load_parser()  # at start-up: a bad `parser` is refused before anything polls
        return super().jobs(devices, intervals)

    def _load_parser(self) -> Callable[[str, PollContext], Any] | None:
        if self._parser is None and self.options.parser is not None:
            try:
                self._parser = plugins.load(PARSERS, self.options.parser, _callable)
            except PluginError as exc:
                raise ConfigError(str(exc), key="options.parser",
                                  value=self.options.parser) from None
        return self._parser

    async def aclose(self) -> None:
        connections, self._connections = self._connections, {}
        for conn in connections.values():
            conn.close()
        for conn in connections.values():
            await conn.wait_closed()

    async def poll(self, device: Device, ctx: PollContext) -> Any:
        asyncssh = _asyncssh()
        opts = self.options
        conn_opts: SshConnection = self.connection(device)
        host = conn_opts.address or device.address or device.name
        where = f"{conn_opts.username + '@' if conn_opts.username else ''}{host}:{conn_opts.port}"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(ctx.timeout * 0.9):
                conn = await self._connect(device, conn_opts, host, ctx)
                try:
                    done = await conn.run(opts.command, check=False)
                except (asyncssh.Error, OSError):
                    self._drop(device.name)
                    raise
        except asyncssh.PermissionDenied as exc:
            raise CollectError(f"{where}: authentication failed: {exc.reason}") from None
        except asyncssh.HostKeyNotVerifiable as exc:
            return ctx.result([], Status.CRITICAL, f"{where}: host key not trusted: {exc.reason}")
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            return ctx.result([], Status.CRITICAL, f"{where}: {describe(exc)}")
        finally:
            if not opts.keep_connection:
                self._drop(device.name)
        duration = (time.perf_counter() - started) * 1000
        exit_status = done.exit_status if done.exit_status is not None else -1
        output = _text(done.stdout)
        base = [ctx.measure("ssh.exit_status", exit_status),
                ctx.measure("ssh.duration", duration, unit="ms")]
        if opts.expect_exit is not None and exit_status != opts.expect_exit:
            err = _text(done.stderr).strip().splitlines()
            why = f": {err[-1]}" if err else ""
            return ctx.result(base, Status.CRITICAL, f"{where}: `{opts.command}` exited "
                                                     f"{exit_status}{why}")
        return self._parse(ctx, where, output, base)

    def _parse(self, ctx: PollContext, where: str, output: str,
               base: list[Measurement]) -> Any:
        parser = self._load_parser()
        if parser is not None:
            parsed = parser(output, ctx)
            if not isinstance(parsed, Mapping):
                return parsed  # a PollResult or measurements: run_poll checks the shape
            values: dict[str, Any] = dict(parsed)
        elif self.options.pattern is not None:
            match = re.search(self.options.pattern, output, re.MULTILINE)
            if match is None:
                return ctx.result(base, Status.CRITICAL,
                                  f"{where}: output does not match {self.options.pattern!r}")
            values = {k: v for k, v in match.groupdict().items() if v is not None}
        else:
            values = {}
        out = list(base)
        notes: list[tuple[Status, str]] = []
        for metric, raw in values.items():
            try:
                number = float(raw)
            except (TypeError, ValueError):
                notes.append((Status.PARTIAL, f"{metric}={raw!r} is not a number"))
                continue
            out.append(ctx.measure(metric, number))
            notes.append(judge(metric, number, self.options.thresholds.get(metric)))
        status = Status.rollup(s for s, _ in notes) if notes else Status.OK
        text = "; ".join([f"{where}: ok", *(t for s, t in notes if t)])
        return ctx.result(out, status, text)

    async def _connect(self, device: Device, conn_opts: SshConnection, host: str,
                       ctx: PollContext) -> Any:
        asyncssh = _asyncssh()
        existing = self._connections.get(device.name)
        if existing is not None and not existing.is_closed():
            return existing
        kwargs: dict[str, Any] = {
            "port": conn_opts.port, "connect_timeout": conn_opts.connect_timeout,
            "config": None,
        }
        if conn_opts.username:
            kwargs["username"] = conn_opts.username
        if conn_opts.known_hosts == "ignore":
            kwargs["known_hosts"] = None
        elif conn_opts.known_hosts is not None:
            kwargs["known_hosts"] = conn_opts.known_hosts
        passphrase = ctx.credential(conn_opts.passphrase).reveal() \
            if conn_opts.passphrase else None
        if conn_opts.key:
            try:
                key = asyncssh.import_private_key(ctx.credential(conn_opts.key).reveal(),
                                                  passphrase)
            except (asyncssh.KeyImportError, ValueError):
                raise CollectError(f"the SSH key from {conn_opts.key} cannot be "
                                   f"read") from None
            kwargs["client_keys"] = [key]
        if conn_opts.password:
            kwargs["password"] = ctx.credential(conn_opts.password).reveal()
        conn = await asyncssh.connect(host, **kwargs)
        self._connections[device.name] = conn
        return conn

    def _drop(self, device: str) -> None:
        conn = self._connections.pop(device, None)
        if conn is not None:
            conn.close()


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def _callable(obj: Any) -> str | None:
    return None if callable(obj) else f"is {obj!r}, not a function"
