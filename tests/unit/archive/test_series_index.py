"""The postings behind ``find_series`` (archive/backends/_index.py): kept up to date as
the catalog grows, built again when a failed write gave its ids back."""

from __future__ import annotations

import random

import pytest

from watchkeeper.archive import SeriesQuery
from watchkeeper.archive.backends import _index
from watchkeeper.archive.backends._catalog import Catalog, NewSeries
from watchkeeper.archive.backends._index import SeriesIndex
from watchkeeper.model import SeriesKey


def _new(catalog: Catalog, *texts: str) -> list[NewSeries]:
    first = catalog.next_id
    series = [NewSeries(first + i, SeriesKey.parse(t), t, "", "float")
              for i, t in enumerate(texts)]
    catalog.add_new(series)
    return series


def _texts(index: SeriesIndex, catalog: Catalog, query: SeriesQuery) -> tuple[list[str], int]:
    sids, total = index.find(query, None, 0)
    return [catalog.text(sid) for sid in sids], total


def test_series_added_after_a_search_are_found() -> None:
    catalog = Catalog()
    index = SeriesIndex(catalog)
    _new(catalog, 'web1/http/latency{host="a"}', "web1/snmp/if.in")
    assert _texts(index, catalog, SeriesQuery(plugin="http")) == (
        ['web1/http/latency{host="a"}'], 1)
    _new(catalog, 'db1/http/latency{host="b"}')
    assert _texts(index, catalog, SeriesQuery(metric="latency")) == (
        ['db1/http/latency{host="b"}', 'web1/http/latency{host="a"}'], 2)


def test_ids_given_back_and_reused_are_indexed_again() -> None:
    catalog = Catalog()
    index = SeriesIndex(catalog)
    _new(catalog, "a/p/m")
    failed = _new(catalog, 'b/p/m{x="1"}', 'c/p/m{x="1"}')
    assert _texts(index, catalog, SeriesQuery(labels=(("x", "1"),)))[1] == 2
    catalog.forget(failed)  # the write's commit failed: its ids are handed out again
    _new(catalog, 'd/q/m{x="2"}')
    assert _texts(index, catalog, SeriesQuery(labels=(("x", "1"),))) == ([], 0)
    assert _texts(index, catalog, SeriesQuery(labels=(("x", "2"),))) == (['d/q/m{x="2"}'], 1)
    assert _texts(index, catalog, SeriesQuery(plugin="p")) == (["a/p/m"], 1)


def test_a_page_comes_in_key_order_from_a_heap_or_a_sort() -> None:
    catalog = Catalog()
    index = SeriesIndex(catalog)
    texts = [f"h{i:03d}/p/m" for i in range(200)]
    _new(catalog, *reversed(texts))
    for limit, offset in ((5, 0), (5, 10), (150, 20), (None, 190)):
        sids, total = index.find(SeriesQuery(plugin="p"), limit, offset)
        end = None if limit is None else offset + limit
        assert ([catalog.text(s) for s in sids], total) == (texts[offset:end], 200)


@pytest.mark.parametrize("few", [0, 3, 20_000])
def test_many_and_few_take_the_same_answer(monkeypatch: pytest.MonkeyPatch, few: int) -> None:
    """Over many series texts are tested in one byte array and pages ordered by rank;
    over few, one by one: the same answers, series created after the ranking included."""
    monkeypatch.setattr(_index, "_FEW", few)
    monkeypatch.setattr(_index, "_FEW_SORTED", few)
    rng = random.Random(few)
    catalog = Catalog()
    index = SeriesIndex(catalog)

    def text() -> str:
        value = rng.choice(["eth0", "eth1", 'q"uote', "é", "new\nline", "x", "a,b=c"])
        return str(SeriesKey.make(rng.choice(["web1", "web2", "db1"]), rng.choice(["a", "b"]),
                                  rng.choice(["m1", "m2"]), {"if": value, "n": str(rng.random())}))

    queries = [SeriesQuery(plugin="a"), SeriesQuery(match=("eth",)), SeriesQuery(prefix="web"),
               SeriesQuery(prefix="web1/a", match=("é", "if=")), SeriesQuery(prefix="xeb1/"),
               SeriesQuery(match=('q\\"u',)), SeriesQuery(labels=(("if", "eth0"),)),
               SeriesQuery(labels=(("if", "a,b=c"),)),
               SeriesQuery(match=("\n",)), SeriesQuery(match=("\\n",)), SeriesQuery(kind="float"),
               SeriesQuery(labels=(("if", "new\nline"),), match=("0.",))]
    for _ in range(3):  # each round adds series after the last search (and its ranking)
        _new(catalog, *{text() for _ in range(300)} - set(catalog.ids_by_text))
        every = sorted(catalog.ids_by_text)
        for query in queries:
            expected = [t for t in every if query.matches(SeriesKey.parse(t), "float")]
            for limit, offset in ((None, 0), (7, 0), (5, 11)):
                sids, total = index.find(query, limit, offset)
                end = None if limit is None else offset + limit
                assert ([catalog.text(s) for s in sids], total) == (expected[offset:end],
                                                                   len(expected)), query
