"""Does a URL answer with the expected status and body, how fast, and how long is its TLS
certificate still valid?

One ``httpx.AsyncClient`` per collector instance is created on the first poll (never in
the constructor) and reused by every job of the instance. The runtime should call
:meth:`HttpCollector.aclose` when it drops the instance or shuts down.

The client's pool has ``max_connections`` connections (by default one per job of the
instance, 4 to 16) and a gate of as many slots in front of it: httpcore's pool does
work proportional to waiting requests x connections on every change, so letting
hundreds of polls queue inside it starved the event loop (1,500 jobs stalled the
collector). A poll that gets no slot within half its budget is ERRORED as watchkeeper's
saturation (:class:`~watchkeeper.errors.LocalSaturation`), not CRITICAL: the device was
never asked. A pool that stops making progress (httpx's own ``PoolTimeout`` behind a free
gate, or no request finishing for a while) is stuck: the client is replaced.

``tls.days_left`` is read from the certificate of the very connection the request used
(httpx's ``network_stream`` extension). With ``verify_tls`` on, the standard library
decodes it; with verification off, Python only hands out the raw certificate, which is
parsed when the optional ``cryptography`` package is importable and skipped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from typing import Any

import httpx
import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.poll import describe
from watchkeeper.errors import LocalSaturation
from watchkeeper.model import Device, Measurement, Status

log = logging.getLogger(__name__)

DAY = 86_400.0
POOL_RANGE = (4, 16)  # connections when sized from the jobs: at least, at most
STALL_AFTER = 5.0  # seconds without a finished request, while polls wait, that mean stuck


class HttpOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str = "http://{address}/"  # {address} and {name} are the device's
    method: str = "GET"
    expect_status: int | tuple[int, ...] = 200
    body_match: str | None = None  # a regular expression searched in the body
    verify_tls: bool = True
    tls_warn_days: float = 14.0
    follow_redirects: bool = False
    max_connections: int | None = None  # None: one per job of this instance, 4 to 16

    def __post_init__(self) -> None:
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
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
        self._pool: _Pool | None = None
        self._jobs = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._fetching: set[asyncio.Task[Any]] = set()  # requests, each holding a slot
        self.recycled = 0  # stuck clients replaced so far

    @property
    def pool_size(self) -> int:
        """Connections (and gate slots) of the client: configured, or sized from the jobs."""
        if self.options.max_connections is not None:
            return self.options.max_connections
        low, high = POOL_RANGE
        return max(low, min(high, self._jobs))

    def plan_capacity(self, jobs: int) -> int:
        """Size the pool from the jobs; a client already open keeps its size until replaced.

        Twice the pool may run at once (half of them waiting for a connection); the
        scheduler sheds more, which costs nothing, where a poll waiting only to fail as
        saturated costs a task, a timer and an event each."""
        self._jobs = jobs
        return 2 * self.pool_size

    async def aclose(self) -> None:
        """Close the shared client (after its requests, for at most 5 s); a later poll
        would open a new one."""
        if self._fetching:
            await asyncio.wait(set(self._fetching), timeout=5)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.client.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _current(self) -> _Pool:
        if self._pool is None:
            size = self.pool_size
            # trust_env off: a probe measures the target itself, not a proxy from the env.
            client = httpx.AsyncClient(
                verify=self.options.verify_tls, follow_redirects=self.options.follow_redirects,
                transport=self._transport, trust_env=False,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            )
            self._pool = _Pool(client, size)
        return self._pool

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        url = opts.url.replace("{address}", device.address or device.name)
        url = url.replace("{name}", device.name)
        what = f"{opts.method} {url}"
        # Give up before the poll's own timeout: a slow server is CRITICAL, not ERRORED.
        deadline = time.monotonic() + ctx.timeout * 0.9
        pool = self._current()
        await self._acquire(pool, ctx.timeout * 0.45)
        # The request runs in its own task, shielded: a poll cancelled by its timeout (or by
        # shutdown) must not interrupt httpcore mid-cleanup, which leaves the request in the
        # pool's books holding a connection for good; enough of those and the pool stalls
        # (issue 17: 200 requests, then none). httpx's own timeouts end it instead.
        fetch = asyncio.get_running_loop().create_task(
            self._fetch(pool, url, max(0.05, deadline - time.monotonic())))
        self._fetching.add(fetch)
        fetch.add_done_callback(self._fetched)
        try:
            resp, body, not_after, latency = await asyncio.shield(fetch)
        except httpx.UnsupportedProtocol:
            raise  # a bad URL is a broken check: ERRORED
        except httpx.PoolTimeout:
            # Our gate had a slot, so httpcore's pool should have had a connection.
            self._recycle(pool, "its pool timed out behind a free slot")
            raise self._saturated(pool, "the client's pool had no connection") from None
        except httpx.TransportError as exc:
            return ctx.result([], Status.CRITICAL, f"{what}: {describe(exc)}")

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

    async def _fetch(
        self, pool: _Pool, url: str, budget: float
    ) -> tuple[httpx.Response, bytes, float | None, float]:
        """One request on a slot already held; the slot is released when it is over."""
        try:
            started = time.perf_counter()
            timeout = httpx.Timeout(budget, pool=min(budget, 1.0))
            async with pool.client.stream(self.options.method, url, timeout=timeout) as resp:
                not_after = _not_after(resp, verified=self.options.verify_tls)
                body = await resp.aread()
            pool.progress()
            return resp, body, not_after, (time.perf_counter() - started) * 1000
        except httpx.TransportError:
            pool.progress()  # the pool works: the device did not answer
            raise
        finally:
            pool.gate.release()

    def _fetched(self, task: asyncio.Task[Any]) -> None:
        self._fetching.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a poll that gave up must not log it as lost

    async def _acquire(self, pool: _Pool, wait: float) -> None:
        """Take one of the pool's slots; none within ``wait`` seconds is our saturation."""
        try:
            async with asyncio.timeout(wait):
                await pool.gate.acquire()
        except TimeoutError:
            if pool.stalled():
                self._recycle(pool, f"no request finished in {STALL_AFTER:g}s")
            raise self._saturated(pool, f"no free connection within {wait:.2g}s") from None

    def _saturated(self, pool: _Pool, why: str) -> LocalSaturation:
        return LocalSaturation(
            f"http collector {self.name!r}: {why} (pool of {pool.size}); "
            "watchkeeper is saturated, the device was not asked",
            resource="http_pool",
        )

    def _recycle(self, pool: _Pool, why: str) -> None:
        """Replace a stuck client: new polls get a fresh one, the old closes on the side."""
        if self._pool is not pool:
            return  # already replaced by another poll
        self._pool = None
        self.recycled += 1
        log.warning("http collector %r: replacing its client, %s", self.name, why)
        task = asyncio.get_running_loop().create_task(_close_quietly(pool.client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

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


class _Pool:
    """One client, a gate of as many slots as it has connections, and when it last
    finished a request (a pool that stops finishing while polls wait is stuck)."""

    __slots__ = ("client", "gate", "last_progress", "size")

    def __init__(self, client: httpx.AsyncClient, size: int) -> None:
        self.client = client
        self.size = size
        self.gate = asyncio.Semaphore(size)
        self.last_progress = time.monotonic()

    def progress(self) -> None:
        self.last_progress = time.monotonic()

    def stalled(self) -> bool:
        return time.monotonic() - self.last_progress > STALL_AFTER


async def _close_quietly(client: httpx.AsyncClient) -> None:
    """Close a replaced client; a stuck one may not close cleanly, and need not."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await client.aclose()


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
