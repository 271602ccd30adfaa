"""pyATS and genie.telemetry users keep their files (issue 15): real pyats, genie and
genie.telemetry, a ``linux`` device of a pyATS testbed reached by unicon over SSH on the test
sshd (127.0.0.1:2222, key auth), and a genie plugin that runs ``uname -a`` through the pyATS
device object.

* a hello-world program in the shape of genie.telemetry's developer guide, with only the
  Manager's import line changed, runs as a subprocess with ``--genietelemetry FILE``;
* the plugin as a watchkeeper collector (``plugin: genie``) in watchkeeper's own Manager,
  and in the ``watchkeeper collect`` daemon with the pyATS testbed as ``inventory.file``:
  its results land in the archive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from watchkeeper.collect.genie import load_testbed, read_pyats_inventory
from watchkeeper.collect.manager import Manager as CoreManager
from watchkeeper.model import Status
from watchkeeper.settings import CollectorSettings

pytestmark = pytest.mark.external_service

REPO = Path(__file__).resolve().parents[2]
SSH_DIR = REPO / ".services" / "ssh"
KEY = SSH_DIR / "id_ed25519"
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]

UNAME_PLUGIN = """\
import argparse

from genie.telemetry.plugin import BasePlugin
from genie.telemetry.status import CRITICAL, OK
from pyats.datastructures import classproperty


class Plugin(BasePlugin):
    __plugin_name__ = "Uname Plugin"
    __supported_os__ = ["linux"]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.runs = 0

    @classproperty
    def parser(cls):
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--uname_expect", default="Linux")
        return parser

    def execution(self, device, **kwargs):
        self.runs += 1
        device.connect(log_stdout=False)
        output = device.execute("uname -a")
        status = OK
        if self.args.uname_expect in output:
            status += OK(f"run {self.runs}: {output.strip()}")
        else:
            status += CRITICAL(f"{self.args.uname_expect!r} not in {output.strip()!r}")
        return status
"""

# The developer guide's hello-world main program, in its shape; the one changed line is the
# Manager's import (genie.telemetry -> watchkeeper.collect.genie). `ats.topology` is pyATS'
# own legacy name, kept as the guide writes it; `self.` where the guide slips into `this.`;
# the testbed path, plugins and run names are this test's.
HELLO_WORLD = """\
import sys
import tempfile
from copy import copy
from ats.topology import loader
from watchkeeper.collect.genie import Manager


class HelloWorld(object):

    def __init__(self, testbed_file):
        self.testbed = loader.load(testbed_file)
        args = copy(sys.argv[1:])
        self.configuration = Manager.parser.parse_args(args).configuration
        kwargs = dict(runinfo_dir=tempfile.gettempdir(),
                      configuration=self.configuration)
        self.genie_telemetry = Manager(self.testbed, **kwargs)

    def run(self, uid, plugins=[]):
        anomalies = []
        self.genie_telemetry.run(uid, plugins=plugins)
        results = self.genie_telemetry.results.get(uid, {})
        for pluginname, devices in results.items():
            p_results = []
            for name, result in devices.items():
                status = result.get('status', None)
                status_name = getattr(status, 'name', status)
                if str(status_name).lower() == 'ok':
                    continue
                p_results.append('\\n\\t\\t'.join([name, status_name]))
            if not p_results:
                continue
            anomalies.append('\\n\\t'.join([pluginname, '\\n'.join(p_results)]))
        print(''.join(anomalies))


if __name__ == '__main__':
    hello_world = HelloWorld('testbed.yaml')
    hello_world.run('uname_and_wrong', plugins=['uname', 'uname_wrong'])
    hello_world.run('uname_only', plugins=['uname'])
    hello_world.run('all_plugins')
    hello_world.genie_telemetry.finalize_report()
"""

CONFIG = """\
plugins:
  uname:
    module: uname_plugin
  uname_wrong:
    module: uname_plugin
    plugin_arguments: {uname_expect: Plan9}
connections:
  box: {logfile: LOGFILE}   # unicon's session log (by default a new file in /tmp)
"""


def pyats_testbed(known_hosts: Path, port: int = 2222) -> str:
    options = (f"-i {KEY} -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} "
               "-o BatchMode=yes")
    return textwrap.dedent(f"""\
        testbed:
          name: issue15
        devices:
          box:
            os: linux
            type: linux
            credentials:
              default: {{username: root, password: "%ENV{{WK_GENIE_PASSWORD}}"}}
            connections:
              cli:
                protocol: ssh
                ip: 127.0.0.1
                port: {port}
                ssh_options: {options}
        """)


def unicon_log(where: Path) -> str:
    return str(where / "unicon.log")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path holding the testbed, the plugin module and the genie configuration."""
    kind, key = (SSH_DIR / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:2222 {kind} {key}\n")
    (tmp_path / "testbed.yaml").write_text(pyats_testbed(known_hosts))
    (tmp_path / "uname_plugin.py").write_text(UNAME_PLUGIN)
    (tmp_path / "genietelemetry.yaml").write_text(CONFIG.replace("LOGFILE", unicon_log(tmp_path)))
    monkeypatch.setenv("WK_GENIE_PASSWORD", "unused-with-key-auth")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_the_guide_hello_world_runs_with_only_its_import_changed(lab: Path) -> None:
    (lab / "hello_world.py").write_text(HELLO_WORLD)
    run = subprocess.run(
        [sys.executable, "hello_world.py", "--genietelemetry", "genietelemetry.yaml"],
        cwd=lab, capture_output=True, text=True, timeout=110, check=False,
        env={**os.environ, "TMPDIR": str(lab)},  # the program's runinfo_dir: gettempdir()
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # the anomalies the program prints: the wrong expectation, twice; never `uname` alone
    assert run.stdout.count("uname_wrong\n\tbox\n\t\tCRITICAL") == 2, run.stdout[-3000:]
    assert "uname\n\tbox" not in run.stdout
    report = yaml.safe_load((lab / "telemetry.yaml").read_text())
    assert list(report) == ["uname_and_wrong", "uname_only", "all_plugins"]
    assert list(report["all_plugins"]) == ["uname", "uname_wrong"]
    ok = report["uname_only"]["uname"]["box"]
    assert ok["status"] == "Ok"
    (message,) = ok["result"].values()
    assert "Linux" in message
    assert message.startswith("run 2:")  # one plugin instance per device, across runs
    assert report["all_plugins"]["uname_wrong"]["box"]["status"] == "Critical"
    assert (lab / "report.yaml").exists()
    assert (lab / "report.html").exists()


async def test_a_genie_plugin_as_a_collector_on_the_pyats_device(lab: Path) -> None:
    devices = read_pyats_inventory(lab / "testbed.yaml")
    assert devices[0].connections["ssh"] == {"port": 2222, "username": "root",
                                             "key": f"file:{KEY}",
                                             "password": "env:WK_GENIE_PASSWORD"}
    spec = CollectorSettings(name="uname", plugin="genie", timeout=60,
                             options={"module": "uname_plugin",
                                      "connections": {"box": {"logfile": unicon_log(lab)}}})
    async with CoreManager(devices, [spec]) as manager:
        first = (await manager.run("first"))["uname"]["box"]
        second = (await manager.run("second"))["uname"]["box"]
    assert first.status is Status.OK, first.messages
    assert first.messages[0].text.startswith("run 1: Linux")
    assert second.messages[0].text.startswith("run 2: Linux")
    assert [(str(m.key), m.value) for m in second.measurements] == [("box/uname/genie.code", 0.0)]


async def test_a_device_unicon_cannot_reach_is_critical(lab: Path) -> None:
    known_hosts = lab / "known_hosts"
    (lab / "closed.yaml").write_text(pyats_testbed(known_hosts, port=1))
    spec = CollectorSettings(name="uname", plugin="genie", timeout=60,
                             options={"module": "uname_plugin", "connection_timeout": 20,
                                      "connections": {"box": {"logfile": unicon_log(lab)}}})
    async with CoreManager(read_pyats_inventory(lab / "closed.yaml"), [spec]) as manager:
        result = (await manager.run("once"))["uname"]["box"]
    assert result.status is Status.CRITICAL
    assert result.messages[0].text.startswith("cannot connect to box: ")


def test_setup_and_takedown_connect_and_disconnect_the_testbed(lab: Path) -> None:
    from watchkeeper.collect.genie import Manager

    testbed = load_testbed(lab / "testbed.yaml")
    manager = Manager(testbed, configuration=lab / "genietelemetry.yaml")
    box = testbed.devices["box"]
    try:
        manager.setup()
        assert box.is_connected()
        manager.run("connected", plugins=["uname"])
    finally:
        manager.takedown()
    assert not box.is_connected()
    assert manager.results["connected"]["uname"]["box"].status is Status.OK


@pytest.mark.slow
def test_collect_once_runs_a_testbed_and_a_genietelemetry_config_unchanged(lab: Path) -> None:
    """No watchkeeper config at all: the testbed by environment, the genie file by flag."""
    env = {**os.environ, "WATCHKEEPER_INVENTORY__FILE": str(lab / "testbed.yaml"),
           "COLUMNS": "200"}
    run = subprocess.run(
        [*WATCHKEEPER, "collect", "--once", "--genietelemetry", "genietelemetry.yaml",
         "--report", "run.yaml"],
        cwd=lab, env=env, capture_output=True, text=True, timeout=110, check=False)
    assert run.returncode == 2, run.stderr[-3000:]  # CRITICAL: uname_wrong expects Plan9
    results = yaml.safe_load((lab / "run.yaml").read_text())["runs"]["once"]["results"]
    assert results["uname"]["box"]["status"] == "ok"
    assert results["uname_wrong"]["box"]["status"] == "critical"
    assert results["uname"]["box"]["measurements"] == [
        {"series": "box/uname/genie.code", "value": 0.0, "unit": ""}]


@pytest.mark.slow
def test_the_collect_daemon_archives_a_genie_plugin_on_a_pyats_inventory(lab: Path) -> None:
    config = lab / "wk.yaml"
    config.write_text(textwrap.dedent(f"""\
        inventory:
          file: {lab / "testbed.yaml"}
        collectors:
          - name: uname
            plugin: genie
            interval: 1
            timeout: 60
            options: {{module: uname_plugin, connections: {{box: {{logfile: {unicon_log(lab)}}}}}}}
        """))
    data = lab / "var"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lab), str(REPO / "src")]),
           "WK_GENIE_PASSWORD": "unused-with-key-auth"}
    daemon = subprocess.Popen([*WATCHKEEPER, "collect", "--config", str(config), "--data-dir",
                               str(data)], cwd=lab, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    out = ""
    try:
        # unicon logs each command it runs: the third `uname -a` means two polls are done
        assert daemon.stdout is not None
        deadline = time.monotonic() + 90
        while out.count("executing command 'uname -a'") < 3 and time.monotonic() < deadline:
            line = daemon.stdout.readline()
            if not line:
                break
            out += line
    finally:
        daemon.send_signal(signal.SIGINT)
        rest, _ = daemon.communicate(timeout=60)
        out += rest
    assert daemon.returncode == 0, out[-3000:]
    port = _free_port()
    server = subprocess.Popen([*WATCHKEEPER, "serve", "--listen", f"127.0.0.1:{port}",
                               "--data-dir", str(data)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        points = _points(f"http://127.0.0.1:{port}", "box/uname/genie.code")
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert len(points) >= 2, out
    assert {value for _, value in points} == {0.0}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _points(url: str, series: str) -> list[Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/api/v1/query", params={"series": series,
                                                                 "since": "1h"}, timeout=2)
            if response.status_code == 200:
                points: list[Any] = response.json()["points"]
                return points
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not answer")
