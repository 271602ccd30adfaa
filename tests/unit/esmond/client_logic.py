"""What esmond-client 4.2.1 does over HTTP, re-done on httpx (reference §2.2, §5.3, §5.4).

The real client runs only on Python 2.7; these helpers send the same requests and read
the responses the same way (exact content type, 201s, ``metadata-count-total`` paging,
``limit=1000`` + ``time-start = last ts + 1`` data paging), so tests can run its flows.
"""

from __future__ import annotations

from typing import Any

import httpx

ARCHIVE = "/esmond/perfsonar/archive/"


class ClientRefused(Exception):
    """What the client raises or warns about: a status or content type it does not take."""


async def get_metadata(client: httpx.AsyncClient, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """ApiConnect.get_metadata: page with offset until metadata-count-total is reached."""
    params = {k: v for k, v in filters.items() if v is not None}
    found: list[dict[str, Any]] = []
    while True:
        response = await client.get(ARCHIVE, params=params | ({"offset": len(found)}
                                                              if found else {}))
        _readable(response)
        page = response.json()
        found += page
        if not page or len(found) >= page[0]["metadata-count-total"]:
            return found


async def get_data(client: httpx.AsyncClient, uri: str,
                   filters: dict[str, Any]) -> list[dict[str, Any]]:
    """EventType.get_data / Summary.get_data: 1000 points a page, re-asking from last ts + 1."""
    params = {k: v for k, v in filters.items()
              if k in ("time", "time-start", "time-end", "time-range") and v is not None}
    params["limit"] = 1000
    data: list[dict[str, Any]] = []
    while True:
        response = await client.get(uri, params=params)
        _readable(response)
        page = response.json()
        data += page
        if len(page) != 1000:
            return data
        params["time-start"] = page[-1]["ts"] + 1
        if "time-end" in params and params["time-start"] >= params["time-end"]:
            return data


def event_type(metadata: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Metadata.get_event_type."""
    return next((e for e in metadata["event-types"] if e["event-type"] == name), None)


def summary(entry: dict[str, Any], kind: str, window: object) -> dict[str, Any] | None:
    """EventType.get_summary: the window is compared as ``str(window)``."""
    return next((s for s in entry["summaries"]
                 if s["summary-type"] == kind and s["summary-window"] == str(window)), None)


async def post_metadata(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """MetadataPost.post_metadata: 201 or MetadataPostException."""
    response = await client.post(ARCHIVE, json=body)
    if response.status_code != 201:
        raise ClientRefused(f"MetadataPostException: {response.status_code} {response.text}")
    result: dict[str, Any] = response.json()
    return result


async def post_point(client: httpx.AsyncClient, key: str, event: str, ts: int,
                     val: Any) -> None:
    """EventTypePost.post_data (one point): 201 or EventTypePostException."""
    response = await client.post(f"{ARCHIVE}{key}/{event}/base", json={"ts": ts, "val": val})
    if response.status_code != 201:
        raise ClientRefused(f"EventTypePostException: {response.status_code} {response.text}")


async def post_bulk(client: httpx.AsyncClient, key: str,
                    points: list[tuple[str, int, Any]]) -> None:
    """EventTypeBulkPost.post_data: points grouped by ts in insertion order; 201 or raise."""
    by_ts: dict[int, list[dict[str, Any]]] = {}
    for event, ts, val in points:
        by_ts.setdefault(ts, []).append({"event-type": event, "val": val})
    body = {"data": [{"ts": ts, "val": vals} for ts, vals in by_ts.items()]}
    response = await client.put(f"{ARCHIVE}{key}/", json=body)
    if response.status_code != 201:
        raise ClientRefused(f"EventTypeBulkPostException: {response.status_code} "
                            f"{response.text}")


def _readable(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise ClientRefused(f"ApiConnectWarning: status {response.status_code}")
    if response.headers.get("content-type") != "application/json":
        raise ClientRefused("ApiConnectWarning: content type "
                            f"{response.headers.get('content-type')!r}")
