"""The Graphite plaintext listener: ``path value timestamp`` lines over TCP into the archive.

Off unless ``graphite.listen`` is set; ``watchkeeper up`` and ``serve`` start it. Paths map
to series by ``graphite.templates`` (:mod:`watchkeeper.api.ingest.graphite`).

The protocol has no acknowledgement, so the listener's only promise is ordering: it reads
a chunk (up to 256 KiB) from a connection, stores the chunk's complete lines with one
archive write, and only then reads on (the sender's socket buffer holds the rest: back
pressure, not memory). A ``kill -9`` loses what was read and not yet written (at most one
chunk per connection) plus what sat in socket buffers; a sender cannot know. Bad lines
are skipped and counted (carbon does the same), and logged once per connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Final

import numpy as np

from watchkeeper.api.ingest.graphite import Template, key_text, parse_line, parse_template
from watchkeeper.archive import Archive, Columns
from watchkeeper.clock import Clock
from watchkeeper.errors import ConfigError, InvalidData
from watchkeeper.settings import Locator, Settings, parse_listen

log = logging.getLogger(__name__)

CHUNK: Final = 256 * 1024
MAX_LINE: Final = 64 * 1024
_KEYS: Final = 100_000  # remembered path -> series texts


class GraphiteListener:
    """Accepts connections on a bound socket; see the module's description."""

    def __init__(self, archive: Archive, *, listen: str, templates: Sequence[Template],
                 clock: Clock) -> None:
        self.archive = archive
        self.listen = listen
        self.templates = tuple(templates)
        self.clock = clock
        self.address: tuple[str, int] | None = None
        self._keys: dict[str, str] = {}
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, stack: AsyncExitStack) -> None:
        """Bind (a taken port is a ConfigError) and serve until the stack unwinds."""
        host, port = parse_listen(self.listen)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self.listen}: {exc.strerror}",
                              key="graphite.listen", value=self.listen) from None
        server = await asyncio.start_server(self._accept, sock=sock, limit=MAX_LINE)
        self.address = sock.getsockname()[:2]
        stack.push_async_callback(self._stop, server)
        log.info("graphite listener on %s", self.listen)

    async def _stop(self, server: asyncio.Server) -> None:
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            stored, bad = await self._serve(reader)
            log.debug("graphite connection from %s: %d points, %d bad lines", peer, stored, bad)
        except (OSError, InvalidData) as exc:
            log.warning("graphite connection from %s closed: %s", peer, exc)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader) -> tuple[int, int]:
        pending = b""
        stored = bad = 0
        while True:
            chunk = await reader.read(CHUNK)
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop() if chunk else b""
            written, skipped = await self.store(lines)
            stored, bad = stored + written, bad + skipped
            if len(pending) > MAX_LINE:  # the complete lines before it are stored
                raise InvalidData(f"a line longer than {MAX_LINE} bytes", field="line")
            if not chunk:
                return stored, bad

    async def store(self, lines: Sequence[bytes]) -> tuple[int, int]:
        """Store the good lines with one write; (points stored, bad lines skipped)."""
        now = self.clock.time()
        positions: dict[str, int] = {}
        index: list[int] = []
        stamps: list[float] = []
        values: list[float] = []
        bad = 0
        for raw in lines:
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                path, stamp, value = parse_line(text, now)
            except InvalidData as exc:
                if not bad:
                    log.warning("graphite: skipping bad line: %s", exc)
                bad += 1
                continue
            index.append(positions.setdefault(self._key(path), len(positions)))
            stamps.append(stamp)
            values.append(value)
        if index:
            await self.archive.write_columns(Columns(
                series=list(positions), index=np.asarray(index, dtype=np.int32),
                ts=np.asarray(stamps, dtype=np.float64),
                values=np.asarray(values, dtype=np.float64)))
        return len(index), bad

    def _key(self, path: str) -> str:
        key = self._keys.get(path)
        if key is None:
            if len(self._keys) >= _KEYS:
                self._keys.clear()
            key = self._keys[path] = key_text(path, self.templates)
        return key


async def start_graphite(stack: AsyncExitStack, settings: Settings, locator: Locator, *,
                         archive: Archive, clock: Clock) -> GraphiteListener | None:
    """Start the listener ``settings.graphite`` asks for (None when off) on ``stack``: a bad
    template or a taken port is a ConfigError naming the setting, before the API serves."""
    listener = build_graphite(settings, locator, archive=archive, clock=clock)
    if listener is not None:
        await listener.start(stack)
    return listener


def build_graphite(settings: Settings, locator: Locator, *, archive: Archive,
                   clock: Clock) -> GraphiteListener | None:
    """The listener ``settings.graphite`` asks for (None when off); settings checked now."""
    templates = check_graphite(settings, locator)
    if not settings.graphite.listen:
        return None
    return GraphiteListener(archive, listen=settings.graphite.listen, templates=templates,
                            clock=clock)


def check_graphite(settings: Settings, locator: Locator) -> list[Template]:
    """``settings.graphite``'s templates, parsed, and its listen address checked, binding
    nothing: ``config check`` and ``up`` call it alike. A bad one is a ConfigError naming
    the file, line and key (``graphite.templates[i]``), even with the listener off."""
    section = settings.graphite
    templates = []
    for i, text in enumerate(section.templates):
        try:
            templates.append(parse_template(text))
        except InvalidData as exc:
            message = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
            raise locator.error(f"graphite.templates[{i}]", message, text) from None
    if section.listen:
        try:
            parse_listen(section.listen)
        except ConfigError:
            raise locator.error("graphite.listen", "expected HOST:PORT (e.g. 127.0.0.1:2003)",
                                section.listen) from None
    return templates
