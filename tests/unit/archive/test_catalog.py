"""The embedded archive's series index: text-only catalog, the canonical-text fast path,
and the array of chunk tails."""

from __future__ import annotations

import pytest

from watchkeeper.archive.backends._batch import canonical_key
from watchkeeper.archive.backends._catalog import Catalog, NewSeries
from watchkeeper.archive.backends._chunks import Tail
from watchkeeper.archive.backends._tails import UNKNOWN, Tails
from watchkeeper.errors import InvalidData
from watchkeeper.model import SeriesKey


@pytest.mark.parametrize("text", [
    "a/b/c",
    'dev00042/snmp/m3{if="17"}',
    'd/p/m{a="x,y=1",b=""}',
    'd/p/m{a="1",b="2",c="é ü"}',
    "h.x:1@y-z_/p/m",
])
def test_canonical_texts_take_the_fast_path(text: str) -> None:
    """A text already canonical gives the key SeriesKey.parse gives, and reads back."""
    key = canonical_key(text)
    assert key == SeriesKey.parse(text)
    assert str(key) == text


@pytest.mark.parametrize("text", [
    'd/p/m{b="1",a="2"}',  # labels out of order: canonical form differs
    'd/p/m{a="1",a="2"}',  # a label twice
    'd/p/m{a="x\\"y"}',  # an escape
    'd/p/m{a="line\nbreak"}',
    "d/p/m{}",
    "d/p/m\n",
    "a/b",
    "a/b/c/d",
    "a b/c/d",
    'd/p/m{1a="x"}',
    'd/p/m{a="x"',
])
def test_other_texts_are_left_to_the_parser(text: str) -> None:
    """Anything else gives None: SeriesKey.parse decides (canonicalises or refuses)."""
    assert canonical_key(text) is None


def test_a_non_canonical_text_in_a_write_names_the_canonical_series() -> None:
    """Labels out of order name the same series as the canonical text (via the parser)."""
    with pytest.raises(InvalidData):
        SeriesKey.parse("a/b")
    assert str(SeriesKey.parse('d/p/m{b="1",a="2"}')) == 'd/p/m{a="2",b="1"}'


def test_the_catalog_keeps_texts_not_keys() -> None:
    """Series are found by key or text, keys come back from the text, units default to
    empty, and forgetting a failed write's series frees their ids."""
    catalog = Catalog()
    key = SeriesKey.make("h", "p", "m", {"if": "1"})
    other = SeriesKey.make("h", "p", "n")
    catalog.add(NewSeries(0, key, str(key), "B", "float"), 10, 20)
    catalog.add_text(1, str(other), "", "histogram")

    assert catalog.ids.get(key) == catalog.ids[key] == 0
    assert key in catalog.ids
    assert catalog.ids.get("h/p/m") is None  # only keys, never texts
    with pytest.raises(TypeError):
        catalog.ids.get(["unhashable"])
    with pytest.raises(KeyError):
        catalog.ids[SeriesKey.make("x", "y", "z")]
    assert catalog.key(1) == other
    assert (catalog.unit(0), catalog.unit(1)) == ("B", "")
    meta = catalog.meta(0)
    assert (meta.key, meta.unit, meta.kind, meta.first_ts, meta.last_ts) == (
        key, "B", "float", 0.01, 0.02)
    assert len(catalog) == 2

    new = NewSeries(2, SeriesKey.make("h", "p", "o"), "h/p/o", "", "float")
    catalog.add(new)
    catalog.forget([new])
    assert len(catalog) == 2
    assert catalog.next_id == 2
    assert "h/p/o" not in catalog.ids_by_text
    with pytest.raises(KeyError):
        catalog.text(2)


def test_tails_are_unknown_none_or_a_chunk() -> None:
    """A series' tail is unknown until set, None without chunks, and forgotten on delete."""
    tails = Tails()
    assert tails.get(5) is UNKNOWN
    tails.set(5, Tail(1000, 2000, 7))
    tails.set(200, None)
    assert tails.get(5) == Tail(1000, 2000, 7)
    assert tails.get(200) is None
    assert tails.get(6) is UNKNOWN
    tails.forget(5)
    tails.forget(10_000)
    assert tails.get(5) is UNKNOWN


def test_a_series_costs_a_few_hundred_bytes_of_index() -> None:
    """The catalog of 20,000 series takes under 400 bytes a series (key objects in
    four dicts took ~1 KB)."""
    import tracemalloc

    n = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        catalog = Catalog()
        for i in range(n):  # each text made here: the catalog keeps it
            catalog.add_text(i, f'dev{i // 500:05d}/snmp/m{i % 10}{{if="{i // 10 % 50}"}}',
                             "", "float")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(catalog) == n
    assert grown / n < 400


def test_series_a_write_creates_are_added_at_once() -> None:
    """add_new registers a write's new series as add would, one by one."""
    one, many = Catalog(), Catalog()
    new = [NewSeries(i, SeriesKey.make("h", "p", f"m{i}"), f"h/p/m{i}", "B" if i == 3 else "",
                     "histogram" if i == 1 else "float") for i in range(70)]
    for series in new:
        one.add(series)
    many.add_new(new)
    many.add_new([])
    for catalog in (one, many):
        assert len(catalog) == 70
        assert catalog.next_id == 70
    for series in new:
        assert many.ids_by_text[series.text] == one.ids_by_text[series.text] == series.sid
        assert many.meta(series.sid) == one.meta(series.sid)


def test_new_series_have_no_tail() -> None:
    """set_none marks new series as having no chunk, growing the arrays as needed."""
    tails = Tails()
    tails.set_none([3, 500])
    tails.set_none([])
    assert tails.get(3) is None
    assert tails.get(500) is None
    assert tails.get(4) is UNKNOWN
