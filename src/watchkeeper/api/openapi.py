"""The OpenAPI 3.1 document of every mounted route, served at ``GET /api/v1/openapi.json``.

Built from the application's route table when first asked for, so a route that is mounted
is in the document and one that is not is not. What the table cannot tell (parameters,
bodies, answers, who may call) is written beside each handler with :func:`operation`;
schemas of bodies are the wire types' own, through :func:`msgspec.json.schema_components`
(JSON Schema 2020-12, which OpenAPI 3.1 uses as it is). A route without a description is
still listed, with its path parameters, and the test of the document fails on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

import msgspec
from starlette.routing import BaseRoute, Route

from watchkeeper._version import __version__
from watchkeeper.api.limits import MAX_JSON_DEPTH
from watchkeeper.wire import ErrorBody

Access = Literal["public", "read", "write", "admin"]
"""``public``: no token ever; ``read``: public while ``server.public_reads`` (the default),
else any valid token; ``write``: a token with the write right; ``admin``: a token with
the admin scope, for reads too (token management)."""

PATH: Final = "/api/v1/openapi.json"
_F = TypeVar("_F", bound=Callable[..., Any])
_CONVERTOR = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
_ERRORS: Final = {400: "bad input; `detail` names the field", 401: "no valid token",
                  403: "the token lacks the right (write, or admin)", 404: "no such thing",
                  413: "body over server.max_body_bytes",
                  507: "the store is full; nothing was stored"}


@dataclass(frozen=True, slots=True)
class Param:
    """One query (or path) parameter."""

    name: str
    type: Literal["integer", "number", "string", "boolean"] = "string"
    description: str = ""
    required: bool = False
    where: Literal["query", "path"] = "query"
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.enum:
            out["enum"] = list(self.enum)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass(frozen=True, slots=True)
class Operation:
    """What one handler takes and answers; ``body``/``answer`` are wire types, ``Any``
    for free-form JSON, or None."""

    summary: str
    access: Access
    params: tuple[Param, ...] = ()
    body: Any = None
    body_type: str = "application/json"
    answer: Any = None
    status: int = 200
    answer_type: str = "application/json"
    errors: tuple[int, ...] = (400,)
    extra: Mapping[str, Any] = field(default_factory=dict)


def operation(summary: str, access: Access, **details: Any) -> Callable[[_F], _F]:
    """Describe the decorated handler for the document (see :class:`Operation`)."""
    spec = Operation(summary, access, **details)

    def attach(handler: _F) -> _F:
        handler.__openapi__ = spec  # type: ignore[attr-defined]
        return handler

    return attach


def spec_of(route: Route) -> Operation | None:
    """The :class:`Operation` a route's handler carries, if any."""
    endpoint: Any = route.endpoint
    for _ in range(4):  # through functools.wraps wrappers to the described handler
        found = getattr(endpoint, "__openapi__", None)
        if found is None:  # a bound method: the function carries it
            found = getattr(getattr(endpoint, "__func__", None), "__openapi__", None)
        if isinstance(found, Operation):
            return found
        endpoint = getattr(endpoint, "__wrapped__", None)
        if endpoint is None:
            break
    return None


def template(path: str) -> str:
    """A Starlette path as an OpenAPI path template: ``{key:path}`` becomes ``{key}``."""
    return _CONVERTOR.sub(r"{\1}", path)


def build(routes: Iterable[BaseRoute],
          described: Mapping[tuple[str, str], Operation] | None = None) -> dict[str, Any]:
    """The document of ``routes``; ``described`` adds specs for handlers kept elsewhere,
    by ``(path, method)``."""
    described = described or {}
    paths: dict[str, dict[str, Any]] = {}
    types: list[Any] = [ErrorBody]
    pending: list[tuple[dict[str, Any], Operation]] = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            spec = spec_of(route) or described.get((route.path, method))
            entry = _operation(route, method, spec)
            paths.setdefault(template(route.path), {})[method.lower()] = entry
            if spec is not None:
                pending.append((entry, spec))
                types += [t for t in (spec.body, spec.answer) if _is_struct(t)]
    refs, components = msgspec.json.schema_components(
        list(dict.fromkeys(types)), ref_template="#/components/schemas/{name}")
    ref_of = dict(zip(dict.fromkeys(types), refs, strict=True))
    for entry, spec in pending:
        _fill(entry, spec, ref_of)
    return {
        "openapi": "3.1.0",
        "info": {"title": "watchkeeper", "version": __version__,
                 "description": "watchkeeper's native API (/api/v1) and esmond's perfSONAR "
                                "archive API. Errors are {\"detail\": \"...\"}; JSON "
                                f"bodies nest at most {MAX_JSON_DEPTH} levels."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {"token": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Authorization: Token KEY` (watchkeeper token create)"}},
        },
    }


def _is_struct(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, msgspec.Struct)


def _operation(route: Route, method: str, spec: Operation | None) -> dict[str, Any]:
    names = _CONVERTOR.findall(route.path)
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in names]
    entry: dict[str, Any] = {
        "operationId": _operation_id(method, route.path),
        "summary": spec.summary if spec else "(undescribed)",
        "parameters": params,
        "responses": {"default": {"description": "error",
                                  "content": {"application/json": {
                                      "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}},
    }
    return entry


def _operation_id(method: str, path: str) -> str:
    """``get_api_v1_series``; a trailing slash adds ``_`` (esmond serves both forms)."""
    words = re.sub(r"[^A-Za-z0-9]+", "_", template(path)).strip("_")
    return f"{method.lower()}_{words}" + ("_" if path.endswith("/") else "")


def _fill(entry: dict[str, Any], spec: Operation, ref_of: Mapping[Any, Any]) -> None:
    def schema(value: Any) -> dict[str, Any]:
        return dict(ref_of[value]) if _is_struct(value) else {}

    entry["parameters"] += [{"name": p.name, "in": p.where, "required": p.required,
                             "description": p.description, "schema": p.schema()}
                            for p in spec.params if p.where == "query"]
    entry["x-access"] = spec.access
    entry["security"] = {"public": [{}], "read": [{}, {"token": []}],
                         "write": [{"token": []}], "admin": [{"token": []}]}[spec.access]
    if spec.body is not None:
        entry["requestBody"] = {"required": True, "content": {
            spec.body_type: {"schema": schema(spec.body)}}}
    answer: dict[str, Any] = {"description": spec.summary}
    if spec.answer is not None:
        answer["content"] = {spec.answer_type: {"schema": schema(spec.answer)}}
    entry["responses"][str(spec.status)] = answer
    for status in spec.errors:
        entry["responses"][str(status)] = {"description": _ERRORS.get(status, "error")}
    entry.update(spec.extra)


def paging(default: int | None, maximum: int | None = None) -> tuple[Param, Param]:
    """The ``limit``/``offset`` pair every paged route takes (whole numbers)."""
    return (Param("limit", "integer", f"page size (default {default or 'all'})", minimum=0,
                  maximum=maximum),
            Param("offset", "integer", "items to skip (default 0)", minimum=0))


def all_paths(document: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """``(path, method)`` of every operation in a document (for tests and the docs)."""
    return [(path, method.upper()) for path, ops in document["paths"].items()
            for method in ops]
