"""The ``prometheus`` collector's scraped ``# TYPE``/``# HELP`` reach
``/prometheus/api/v1/metadata`` (D46), scraping Debian's ``prometheus-node-exporter``:
in ``watchkeeper up`` (one process); with ``watchkeeper collect`` writing the archive
while ``watchkeeper serve``, another process on the same data directory, answers; and
from a remote collector (``collect --server``) posting its results to ``serve``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.ecosystem_servers import (
    WATCHKEEPER,
    node_exporter,
    running,
    wait_for,
)
from tests.support.serve import free_port, write_token
from watchkeeper.api.ingest import METADATA_FILE
from watchkeeper.archive.backends.embedded import LOCK_NAME

pytestmark = pytest.mark.timeout(120)

CONFIG = """\
inventory:
  devices:
    - {{name: box, address: 127.0.0.1, connections: {{prometheus: {{port: {port}}}}}}}
collectors:
  - {{name: node, plugin: prometheus, interval: 1, devices: [box], options: {{job: node}}}}
"""


def exporter_help(node: str, family: str) -> str:
    """The help text the exporter itself writes for ``family``."""
    prefix = f"# HELP {family} "
    lines = httpx.get(f"http://{node}/metrics", timeout=10).text.splitlines()
    (line,) = [line for line in lines if line.startswith(prefix)]
    return line[len(prefix):]


def writer_pid(data: Path) -> int | None:
    """The process holding the embedded archive for writing (its lock file says)."""
    try:
        return int((data / LOCK_NAME).read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def metadata(url: str, key: str, metric: str) -> object:
    answer = httpx.get(f"{url}/prometheus/api/v1/metadata", params={"metric": metric},
                       headers={"Authorization": f"Bearer {key}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"].get(metric)


def setup(tmp: Path, node: str) -> tuple[Path, Path, str]:
    data = tmp / "wk"
    data.mkdir()
    config = tmp / "wk.yaml"
    config.write_text(CONFIG.format(port=node.rsplit(":", 1)[1]))
    return data, config, write_token(data, "eco")


def check_families(url: str, key: str, node: str, data: Path) -> None:
    """The exporter's counter and gauge, typed and with its help, and kept on disk."""
    unknown = [{"type": "unknown", "help": "", "unit": ""}]  # held, not described yet
    for family, kind in (("node_cpu_seconds_total", "counter"), ("node_load1", "gauge")):
        wait_for(lambda family=family: metadata(url, key, family) not in (  # type: ignore[misc]
            None, unknown), 30, f"the metadata of {family}")
        assert metadata(url, key, family) == [
            {"type": kind, "help": exporter_help(node, family), "unit": ""}]
    assert "node_cpu_seconds_total" in (data / METADATA_FILE).read_text()


def test_up_answers_what_its_collector_scraped(tmp_path: Path) -> None:
    """One process: the collector's result, the chain, the archive writer, the API."""
    with node_exporter() as node:
        data, config, key = setup(tmp_path, node)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running([*WATCHKEEPER, "up", "--config", str(config), "--data-dir", str(data),
                      "--listen", f"127.0.0.1:{port}"]):
            check_families(url, key, node, data)


def test_serve_answers_what_a_separate_collect_scraped(tmp_path: Path) -> None:
    """``collect`` holds the archive (started first, it is its writer; ``serve`` opens it
    read-only) and its archive writer keeps the families; ``serve`` reads the file the
    other process wrote."""
    with node_exporter() as node:
        data, config, key = setup(tmp_path, node)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running([*WATCHKEEPER, "collect", "--config", str(config), "--data-dir",
                      str(data)]) as collect:
            wait_for(lambda: writer_pid(data) == collect.pid, 30, "collect to hold the archive")
            with running([*WATCHKEEPER, "serve", "--config", str(config), "--data-dir",
                          str(data), "--listen", f"127.0.0.1:{port}"]):
                wait_for(lambda: httpx.get(f"{url}/api/v1/health", timeout=2).status_code
                         == 200, 30, "watchkeeper serve")
                check_families(url, key, node, data)


def test_serve_answers_what_a_remote_collector_scraped(tmp_path: Path) -> None:
    """``collect --server``: the families travel with the results over HTTP, and the
    server keeps them once their points are stored."""
    with node_exporter() as node:
        data, config, key = setup(tmp_path, node)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running([*WATCHKEEPER, "serve", "--config", str(config), "--data-dir",
                      str(data), "--listen", f"127.0.0.1:{port}"]):
            wait_for(lambda: httpx.get(f"{url}/api/v1/health", timeout=2).status_code
                     == 200, 30, "watchkeeper serve")
            with running([*WATCHKEEPER, "collect", "--server", url, "--token", key,
                          "--spool", str(tmp_path / "spool")]):
                check_families(url, key, node, data)
