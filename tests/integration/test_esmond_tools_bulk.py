"""esmond-ps-get-bulk against the real server: streamed files, names, interruption, resume."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.esmond_client_app import LiveEsmond
from watchkeeper.cli.archive import run_tool
from watchkeeper.cli.archive_query import Context
from watchkeeper.client import ArchiveClient, BulkData, NewMetadata

T0 = 1398816000  # 2014-04-30
POINTS = 5000


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveEsmond]:
    with LiveEsmond(tmp_path / "server") as server:
        with ArchiveClient(server.url, token=server.token,
                           transport=server.transport()) as client:
            meta = NewMetadata(source="10.0.0.1", destination="10.0.0.2",
                               measurement_agent="10.0.0.1", tool_name="bwctl/iperf3",
                               input_source="a", input_destination="b")
            meta.add_event_type("throughput").add_event_type("packet-trace")
            key = client.create_metadata(meta).metadata_key
            assert key
            bulk = BulkData()
            for i in range(POINTS):
                bulk.add("throughput", T0 + 10 * i, 1_000_000 + i)
            bulk.add("packet-trace", T0 + 5, [{"ttl": 1, "ip": "10.0.0.9", "rtt": 0.5}])
            client.post_bulk(key, bulk)
        yield server


class Interrupting(httpx.BaseTransport):
    """Passes requests on, then raises KeyboardInterrupt at the ``after``-th data request."""

    def __init__(self, inner: httpx.BaseTransport, after: int) -> None:
        self.inner = inner
        self.after = after
        self.data_requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/base"):
            self.data_requests += 1
            if self.data_requests == self.after:
                raise KeyboardInterrupt
        return self.inner.handle_request(request)


def bulk(live: LiveEsmond, outdir: Path, *extra: str,
         transport: httpx.BaseTransport | None = None) -> tuple[int, str]:
    outdir.mkdir(exist_ok=True)
    err = io.StringIO()
    code = run_tool("get-bulk", ["-u", live.url, "-I", "-S", "2014-04-30", "-E", "2014-05-02",
                                 "-D", str(outdir), "--page-size", "1000", *extra],
                    Context(stdout=io.StringIO(), stderr=err,
                            transport=transport or live.transport()))
    return code, err.getvalue()


NAME = "10.0.0.1_10.0.0.2_throughput_2014-04-30_2014-05-02"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_one_file_per_metadata_and_event_type(live: LiveEsmond, tmp_path: Path,
                                              fmt: str) -> None:
    code, err = bulk(live, tmp_path / "out", "-o", fmt)
    assert (code, err) == (0, "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"10.0.0.1_10.0.0.2_packet-trace_2014-04-30_2014-05-02.{fmt}", f"{NAME}.{fmt}"]
    text = (tmp_path / "out" / f"{NAME}.{fmt}").read_bytes().decode()
    if fmt == "csv":
        lines = text.split("\r\n")
        assert lines[0] == ("source,destination,event_type,tool,summary_type,summary_window,"
                            "timestamp,value")
        assert lines[1] == ("10.0.0.1,10.0.0.2,throughput,bwctl/iperf3,base,0,"
                            "2014-04-30 00:00:00,1000000.0")
        assert len(lines) == POINTS + 2
        assert lines[-1] == ""
    else:
        rows: list[dict[str, Any]] = json.loads(text)
        assert len(rows) == POINTS
        assert rows[-1]["value"] == 1_000_000 + POINTS - 1


def test_interrupted_download_resumes_to_the_same_file(live: LiveEsmond, tmp_path: Path) -> None:
    assert bulk(live, tmp_path / "whole", "-o", "csv")[0] == 0
    whole = (tmp_path / "whole" / f"{NAME}.csv").read_bytes()

    out = tmp_path / "out"
    code, err = bulk(live, out, "-o", "csv", transport=Interrupting(live.transport(), after=4))
    assert code == 130
    assert err.strip().endswith("interrupted")
    assert not (out / f"{NAME}.csv").exists()
    progress = json.loads((out / f"{NAME}.csv.part.json").read_text())
    # whole pages only (packet-trace may come first, with one request)
    assert progress["points"] in (2000, 3000)
    code, err = bulk(live, out, "-o", "csv", "--resume")
    assert (code, err) == (0, "")
    assert (out / f"{NAME}.csv").read_bytes() == whole
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (tmp_path / "whole").iterdir())


def test_resume_skips_complete_files(live: LiveEsmond, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert bulk(live, out, "-o", "json")[0] == 0
    (out / f"{NAME}.json").write_text("kept")
    counting = Interrupting(live.transport(), after=10**9)
    assert bulk(live, out, "-o", "json", "--resume", transport=counting)[0] == 0
    assert (out / f"{NAME}.json").read_text() == "kept"
    assert counting.data_requests == 0


def test_bulk_needs_a_file_format(live: LiveEsmond, tmp_path: Path) -> None:
    code, err = bulk(live, tmp_path / "out")
    assert code == 2
    assert "please specify either json or csv" in err
