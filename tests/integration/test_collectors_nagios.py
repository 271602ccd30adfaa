"""The nagios collector running real Monitoring Plugins (Debian's ``monitoring-plugins``,
installed by scripts/services) and plugins written here for the corners of the API."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from tests.integration.test_collectors_dns import Responder
from tests.support.services import NGINX_HTTP
from watchkeeper.collect.builtin.nagios import DEFAULT_PLUGIN_DIR, NagiosCollector, NagiosOptions
from watchkeeper.collect.testing import poll_once, values
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Status

REPO = Path(__file__).resolve().parents[2]
PLUGINS = Path(DEFAULT_PLUGIN_DIR)
needs_plugins = pytest.mark.skipif(not (PLUGINS / "check_tcp").exists(),
                                   reason="monitoring-plugins not installed (scripts/services up)")
PEER = Device(name="peer", address="127.0.0.1",
              connections={"snmp": {"community": "public", "port": 16161}})


def nagios(*command: str, **options: Any) -> NagiosCollector:
    return NagiosCollector(NagiosOptions(command=list(command), **options), name="check")


def script(tmp_path: Path, name: str, body: str) -> str:
    """An executable Python plugin in tmp_path."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def texts(result: Any) -> list[str]:
    return [m.text for m in result.check.messages]


# ------------------------------------------------------------ the real plugins

@needs_plugins
async def test_check_tcp_ok_with_its_response_time(tmp_path: Path) -> None:
    """check_tcp against a port that listens: OK, its message, time in seconds."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await poll_once(nagios("check_tcp", "-H", "$HOSTADDRESS$", "-p", str(port)),
                                 PEER)
    assert result.status is Status.OK
    assert texts(result)[0].startswith("TCP OK")
    time_s = values(result)["time"]
    assert time_s is not None
    assert 0 <= time_s < 5
    units = {m.key.metric: m.unit for m in result.measurements}
    assert units["time"] == "s"


@needs_plugins
async def test_check_tcp_refused_is_critical() -> None:
    """A closed port: the plugin says CRITICAL (exit 2), and so does the collector."""
    result = await poll_once(nagios("check_tcp", "-H", "127.0.0.1", "-p", "1"), PEER)
    assert result.status is Status.CRITICAL
    assert "refused" in texts(result)[0].lower()


@needs_plugins
async def test_check_load_perfdata_with_thresholds() -> None:
    """check_load's three load averages land as metrics, warn/crit kept beside them."""
    result = await poll_once(nagios("check_load", "-w", "500,400,300", "-c", "900,800,700"))
    assert result.status is Status.OK
    got = values(result)
    assert {"load1", "load5", "load15"} <= got.keys()
    thresholds = {m.key.metric: m.obj for m in result.measurements if m.obj is not None}
    assert thresholds["load1.thresholds"]["warn"] == "500.000"
    assert thresholds["load1.thresholds"]["crit"] == "900.000"


@needs_plugins
async def test_check_disk_bytes_with_bounds() -> None:
    """check_disk reports '/' in bytes with min and max: a label that is not a metric name
    becomes perfdata{label="/"}."""
    result = await poll_once(nagios("check_disk", "-w", "1%", "-c", "0%", "-p", "/", "-u", "MB"))
    assert result.status in {Status.OK, Status.WARNING, Status.CRITICAL}
    used = [m for m in result.measurements if m.key.metric == "perfdata"]
    assert used
    assert dict(used[0].key.labels) == {"label": "/"}
    assert used[0].unit == "B"
    bounds = [m.obj for m in result.measurements if m.key.metric == "perfdata.thresholds"]
    assert bounds[0]["min"] == 0


@needs_plugins
async def test_check_procs_counts_processes() -> None:
    """check_procs: a process count that is at least this test's own process."""
    result = await poll_once(nagios("check_procs"))
    assert result.status is Status.OK
    procs = values(result)["procs"]
    assert procs is not None
    assert procs >= 1


@needs_plugins
async def test_check_ping_loopback_rta_and_loss() -> None:
    """check_ping 127.0.0.1: round trip in seconds, loss in percent."""
    result = await poll_once(nagios("check_ping", "-H", "$HOSTADDRESS$", "-w", "100,20%",
                                    "-c", "200,50%", "-p", "2"), PEER, timeout=20)
    assert result.status is Status.OK, texts(result)
    got = values(result)
    assert got["pl"] == 0
    assert got["rta"] is not None
    assert 0 <= got["rta"] < 0.1


@pytest.fixture
async def dns_on_port_53() -> AsyncIterator[str]:
    """check_dns asks port 53 only: the DNS responder of the dns tests on 127.0.0.77:53."""
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(Responder,
                                                           local_addr=("127.0.0.77", 53))
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.77:53 here: {exc}")
    yield "127.0.0.77"
    transport.close()


@needs_plugins
async def test_check_dns_against_a_local_responder(dns_on_port_53: str) -> None:
    """check_dns resolves router.lab through the local responder; the expected address is
    there, so OK with a time."""
    collector = nagios("check_dns", "-H", "router.lab", "-s", dns_on_port_53,
                       "-a", "192.0.2.10,192.0.2.11")
    # nslookup blocks: the poll runs it in its own process, the loop keeps serving DNS.
    result = await poll_once(collector, PEER, timeout=20)
    assert result.status is Status.OK, texts(result)
    assert values(result)["time"] is not None


@needs_plugins
@pytest.mark.external_service
async def test_check_http_against_nginx() -> None:
    """check_http against the test nginx: OK with time and size."""
    result = await poll_once(nagios("check_http", "-H", "127.0.0.1", "-p", "$HTTP.PORT$"),
                             Device(name="web", address="127.0.0.1",
                                    connections={"http": {"port": NGINX_HTTP}}))
    assert result.status is Status.OK, texts(result)
    got = values(result)
    assert got["size"] is not None
    assert got["size"] > 0


@needs_plugins
@pytest.mark.external_service
async def test_check_snmp_against_snmpd_with_a_connection_macro() -> None:
    """check_snmp reads sysUpTime from the test snmpd; the community comes from the
    device's connections through $SNMP.COMMUNITY$."""
    result = await poll_once(nagios("check_snmp", "-H", "$HOSTADDRESS$", "-p", "$SNMP.PORT$",
                                    "-C", "$SNMP.COMMUNITY$", "-o", "1.3.6.1.2.1.1.3.0",
                                    "-w", "1:"), PEER)
    assert result.status is Status.OK, texts(result)
    uptime = values(result)["iso.3.6.1.2.1.1.3.0"]
    assert uptime is not None
    assert uptime > 0


# ------------------------------------------------------------ the plugin API's corners

CORNERS = """
import sys
print("CORNERS WARNING - three things | 'label with spaces'=5ms;10;20;0;100 plain=3")
print("long line one")
print("long line two | bytes=2KB;;;0 counter=%sc")
print("missing=;;;; broken=abc ok2=1%%;@10:20;~:30")
sys.exit(1)
"""


async def test_every_perfdata_corner_and_a_malformed_item(tmp_path: Path) -> None:
    """Quoted labels, unit conversion, the long-output continuation, empty fields, a bad
    item (reported, not a crash), WARNING from exit 1, and a counter's rate between polls."""
    state: dict[str, Any] = {}
    first = await poll_once(nagios(script(tmp_path, "corners", CORNERS % 1000)), state=state,
                            now=1000.0)
    second = await poll_once(nagios(script(tmp_path, "corners", CORNERS % 1600)), state=state,
                             now=1060.0)
    assert first.status is Status.WARNING
    assert texts(first)[:2] == ["CORNERS WARNING - three things", "long line one\nlong line two"]
    assert any("'missing=;;;;'" in t and "not a number" in t for t in texts(first))
    assert any("'broken=abc'" in t for t in texts(first))
    got = values(first)
    assert got['perfdata{label="label with spaces"}'] == pytest.approx(0.005)
    assert got["plain"] == 3
    assert got["bytes"] == 2048
    assert got["ok2"] == 1
    assert got["counter"] == 1000
    assert "counter.rate" not in got  # one reading has no rate yet
    assert values(second)["counter.rate"] == pytest.approx(10.0)  # 600 in 60 s
    ranges = {m.key.metric: m.obj for m in first.measurements if m.obj is not None}
    assert ranges["ok2.thresholds"] == {"warn": "@10:20", "crit": "~:30"}


@pytest.mark.parametrize(("code", "status"), [(0, Status.OK), (1, Status.WARNING),
                                              (2, Status.CRITICAL), (3, Status.UNKNOWN)])
async def test_exit_codes_are_statuses(tmp_path: Path, code: int, status: Status) -> None:
    """0/1/2/3 are OK/WARNING/CRITICAL/UNKNOWN."""
    plugin = script(tmp_path, "code", f"import sys\nprint('STATE {code}')\nsys.exit({code})\n")
    result = await poll_once(nagios(plugin))
    assert result.status is status
    assert texts(result) == [f"STATE {code}"]


async def test_another_exit_code_or_a_signal_is_errored(tmp_path: Path) -> None:
    """Exit 4 and death by a signal are not plugin statuses: ERRORED saying which."""
    four = await poll_once(nagios(script(tmp_path, "four", "import sys\nsys.exit(4)\n")))
    assert four.status is Status.ERRORED
    assert "exited with 4" in texts(four)[0]
    killed = await poll_once(nagios(script(
        tmp_path, "sig", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")))
    assert killed.status is Status.ERRORED
    assert "SIGSEGV" in texts(killed)[0]


async def test_a_hung_plugin_and_its_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    """A plugin that forks a child and both sleep: ERRORED 'timed out', and neither lives on."""
    pidfile = tmp_path / "pids"
    plugin = script(tmp_path, "hang", f"""
        import os, time
        child = os.fork()
        if child == 0:
            time.sleep(600)
            os._exit(0)
        open({str(pidfile)!r}, "w").write(f"{{os.getpid()}} {{child}}")
        time.sleep(600)
        """)
    result = await poll_once(nagios(plugin), timeout=2.0)
    assert result.status is Status.ERRORED
    assert "timed out" in texts(result)[0]
    await _gone([int(p) for p in pidfile.read_text().split()])


async def test_children_that_outlive_a_finished_plugin_are_killed(tmp_path: Path) -> None:
    """A plugin that exits OK but leaves a child behind (holding its stdout): the result comes
    at once and the child is killed with the process group."""
    pidfile = tmp_path / "child"
    plugin = script(tmp_path, "leaver", f"""
        import os, sys, time
        child = os.fork()
        if child == 0:
            time.sleep(600)
            os._exit(0)
        open({str(pidfile)!r}, "w").write(str(child))
        print("OK - left a child | x=1")
        sys.exit(0)
        """)
    result = await poll_once(nagios(plugin), timeout=20.0)
    assert result.status is Status.OK
    assert values(result)["x"] == 1
    await _gone([int(pidfile.read_text())])


async def _gone(pids: list[int]) -> None:
    for _ in range(100):
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still running: {alive}")


async def test_a_flood_of_output_is_cut_at_max_output(tmp_path: Path) -> None:
    """50 MB of output: the plugin finishes (it is read to the end), the message is kept, and
    the result says how much was cut."""
    plugin = script(tmp_path, "flood", """
        import sys
        sys.stdout.write("FLOOD OK | x=1\\n")
        for _ in range(50):
            sys.stdout.write("y" * (1 << 20) + "\\n")
        """)
    result = await poll_once(nagios(plugin, max_output=4096), timeout=30)
    assert result.status is Status.OK
    assert texts(result)[0] == "FLOOD OK"
    assert values(result)["x"] == 1
    assert any(t.startswith("output cut at 4096 bytes") for t in texts(result))


async def test_output_that_is_not_utf8_is_decoded_with_replacement(tmp_path: Path) -> None:
    """Latin-1 bytes from a plugin: replacement characters, no error."""
    plugin = script(tmp_path, "latin", """
        import sys
        sys.stdout.buffer.write(b"OK caf\\xe9 | t=1s\\n")
        """)
    result = await poll_once(nagios(plugin))
    assert result.status is Status.OK
    assert texts(result)[0] == "OK caf\ufffd"


# ------------------------------------------------------------ refused before running

def test_a_missing_or_non_executable_plugin_or_unknown_macro_is_refused(tmp_path: Path) -> None:
    """jobs() (run by config check and at start-up) refuses them, naming the option."""
    with pytest.raises(ConfigError, match="does not exist"):
        list(nagios("check_nosuch_plugin").jobs([PEER], (60.0,)))
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match="not executable"):
        list(nagios(str(plain)).jobs([PEER], (60.0,)))
    ok = script(tmp_path, "ok", "print('OK')\n")
    with pytest.raises(ConfigError, match=r"unknown macro \$NOSUCH\$"):
        list(nagios(ok, "$NOSUCH$").jobs([PEER], (60.0,)))
    assert [j.job_id for j in nagios(ok, "$HOSTADDRESS$", "$$").jobs([PEER], (60.0,))] == [
        "check:peer"]


def test_config_check_refuses_a_missing_plugin(tmp_path: Path) -> None:
    """`watchkeeper config check` names the file, the option and the plugin."""
    config = tmp_path / "wk.yaml"
    config.write_text(textwrap.dedent("""\
        inventory:
          devices:
            - {name: peer, address: 127.0.0.1}
        collectors:
          - name: tcp_check
            plugin: nagios
            devices: [peer]
            options:
              command: [check_nosuch_plugin, -H, $HOSTADDRESS$]
        """))
    done = subprocess.run([str(REPO / ".venv" / "bin" / "watchkeeper"), "config", "check",
                           str(config)], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ})
    assert done.returncode != 0
    assert "check_nosuch_plugin" in done.stderr + done.stdout
    assert "does not exist" in done.stderr + done.stdout
