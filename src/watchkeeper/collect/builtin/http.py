"""Does a URL answer with the expected status and body, how fast, and how long is its TLS
certificate still valid?

One ``httpx.AsyncClient`` per collector instance is created on the first poll (never in
the constructor) and reused by every job of the instance. The runtime should call
:meth:`HttpCollector.aclose` when it drops the instance or shuts down.

``tls.days_left`` is read from the certificate of the very connection the request used
(httpx's ``network_stream`` extension). With ``verify_tls`` on, the standard library
decodes it; with verification off, Python only hands out the raw certificate, which is
parsed when the optional ``cryptography`` package is importable and skipped otherwise.
"""

from __future__ import annotations

import re
import ssl
import time
from typing import Any

import httpx
import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.poll import describe
from watchkeeper.model import Device, Measurement, Status

DAY = 86_400.0


class HttpOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str = "http://{address}/"  # {address} and {name} are the device's
    method: str = "GET"
    expect_status: int | tuple[int, ...] = 200
    body_match: str | None = None  # a regular expression searched in the body
    verify_tls: bool = True
    tls_warn_days: float = 14.0
    follow_redirects: bool = False

    def __post_init__(self) -> None:
        if self.body_match is not None:
            try:
                re.compile(self.body_match)
            except re.error as exc:
                raise ValueError(f"body_match is not a valid regular expression: {exc}") from exc


class HttpCollector(Collector):
    """HTTP(S) checks: ``http.latency`` (ms), ``http.status_code``, ``http.body_bytes``,
    and ``tls.days_left`` for https URLs."""

    Options = HttpOptions
    options: HttpOptions

    def __init__(
        self, options: Any, *, name: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(options, name=name)
        self._transport = transport  # tests pass an httpx.MockTransport
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        """Close the shared client; a later poll would open a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env off: a probe measures the target itself, not a proxy from the env.
            self._client = httpx.AsyncClient(
                verify=self.options.verify_tls, follow_redirects=self.options.follow_redirects,
                transport=self._transport, trust_env=False,
            )
        return self._client

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        url = opts.url.replace("{address}", device.address or device.name)
        url = url.replace("{name}", device.name)
        what = f"{opts.method} {url}"
        started = time.perf_counter()
        try:
            # Give up before the poll's own timeout: a slow server is CRITICAL, not ERRORED.
            async with self._http().stream(opts.method, url, timeout=ctx.timeout * 0.9) as resp:
                not_after = _not_after(resp, verified=opts.verify_tls)
                body = await resp.aread()
        except httpx.UnsupportedProtocol:
            raise  # a bad URL is a broken check: ERRORED
        except httpx.TransportError as exc:
            return ctx.result([], Status.CRITICAL, f"{what}: {describe(exc)}")
        latency = (time.perf_counter() - started) * 1000

        out = [
            ctx.measure("http.latency", latency, unit="ms"),
            ctx.measure("http.status_code", resp.status_code),
            ctx.measure("http.body_bytes", len(body), unit="B"),
        ]
        checks = [self._check_status(resp.status_code), self._check_body(resp, body)]
        if not_after is not None:
            checks.append(self._check_tls(ctx, out, not_after))
        status = Status.rollup(s for s, _ in checks)
        notes = [text for s, text in checks if s is not Status.OK and text]
        summary = f"{what}: HTTP {resp.status_code} in {latency:.1f} ms"
        return ctx.result(out, status, "; ".join([summary, *notes]))

    def _check_status(self, code: int) -> tuple[Status, str]:
        expected = self.options.expect_status
        allowed = (expected,) if isinstance(expected, int) else expected
        if code in allowed:
            return Status.OK, ""
        return Status.CRITICAL, f"expected status {' or '.join(map(str, allowed))}"

    def _check_body(self, resp: httpx.Response, body: bytes) -> tuple[Status, str]:
        pattern = self.options.body_match
        if pattern is None:
            return Status.OK, ""
        text = body.decode(resp.encoding or "utf-8", errors="replace")
        if re.search(pattern, text):
            return Status.OK, ""
        return Status.CRITICAL, f"body does not match {pattern!r}"

    def _check_tls(
        self, ctx: PollContext, out: list[Measurement], not_after: float
    ) -> tuple[Status, str]:
        days = (not_after - ctx.now) / DAY
        out.append(ctx.measure("tls.days_left", days, unit="d"))
        if days < 0:
            return Status.CRITICAL, f"TLS certificate expired {-days:.1f} days ago"
        if days < self.options.tls_warn_days:
            return Status.WARNING, f"TLS certificate expires in {days:.1f} days"
        return Status.OK, ""


def _not_after(resp: httpx.Response, *, verified: bool) -> float | None:
    """Epoch seconds when the peer's certificate expires; None for plain HTTP or if unknown."""
    stream = resp.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    if verified:
        cert = ssl_object.getpeercert()
        not_after = cert.get("notAfter") if cert else None
        return ssl.cert_time_to_seconds(not_after) if isinstance(not_after, str) else None
    der = ssl_object.getpeercert(binary_form=True)
    try:
        from cryptography import x509
    except ImportError:
        return None  # unverified certificates are only handed out raw; nothing to parse with
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp() if der else None
