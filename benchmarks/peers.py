"""The peers the archive benchmark compares with: VictoriaMetrics and InfluxDB 1.x.

Each is started on loopback only, on a free port, with all its files in a temporary
directory, and stopped (SIGTERM, then SIGKILL) when its context ends::

    with VictoriaMetrics.started(tmp) as vm:
        vm.ingest(body)  ...

``scripts/services bench-peers`` installs the Debian packages (``victoria-metrics``,
``influxdb``); a missing binary raises :class:`PeerUnavailable`, which the benchmark
reports instead of failing.

Besides starting and stopping, each class knows its ingest endpoint, how to make its
data queryable and how big its data directory is; the benchmark builds the request
bodies and queries.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Self

import httpx

VM_BINARY = "/usr/bin/victoria-metrics"
INFLUX_BINARY = "/usr/bin/influxd"
_START_TIMEOUT_S = 60.0


class PeerUnavailable(RuntimeError):
    """The peer's binary is not installed (run ``scripts/services bench-peers``)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dir_bytes(path: Path) -> int:
    """Bytes the files under ``path`` occupy on disk (allocated blocks, as ``du`` counts:
    preallocated, sparse files count for what they use)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size of a running process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Peer:
    """A server process on loopback with its data in ``workdir``."""

    name: ClassVar[str] = "peer"
    binary: ClassVar[str] = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=300.0)
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    @contextlib.contextmanager
    def started(cls, parent: Path | None = None) -> Iterator[Self]:
        if not Path(cls.binary).exists():
            raise PeerUnavailable(f"{cls.binary} is missing: run scripts/services bench-peers")
        workdir = Path(tempfile.mkdtemp(prefix=f"wk-bench-{cls.name}-", dir=parent))
        peer = cls(workdir)
        try:
            peer.start()
            yield peer
        finally:
            peer.stop()
            peer.http.close()
            shutil.rmtree(workdir, ignore_errors=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        log = (self.workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: "
                                   f"{(self.workdir / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self.ready():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in {_START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def data_bytes(self) -> int:
        raise NotImplementedError


class VictoriaMetrics(Peer):
    """Single-node VictoriaMetrics; ingest with ``/api/v1/import`` (JSON lines).

    ``-search.disableCache`` keeps repeated benchmark queries from being answered out of
    its rollup-result cache (the archive has no result cache either);
    ``-search.latencyOffset=0`` makes just-written points queryable at once.
    """

    name = "victoria-metrics"
    binary = VM_BINARY

    def command(self) -> list[str]:
        return [self.binary, f"-storageDataPath={self.workdir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=100y",
                "-search.disableCache", "-search.latencyOffset=0s", "-loggerLevel=ERROR",
                "-search.maxPointsPerTimeseries=1000000"]

    def ready(self) -> bool:
        return self.http.get("/health").status_code == 200

    def ingest(self, body: bytes) -> None:
        response = self.http.post("/api/v1/import", content=body)
        response.raise_for_status()

    def flush(self) -> None:
        """Make everything ingested searchable (it is buffered for up to a second)."""
        self.http.get("/internal/force_flush").raise_for_status()

    def data_bytes(self) -> int:
        return dir_bytes(self.workdir / "data")


class InfluxDB(Peer):
    """InfluxDB 1.x with a WAL fsynced on every write; ingest with ``/write`` line protocol."""

    name = "influxdb"
    binary = INFLUX_BINARY
    database = "bench"

    def command(self) -> list[str]:
        config = self.workdir / "influxdb.conf"
        config.write_text(textwrap.dedent(f"""\
            reporting-disabled = true
            bind-address = "127.0.0.1:{free_port()}"
            [meta]
              dir = "{self.workdir / 'meta'}"
              logging-enabled = false
            [data]
              dir = "{self.workdir / 'data'}"
              wal-dir = "{self.workdir / 'wal'}"
              wal-fsync-delay = "0s"
              query-log-enabled = false
              max-series-per-database = 0
              max-values-per-tag = 0
            [monitor]
              store-enabled = false
            [subscriber]
              enabled = false
            [continuous_queries]
              enabled = false
            [http]
              bind-address = "127.0.0.1:{self.port}"
              log-enabled = false
              max-body-size = 0
            [logging]
              level = "error"
            """))
        return [self.binary, "-config", str(config)]

    def ready(self) -> bool:
        if self.http.get("/ping").status_code != 204:
            return False
        self.query(f"CREATE DATABASE {self.database}", method="POST")
        return True

    def query(self, q: str, *, method: str = "GET") -> httpx.Response:
        params = {"q": q, "db": self.database, "epoch": "ms"}
        response = self.http.request(method, "/query", params=params)
        response.raise_for_status()
        return response

    def ingest(self, body: bytes) -> None:
        response = self.http.post("/write", params={"db": self.database, "precision": "ms"},
                                  content=body)
        response.raise_for_status()

    def data_bytes(self) -> int:
        return dir_bytes(self.workdir / "data") + dir_bytes(self.workdir / "wal")


def environment() -> dict[str, str]:
    """Versions of the peers (from their Debian packages), for the report."""
    out = {}
    for package in ("victoria-metrics", "influxdb"):
        result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                                capture_output=True, text=True, check=False)
        out[package] = result.stdout.strip() or "not installed"
    return out
