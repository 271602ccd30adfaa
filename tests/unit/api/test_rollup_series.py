"""``GET /api/v1/rollup?series=A&series=B``: the named float series in one answer (what
Explore asks for a view), the others left out; not together with a prefix."""

from __future__ import annotations

import httpx

from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive

NOW = 1_700_000_000.0


async def test_named_series_in_the_order_named(archive: MemoryArchive) -> None:
    app = create_app(archive, metrics=archive.metrics)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as h:
        points = [["a/p/m", NOW, 1.0], ["a/p/m", NOW + 10, 3.0], ["a/p/m2", NOW, 5.0],
                  ["b/p/m", NOW, 7.0], ["c/p/h", NOW, {"1": 2}]]
        assert (await h.post("/api/v1/write", json={"points": points})).status_code == 201
        answer = await h.get("/api/v1/rollup", params=[
            ("series", "b/p/m"), ("series", "a/p/m"), ("series", "c/p/h"), ("series", "x/p/m"),
            ("series", "a/p/m"), ("start", str(NOW - 60)), ("end", str(NOW + 60)),
            ("step", "60"), ("aggs", "avg,max")])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [s["series"] for s in body["series"]] == ["b/p/m", "a/p/m"]  # a/p/m2 not named
        assert body["series"][1]["values"] == {"avg": [2.0], "max": [3.0]}
        both = await h.get("/api/v1/rollup", params={"series": "a/p/m", "prefix": "a/",
                                                     "start": "0", "step": "60"})
        assert both.status_code == 400
        assert both.json()["detail"].startswith("series: name series or give a prefix")
