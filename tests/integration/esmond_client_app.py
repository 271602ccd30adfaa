"""The real esmond-compatible server, for the client and tool tests.

:class:`LiveEsmond` runs the whole stack (embedded archive, esmond metadata store,
:class:`EsmondArchive`, the esmond routes in ``create_app``, token authentication) on its
own event loop in a thread, served over HTTP by uvicorn on a loopback port. Sync code
reaches it either over HTTP (``.url``) or in-process (``.transport()``: requests go
straight to the ASGI app on the server's loop, no socket). ``RecordingTransport`` keeps
every request in the shape of ``captured/*.requests.jsonl``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.types import ASGIApp

from tests.unit.client.esmond_replay import record
from watchkeeper.api import create_app
from watchkeeper.archive.esmond import EsmondArchive
from watchkeeper.clock import FakeClock
from watchkeeper.runtime.assemble import build_archive
from watchkeeper.runtime.esmond import build_esmond
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

T = TypeVar("T")
# Inside the windows the captured runs asked for (time-updated is the server's clock).
SERVER_TIME = 1_398_950_000.0


@dataclass
class EsmondApp:
    app: ASGIApp
    esmond: EsmondArchive
    token: str
    read_token: str
    clock: FakeClock


@asynccontextmanager
async def esmond_app(data_dir: Path, *, start: float = SERVER_TIME) -> AsyncIterator[EsmondApp]:
    """The archive, esmond archive, token store and app, composed as ``watchkeeper serve``
    composes them (runtime.assemble / runtime.esmond / api.create_app), on a FakeClock."""
    settings, locator = load_settings(overrides={"data_dir": str(data_dir)})
    clock = FakeClock(start)
    metrics = SelfMetrics()
    archive = build_archive(settings, locator, clock=clock, metrics=metrics)
    parts = build_esmond(settings, locator, archive=archive, clock=clock)
    assert parts.esmond is not None
    async with AsyncExitStack() as stack:
        await archive.start(stack)
        await parts.start(stack)
        token = await parts.tokens.create("loader", write=True, now=int(clock.time()))
        read_token = await parts.tokens.create("reader", write=False, now=int(clock.time()))
        app = create_app(archive, metrics=metrics, esmond=parts.esmond, tokens=parts.tokens)
        yield EsmondApp(app, parts.esmond, token, read_token, clock)


class _Bridge(httpx.BaseTransport):
    """A sync transport that hands each request to the ASGI app on another loop."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            copy = httpx.Request(request.method, request.url, headers=request.headers,
                                 content=body)
            response = await self._inner.handle_async_request(copy)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = asyncio.run_coroutine_threadsafe(send(), self._loop).result()
        return httpx.Response(status, headers=headers, content=content, request=request)


class RecordingTransport(httpx.BaseTransport):
    """Delegates to ``inner`` and appends each request to ``log``."""

    def __init__(self, inner: httpx.BaseTransport, log: list[dict[str, Any]]) -> None:
        self._inner = inner
        self.log = log

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.log.append(record(request))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class LiveEsmond:
    """The stack on its own loop in a thread, with uvicorn on a loopback port."""

    def __init__(self, data_dir: Path, *, start: float = SERVER_TIME) -> None:
        self.data_dir = data_dir
        self.start = start
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stop = asyncio.Event()
        self._done: asyncio.Future[None] | None = None
        self.url = ""
        self.app: EsmondApp | None = None

    def __enter__(self) -> LiveEsmond:
        self._thread.start()
        ready: asyncio.Future[EsmondApp] = self.loop.create_future()  # type: ignore[assignment]
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        async def main() -> None:
            async with esmond_app(self.data_dir, start=self.start) as stack:
                server = uvicorn.Server(uvicorn.Config(stack.app, log_level="warning",
                                                       lifespan="off", access_log=False))
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                while not server.started and not serving.done():
                    await asyncio.sleep(0.01)
                ready.set_result(stack)
                await self._stop.wait()
                server.should_exit = True
                await serving
            sock.close()

        self._done = asyncio.run_coroutine_threadsafe(main(), self.loop)  # type: ignore[assignment]
        self.app = asyncio.run_coroutine_threadsafe(_wait(ready), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        if self._done is not None:
            self._done.result(30)  # type: ignore[attr-defined]
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @property
    def token(self) -> str:
        assert self.app is not None
        return self.app.token

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's loop (setup through the EsmondArchive)."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(60)

    def transport(self, log: list[dict[str, Any]] | None = None) -> httpx.BaseTransport:
        """In-process: straight to the app, no socket (recording into ``log`` if given)."""
        assert self.app is not None
        bridge = _Bridge(self.app.app, self.loop)
        return bridge if log is None else RecordingTransport(bridge, log)

    def http(self, log: list[dict[str, Any]]) -> httpx.BaseTransport:
        """Over HTTP to the running server, recording into ``log``."""
        return RecordingTransport(httpx.HTTPTransport(), log)


async def _wait(future: asyncio.Future[T]) -> T:
    return await future
