"""A tiny keep-alive HTTP/1.1 server in its own process: answers every request ``200 ok``
at once, so load tests of the http collector measure watchkeeper, not the server.

Run as ``python tests/support/httpd.py PORT_FILE``: it binds a free loopback port, writes
the port to ``PORT_FILE`` and serves until killed. :func:`local_httpd` does that for a test.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Answer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:  # bodiless requests (GET) only
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(_ANSWER)  # type: ignore[attr-defined]


async def _serve(port_file: str) -> None:
    server = await asyncio.get_running_loop().create_server(_Answer, "127.0.0.1", 0, backlog=4096)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    await server.serve_forever()


@contextmanager
def local_httpd() -> Iterator[str]:
    """Yield ``http://127.0.0.1:PORT/`` of a fresh server process; stop it afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp, "port")
        proc = subprocess.Popen([sys.executable, __file__, str(port_file)])
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the local http server did not start")
                time.sleep(0.02)
            yield f"http://127.0.0.1:{port_file.read_text()}/"
        finally:
            proc.kill()
            proc.wait(10)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
