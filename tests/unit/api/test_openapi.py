"""The OpenAPI document lists every mounted route, and says truly who may call each one;
no answer to a request without a token carries a secret or a server path."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from tests.unit.api.full_app import SECRETS, FullApp, full_app
from watchkeeper.api.openapi import PATH, all_paths, template

SAMPLE = {"collector": "static", "span": "1..latest", "key": "x", "action": "ack",
          "event_type": "throughput", "summary": "base", "window": "0", "account": "1",
          "entity": "1", "credential": "1", "sensor": "1", "name": "job", "id": "0123456789ab"}


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[FullApp]:
    async with full_app(tmp_path) as started:
        yield started


async def _document(full: FullApp) -> dict[str, object]:
    async with full.client() as client:
        response = await client.get(PATH)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # a valid OpenAPI 3.1 document, schemas included
    return document


async def test_every_mounted_route_is_described(full: FullApp) -> None:
    """Each (path, method) of the route table is in the document, with a summary, an
    access level and its path parameters; and nothing else is."""
    document = await _document(full)
    mounted = {(template(r.path), m) for r in full.app.routes if isinstance(r, Route)
               for m in (r.methods or {"GET"}) - {"HEAD"}}
    assert set(all_paths(document)) == mounted
    paths = document["paths"]
    assert isinstance(paths, dict)
    for path, method in mounted:
        entry = paths[path][method.lower()]
        assert entry["summary"] != "(undescribed)", (method, path)
        assert entry["x-access"] in ("public", "read", "write", "admin"), (method, path)
        declared = {p["name"] for p in entry["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path))
    assert "/api/v1/write" in paths
    assert "/esmond/perfsonar/archive/{key}/{event_type}/{summary}/{window}/" in paths


def _url(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: SAMPLE[m.group(1)], path)


@pytest.mark.parametrize("public_reads", [True, False])
async def test_declared_access_is_enforced(tmp_path: Path, public_reads: bool) -> None:
    """A request without a token is refused (401) exactly where the document says a token
    is needed: writes always, reads when public_reads is off."""
    async with full_app(tmp_path, public_reads=public_reads) as full:
        document = await _document(full)
        async with full.client() as anonymous:
            for path, method in all_paths(document):
                access = document["paths"][path][method.lower()]["x-access"]  # type: ignore[index]
                response = await anonymous.request(method, _url(path), content=b"{}",
                                                   headers={"Content-Type": "application/json"})
                needs_token = access in ("write", "admin") or (access == "read"
                                                               and not public_reads)
                assert (response.status_code == 401) == needs_token, (
                    method, path, access, response.status_code, response.text[:200])


async def test_anonymous_answers_carry_no_secret_or_path(full: FullApp) -> None:
    """Every GET route, asked without a token: no inline secret and no server path."""
    document = await _document(full)
    async with full.client(full.write_key) as writer:
        await writer.post("/api/v1/write", json={"points": [["core1/snmp/if.in", NOW, 1.0]]})
    async with full.client() as anonymous:
        for path, method in all_paths(document):
            if method != "GET":
                continue
            response = await anonymous.get(_url(path))
            assert response.status_code < 500, (path, response.text[:200])
            for secret in SECRETS:
                assert secret not in response.text, (path, secret)
            assert str(full.data_dir) not in response.text, path
        inventory = (await anonymous.get("/api/v1/inventory/static")).json()
        [core] = [n for n in inventory["nodes"] if n["name"] == "core1"]
        assert core["attrs"]["connections"]["snmp"] == {"community": "<redacted>",
                                                        "port": 16161}
        assert core["attrs"]["connections"]["ssh"]["password"] == "<redacted>"


async def test_a_stale_model_names_no_server_path(full: FullApp) -> None:
    """A model whose file broke is stale with the reason, and neither the inventory
    listing nor /metrics (both public) shows the file's path."""
    (full.data_dir / "inventory.yaml").write_text("devices: [\n")
    async with full.client() as anonymous:
        for _ in range(200):  # the static model looks at its file every 0.2 s (fake clock)
            await full.clock.advance(1)
            listing = await anonymous.get("/api/v1/inventory")
            [static] = listing.json()["collectors"]
            if static["stale_reason"]:
                break
            await asyncio.sleep(0.05)
        assert "invalid YAML" in static["stale_reason"]
        assert "<path>" in static["stale_reason"]
        assert str(full.data_dir) not in listing.text
        metrics = await anonymous.get("/metrics")
        assert "invalid YAML" in metrics.text
        assert str(full.data_dir) not in metrics.text


NOW = 1_700_000_000.0
