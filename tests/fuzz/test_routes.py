"""A bounded property-based fuzz of every route (issue 17 §1), run by ``make test``.

Requests are drawn by hypothesis (fixed seed, no example database) from the server's own
OpenAPI document: every path and method it lists, its declared parameters plus stray
ones, values that broke the server before (``1e400``, ``NaN``, 20-digit times, deep
JSON...), bodies of any JSON shape or none. The server is real: uvicorn on a loopback
port over the whole app of ``watchkeeper up`` (embedded archive, tokens, esmond, inventory
with an inline secret, alarms). Every answer must be under 500 and come within 5 s, and
no answer may carry a secret or the data directory's path.

Phase one sends no valid token: the archive, esmond, alarms, inventory and tokens read
back exactly as before it. Phase two sends the write token. Afterwards, data written
before both phases reads back intact. The whole file takes ~20-40 s on 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.unit.api.full_app import NOW, SECRETS, FullApp, full_app
from watchkeeper.api.openapi import PATH
from watchkeeper.pipeline.engines.archive_writer import flush

_T = TypeVar("_T")
SLOW = 5.0  # seconds: any answer slower than this fails the fuzz
EXAMPLES = 250  # drawn requests per phase, after the sweep
GOOD_SERIES = "good/fuzz/value"
SAMPLES = {"collector": ["static", "nosuch"], "span": ["1..latest", "0..1", "x..y", "latest"],
           "key": ["x", "resource/web1/http"], "action": ["ack", "changestate", "explode"],
           "event_type": ["throughput", "histogram-owdelay", "nosuch"],
           "summary": ["base", "aggregations", "statistics", "averages", "x"],
           "window": ["0", "300", "-1", "99999999999999999999"],
           "account": ["1", "2"], "entity": ["1", "0"], "credential": ["1"], "sensor": ["1"]}
NASTY = ["", "0", "-1", "1", "1.5", "1e400", "-1e400", "NaN", "nan", "inf", "-inf",
         "99999999999999999999", "9" * 400, "18446744073709551616", "0x10", "1_000",
         "5m", "now", "latest", "1..2", "true", "yes", "avg", "max,max", "\x00", "%",
         "2026-12-07T00:00:00", "2026-13-45", "a/b/c", 'a/b/c{x="1"}', "{", "ünïcödé"]
NASTY_TEXT = ["", "\x00", "9" * 400, "ünïcödé", "%", "{", "1e400", "NaN", "a/b/c{"]
"""What a text parameter gets in the sweep (numbers and times get every NASTY value)."""
TIMES = frozenset({"start", "end", "since", "version", "span", "step", "aggs"})
DEEP = [b"[" * 5000 + b"]" * 5000, b'{"points": [], "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"]
NASTY_BODIES = [*DEEP, b"", b"null", b"[]", b"{}", b'"x"', b"1e400", b"{", b"\xff\xfe",
                b'{"points": [["a/b/c", 1e400, 1]]}', b'{"points": [["a/b/c", 1, 1e400]]}',
                b'{"ts": 99999999999999999999, "val": 1}', b'{"state": 99}',
                b'{"data": [{"ts": -1, "val": [{"event-type": "x", "val": 1e400}]}]}']
AUTH_JUNK = [None, "Token bogus", "Token", "Token a b", "Basic Zm9vOmJhcg==", "token " + "0" * 40,
             "ApiKey user:key"]
CONTENT_TYPES = ["application/json", "application/vnd.watchkeeper.columns+msgpack",
                 "text/plain", None]


class LoopThread:
    """One event loop in a thread: the app, its stores and uvicorn all live there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 60) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Served:
    full: FullApp
    url: str
    loop: LoopThread
    document: dict[str, Any]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    loop = LoopThread()
    data_dir = tmp_path_factory.mktemp("fuzz")
    context = full_app(data_dir)
    full = loop.run(context.__aenter__())
    _no_dns(full)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(full.app, log_level="critical", lifespan="off",
                                           timeout_keep_alive=75))
    serving = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), loop.loop)
    deadline = time.monotonic() + 10
    while not server.started:
        assert not serving.done(), serving.result()
        assert time.monotonic() < deadline, "the fuzz server did not start"
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    document = httpx.get(f"{url}{PATH}", timeout=10).json()
    try:
        yield Served(full, url, loop, document)
    finally:
        server.should_exit = True
        serving.result(20)
        loop.run(context.__aexit__(None, None, None))
        loop.close()
        sock.close()


def _no_dns(full: FullApp) -> None:
    """Host names in esmond filters resolve to nothing (no DNS on a test machine)."""
    async def resolver(host: str, family: int) -> str | None:
        return None

    for route in full.app.routes:
        api = getattr(getattr(route, "endpoint", None), "__self__", None)
        if api is not None and hasattr(api, "resolve"):
            api.resolve = resolver


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    params: list[tuple[str, str]]
    body: bytes | None
    content_type: str | None
    auth: str | None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(NASTY),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["points", "units", "ts", "val", "data", "state", "duration",
                         "author", "event-type", "subject-type", "source", "destination",
                         "event-types", "summaries", "component", "resource", "x"]) | st.text(
            max_size=8), inner, max_size=5),
    max_leaves=12)


def _bodies() -> st.SearchStrategy[bytes | None]:
    point = st.tuples(st.sampled_from(["a/b/c", "x", GOOD_SERIES + "2", "a b/c"]),
                      st.one_of(st.floats(), st.integers(-2**70, 2**70)),
                      st.one_of(st.floats(allow_nan=False), st.just({"1": 2})))
    write = st.builds(lambda pts: {"points": [list(p) for p in pts]}, st.lists(point, max_size=3))
    return st.one_of(
        st.none(),
        json_values.map(lambda v: json.dumps(v).encode()),
        write.map(lambda v: json.dumps(v, allow_nan=True).encode()),
        st.sampled_from(DEEP),
        st.binary(max_size=64),
    )


def calls(document: dict[str, Any], *, auth: st.SearchStrategy[str | None]
          ) -> st.SearchStrategy[Call]:
    operations = [(path, method.upper(), entry) for path, ops in document["paths"].items()
                  for method, entry in ops.items() if path != PATH]

    def one(op: tuple[str, str, dict[str, Any]]) -> st.SearchStrategy[Call]:
        path, method, entry = op
        names = re.findall(r"\{([^}]+)\}", path)
        segments = st.fixed_dictionaries({n: st.one_of(
            st.sampled_from(SAMPLES.get(n, ["x"])),
            st.text(min_size=1, max_size=12).map(lambda t: quote(t, safe=""))) for n in names})
        declared = [p["name"] for p in entry["parameters"] if p["in"] == "query"]
        value = st.one_of(st.sampled_from(NASTY), st.integers(-2**80, 2**80).map(str),
                          st.floats().map(repr), st.text(max_size=16))
        params = st.lists(st.tuples(st.sampled_from([*declared, "junk", "time-start"])
                                    if declared else st.just("junk"), value), max_size=4)
        sends_body = method in ("POST", "PUT", "PATCH")
        return st.builds(
            lambda seg, qs, body, ctype, key: Call(
                method, re.sub(r"\{([^}]+)\}", lambda m: seg[m.group(1)], path), qs,
                body if sends_body else None, ctype, key),
            segments, params, _bodies(), st.sampled_from(CONTENT_TYPES), auth)

    return st.sampled_from(operations).flatmap(one)


def send(client: httpx.Client, call: Call) -> httpx.Response:
    headers = {}
    if call.content_type:
        headers["Content-Type"] = call.content_type
    if call.auth:
        headers["Authorization"] = call.auth
    started = time.monotonic()
    response = client.request(call.method, call.url, params=call.params, content=call.body,
                              headers=headers)
    took = time.monotonic() - started
    assert response.status_code < 500, (call, response.status_code, response.text[:300])
    assert took < SLOW, (call, took)
    return response


def check_no_leak(served: Served, response: httpx.Response, call: Call) -> None:
    for secret in SECRETS:
        assert secret not in response.text, (call, secret)
    assert str(served.full.data_dir) not in response.text, call


def sweep(client: httpx.Client, document: dict[str, Any], *, auth: str | None,
          methods: frozenset[str]) -> int:
    """Every declared query parameter of every operation once with each nasty value, and
    every body-taking operation with each nasty body: the values that broke the server
    before are sent for sure, not left to the draw. One handler per path (the /perfsonar
    prefix and trailing-slash twins repeat /esmond/perfsonar's). Returns the count."""
    sent = 0
    paths = document["paths"]
    for path, ops in paths.items():
        if path == PATH or path.startswith("/perfsonar/") or (
                path.endswith("/") and path.rstrip("/") in paths):
            continue
        url = re.sub(r"\{([^}]+)\}", lambda m: SAMPLES.get(m.group(1), ["x"])[0], path)
        for method, entry in ops.items():
            if method.upper() not in methods:
                continue
            for param in entry["parameters"]:
                if param["in"] != "query":
                    continue
                name = param["name"]
                numeric = param["schema"].get("type") in ("integer", "number")
                for value in NASTY if numeric or name in TIMES else NASTY_TEXT:
                    send(client, Call(method.upper(), url, [(name, value)], None, None, auth))
                    sent += 1
            if "requestBody" in entry:
                for body in NASTY_BODIES:
                    send(client, Call(method.upper(), url, [], body, "application/json", auth))
                    sent += 1
    return sent


# ---------------------------------------------------------------- state


def settle(served: Served) -> None:
    """Let every event already accepted reach the archive and the alarms."""
    async def drain() -> None:
        for name in served.full.pipeline.engines:
            await served.full.bus.drain(name)
        await flush(served.full.pipeline.engines["archive"])

    served.loop.run(drain())


def snapshot(served: Served) -> dict[str, Any]:
    """Everything a request could change, read with the write token."""
    settle(served)
    out: dict[str, Any] = {}
    with httpx.Client(base_url=served.url, timeout=30, headers={
            "Authorization": f"Token {served.full.write_key}"}) as client:
        listing = client.get("/api/v1/series").json()
        out["series"] = listing
        out["points"] = {s["series"]: client.get("/api/v1/query", params={
            "series": s["series"], "start": "0", "end": str(NOW + 1e6)}).json()
            for s in listing["series"]}
        metadata = client.get("/esmond/perfsonar/archive/", params={"limit": "100000"}).json()
        out["metadata"] = metadata
        out["esmond_data"] = {
            m["metadata-key"] + e["event-type"]: client.get(e["base-uri"], params={
                "time-start": "0", "time-end": str(NOW + 10**6)}).json()
            for m in metadata for e in m["event-types"]}
        out["alarms"] = client.get("/api/v1/alarms", params={"resolved": "true",
                                                              "limit": "100000"}).json()
        out["inventory"] = client.get("/api/v1/inventory").json()
        out["graph"] = client.get("/api/v1/inventory/static").json()
    tokens = served.loop.run(served.full.tokens.tokens())
    out["tokens"] = sorted((t.user, t.write, t.created, t.id) for t in tokens)
    return out


def seed_good_data(served: Served) -> dict[str, Any]:
    """Data written through the API before the fuzz, and how it reads back."""
    with httpx.Client(base_url=served.url, timeout=30, headers={
            "Authorization": f"Token {served.full.write_key}"}) as client:
        written = client.post("/api/v1/write", json={
            "points": [[GOOD_SERIES, NOW + i, float(i)] for i in range(100)]})
        assert written.status_code == 201
        created = client.post("/esmond/perfsonar/archive/", json={
            "subject-type": "point-to-point", "source": "10.9.9.1", "destination": "10.9.9.2",
            "tool-name": "bwctl/iperf3", "measurement-agent": "10.9.9.1",
            "input-source": "10.9.9.1", "input-destination": "10.9.9.2",
            "event-types": [{"event-type": "throughput"}]})
        assert created.status_code == 201
        key = created.json()["metadata-key"]
        data = client.put(f"/esmond/perfsonar/archive/{key}/", json={"data": [
            {"ts": int(NOW) + i, "val": [{"event-type": "throughput", "val": 1e9 + i}]}
            for i in range(10)]})
        assert data.status_code == 201
        event = client.post("/api/v1/events/canopsis", json=[{
            "connector": "fuzz", "connector_name": "fuzz1", "event_type": "check",
            "source_type": "resource", "component": "good1", "resource": "http", "state": 2,
            "output": "down", "timestamp": NOW}])
        assert event.status_code == 202
    settle(served)
    return good_view(served, key)


def good_view(served: Served, key: str) -> dict[str, Any]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        return {
            "key": key,
            "points": client.get("/api/v1/query", params={
                "series": GOOD_SERIES, "start": "0", "end": str(NOW + 1000)}).json(),
            "metadata": client.get(f"/esmond/perfsonar/archive/{key}/").json(),
            "esmond": client.get(f"/esmond/perfsonar/archive/{key}/throughput/base",
                                 params={"time-start": "0"}).json(),
            "alarm": {k: v for k, v in client.get("/api/v1/alarms/resource/good1/http")
                      .json().items() if k != "steps"},
        }


# ---------------------------------------------------------------- the fuzz


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                suppress_health_check=list(HealthCheck), print_blob=True)


def test_fuzz_every_route(served: Served) -> None:
    """Both phases over every route; state unchanged by the first; good data intact."""
    good = seed_good_data(served)
    before = snapshot(served)
    assert before["points"][GOOD_SERIES]["points"]
    client = httpx.Client(base_url=served.url, timeout=SLOW * 2)
    seen: set[tuple[str, str]] = set()

    @seed(17)
    @FUZZ
    @given(calls(served.document, auth=st.sampled_from(AUTH_JUNK)))
    def anonymous(call: Call) -> None:
        response = send(client, call)
        check_no_leak(served, response, call)
        seen.add((call.method, call.url.split("?")[0]))

    @seed(18)
    @FUZZ
    @given(calls(served.document, auth=st.just(f"Token {served.full.write_key}")))
    def authenticated(call: Call) -> None:
        response = send(client, call)
        # A token allowed to collect gets the remote collectors' configuration, which is
        # api.collect's to keep free of inline secrets; server paths stay out of it all.
        assert str(served.full.data_dir) not in response.text, call

    token = f"Token {served.full.write_key}"
    try:
        assert sweep(client, served.document, auth=None, methods=frozenset({"GET"})) > 500
        anonymous()
        after = snapshot(served)
        for part in before:
            assert after[part] == before[part], f"{part} changed without a valid token"
        sweep(client, served.document, auth=token,
              methods=frozenset({"DELETE", "POST", "PUT", "PATCH"}))
        authenticated()
        settle(served)
    finally:
        client.close()
    assert good_view(served, good["key"]) == good
    assert len(seen) > 20  # the draw reached most routes
