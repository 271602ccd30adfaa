"""A real Grafolean bot against a real ``watchkeeper serve``: the unmodified
``grafoleancollector`` 0.0.12 from PyPI, in its own virtual environment (its 2019 pins
install on Python 3.11), runs a bot written as the library's README shows. Its jobs come
from ``/grafolean/api`` and follow an inventory change at its next refresh; its values
read back through the native API."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.serve import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
BOT_VENV = REPO / ".cache" / "grafoleancollector-0.0.12"

BOT = '''
import os, time
from grafoleancollector import Collector, send_results_to_grafolean


class PingishBot(Collector):
    def jobs(self):
        for entity_info in self.fetch_job_configs("ping"):
            for sensor_info in entity_info["sensors"]:
                intervals = [sensor_info["interval"] or 1]
                job_id = str(sensor_info["sensor_id"]) + "-" + str(entity_info["entity_id"])
                job_params = {**sensor_info, "entity_info": entity_info,
                              "backend_url": self.backend_url, "bot_token": self.bot_token}
                yield job_id, intervals, PingishBot.perform_job, job_params

    # The README's `perform_job(affecting_intervals, **job_params)` is refused by the
    # library's APScheduler at add_job; every real bot takes *args, as here.
    @staticmethod
    def perform_job(*args, **job_params):
        affecting_intervals, = args
        entity = job_params["entity_info"]
        packets = int(entity["credential_details"]["n_packets"])
        values = [{"p": "entity.{}.ping.p{}.rtt".format(entity["entity_id"], i), "v": 1.5 + i}
                  for i in range(1, packets + 1)]
        values.append({"p": "entity.{}.ping.success".format(entity["entity_id"]), "v": 1})
        send_results_to_grafolean(job_params["backend_url"], job_params["bot_token"],
                                  entity["account_id"], values)


PingishBot(os.environ["BACKEND_URL"], os.environ["BOT_TOKEN"],
           int(os.environ["JOBS_REFRESH_INTERVAL"])).execute()
'''


def bot_python() -> Path:
    """The bot's own virtual environment, made once per checkout (PyPI install)."""
    python = BOT_VENV / "bin" / "python"
    BOT_VENV.parent.mkdir(parents=True, exist_ok=True)
    with (BOT_VENV.parent / "grafolean.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (BOT_VENV / ".ready").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(BOT_VENV)], check=True,
                           timeout=300)
            subprocess.run([str(python), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", "grafoleancollector==0.0.12",
                            "setuptools<70"], check=True, timeout=600)
            (BOT_VENV / ".ready").touch()
    return python


INVENTORY = """\
devices:
  - {name: r1, addresses: [127.0.0.1], connections: {ping: {n_packets: "2"}}}
"""
INVENTORY_WITH_R2 = INVENTORY + """\
  - {name: r2, addresses: [127.0.0.2], connections: {ping: {n_packets: "3"}}}
"""
CONFIG = """\
inventory: {{file: {inventory}}}
collectors:
  - name: icmp
    plugin: grafolean
    interval: 1
    devices: ["*"]
    options:
      protocol: ping
      details: {{}}
      credential: {{n_packets: "1", timeout: "1.0"}}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    config = tmp_path / "wk.yaml"
    config.write_text(CONFIG.format(inventory=inventory))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(
            [*WATCHKEEPER, "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(data), "--log-level", "warning"], cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/grafolean/api/status/info", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                log_text = (tmp_path / "serve.log").read_text()
                raise AssertionError(f"server did not start: {log_text}")
            time.sleep(0.1)
        yield url, inventory
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def token(data_dir: Path, *, write: bool) -> str:
    made = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "pingbot",
                           *(["--write"] if write else []), "--data-dir", str(data_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    return made.stdout.split()[-1]


def series(url: str) -> dict[str, list[float]]:
    listing = httpx.get(f"{url}/api/v1/series", params={"limit": "100"}, timeout=10).json()
    found = {}
    for item in listing["series"]:
        name = item["series"] if isinstance(item, dict) else item
        if "/ping/" in name:
            answer = httpx.get(f"{url}/api/v1/query", params={"series": name, "since": "1h"},
                               timeout=10).json()
            found[name] = [p[1] for p in answer["points"]]
    return found


def wait_for(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.5)


def test_a_grafolean_bot_polls_what_the_inventory_says(server: tuple[str, Path],
                                                        tmp_path: Path) -> None:
    """The bot finds r1's ping job (credential from the inventory over the sensor's
    default), posts values that land as r1/ping/*, picks up r2 after the inventory file
    changes, and a read-only token is refused."""
    url, inventory = server
    python = bot_python()
    bot = tmp_path / "bot.py"
    bot.write_text(textwrap.dedent(BOT))
    key = token(tmp_path / "data", write=True)
    env = {**os.environ, "BACKEND_URL": f"{url}/grafolean/api", "BOT_TOKEN": key,
           "JOBS_REFRESH_INTERVAL": "2"}
    with (tmp_path / "bot.log").open("w") as log:
        proc = subprocess.Popen([str(python), str(bot)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: {"r1/ping/p1.rtt", "r1/ping/p2.rtt", "r1/ping/success"}
                 <= series(url).keys())
        got = series(url)
        assert set(got["r1/ping/p2.rtt"]) == {3.5}
        assert not any(name.startswith("r2/") for name in got)
        inventory.write_text(INVENTORY_WITH_R2)
        wait_for(lambda: "r2/ping/p3.rtt" in series(url))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader = token(tmp_path / "data", write=False)
    refused = httpx.get(f"{url}/grafolean/api/profile/", params={"b": reader}, timeout=10)
    assert refused.status_code == 403
    assert httpx.get(f"{url}/grafolean/api/accounts/", timeout=10).status_code == 401
