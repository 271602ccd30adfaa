"""A stand-in for ArchiveClient that records writes and can fail on demand."""

from __future__ import annotations

from typing import Any

from watchkeeper.client import BulkData, HTTPStatusError, Metadata, NewMetadata, TransportError


class FakeArchive:
    """Keeps the points written per (metadata key, event type); 409 on duplicates."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.points: dict[tuple[str, str], dict[int, Any]] = {}
        self.calls = 0
        self.fail_at: int | None = None  # raise on the Nth call (1-based)
        self.fail_with: Exception = TransportError("cannot reach http://x: refused")

    def _call(self) -> None:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise self.fail_with

    def create_metadata(self, metadata: NewMetadata | dict[str, Any]) -> Metadata:
        self._call()
        payload = metadata if isinstance(metadata, dict) else metadata.to_payload()
        ident = repr(sorted((k, repr(v)) for k, v in payload.items()))
        key = self.keys.setdefault(ident, f"key{len(self.keys)}")
        return Metadata({"metadata-key": key})

    def _put(self, key: str, event_type: str, ts: int, val: Any) -> None:
        series = self.points.setdefault((key, event_type), {})
        if ts in series and event_type == "throughput":
            raise HTTPStatusError(409, f"Time series value already exists at time {ts}")
        series[ts] = val

    def post_bulk(self, key: str, data: BulkData | dict[str, Any]) -> None:
        self._call()
        for item in (data if isinstance(data, dict) else data.to_payload())["data"]:
            for value in item["val"]:
                self._put(key, value["event-type"], item["ts"], value["val"])

    def post_point(self, key: str, event_type: str, ts: int, val: Any) -> None:
        self._call()
        self._put(key, event_type, ts, val)

    def throughput_stamps(self) -> list[int]:
        return sorted(ts for (_, et), s in self.points.items() if et == "throughput" for ts in s)
