"""Line protocol from the real InfluxDB clients, and Graphite plaintext from Debian's
collectd (write_graphite), into a real ``watchkeeper serve`` on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient as InfluxDB2Client
from influxdb_client import Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.integration.ecosystem_servers import COLLECTD, Watchkeeper, need, running, wait_for

pytestmark = pytest.mark.timeout(90)
T0 = 1_700_000_000


@pytest.fixture(scope="module")
def wk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watchkeeper]:
    server = Watchkeeper(tmp_path_factory.mktemp("eco"),
                         graphite_templates=("host.plugin.metric*",))
    with server.serve():
        yield server


def test_influxdb_v1_client(wk: Watchkeeper) -> None:
    """The influxdb client's write_points (basic auth, key as password) lands as
    host/db/measurement.field{tags}; a bad line is its client error, nothing stored."""
    client = InfluxDBClient(host="127.0.0.1", port=wk.port, username="telegraf",
                            password=wk.token, database="telegraf")
    try:
        assert client.write_points([
            {"measurement": "cpu", "tags": {"host": "web1", "cpu": "cpu-total"},
             "fields": {"usage_idle": 97.5, "count": 3, "ok": True}, "time": T0}],
            time_precision="s")
        with pytest.raises(InfluxDBClientError) as caught:
            client.write_points(["cpu,host=web1 usage_idle=1 1", "cpu,host=web1 usage_idle="],
                                protocol="line")
        assert caught.value.code == 400
        assert "line 2" in str(caught.value.content)
    finally:
        client.close()
    assert wk.points('web1/telegraf/cpu.usage_idle{cpu="cpu-total"}', since="100000d") == [
        (T0, 97.5)]
    assert wk.points('web1/telegraf/cpu.count{cpu="cpu-total"}', since="100000d") == [(T0, 3.0)]
    assert wk.points('web1/telegraf/cpu.ok{cpu="cpu-total"}', since="100000d") == [(T0, 1.0)]


def test_influxdb_client_v2(wk: Watchkeeper) -> None:
    """influxdb-client's synchronous write (Token header) lands in the bucket's series;
    a wrong token is refused."""
    with InfluxDB2Client(url=wk.url, token=wk.token, org="lab") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="metrics", record=Point("mem").tag("host", "db1").field("used", 123)
            .time(T0, WritePrecision.S))
    assert wk.points("db1/metrics/mem.used", since="100000d") == [(T0, 123.0)]
    with InfluxDB2Client(url=wk.url, token="wrong", org="lab") as client, \
            pytest.raises(InfluxDBError):
        client.write_api(write_options=SYNCHRONOUS).write(bucket="metrics", record="m v=1")


COLLECTD_CONF = """\
Hostname "wkhost"
FQDNLookup false
Interval 1
BaseDir "{tmp}"
PIDFile "{tmp}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin load
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "wk">
    Host "127.0.0.1"
    Port "{port}"
    Protocol "tcp"
    EscapeCharacter "_"
  </Node>
</Plugin>
"""


def test_collectd_write_graphite(wk: Watchkeeper, tmp_path: Path) -> None:
    """collectd's write_graphite sends wkhost.load.load.shortterm...; the template
    host.plugin.metric* stores it as wkhost/load/load.shortterm with recent values."""
    need(COLLECTD)
    conf = tmp_path / "collectd.conf"
    conf.write_text(COLLECTD_CONF.format(tmp=tmp_path, port=wk.graphite))
    started = time.time()
    with running([COLLECTD, "-f", "-C", str(conf)], cwd=tmp_path):
        wait_for(lambda: "wkhost/load/load.shortterm" in wk.series(prefix="wkhost/"), 25,
                 "collectd's points")
    points = wk.points("wkhost/load/load.shortterm")
    assert points
    assert all(ts >= started - 5 and value >= 0 for ts, value in points)
    assert {"wkhost/load/load.midterm", "wkhost/load/load.longterm"} <= set(
        wk.series(prefix="wkhost/"))
