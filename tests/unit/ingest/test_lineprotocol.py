"""InfluxDB line protocol: the parser's rules, and /write and /api/v2/write over HTTP."""

from __future__ import annotations

import gzip
import re

import pytest

from tests.unit.ingest.conftest import Served
from watchkeeper.api.ingest.lineprotocol import LineError, parse
from watchkeeper.errors import InvalidData
from watchkeeper.model import SeriesKey

NOW = 1_700_000_000.0


def test_types_escapes_and_mapping() -> None:
    """Floats, i, u, booleans and strings, with escapes, land on the documented keys."""
    batch = parse('cpu\\,x,host=h1,cpu=cpu-total,my\\ tag=a\\=b usage_idle=98.5,n=3i,u=4u,'
                  'ok=T,bad=false,msg="say \\"hi\\", ok" 1700000000000000000\n'
                  "# a comment\n\nmem free=1e3",
                  database="telegraf", precision="n", now=NOW)
    numbers = {text: (ts, value) for text, ts, value in batch.numbers}
    tags = '{cpu="cpu-total",my_tag="a=b"}'
    assert numbers[f"h1/telegraf/cpu_x.usage_idle{tags}"] == (1.7e9, 98.5)
    assert numbers[f"h1/telegraf/cpu_x.n{tags}"][1] == 3.0
    assert numbers[f"h1/telegraf/cpu_x.u{tags}"][1] == 4.0
    assert numbers[f"h1/telegraf/cpu_x.ok{tags}"][1] == 1.0
    assert numbers[f"h1/telegraf/cpu_x.bad{tags}"][1] == 0.0
    assert numbers["influx/telegraf/mem.free"] == (NOW, 1000.0)
    assert batch.strings == [(f"h1/telegraf/cpu_x.msg{tags}", 1.7e9, 'say "hi", ok')]
    for text, _, _ in batch.numbers:
        SeriesKey.parse(text)


@pytest.mark.parametrize(("line", "reason"), [
    ("cpu", "missing fields"),
    ("cpu value=", "missing field value"),
    ("cpu value=abc", "invalid number"),
    ("cpu value=-1u", "negative"),
    ('cpu value="open', "unterminated"),
    ("cpu,host value=1", "tag"),
    ("cpu value=1 notatime", "timestamp"),
    ("cpu value=1 1 2", "unescaped space"),
    ("cpu =1", "field format"),
])
def test_bad_lines_name_the_line(line: str, reason: str) -> None:
    """A bad line is refused with its text, its number and why."""
    with pytest.raises(LineError) as caught:
        parse(f"ok value=1\n{line}\n", database="db", precision="s", now=NOW)
    assert caught.value.number == 2
    assert reason in str(caught.value)
    assert line in str(caught.value)


def test_precisions() -> None:
    """Timestamps scale by the precision; an unknown one is refused."""
    assert parse("m v=1 3", database="d", precision="h", now=NOW).numbers[0][1] == 10800.0
    assert parse("m v=1 5", database="d", precision="ms", now=NOW).numbers[0][1] == 0.005
    with pytest.raises(InvalidData):
        parse("m v=1 5", database="d", precision="d", now=NOW)


async def test_v1_write_all_or_nothing(served: Served) -> None:
    """/write answers 204 once stored; a batch with one bad line is 400 in InfluxDB's
    error form naming the line, and none of its lines is stored."""
    auth = ("telegraf", served.writer)
    bad = await served.http.post("/write?db=telegraf&precision=s", auth=auth,
                                 content=b"cpu,host=h1 v=1 1700000000\ncpu,host=h1 v= 1700000001\n")
    assert bad.status_code == 400
    assert "line 2" in bad.json()["error"]
    assert "v= 1700000001" in bad.json()["error"]
    assert (await served.archive.list_series())[1] == 0
    good = await served.http.post("/write?db=telegraf&precision=s", auth=auth,
                                  content=gzip.compress(b"cpu,host=h1 v=1 1700000000\n"),
                                  headers={"Content-Encoding": "gzip"})
    assert good.status_code == 204
    points = await served.archive.read(SeriesKey.parse("h1/telegraf/cpu.v"), 0, 2e9)
    assert points.values.tolist() == [1.0]
    missing = await served.http.post("/write", auth=auth, content=b"cpu v=1")
    assert missing.status_code == 400
    assert "database" in missing.json()["error"]
    assert (await served.http.post("/write?db=x", content=b"cpu v=1")).status_code == 401
    assert (await served.http.get("/ping")).status_code == 204


async def test_v2_write_token_header(served: Served) -> None:
    """/api/v2/write takes ``Token KEY``; strings are stored as object points; errors
    come in the 2.x form."""
    headers = {"Authorization": f"Token {served.writer}"}
    response = await served.http.post("/api/v2/write?org=o&bucket=b&precision=s",
                                      headers=headers, content=b'log,host=h msg="up" 1700000000')
    assert response.status_code == 204
    points = await served.archive.read(SeriesKey.parse("h/b/log.msg"), 0, 2e9)
    assert points.kind == "object"
    assert points.objects == ("up",)
    bad = await served.http.post("/api/v2/write?bucket=b", headers=headers, content=b"\xff")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"
    assert (await served.http.post("/api/v2/write", headers=headers,
                                   content=b"m v=1")).status_code == 400
    odd = await served.http.post("/api/v2/write?bucket=b", headers=headers,
                                 content="m\u061d\tv=\x01\n".encode())
    assert odd.status_code == 400
    assert odd.headers["X-Influxdb-Error"].isascii()
    corrupt = await served.http.post("/api/v2/write?bucket=b", headers={
        **headers, "Content-Encoding": "gzip"}, content=b"not gzip")
    assert corrupt.status_code == 400


@pytest.mark.parametrize("lines", [
    ["cpu,host=h1,cpu=cpu0 usage=1.5 1700000000000000000",
     "cpu,host=h1,cpu=cpu0 usage=-2e3 1700000000000000001", "mem free=.5 -3",
     "m=x v=7. 9223372036854775807"],
    ["cpu,host=h1 user=1.5,n=3i,u=4u,ok=T,no=false,e=1e-3 17", "mem,host=h2 a=1i 18",
     "x y=TRUE,z=f 19"],                      # Telegraf's usual: several fields per line
    ["cpu v=1u,w=-1u 1"],                     # a negative unsigned: refused, line named
    ["cpu,host v=1 1"],                       # bad tag: the line-by-line reader names it
    ["cpu,host v=1i,w=2i 1"],                 # the same on the several-fields path
    ["cpu v=1 99999999999999999999"],         # beyond int64: read line by line
    ["cpu v=\u0661 1"],                       # a non-ASCII digit is no number
])
def test_plain_bodies_read_as_line_by_line(lines: list[str]) -> None:
    """A body of plain lines (the regular-expression path) gives what the line-by-line
    reader gives (forced here by a comment line), or the same error."""
    plain = "\n".join(lines) + "\n"
    general = "# forces the line-by-line reader\n" + plain
    try:
        expected = parse(general, database="db", precision="n", now=NOW)
    except LineError as exc:
        with pytest.raises(LineError, match=re.escape(exc.reason)):
            parse(plain, database="db", precision="n", now=NOW)
        return
    assert parse(plain, database="db", precision="n", now=NOW) == expected
