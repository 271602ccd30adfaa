"""Metric metadata: read from remote write (WriteRequest.metadata), kept by family in a
file that survives a restart, answered by /prometheus/api/v1/metadata as Prometheus does."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import cramjam
import httpx
import pytest

from tests.unit.ingest.conftest import Served
from tests.unit.ingest.test_remote_write import NODE, T0, payload, post
from watchkeeper.api import create_app
from watchkeeper.api.ingest import METADATA_FILE, MetadataStore
from watchkeeper.api.ingest.metadata import MetricMetadata
from watchkeeper.api.ingest.remote_write import Decoder, write_request_class
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.clock import FakeClock
from watchkeeper.errors import InvalidData
from watchkeeper.telemetry import SelfMetrics

META_PATH = "/prometheus/api/v1/metadata"


def metadata_request(*entries: tuple[int, str, str, str]) -> bytes:
    """A metadata-only WriteRequest, as Prometheus sends them (type, family, help, unit)."""
    request = write_request_class()()
    for kind, family, text, unit in entries:
        request.metadata.add(type=kind, metric_family_name=family, help=text, unit=unit)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


NODE_META = (
    (1, "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", ""),
    (2, "node_load1", "1m load average.", ""),
    (3, "http_request_duration_seconds", "Latency.", "seconds"),
    (5, "go_gc_duration_seconds", "GC pauses.", ""),
    (0, "mystery", "", ""),
)


def test_the_decoder_reads_metadata_with_prometheus_type_names() -> None:
    columns, metadata = Decoder().read(metadata_request(*NODE_META, (6, "9bad", "x", "")))
    assert len(columns) == 0
    assert metadata == [
        ("node_cpu_seconds_total",
         MetricMetadata("counter", "Seconds the CPUs spent in each mode.", "")),
        ("node_load1", MetricMetadata("gauge", "1m load average.", "")),
        ("http_request_duration_seconds", MetricMetadata("histogram", "Latency.", "seconds")),
        ("go_gc_duration_seconds", MetricMetadata("summary", "GC pauses.", "")),
        ("mystery", MetricMetadata("unknown", "", "")),
    ]  # an invalid family name is left out
    assert Decoder().decode(metadata_request(*NODE_META)).index.tolist() == []


def test_metadata_beside_samples_and_bad_metadata() -> None:
    """Samples and metadata in one request are both read; a metadata text that is not
    UTF-8, or a message cut short, is the 400 any malformed request is."""
    request = write_request_class()()
    series = request.timeseries.add()
    for name, value in NODE:
        series.labels.add(name=name, value=value)
    series.samples.add(timestamp=T0, value=0.5)
    request.metadata.add(type=2, metric_family_name="node_load1", help="load")
    columns, metadata = Decoder().read(bytes(cramjam.snappy.compress_raw(
        request.SerializeToString())))
    assert columns.values.tolist() == [0.5]
    assert metadata == [("node_load1", MetricMetadata("gauge", "load", ""))]
    good = write_request_class()()
    good.metadata.add(type=2, metric_family_name="x", help="h")
    raw = good.SerializeToString()
    bad_utf8 = raw.replace(b"\x22\x01h", b"\x22\x01\xff")
    for body in (bad_utf8, raw[:-1]):
        with pytest.raises(InvalidData):
            Decoder().read(bytes(cramjam.snappy.compress_raw(body)))


def test_the_store_survives_a_restart_and_writes_only_changes(tmp_path: Path) -> None:
    path = tmp_path / METADATA_FILE
    store = MetadataStore(path)
    gauge = MetricMetadata("gauge", "load", "")
    assert store.update([("node_load1", gauge)]) == 1
    written = path.stat().st_ino  # every write renames a new file over the old
    assert store.update([("node_load1", gauge)]) == 0  # resent unchanged: no write
    assert path.stat().st_ino == written
    counter = MetricMetadata("counter", "load", "")
    assert store.update([("node_load1", counter)]) == 1
    assert MetadataStore(path).families() == {"node_load1": counter}
    path.write_bytes(b'{"cut')  # a torn file: started empty, rewritten on the next change
    assert MetadataStore(path).families() == {}
    assert MetadataStore(tmp_path / "absent.json").families() == {}


def test_processes_sharing_the_file_see_and_keep_each_others_families(tmp_path: Path
                                                                       ) -> None:
    """The API's store and a collector's archive writer (two stores on one file, as two
    processes hold it): each update merges into the file as it is, each store reads it
    again once the other replaced it."""
    path = tmp_path / METADATA_FILE
    api, writer = MetadataStore(path), MetadataStore(path)
    load = MetricMetadata("gauge", "1m load average.", "")
    cpu = MetricMetadata("counter", "Seconds the CPUs spent in each mode.", "")
    assert api.update([("node_load1", load)]) == 1
    assert writer.families() == {"node_load1": load}
    assert writer.update([("node_cpu_seconds_total", cpu)]) == 1
    assert api.families() == {"node_load1": load, "node_cpu_seconds_total": cpu}
    newer = MetricMetadata("gauge", "Load.", "")
    assert api.update([("node_load1", newer)]) == 1  # the latest sent wins (D46)
    assert MetadataStore(path).families() == {"node_load1": newer,
                                              "node_cpu_seconds_total": cpu}
    assert writer.families()["node_load1"] == newer


async def test_metadata_route_answers_what_remote_write_sent(served: Served) -> None:
    """Types, help and units by family; a family's sample names (``_bucket``, ``_sum``...)
    are not listed apart; a held name nobody described is ``unknown``; ``metric`` and
    ``limit`` as Prometheus reads them."""
    bucket = [("__name__", "http_request_duration_seconds_bucket"), ("instance", "h1:9100"),
              ("job", "node"), ("le", "+Inf")]
    other = [("__name__", "watchkeeper_only"), ("instance", "h1:9100"), ("job", "node")]
    assert await post(served, payload((NODE, [(T0, 1.0)]), (bucket, [(T0, 3.0)]),
                                      (other, [(T0, 2.0)]))) == 204
    assert await post(served, metadata_request(*NODE_META)) == 204
    auth = {"Authorization": f"Bearer {served.reader}"}

    async def data(**params: str) -> object:
        answer = await served.http.get(META_PATH, params=params, headers=auth)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    everything = await data()
    assert isinstance(everything, dict)
    assert sorted(everything) == ["go_gc_duration_seconds", "http_request_duration_seconds",
                                  "mystery", "node_cpu_seconds_total", "node_load1",
                                  "watchkeeper_only"]
    assert everything["http_request_duration_seconds"] == [
        {"type": "histogram", "help": "Latency.", "unit": "seconds"}]
    assert everything["watchkeeper_only"] == [{"type": "unknown", "help": "", "unit": ""}]
    assert await data(metric="node_load1") == {
        "node_load1": [{"type": "gauge", "help": "1m load average.", "unit": ""}]}
    assert await data(metric="absent") == {}
    assert await data(limit="2") == {k: everything[k] for k in sorted(everything)[:2]}
    assert await data(limit="0") == {}
    assert await data(limit="-1") == everything


async def test_create_app_keeps_metadata_in_the_store_it_is_given(tmp_path: Path) -> None:
    """The store passed in (the runtime's, in the data directory) is the one written."""
    path = tmp_path / METADATA_FILE
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)
        app = create_app(archive, metrics=archive.metrics, metric_metadata=MetadataStore(path))
        async with httpx.AsyncClient(base_url="http://wk",
                                     transport=httpx.ASGITransport(app=app)) as http:
            sent = await http.post("/prometheus/api/v1/write",
                                   content=metadata_request(*NODE_META[:2]))
            assert sent.status_code == 204
    assert sorted(MetadataStore(path).families()) == ["node_cpu_seconds_total", "node_load1"]
