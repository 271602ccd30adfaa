"""esmond's perfSONAR archive REST API (reference §2, §4), served under each prefix given.

``{P}`` is ``/esmond/perfsonar`` (what every esmond client asks for) and, as a courtesy,
``/perfsonar``; URIs in responses carry the prefix the request came in on.

===============================================  ===========================================
``GET {P}/``                                     ``{"archive": ".../archive/"}``
``GET|POST {P}/archive/``                        list/search metadata; create metadata (201)
``GET|PUT|PATCH {P}/archive/<key>/``             one metadata; bulk write (201); PATCH 405
``GET|POST {P}/archive/<key>/<et>[/]``           event-type detail ``[...]``; POST stub (201)
``GET|POST {P}/archive/<key>/<et>/<s>[/]``       base data / summary list; POST one point
``GET|POST {P}/archive/<key>/<et>/<s>/<w>[/]``   summary data; POST refused unless base
===============================================  ===========================================

Every response is ``Content-Type: application/json`` exactly; writes answer 201 with
``""``; errors are ``{"detail": ...}`` through :mod:`watchkeeper.api.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from watchkeeper.api.esmond.dns import Resolver, system_resolver
from watchkeeper.api.esmond.params import data_range, metadata_query, paging, window_value
from watchkeeper.api.esmond.render import (
    event_type_json,
    metadata_json,
    metadata_uri,
    summaries_json,
)
from watchkeeper.api.limits import decode_json
from watchkeeper.api.openapi import Param, operation
from watchkeeper.archive.esmond import EsmondArchive, RawPoint, parse_metadata
from watchkeeper.archive.esmond.types import BASE, EVENT_TYPES, URL_NAMES, Summary
from watchkeeper.errors import InvalidData

JSON: Final = "application/json"
PREFIXES: Final = ("/esmond/perfsonar", "/perfsonar")
_CREATED: Final = b'""'
_WRONG_TYPE: Final = ("Must post content-type: application/json header and json-formatted "
                      "payload.")


def json_response(payload: object, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type=JSON,
                    headers=headers)


def created() -> Response:
    return Response(_CREATED, status_code=201, media_type=JSON)


_TIMES = (Param("time", "integer", "seconds"), Param("time-start", "integer", "seconds"),
          Param("time-end", "integer", "seconds"),
          Param("time-range", "integer", "seconds"))
_PAGING = (Param("limit", "integer", "page size (default 1500; junk falls back to it)"),
           Param("offset", "integer", "items to skip"))
_SEARCH = (*_TIMES, *_PAGING, Param("format"), Param("dns-match-rule"),
           Param("event-type"), Param("summary-type"), Param("summary-window", "integer"),
           Param("subject-type"), Param("metadata-key"), Param("source"),
           Param("destination"), Param("measurement-agent"), Param("tool-name"))
_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 507)


class EsmondApi:
    """The esmond routes over one :class:`EsmondArchive`."""

    def __init__(self, esmond: EsmondArchive, *, resolver: Resolver = system_resolver,
                 prefixes: Sequence[str] = PREFIXES) -> None:
        self.esmond = esmond
        self.resolve = resolver
        self.now = esmond.clock.time  # "now" of time filters: the archive's clock
        self.prefixes = tuple(prefixes)

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in self.prefixes:
            table: list[tuple[str, Callable[[Request], Any], list[str]]] = [
                ("/", self.root, ["GET"]),
                ("/archive/", self.list_metadata, ["GET"]),
                ("/archive/", self.create_metadata, ["POST"]),
                ("/archive/{key}/", self.get_metadata, ["GET"]),
                ("/archive/{key}/", self.bulk_write, ["PUT"]),
                ("/archive/{key}/", self.patch_metadata, ["PATCH"]),
            ]
            for tail in ("", "/"):
                table += [
                    ("/archive/{key}/{event_type}" + tail, self.event_type_detail, ["GET"]),
                    ("/archive/{key}/{event_type}" + tail, self.event_type_stub, ["POST"]),
                    ("/archive/{key}/{event_type}/{summary}" + tail, self.get_data, ["GET"]),
                    ("/archive/{key}/{event_type}/{summary}" + tail, self.post_data, ["POST"]),
                    ("/archive/{key}/{event_type}/{summary}/{window}" + tail, self.get_data,
                     ["GET"]),
                    ("/archive/{key}/{event_type}/{summary}/{window}" + tail, self.post_data,
                     ["POST"]),
                ]
            routes += [Route(prefix + path, endpoint, methods=methods)
                       for path, endpoint, methods in table]
        return routes

    # -- metadata -----------------------------------------------------------------------

    @operation("esmond's entry point", "read", answer=Any, errors=())
    async def root(self, request: Request) -> Response:
        prefix = _prefix(request, self.prefixes)
        return json_response({"archive": _origin(request) + f"{prefix}/archive/"})

    @operation("search metadata (subject fields, parameters, event types, times)", "read",
               answer=Any, params=_SEARCH)
    async def list_metadata(self, request: Request) -> Response:
        prefix = _prefix(request, self.prefixes)
        query = await metadata_query(request.query_params, int(self.now()), self.resolve)
        limit, offset = paging(request.query_params)
        found, total = await self.esmond.search(query, limit=limit, offset=offset)
        origin = _origin(request)
        items = [metadata_json(m, prefix=prefix, origin=origin) for m in found]
        previous, following = _page_links(request, limit, offset, total)
        if items:
            items[0]["metadata-count-total"] = total
            items[0]["metadata-previous-page"] = previous
            items[0]["metadata-next-page"] = following
        return json_response(items, headers=_link_header(previous, following))

    @operation("one metadata", "read", answer=Any, params=_SEARCH, errors=(400, 404))
    async def get_metadata(self, request: Request) -> Response:
        key = request.path_params["key"]
        query = await metadata_query(request.query_params, int(self.now()), self.resolve)
        found, _ = await self.esmond.search(msgspec.structs.replace(query, metadata_key=key),
                                            limit=1)
        if not found:
            raise HTTPException(404, "Not found.")
        prefix = _prefix(request, self.prefixes)
        return json_response(metadata_json(found[0], prefix=prefix, origin=_origin(request)))

    @operation("create metadata (or find the one with the same checksum)", "write",
               body=Any, answer=Any, status=201, errors=_WRITE_ERRORS)
    async def create_metadata(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith(JSON):
            raise HTTPException(415, f'Unsupported media type "{content_type}" in request.')
        try:
            body = decode_json(await request.body())
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise InvalidData(f"JSON parse error - {exc}") from None
        metadata, _ = await self.esmond.create(parse_metadata(body))
        prefix = _prefix(request, self.prefixes)
        payload = metadata_json(metadata, prefix=prefix, origin=_origin(request))
        return json_response(payload, status=201, headers={"Location": payload["url"]})

    @operation("refused as esmond refuses it", "write", status=405, errors=(401, 403))
    async def patch_metadata(self, request: Request) -> Response:
        raise HTTPException(405, "does not support PATCH verb")

    @operation("bulk write of points of many event types", "write", body=Any, answer=Any,
               status=201, errors=_WRITE_ERRORS)
    async def bulk_write(self, request: Request) -> Response:
        body = await _json_body(request)
        points = _bulk_points(body)
        await self.esmond.write(request.path_params["key"], points)
        return created()

    # -- event types and data ---------------------------------------------------------

    @operation("one event type of a metadata", "read", answer=Any, errors=())
    async def event_type_detail(self, request: Request) -> Response:
        key, event_type = request.path_params["key"], request.path_params["event_type"]
        metadata = await self.esmond.get(key)
        if metadata is None or not any(r.event_type == event_type
                                       for r in metadata.event_types):
            return json_response([])
        uri = metadata_uri(_prefix(request, self.prefixes), key)
        return json_response([event_type_json(metadata, event_type, uri)])

    @operation("accepted and ignored, as esmond does", "write", body=Any, answer=Any,
               status=201, errors=(400, 401, 403, 413))
    async def event_type_stub(self, request: Request) -> Response:
        await _json_body(request)  # esmond checks the body and stores nothing
        return created()

    @operation("base data, a summary's data, or the list of a summary type's windows",
               "read", answer=Any, params=(*_TIMES, *_PAGING), errors=(400, 404))
    async def get_data(self, request: Request) -> Response:
        params = request.path_params
        event_type = params["event_type"]
        if event_type not in EVENT_TYPES:
            raise InvalidData(f"Unsupported event type '{event_type}' provided")
        summary_type = URL_NAMES.get(params["summary"])
        if summary_type is None:
            raise InvalidData(f"Invalid summary type '{params['summary']}'")
        if "window" not in params and summary_type != "base":
            return await self._summary_list(request, event_type, summary_type)
        window = window_value(params["window"]) if "window" in params else 0
        summary = BASE if summary_type == "base" else Summary(summary_type, window)
        begin, end = data_range(request.query_params, int(self.now()))
        limit, offset = paging(request.query_params)
        rows = await self.esmond.read(params["key"], event_type, summary, begin=begin, end=end,
                                      limit=limit + offset + 1)
        page = rows[offset:offset + limit]
        previous, following = _page_links(request, limit, offset,
                                          offset + len(rows[offset:]))
        return json_response([{"ts": ts, "val": value} for ts, value in page],
                             headers=_link_header(previous, following))

    async def _summary_list(self, request: Request, event_type: str,
                            summary_type: Any) -> Response:
        metadata = await self.esmond.get(request.path_params["key"])
        found = [] if metadata is None else summaries_json(
            metadata, event_type, summary_type, _prefix(request, self.prefixes))
        if not found:
            raise HTTPException(404, "Not found.")
        return json_response(found)

    @operation("write one base point", "write", body=Any, answer=Any, status=201,
               errors=_WRITE_ERRORS)
    async def post_data(self, request: Request) -> Response:
        params = request.path_params
        body = await _json_body(request)
        if not isinstance(body, dict) or "ts" not in body:
            raise InvalidData("Required field ts not provided in request")
        if "val" not in body:
            raise InvalidData("Required field val not provided in request")
        event_type = params["event_type"]
        if event_type not in EVENT_TYPES:
            raise InvalidData(f"Invalid event type {event_type}")
        summary_type = URL_NAMES.get(params["summary"])
        if summary_type is None:
            raise InvalidData(f"Invalid summary type {params['summary']}")
        if summary_type != "base":
            raise InvalidData("Only base summary-type allowed for writing. Cannot use "
                              f"{params['summary']}")
        where = f"val of {event_type} at ts {body['ts']!r}"
        await self.esmond.write(params["key"],
                                [RawPoint(body["ts"], event_type, body["val"], where)])
        return created()


# -- request helpers ------------------------------------------------------------------


async def _json_body(request: Request) -> Any:
    """A write's JSON body, checked as esmond checks it."""
    if not request.headers.get("content-type", "").lower().startswith(JSON):
        raise InvalidData(_WRONG_TYPE)
    raw = await request.body()
    if not raw.strip():
        raise InvalidData("No data payload POSTed.")
    try:
        return decode_json(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        shown = raw[:200].decode("utf-8", "replace")
        raise InvalidData("POST data payload could not be decoded to a JSON object - given: "
                          f"{shown} ({exc})") from None


def _bulk_points(body: Any) -> list[RawPoint]:
    """The points of a bulk PUT body, in order; structural errors name the position."""
    if not isinstance(body, dict) or "data" not in body:
        raise InvalidData("Request must contain 'data' element")
    if not isinstance(body["data"], list):
        raise InvalidData("The 'data' element must be an array")
    points = []
    for i, item in enumerate(body["data"], start=1):
        if not isinstance(item, dict) or "ts" not in item:
            raise InvalidData(f"Missing ts field in provided data list at position {i}")
        if "val" not in item:
            raise InvalidData(f"Missing val field in provided data list at position {i}")
        if not isinstance(item["val"], list):
            raise InvalidData(f"'val' field must be an array in provided data list at "
                              f"position {i}")
        for j, value in enumerate(item["val"], start=1):
            if not isinstance(value, dict) or "event-type" not in value:
                raise InvalidData(f"Missing event-type field at data item {i} in value {j}")
            if "val" not in value:
                raise InvalidData(f"Missing val field at data item {i} in value {j}")
            event_type = value["event-type"]
            points.append(RawPoint(item["ts"], str(event_type), value["val"],
                                   f"data item {i}, value {j}, {event_type}"))
    return points


def _prefix(request: Request, prefixes: Sequence[str]) -> str:
    path = request.url.path
    return next((p for p in prefixes if path.startswith(p + "/")), prefixes[0])


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _page_links(request: Request, limit: int, offset: int,
                total: int) -> tuple[str | None, str | None]:
    """DRF's LimitOffsetPagination links: absolute URLs or None."""
    def link(new_offset: int | None) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items()
                  if k not in ("limit", "offset")]
        params.append(("limit", str(limit)))
        if new_offset:
            params.append(("offset", str(new_offset)))
        return f"{_origin(request)}{request.url.path}?{urlencode(params)}"

    following = link(offset + limit) if offset + limit < total else None
    previous = None
    if offset > 0:
        previous = link(None if offset - limit <= 0 else offset - limit)
    return previous, following


def _link_header(previous: str | None, following: str | None) -> dict[str, str]:
    parts = []
    if following:
        parts.append(f'<{following}>; rel="next"')
    if previous:
        parts.append(f'<{previous}>; rel="prev"')
    return {"Link": ", ".join(parts)} if parts else {}
