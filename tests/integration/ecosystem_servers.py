"""Real programs for the ecosystem tests, each on a free 127.0.0.1 port with a temp dir:
``watchkeeper serve`` (with a write token and the Graphite listener), Debian's
``prometheus-node-exporter``, ``prometheus``, ``collectd`` (installed by scripts/services)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.serve import free_port, write_token

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROMETHEUS = "/usr/bin/prometheus"
COLLECTD = "/usr/sbin/collectd"


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    """``check()``'s first truthy answer, polled every 0.2 s; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = check()
        except httpx.TransportError:
            answer = None
        if answer:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def need(binary: str) -> None:
    if not shutil.which(binary):
        pytest.skip(f"{binary} is not installed (scripts/services installs it)")


@contextmanager
def running(args: list[str], *, cwd: Path = REPO, env: dict[str, str] | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A process for the block (its output in a temp file, shown if the block fails);
    interrupted, then killed, at its end."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        try:
            yield proc
        except BaseException:
            log.seek(0)
            said = log.read()[-4000:].decode(errors="replace")
            sys.stderr.write(f"--- {args[0]} said:\n{said}\n")
            raise
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Watchkeeper:
    """``watchkeeper serve`` with a write token; ``graphite`` is its Graphite port."""

    def __init__(self, tmp: Path, *, graphite_templates: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.graphite = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tmp / "wk"
        self.data.mkdir()
        templates = ", ".join(f"'{t}'" for t in graphite_templates)
        self.config = tmp / "wk.yaml"
        self.config.write_text(f"graphite: {{listen: '127.0.0.1:{self.graphite}', "
                               f"templates: [{templates}]}}\n")
        self.token = write_token(self.data, "eco")

    @contextmanager
    def serve(self) -> Iterator[Watchkeeper]:
        with running([*WATCHKEEPER, "serve", "--config", str(self.config), "--listen",
                      f"127.0.0.1:{self.port}", "--data-dir", str(self.data)]):
            wait_for(self.healthy, 30, "watchkeeper serve")
            yield self

    def healthy(self) -> bool:
        return httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200

    def series(self, prefix: str = "") -> list[str]:
        response = httpx.get(f"{self.url}/api/v1/series",
                             params={"prefix": prefix, "limit": 100000}, timeout=10)
        response.raise_for_status()
        return [item["series"] for item in response.json()["series"]]

    def points(self, series: str, since: str = "1h") -> list[tuple[float, float]]:
        response = httpx.get(f"{self.url}/api/v1/query",
                             params={"series": series, "since": since}, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [(ts, value) for ts, value in response.json()["points"]]


@contextmanager
def node_exporter() -> Iterator[str]:
    """A node exporter with a few collectors; yields its host:port."""
    need(NODE_EXPORTER)
    address = f"127.0.0.1:{free_port()}"
    with running([NODE_EXPORTER, f"--web.listen-address={address}",
                  "--collector.disable-defaults", "--collector.cpu", "--collector.loadavg",
                  "--collector.meminfo", "--collector.stat", "--collector.uname"]):
        wait_for(lambda: httpx.get(f"http://{address}/metrics", timeout=2).status_code == 200,
                 20, "the node exporter")
        yield address


@contextmanager
def prometheus(tmp: Path, config: str) -> Iterator[str]:
    """Prometheus with ``config`` (YAML text); yields its base URL."""
    need(PROMETHEUS)
    port = free_port()
    (tmp / "prometheus.yml").write_text(config)
    with running([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                  f"--storage.tsdb.path={tmp / 'tsdb'}",
                  f"--web.listen-address=127.0.0.1:{port}"], cwd=tmp):
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 20,
                 "prometheus")
        yield url


def prom_query(url: str, query: str, at: float | None = None) -> list[dict[str, object]]:
    params: dict[str, str | float] = {"query": query}
    if at is not None:
        params["time"] = at
    response = httpx.get(f"{url}/api/v1/query", params=params, timeout=10)
    response.raise_for_status()
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result
