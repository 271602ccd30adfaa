"""Finding series among many: ``GET /api/v1/series`` by prefix, label, plugin, metric and
substring over the embedded archive (issues 14 and 16: listing by prefix and by label
over a million series within 50 ms).

    python benchmarks/series_find.py [--series 1000000] [--runs 7]

``--series`` series shaped like a network (devices of 50 interfaces x 10 metrics:
``dev00042/snmp/m3{if="17"}``), one point each, are written in process to an embedded
archive (bulk columns, ``synchronous=normal``); then each query is asked ``--runs``
times through the real application (``create_app``, in process over httpx's ASGI
transport: routing, parameters, the archive thread and the JSON answer; no socket), and
the median is reported with how many series qualified. The first search builds the
index: timed alone. The script leaves without the archive's closing compaction (~100 s
at a million series) and removes its data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import numpy as np

from watchkeeper.api import create_app
from watchkeeper.archive import Columns
from watchkeeper.archive.backends._writer import Writer
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.clock import SystemClock
from watchkeeper.telemetry import SelfMetrics

PER_DEVICE = 500  # 50 interfaces x 10 metrics
QUERIES = [
    ("one device by prefix", {"prefix": "dev00042/"}),
    ("first page of all (total counted)", {"limit": 100}),
    ("one device by subject", {"subject": "dev00042"}),
    ("one interface of every device (label)", {"label": 'if=17', "limit": 100}),
    ("one metric of one interface (metric + label)", {"metric": "m3", "label": "if=17",
                                                      "limit": 100}),
    ("one device, one interface (subject + label)", {"subject": "dev00042", "label": "if=17"}),
    ("every series of the plugin, first 25", {"plugin": "snmp", "limit": 25}),
    ("substring alone, first 25", {"match": "dev00042/", "limit": 25}),
    ("substring within a metric", {"metric": "m3", "match": 'if="17"', "limit": 25}),
]


def texts(series: int) -> list[str]:
    return [f'dev{i // PER_DEVICE:05d}/snmp/m{i % 10}{{if="{i % PER_DEVICE // 10}"}}'
            for i in range(series)]


async def load(archive: EmbeddedArchive, names: list[str], batch: int) -> float:
    began = time.perf_counter()
    for first in range(0, len(names), batch):
        part = names[first:first + batch]
        await archive.write_columns(Columns(
            series=part, index=np.arange(len(part), dtype=np.int32),
            ts=np.full(len(part), 1_700_000_000.0), values=np.ones(len(part))))
    return time.perf_counter() - began


def index_bytes(archive: EmbeddedArchive) -> int:
    writer = archive._core  # measuring it
    assert isinstance(writer, Writer)
    return writer._index.nbytes()


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wk-find-"))
    stack = AsyncExitStack()
    archive = EmbeddedArchive(
        data_dir=tmp, clock=SystemClock(), metrics=SelfMetrics(),
        options=EmbeddedArchive.Options(synchronous="normal", max_log_points=100_000_000))
    await archive.start(stack)
    names = texts(args.series)
    loaded = await load(archive, names, args.batch)
    print(f"{args.series:,} series written in {loaded:.1f} s")
    app = create_app(archive, metrics=archive.metrics)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://wk") as http:
        began = time.perf_counter()
        first = (await http.get("/api/v1/series", params={"plugin": "nothing"})).json()
        built = time.perf_counter() - began
        assert first["total"] == 0
        size = index_bytes(archive)
        print(f"index built by the first search: {built * 1000:.0f} ms; "
              f"{size / 1e6:.1f} MB, {size / args.series:.1f} bytes/series")
        print("| query | parameters | series that qualify | answered | median ms (min-max) |")
        print("| --- | --- | --- | --- | --- |")
        for label, params in QUERIES:
            times = []
            for _ in range(args.runs):
                began = time.perf_counter()
                answer = await http.get("/api/v1/series", params=params)
                times.append((time.perf_counter() - began) * 1000)
                answer.raise_for_status()
            body = answer.json()
            shown = "&".join(f"{k}={v}" for k, v in params.items())
            print(f"| {label} | `{shown}` | {body['total']:,} | {len(body['series'])} "
                  f"| {statistics.median(times):.1f} ({min(times):.1f}-{max(times):.1f}) |")
        size = index_bytes(archive)
        print(f"index after every query (joined texts and ranks made): {size / 1e6:.1f} MB, "
              f"{size / args.series:.1f} bytes/series")
    shutil.rmtree(tmp)
    sys.stdout.flush()
    os._exit(0)  # no closing compaction: the data is gone


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(main(parser.parse_args()))
