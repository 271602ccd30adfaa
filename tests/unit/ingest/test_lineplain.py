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
           "1e400", "12345678901234567890", "0.30000000000000004", "98.69739478957916",
           "0.0000001234567890123456789", "0.000000000000000000000000001", "9007199254740993",
           "9007199254740993.0", "18014398509481986", "-0.012833168805528134",
           "1234567890.12345678", "922337203685477580.7", "9223372036854775807",
           "0.000000000000000000000000000123", "98.39357429718876", "-4.6811451135241855"]


@pytest.mark.parametrize("value", NUMBERS)
def test_each_number_form_reads_as_float_reads_it(value: str) -> None:
    agree(f"cpu,host=h1,cpu=0 usage={value} 1700000000000\nmem free=1 5\n".encode())


@pytest.mark.parametrize(("stamp", "precision"), [
    ("1700000000000000000", "ns"), ("-5", "s"), ("0", "us"), ("9223372036854775807", "n"),
    ("1", "h"),
])
def test_timestamps_of_every_width_and_precision(stamp: str, precision: str) -> None:
    agree(f"m v=1.5 {stamp}\n".encode(), precision)


INTEGERS = ["0i", "-0i", "+5i", "007i", "-42i", "9223372036854775807i",
            "-9223372036854775808i", "123456789012345678i", "1.5i", "1e3i", "-i", "i",
            "0u", "+5u", "007u", "18446744073709551615u", "123456789012345678u", "-1u",
            "-0u", "1.5u", "u"]


def decimal(digits: int, places: int) -> str:
    text = str(digits).rjust(places + 1, "0")
    return f"{text[:-places]}.{text[-places:]}" if places else text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**18 - 1), st.integers(0, 27)), min_size=1,
                max_size=40))
def test_long_decimals_round_as_float_rounds_them(numbers: list[tuple[int, int]]) -> None:
    """Up to 18 significant digits and 27 decimals (Telegraf writes 15 to 17): the long
    double's quotient, rounded once more, is float()'s value."""
    agree("".join(f"m v={decimal(d, p)} 1\n" for d, p in numbers).encode())


@pytest.mark.parametrize("exponent", [53, 54, 57, 59])
def test_halfway_between_two_doubles_reads_as_float_reads_it(exponent: int) -> None:
    """Integers exactly halfway between two doubles, and their neighbours: rounding twice
    would get some wrong, so float() decides those rows."""
    half = 2 ** (exponent - 53)
    texts = [str(2**exponent + k * half) for k in range(-3, 8)]
    texts += [f"{t[:-2]}.{t[-2:]}" for t in texts]
    agree("".join(f"m v={t} 1\n" for t in texts).encode())


@st.composite
def plain_bodies(draw: st.DrawFn, fields: int = 1) -> bytes:
    """Lines of one to ``fields`` fields each (floats, ``i`` and ``u`` integers, some
    malformed)."""
    names = st.text("abcxyz_:.-", min_size=1, max_size=6)
    values = st.one_of(
        st.sampled_from(NUMBERS),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.decimals(allow_nan=False, allow_infinity=False, places=draw(
            st.integers(0, 8))).map(str),
        st.integers(-10**15, 10**15).map(str),
        *([st.sampled_from(INTEGERS), st.integers(-(2**63), 2**63 - 1).map(lambda i: f"{i}i"),
           st.integers(0, 2**64 - 1).map(lambda i: f"{i}u")] if fields > 1 else []))
    lines = []
    for _ in range(draw(st.integers(1, 20))):
        tags = "".join(f",{k}={v}" for k, v in sorted(draw(
            st.dictionaries(st.sampled_from(["host", "cpu", "zone", "a-b"]), names,
                            max_size=3)).items()))
        pairs = ",".join(f"{draw(names)}={draw(values)}"
                         for _ in range(draw(st.integers(1, fields))))
        stamp = draw(st.integers(-(2**63) + 1, 2**63 - 1))
        lines.append(f"{draw(names)}{tags} {pairs} {stamp}")
    return ("\n".join(lines) + draw(st.sampled_from(["", "\n"]))).encode()


def same_as_general(body: bytes) -> None:
    try:
        expected = general(body, "ns")
    except lineprotocol.LineError:  # e.g. "1E+5" read by neither; an "e" in a decimal
        assert read(body, scale=1e-9) is None
        return
    columns = read(body, scale=1e-9)  # None is allowed (a value over 32 characters)
    if columns is not None:
        assert points(columns) == expected


@settings(max_examples=200, deadline=None)
@given(plain_bodies())
def test_plain_bodies_read_as_the_general_parser_reads_them(body: bytes) -> None:
    same_as_general(body)


@settings(max_examples=300, deadline=None)
@given(plain_bodies(fields=4))
def test_multi_field_bodies_read_as_the_general_parser_reads_them(body: bytes) -> None:
    """Telegraf's shapes: several fields per line, their counts differing between lines,
    floats and ``i`` integers."""
    same_as_general(body)


TELEGRAF = (b"cpu,cpu=cpu0,host=h1 usage_idle=98.1,usage_user=1.2,usage_system=0.4 "
            b"1700000000000000000\n"
            b"mem,host=h1 used=123i,free=-5i,used_percent=12.345678901234567 "
            b"1700000000000000000\n"
            b"disk,host=h1,path=/ used=+7i 1700000000000000001\n")


def test_telegraf_lines_are_read_in_bulk() -> None:
    """Several fields, integers and one field per line in one body: read by numpy, each
    field its series, every field of a line its timestamp; again from the skeleton."""
    reader = PlainReader()
    first = agree(TELEGRAF, "ns", reader=reader)
    assert list(first.series) == [
        'h1/db/cpu.usage_idle{cpu="cpu0"}', 'h1/db/cpu.usage_user{cpu="cpu0"}',
        'h1/db/cpu.usage_system{cpu="cpu0"}', "h1/db/mem.used", "h1/db/mem.free",
        "h1/db/mem.used_percent", 'h1/db/disk.used{path="/"}']
    assert first.values.tolist() == [98.1, 1.2, 0.4, 123.0, -5.0, 12.345678901234567, 7.0]
    again = agree(TELEGRAF.replace(b"98.1", b"97.5"), "ns", reader=reader)
    assert again.series_token == first.series_token
    assert again.values[0] == 97.5


def test_unsigned_integers_are_read_in_bulk_and_never_negative() -> None:
    """``u`` integers (Telegraf's ``influx_uint_support``) as the general parser reads
    them, up to 2^64 - 1; a minus, a point or no digit: the general parser names the line."""
    columns = agree(b"m,host=h1 a=0u,b=+5u,c=007u,d=18446744073709551615u,e=-3i,f=1.5 1\n")
    assert columns.values.tolist() == [0.0, 5.0, 7.0, 2.0**64, -3.0, 1.5]
    for bad in (b"m v=-1u 1\n", b"m v=-0u 1\n", b"m v=1.5u 1\n", b"m v=u 1\n",
                b"m v=1e3u 1\n"):
        assert read(bad) is None
        with pytest.raises(lineprotocol.LineError):
            general(bad)


@pytest.mark.parametrize("body", [
    b"m v=1.5i 1\n", b"m v=t 1\n", b'm v="s" 1\n', b"m v=1,w=t 1\n", b"m v=1\n",
    b"m v=1e3i 1\n", b"m v=-i 1\n", b"m v=i 1\n", b"m v=-1u 1\n", b"m v=1,,w=2 1\n",
    b"m v=1, 1\n", b"m ,v=1 1\n", b"m v=1,w 1\n", b"m v=1,=2 1\n", b"m v==1 1\n",
    b"m v=1,w=2=3 1\n", b"m v=1,w=2\n", b'm v=1,w="2" 1\n', b"m v=1,w\\ x=2 1\n",
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


def test_long_series_texts_are_read_in_bulk_too() -> None:
    """A ``series key=`` text over 256 bytes: its skeleton rows are as wide; read alike,
    once and again. One long line among many short ones: the general parser."""
    reader = PlainReader()
    long_tag = "x" * 300
    for value in ("1.5", "2.5"):
        columns = agree(f"cpu,host=h1,t={long_tag} idle={value} 1000\ncpu idle=2 1\n".encode(),
                        reader=reader)
        assert list(columns.series) == [f'h1/db/cpu.idle{{t="{long_tag}"}}', "influx/db/cpu.idle"]
    assert read(f"cpu,t={long_tag} idle=1 1\n".encode() + b"m v=1 1\n" * 100) is None


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
