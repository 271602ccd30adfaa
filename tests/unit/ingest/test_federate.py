"""Series selectors and GET /federate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.ingest.conftest import Served
from watchkeeper.api.ingest.federate import exposition, parse_selector
from watchkeeper.archive import Columns
from watchkeeper.errors import InvalidData
from watchkeeper.model import Measurement, SeriesKey, promlabels


def test_selectors_match_like_prometheus() -> None:
    """=, !=, =~ (anchored) and !~; a missing label is the empty string."""
    selector = parse_selector('node_cpu{mode!="idle", cpu=~"1|2",job!~"x.*" , z=""}')
    assert selector.matches({"__name__": "node_cpu", "mode": "user", "cpu": "1", "job": "n"})
    assert not selector.matches({"__name__": "node_cpu", "mode": "user", "cpu": "12"})
    assert not selector.matches({"__name__": "node_cpu", "mode": "idle", "cpu": "1"})
    assert parse_selector('{__name__=~"up|x"}').matches({"__name__": "up"})
    assert parse_selector('up{a="q\\"x"}').matches({"__name__": "up", "a": 'q"x'})


@pytest.mark.parametrize("text", ['{a=""}', "up{", 'up{a="1" b="2"}', 'up{a=~"("}', "{}",
                                  'up{a=1}'])
def test_bad_selectors_are_refused(text: str) -> None:
    with pytest.raises(InvalidData):
        parse_selector(text)


def test_exposition_text() -> None:
    """One TYPE line per name, labels sorted and escaped, special values spelled out."""
    text = exposition([({"__name__": "b", "z": 'a"\n', "a": "1"}, 1.5, math.nan),
                       ({"__name__": "a"}, 2.0, math.inf), ({"__name__": "b"}, 2.0, -1.0)])
    assert text == ('# TYPE a untyped\na +Inf 2000\n# TYPE b untyped\n'
                    'b{a="1",z="a\\"\\n"} NaN 1500\nb -1.0 2000\n')
    assert exposition([]) == ""


async def test_federate_answers_latest_recent_points(served: Served) -> None:
    """The latest point within 5 minutes of each matching number series, labelled by the
    one mapping; older series and objects are left out."""
    now = served.archive.clock.time()
    key = SeriesKey.parse("localhost/system/cpu.percent")
    await served.archive.write([
        Measurement(key=key, ts=now - 20, value=1.0), Measurement(key=key, ts=now - 10, value=2.0),
        Measurement(key=SeriesKey.parse("old/system/cpu.percent"), ts=now - 900, value=1.0),
        Measurement(key=SeriesKey.parse("h/system/note"), ts=now - 1, obj="x"),
        Measurement(key=SeriesKey.parse('prometheus/prometheus/up{zone="a"}'), ts=now - 1,
                    value=1.0)])
    response = await served.http.get("/federate", params={"match[]": ["cpu_percent",
                                                                       '{zone="a"}']})
    assert response.status_code == 200, response.text
    assert response.text == (
        "# TYPE cpu_percent untyped\n"
        f'cpu_percent{{instance="localhost",job="system"}} 2.0 {round((now - 10) * 1000)}\n'
        "# TYPE up untyped\n"
        f'up{{zone="a"}} 1.0 {round((now - 1) * 1000)}\n')
    assert (await served.http.get("/federate")).status_code == 400
    read = await served.http.get("/federate", params={"match[]": "up"},
                                 headers={"Authorization": f"Bearer {served.reader}"})
    assert read.status_code == 200
    assert read.text.startswith("# TYPE up")


async def test_federate_leaves_out_a_series_ended_by_a_stale_marker(served: Served) -> None:
    """A series whose latest point is Prometheus' stale marker has ended: not federated
    (as by Prometheus); a plain NaN still is."""
    now = served.archive.clock.time()
    stale = float(np.array([promlabels.STALE_BITS], dtype=np.uint64).view(np.float64)[0])
    series = ["h1:9100/node/node_load1", "h2:9100/node/node_load1"]
    await served.archive.write_columns(Columns(
        series=series, index=np.array([0, 0, 1], np.int32),
        ts=np.array([now - 30, now - 15, now - 15]), values=np.array([1.0, stale, math.nan])))
    response = await served.http.get("/federate", params={"match[]": "node_load1"},
                                     headers={"Authorization": f"Bearer {served.reader}"})
    assert response.status_code == 200
    assert 'instance="h2:9100"' in response.text
    assert " NaN " in response.text
    assert 'instance="h1:9100"' not in response.text
