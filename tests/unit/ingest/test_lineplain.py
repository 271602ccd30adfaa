"""Plain line-protocol bodies read in bulk: the general parser's answer, or None."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.ingest.conftest import Served
from watchkeeper.api.ingest import lineprotocol
from watchkeeper.api.ingest.lineplain import PlainReader
from watchkeeper.archive import Columns
from watchkeeper.model import SeriesKey


def general(body: bytes, precision: str = "ms") -> list[tuple[str, float, float]]:
    return lineprotocol.parse(body.decode(), database="db", precision=precision,
                              now=0.0).numbers


def points(columns: Columns) -> list[tuple[str, float, float]]:
    return [(columns.series[i], t, v) for i, t, v in
            zip(columns.index.tolist(), columns.ts.tolist(), columns.values.tolist(),
                strict=True)]


def read(body: bytes, reader: PlainReader | None = None, scale: float = 1e-3
         ) -> Columns | None:
    return (reader or PlainReader()).read(body, plugin="db", scale=scale)


def agree(body: bytes, precision: str = "ms", reader: PlainReader | None = None) -> Columns:
    columns = read(body, reader, lineprotocol.PRECISIONS[precision])
    assert columns is not None
    ours, theirs = points(columns), general(body, precision)
    assert [(k, t) for k, t, _ in ours] == [(k, t) for k, t, _ in theirs]
    for (_, _, a), (_, _, b) in zip(ours, theirs, strict=True):  # NaN-free, -0.0 kept
        assert a == b
        assert math.copysign(1, a) == math.copysign(1, b)
    return columns


NUMBERS = ["1", "-1", "+2", "0", "-0", "0.0", "-0.0", "1.5", "-.5", "+.25", "5.", "007",
           "123456789.12345", "0.1", "0.3", "2.675", "99999999999999", "1e3", "-1.5E-7",
           "1e400", "12345678901234567890", "0.30000000000000004", "98.69739478957916"]


@pytest.mark.parametrize("value", NUMBERS)
def test_each_number_form_reads_as_float_reads_it(value: str) -> None:
    agree(f"cpu,host=h1,cpu=0 usage={value} 1700000000000\nmem free=1 5\n".encode())


@pytest.mark.parametrize(("stamp", "precision"), [
    ("1700000000000000000", "ns"), ("-5", "s"), ("0", "us"), ("9223372036854775807", "n"),
    ("1", "h"),
])
def test_timestamps_of_every_width_and_precision(stamp: str, precision: str) -> None:
    agree(f"m v=1.5 {stamp}\n".encode(), precision)


@st.composite
def plain_bodies(draw: st.DrawFn) -> bytes:
    names = st.text("abcxyz_:.-", min_size=1, max_size=6)
    lines = []
    for _ in range(draw(st.integers(1, 20))):
        tags = "".join(f",{k}={v}" for k, v in sorted(draw(
            st.dictionaries(st.sampled_from(["host", "cpu", "zone", "a-b"]), names,
                            max_size=3)).items()))
        value = draw(st.one_of(
            st.sampled_from(NUMBERS),
            st.floats(allow_nan=False, allow_infinity=False).map(repr),
            st.decimals(allow_nan=False, allow_infinity=False, places=draw(
                st.integers(0, 8))).map(str),
            st.integers(-10**15, 10**15).map(str)))
        stamp = draw(st.integers(-(2**63) + 1, 2**63 - 1))
        lines.append(f"{draw(names)}{tags} {draw(names)}={value} {stamp}")
    return ("\n".join(lines) + draw(st.sampled_from(["", "\n"]))).encode()


@settings(max_examples=200, deadline=None)
@given(plain_bodies())
def test_plain_bodies_read_as_the_general_parser_reads_them(body: bytes) -> None:
    try:
        expected = general(body, "ns")
    except lineprotocol.LineError:  # e.g. "1E+5" read by neither; an "e" in a decimal
        assert read(body, scale=1e-9) is None
        return
    columns = read(body, scale=1e-9)  # None is allowed (a value over 32 characters)
    if columns is not None:
        assert points(columns) == expected


@pytest.mark.parametrize("body", [
    b"m v=1i 1\n", b"m v=t 1\n", b'm v="s" 1\n', b"m v=1,w=2 1\n", b"m v=1\n",
    b"m\\ x v=1 1\n", b"# comment\nm v=1 1\n", b"m v=1 1\r\n", b"m v=1 1\n\nm v=2 2\n",
    b"m  v=1 1\n", b"m v=1 1 \n", b"m v=abc 1\n", b"m v=1 1.5\n", b"m v=1.2.3 1\n",
    b"m v=- 1\n", b"m v=1 --1\n", b"m,host v=1 1\n", b",x=1 v=1 1\n", b"m =1 1\n",
    b"m v= 1\n", "m,host=h\u00e9 v=1 1\n".encode(), b"m v=1 99999999999999999999\n", b"",
    b"m v=1e 1\n", b"m v=+ 1\n", b"m a,b=1 1\n", b"m v=1=2 1\n", b"m v 1\n",
    b"m v=1\x005 1\n", b"m v=15 1\x00\n", b"m v=\x0015 1\n", b"m\tx v=1 1\n",
    b"m,t=a\x01 v=1 1\n", b'm,t=a"b v=1 1\n', b"m,t=a\\b v=1 1\n", b"m v=1 1\x7f\n",
])
def test_anything_else_is_left_to_the_general_parser(body: bytes) -> None:
    assert read(body) is None


def test_a_repeated_body_keeps_its_keys_and_token() -> None:
    reader = PlainReader()
    first = agree(b"cpu,host=h1 idle=1.5 1000\ncpu,host=h2 idle=2 1000\n", reader=reader)
    again = agree(b"cpu,host=h1 idle=17.25 2000\ncpu,host=h2 idle=-3 2000\n", reader=reader)
    assert again.series_token == first.series_token is not None
    other = agree(b"cpu,host=h3 idle=1.5 1000\ncpu,host=h2 idle=2 1000\n", reader=reader)
    assert other.series_token != first.series_token
    assert list(other.series) == ["h3/db/cpu.idle", "h2/db/cpu.idle"]


def test_long_series_texts_take_the_other_skeleton() -> None:
    """A ``series key=`` text over 256 bytes: the skeleton keeps whole lines instead of
    rows; read alike, once and again."""
    reader = PlainReader()
    long_tag = "x" * 300
    for value in ("1.5", "2.5"):
        columns = agree(f"cpu,host=h1,t={long_tag} idle={value} 1000\ncpu idle=2 1\n".encode(),
                        reader=reader)
        assert list(columns.series) == [f'h1/db/cpu.idle{{t="{long_tag}"}}', "influx/db/cpu.idle"]


def test_the_memories_are_bounded() -> None:
    reader = PlainReader(remember=3, bodies=2)
    for host in range(5):
        agree(f"cpu,host=h{host} idle=1 1\n".encode(), reader=reader)
        assert len(reader._seen) <= 2
        assert reader._known <= 3
    small = PlainReader(limit=10)  # a skeleton longer than the limit is never kept
    agree(b"cpu,host=h1 idle=1 1\n", reader=small)
    assert not small._seen


async def test_plain_and_other_bodies_over_http(served: Served) -> None:
    """A plain body and a body of other lines land on the same keys; a plain-looking body
    with a bad line is refused naming it, storing nothing."""
    auth = ("telegraf", served.writer)
    bad = await served.http.post("/write?db=t&precision=s", auth=auth,
                                 content=b"cpu,host=h1 v=1 1700000000\ncpu,host v=2 1700000000\n")
    assert bad.status_code == 400
    assert "line 2" in bad.json()["error"]
    assert (await served.archive.list_series())[1] == 0
    for body in (b"cpu,host=h1 v=1.5 1700000000\n", b"cpu,host=h1 v=2i 1700000001\n"):
        response = await served.http.post("/write?db=t&precision=s", auth=auth, content=body)
        assert response.status_code == 204
    points = await served.archive.read(SeriesKey.parse("h1/t/cpu.v"), 0, 2e9)
    assert points.values.tolist() == [1.5, 2.0]
