"""HTTP routes of the ecosystem protocols: Prometheus remote write, InfluxDB 1.x and 2.x
writes, Prometheus federation.

Writes go straight to :meth:`Archive.write_columns` and answer 2xx only once it returned
(durable). A body the sender cannot fix by retrying answers 400 and stores nothing; a full
store answers 507, which senders retry (api/errors.py maps it).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

import msgspec
import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper._version import __version__
from watchkeeper.api.ingest import federate, lineplain, lineprotocol, remote_write
from watchkeeper.api.ingest.metadata import MetadataStore
from watchkeeper.api.openapi import Param, operation
from watchkeeper.archive import Archive, Columns
from watchkeeper.errors import InvalidData
from watchkeeper.model import Measurement, SeriesKey, promlabels

LOOKBACK: Final = 300.0
"""``/federate`` answers the latest point of each series no older than this (Prometheus'
lookback delta)."""
MAX_INFLATED: Final = 256 * 1024 * 1024
PATHS: Final = ("/prometheus/", "/write", "/api/v2/write", "/federate")
"""Path prefixes of these routes, for the token middleware (basic auth is read here)."""
_THREAD_BYTES: Final = 256 * 1024  # bodies this large are decoded off the event loop


class IngestApi:
    """The routes over one archive; ``now`` (by default the archive's clock) gives the
    time of points sent without one, and the end of ``/federate``'s look back."""

    def __init__(self, archive: Archive, *, now: Callable[[], float] | None = None,
                 metadata: MetadataStore | None = None) -> None:
        self._archive = archive
        self._now = now or archive.clock.time
        self._metadata = metadata if metadata is not None else MetadataStore()
        self._remote = remote_write.Decoder()
        self._plain = lineplain.PlainReader()

    def routes(self) -> Sequence[Route]:
        return [
            Route("/prometheus/api/v1/write", self.prometheus_write, methods=["POST"]),
            Route("/write", self.influx_v1, methods=["POST"]),
            Route("/api/v2/write", self.influx_v2, methods=["POST"]),
            Route("/ping", self.ping, methods=["GET", "HEAD"]),
            Route("/federate", self.federate, methods=["GET"]),
        ]

    @operation("Prometheus remote write 1.0 (snappy protobuf WriteRequest)", "write",
               body=Any, body_type="application/x-protobuf", status=204,
               errors=(400, 401, 403, 413, 507))
    async def prometheus_write(self, request: Request) -> Response:
        body = await request.body()
        columns, metadata = (await run_in_threadpool(self._remote.read, body)
                             if len(body) > _THREAD_BYTES else self._remote.read(body))
        if len(columns):
            await self._archive.write_columns(columns)
        if metadata:  # resent unchanged every interval: then no write
            await run_in_threadpool(self._metadata.update, metadata)
        return Response(status_code=204)

    @operation("InfluxDB 1.x line protocol write (Telegraf, the influxdb client)", "write",
               params=(Param("db", required=True), Param("precision")),
               body=Any, body_type="text/plain", status=204, errors=(400, 401, 403, 413, 507))
    async def influx_v1(self, request: Request) -> Response:
        db = request.query_params.get("db", "")
        if not db:
            return _influx_error(400, "database is required", v2=False)
        return await self._line_protocol(request, db,
                                         request.query_params.get("precision") or "n", v2=False)

    @operation("InfluxDB 2.x line protocol write (influxdb-client)", "write",
               params=(Param("bucket", required=True), Param("org"), Param("precision")),
               body=Any, body_type="text/plain", status=204, errors=(400, 401, 403, 413, 507))
    async def influx_v2(self, request: Request) -> Response:
        bucket = request.query_params.get("bucket", "")
        if not bucket:
            return _influx_error(400, "bucket is required", v2=True)
        return await self._line_protocol(request, bucket,
                                         request.query_params.get("precision") or "ns", v2=True)

    @operation("InfluxDB's liveness check", "public", status=204, errors=())
    async def ping(self, request: Request) -> Response:
        return Response(status_code=204, headers={"X-Influxdb-Version": f"watchkeeper-"
                                                                        f"{__version__}"})

    @operation("the latest point (≤ 5 min old) of the series matching match[] selectors, "
               "in the Prometheus text format", "read",
               params=(Param("match[]", required=True),), answer_type="text/plain")
    async def federate(self, request: Request) -> Response:
        texts = request.query_params.getlist("match[]")
        if not texts:
            raise InvalidData("name at least one series selector", field="match[]")
        selectors = [federate.parse_selector(str(text)) for text in texts]
        now = self._now()
        metas, _ = await self._archive.list_series()
        samples = []
        for meta in metas:
            if meta.kind != "float" or meta.last_ts is None or meta.last_ts < now - LOOKBACK:
                continue
            labels = promlabels.to_labels(meta.key)
            if not any(s.matches(labels) for s in selectors):
                continue
            points = await self._archive.read(meta.key, now - LOOKBACK, now)
            if len(points) and not federate.is_stale(float(points.values[-1])):
                samples.append((labels, float(points.ts[-1]), float(points.values[-1])))
        return Response(federate.exposition(samples),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def _line_protocol(self, request: Request, database: str, precision: str, *,
                             v2: bool) -> Response:
        try:
            body = _inflate(await request.body(), request.headers.get("content-encoding", ""))
            read = partial(self._read_lines, body, database, precision, self._now())
            columns = await run_in_threadpool(read) if len(body) > _THREAD_BYTES else read()
        except UnicodeDecodeError as exc:
            return _influx_error(400, f"body is not UTF-8: {exc}", v2=v2)
        except InvalidData as exc:
            return _influx_error(400, str(exc), v2=v2)
        if len(columns):
            await self._archive.write_columns(columns)
        return Response(status_code=204)

    def _read_lines(self, body: bytes, database: str, precision: str, now: float) -> Columns:
        """A body's points: plain bodies in bulk (lineplain), any other line by line."""
        scale = lineprotocol.PRECISIONS.get(precision)
        if scale is not None:
            plain = self._plain.read(body, plugin=lineprotocol.plugin_of(database), scale=scale)
            if plain is not None:
                return plain
        return _columns(lineprotocol.parse(body.decode("utf-8"), database=database,
                                           precision=precision, now=now))


def _columns(batch: lineprotocol.Batch) -> Columns:
    positions: dict[str, int] = {}
    index = [positions.setdefault(text, len(positions)) for text, _, _ in batch.numbers]
    others = [Measurement(key=SeriesKey.parse(text), ts=ts, obj=value)
              for text, ts, value in batch.strings]
    return Columns(series=list(positions), index=np.asarray(index, dtype=np.int32),
                   ts=np.asarray([p[1] for p in batch.numbers], dtype=np.float64),
                   values=np.asarray([p[2] for p in batch.numbers], dtype=np.float64),
                   others=others)


def _inflate(body: bytes, encoding: str) -> bytes:
    if encoding.strip().lower() != "gzip":
        return body
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(body, MAX_INFLATED)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise InvalidData(f"not gzip: {exc}", field="body") from None
    if inflater.unconsumed_tail:
        raise InvalidData(f"inflates to more than {MAX_INFLATED} bytes", field="body")
    return out


def _influx_error(status: int, message: str, *, v2: bool) -> Response:
    """InfluxDB's error bodies: 1.x ``{"error": ...}``, 2.x ``{"code": ..., "message": ...}``."""
    body = {"code": "invalid", "message": message} if v2 else {"error": message}
    return Response(msgspec.json.encode(body), status_code=status,
                    media_type="application/json",
                    headers={"X-Influxdb-Error": _header_safe(message[:1000])})


def _header_safe(text: str) -> str:
    """``text`` as a header value: ASCII (escapes for the rest), no control characters."""
    ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if " " <= c <= "~" else " " for c in ascii_text)
