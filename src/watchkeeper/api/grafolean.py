"""The part of Grafolean's backend API that ``grafoleancollector`` bots call, under
``/grafolean/api`` (a bot's ``BACKEND_URL`` is ``http://host:8080/grafolean/api``).

Every route but ``/status/info`` needs a watchkeeper token allowed to collect (a write
token), given as Grafolean bots give theirs, ``?b=KEY``, or as ``Authorization: Token KEY``;
credentials leave only to such a token, as for remote collectors. A trailing slash is
optional everywhere and nothing redirects (a redirected POST loses its body).

The mapping, from the configuration remote collectors get (``GET /api/v1/collect/config``):

* one account, id 1, named ``watchkeeper``;
* an **entity** per inventory device (``entity_type: device``, ``details.ipv4`` its
  address), its ``protocols`` made of the ``grafolean`` collector entries that select it:
  ``{protocol: {credential, bot: null, sensors: [{sensor, interval}]}}``;
* a **sensor** per ``grafolean`` collector entry: its name, ``options.protocol``,
  ``options.details`` and ``interval`` as ``default_interval``;
* a **credential** per device and protocol: ``options.credential`` overlaid with the
  device's ``connections.<protocol>``, ``env:``/``file:`` references resolved;
* ids are stable: the first 31 bits of a SHA-256 of kind and name.

``POST /accounts/1/values`` takes Grafolean's list ``[{"p": path, "v": value, "t": ts?}]``,
the dict form ``{path: value}``, or ``?p=&v=``; values without ``t`` share the request's
time. ``entity.<eid>.<protocol>.<rest>`` of a known entity is the series
``<device>/<protocol>/<rest>``; any other path is ``grafolean/values/<path>``. ``%2e`` and
``%3a`` in a path become ``.`` and ``:``. A batch with one bad item stores nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from watchkeeper.api.auth import parse_authorization
from watchkeeper.api.errors import error_response
from watchkeeper.api.openapi import Param, operation
from watchkeeper.archive.tokens import Token, TokenStore
from watchkeeper.collect.credentials import is_reference, resolve_credential
from watchkeeper.errors import AuthError, CollectError, InvalidData
from watchkeeper.model import Device, Measurement, SeriesKey
from watchkeeper.wire import CollectCollector, CollectConfig, CollectDevice

PREFIX: Final = "/grafolean/api"
ACCOUNT_ID: Final = 1
ACCOUNT_NAME: Final = "watchkeeper"
PLUGIN: Final = "grafolean"  # the collector plugin whose entries are sensors
_PATH = re.compile(r"^([a-zA-Z0-9_-]|%2e|%3a)+(\.([a-zA-Z0-9_-]|%2e|%3a)+)*$")
_MAX_PATH = 200


def stable_id(kind: str, name: str) -> int:
    """A positive 31-bit id for ``name``, the same in every process and release."""
    digest = hashlib.sha256(f"{kind}\0{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF or 1


class Bad(Exception):
    """A request that cannot succeed: 4xx with a message naming what and where."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class Model:
    """The Grafolean view of one configuration (rebuilt when the configuration changes)."""

    def __init__(self, config: CollectConfig) -> None:
        self.version = config.version
        self.devices = {stable_id("entity", d.name): d for d in config.devices}
        self.sensors = {stable_id("sensor", c.name): c for c in config.collectors
                        if c.plugin == PLUGIN}

    def protocols(self, device: CollectDevice) -> dict[str, dict[str, Any]]:
        model = _device(device)
        found: dict[str, dict[str, Any]] = {}
        for sensor_id, sensor in self.sensors.items():
            if not any(model.matches(s) for s in sensor.devices):
                continue
            protocol = str(sensor.options.get("protocol", ""))
            entry = found.setdefault(protocol, {
                "credential": stable_id("credential", f"{device.name}\0{protocol}"),
                "bot": None, "sensors": []})
            override = device.connections.get("intervals", {}).get(sensor.name)
            entry["sensors"].append({"sensor": sensor_id, "interval": override})
        return found

    def entity(self, entity_id: int) -> dict[str, Any]:
        device = self.devices.get(entity_id)
        if device is None:
            raise Bad(404, f"no entity {entity_id}")
        return {**self.summary(entity_id, device), "protocols": self.protocols(device)}

    @staticmethod
    def summary(entity_id: int, device: CollectDevice) -> dict[str, Any]:
        details = {"ipv4": device.address} if device.address else {}
        return {"id": entity_id, "name": device.name, "entity_type": "device",
                "parent": None, "account": ACCOUNT_ID, "details": details}

    def credential(self, credential_id: int) -> dict[str, Any]:
        for device in self.devices.values():
            for protocol in self.protocols(device):
                if stable_id("credential", f"{device.name}\0{protocol}") == credential_id:
                    return {"id": credential_id, "name": f"{device.name} {protocol}",
                            "protocol": protocol, "account": ACCOUNT_ID,
                            "details": self._credential_details(device, protocol)}
        raise Bad(404, f"no credential {credential_id}")

    def _credential_details(self, device: CollectDevice, protocol: str) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for sensor in self.sensors.values():
            if sensor.options.get("protocol") == protocol:
                details.update(sensor.options.get("credential") or {})
        details.update(device.connections.get(protocol) or {})
        details.pop("interval", None)
        return {name: _reveal(value, device, f"connections.{protocol}.{name}")
                for name, value in details.items()}

    def sensor(self, sensor_id: int) -> dict[str, Any]:
        sensor = self.sensors.get(sensor_id)
        if sensor is None:
            raise Bad(404, f"no sensor {sensor_id}")
        return _sensor(sensor_id, sensor)

    def series(self, path: str) -> SeriesKey:
        """The series a value path is stored in (see the module's docstring)."""
        parts = path.split(".")
        if len(parts) >= 4 and parts[0] == "entity" and parts[1].isdigit():
            device = self.devices.get(int(parts[1]))
            if device is not None:
                return SeriesKey.make(device.name, _unescape(parts[2]),
                                      _unescape(".".join(parts[3:])))
        return SeriesKey.make(PLUGIN, "values", _unescape(path))


def _check_account(account: int | None) -> None:
    if account is not None and account != ACCOUNT_ID:
        raise Bad(404, f"no account {account}")


def _sensor(sensor_id: int, sensor: CollectCollector) -> dict[str, Any]:
    return {"id": sensor_id, "name": sensor.name, "account": ACCOUNT_ID,
            "protocol": sensor.options.get("protocol"),
            "details": sensor.options.get("details") or {},
            "default_interval": int(sensor.interval) if sensor.interval else None}


def _device(device: CollectDevice) -> Device:
    return Device(name=device.name, address=device.address, tags=tuple(device.tags),
                  groups=tuple(device.groups))


def _reveal(value: Any, device: CollectDevice, where: str) -> Any:
    if isinstance(value, str) and is_reference(value):
        try:
            return resolve_credential(value).reveal()
        except CollectError as exc:
            raise Bad(503, f"device {device.name!r} {where}: {exc}") from None
    return value


def _unescape(text: str) -> str:
    return text.replace("%2e", ".").replace("%3a", ":")


class GrafoleanApi:
    """The routes; ``config`` gives the current collect configuration, ``tokens`` checks
    bot tokens, ``write`` stores measurements."""

    def __init__(self, *, config: Callable[[], CollectConfig], tokens: TokenStore,
                 write: Callable[[Sequence[Measurement]], Awaitable[int]],
                 now: Callable[[], float] = time.time) -> None:
        self._config = config
        self._tokens = tokens
        self._write = write
        self._now = now
        self._model: Model | None = None

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Callable[..., Awaitable[Response]], list[str]]] = [
            ("/status/info", self.status, ["GET"]),
            ("/profile", self.profile, ["GET"]),
            ("/accounts", self.accounts, ["GET"]),
            ("/accounts/{account:int}/entities", self.entities, ["GET"]),
            ("/accounts/{account:int}/entities/{entity:int}", self.entity, ["GET"]),
            ("/accounts/{account:int}/credentials/{credential:int}", self.credential, ["GET"]),
            ("/accounts/{account:int}/sensors/{sensor:int}", self.sensor, ["GET"]),
            ("/accounts/{account:int}/values", self.values, ["POST"]),
        ]
        return [Route(f"{PREFIX}{path}{slash}", self._guard(handler), methods=methods)
                for path, handler, methods in table for slash in ("", "/")]

    def _guard(self, handler: Callable[..., Awaitable[Response]]
               ) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)  # the handler's description shows through (api.openapi)
        async def guarded(request: Request) -> Response:
            try:
                if handler != self.status:
                    request.state.bot = await self._bot(request)
                    _check_account(request.path_params.get("account"))
                return await handler(request)
            except Bad as exc:
                return error_response(exc.status, str(exc))
        return guarded

    async def _bot(self, request: Request) -> Token:
        key = request.query_params.get("b")
        if not key:
            try:
                key = parse_authorization(request.headers.get("authorization", "").encode()
                                          or None)
            except AuthError as exc:
                raise Bad(401, str(exc)) from None
        if not key:
            raise Bad(401, "a bot token is needed: ?b=KEY or Authorization: Token KEY")
        token = await self._tokens.lookup(key)  # no cache: a revoked token stops at once
        if token is None:
            raise Bad(401, "Invalid token.")
        if not token.write:
            raise Bad(403, "this token may not collect (create one with --write)")
        return token

    def model(self) -> Model:
        config = self._config()
        if self._model is None or self._model.version != config.version:
            self._model = Model(config)
        return self._model

    @operation("Grafolean's status (no token)", "public", answer=Any, errors=())
    async def status(self, request: Request) -> Response:
        return JSONResponse({"alive": True, "db_migration_needed": False, "db_version": 1,
                             "user_exists": True, "cors_domains": [],
                             "mqtt_ws_hostname": None, "mqtt_ws_port": None,
                             "enable_signup": False})

    @operation("the bot's profile (?b=KEY or Authorization: Token KEY, a write token)",
               "write", answer=Any, errors=(401, 403))
    async def profile(self, request: Request) -> Response:
        token: Token = request.state.bot
        bot_id = stable_id("bot", token.user)
        return JSONResponse({"user_id": bot_id, "user_type": "bot", "record": {
            "id": bot_id, "name": token.user, "protocol": None, "tied_to_account": None,
            "config": None, "insert_time": token.created, "last_login": token.last_used}})

    @operation("the one account", "write", answer=Any, errors=(401, 403))
    async def accounts(self, request: Request) -> Response:
        return JSONResponse({"list": [{"id": ACCOUNT_ID, "name": ACCOUNT_NAME}]})

    @operation("an entity per inventory device", "write", answer=Any, errors=(401, 403),
               params=(Param("entity_type"), Param("parent")))
    async def entities(self, request: Request) -> Response:
        model = self.model()
        wanted_type = request.query_params.get("entity_type")
        parent = request.query_params.get("parent")
        found = [model.summary(eid, device) for eid, device in model.devices.items()
                 if wanted_type in (None, "", "device") and parent in (None, "", "null")]
        return JSONResponse({"list": found})

    @operation("one entity", "write", answer=Any, errors=(401, 403, 404))
    async def entity(self, request: Request) -> Response:
        return JSONResponse(self.model().entity(request.path_params["entity"]))

    @operation("a device's credential for a protocol (secrets resolved)", "write",
               answer=Any, errors=(401, 403, 404))
    async def credential(self, request: Request) -> Response:
        return JSONResponse(self.model().credential(request.path_params["credential"]))

    @operation("one sensor", "write", answer=Any, errors=(401, 403, 404))
    async def sensor(self, request: Request) -> Response:
        return JSONResponse(self.model().sensor(request.path_params["sensor"]))

    @operation("values in list, dict or ?p=&v= form", "write", body=Any, status=204,
               params=(Param("p"), Param("v")), errors=(400, 401, 403))
    async def values(self, request: Request) -> Response:
        now = self._now()
        items = list(_items(request, await request.body()))
        model = self.model()
        measurements = [_measurement(model, index, item, now) for index, item in
                        enumerate(items)]
        if measurements:
            await self._write(measurements)
        return Response(status_code=204)


def _items(request: Request, body: bytes) -> Iterator[Any]:
    """The posted values as ``{"p", "v", "t"?}`` items, in any of the three forms."""
    if request.query_params.get("p") is not None:
        yield {"p": request.query_params["p"], "v": request.query_params.get("v")}
        return
    if not body.strip():
        raise Bad(400, "the body must be a JSON list of {\"p\", \"v\"} (or ?p=&v=)")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise Bad(400, "the body is not JSON") from None
    if isinstance(payload, dict):
        yield from ({"p": path, "v": value} for path, value in payload.items())
    elif isinstance(payload, list):
        yield from payload
    else:
        raise Bad(400, "the body must be a JSON list of {\"p\", \"v\"} or an object")


def _measurement(model: Model, index: int, item: Any, now: float) -> Measurement:
    where = f"values[{index}]"
    if not isinstance(item, dict):
        raise Bad(400, f"{where}: expected an object with p and v")
    path = item.get("p")
    if not isinstance(path, str) or len(path) > _MAX_PATH or not _PATH.match(path):
        raise Bad(400, f"{where}.p: {path!r} is not a Grafolean path "
                       "(dot-separated segments of letters, digits, _ - %2e %3a; <= 200)")
    value = _number(item.get("v"), f"{where}.v")
    ts = now if item.get("t") is None else _number(item["t"], f"{where}.t")
    try:
        key = model.series(path)
    except InvalidData as exc:
        raise Bad(400, f"{where}.p: {path!r} names no series: {exc}") from None
    return Measurement(key=key, ts=ts, value=value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Bad(400, f"{where}: {value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise Bad(400, f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise Bad(400, f"{where}: {value!r} is not a finite number")
    return number
