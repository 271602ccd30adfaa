"""Series a columnar write creates in bulk (_newseries, NewSeriesBlock): the same catalog
and series rows as the one-by-one way, and nothing left behind by a failed write."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from watchkeeper.archive.abc import Columns
from watchkeeper.archive.backends._batch import columnize_columns
from watchkeeper.archive.backends._catalog import Catalog, NewSeriesBlock
from watchkeeper.archive.backends._newseries import all_plain, key_columns
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends._writer import Writer
from watchkeeper.model import Measurement, SeriesKey

T0 = 1_700_000_000.0

PLAIN = [
    "a/b/c",
    'dev00042/snmp/m3{if="17"}',
    'd/p/m{a="x,y=1",b=""}',
    'd/p/m{a="1",b="2",c="é ü"}',
    'd/p/m{mount="/var/lib",q="{x}",r="x}",s="a=b",t="a,"}',
    'd/p/m{a=""}',
    'd/p/m{a="",b="x"}',
    'd/p/m{a="x}",b="y,"}',
    "h.x:1@y-z_/p/m",
    'h/p/m{_a="1",a="2",b_1="3"}',
]
NOT_PLAIN = [
    'd/p/m{b="1",a="2"}',  # labels out of order
    'd/p/m{a="1",a="2"}',  # a label twice
    'd/p/m{a="x\\"y"}',  # an escape
    'd/p/m{a="tab\there"}',  # a control character: JSON would escape it
    'd/p/m{a="x="}',  # "=" last: '="' would be ambiguous
    'd/p/m{a=",x"}',  # "," first: '",' would be
    'd/p/m{a="}"}',  # "}" first: '"}' would be
    'd/p/m{a="1",b=","}',
    'd/p/m{a="1\nx/y/z"}',  # a newline: would pass as two lines
    "a/b/c\nd/e/f",
    "d/p/m{}",
    "a/b",
    "a/b/c/d",
    "a b/c/d",
    "",
]


def test_plain_texts_split_as_the_keys_do() -> None:
    """key_columns gives each text's subject, plugin, metric and labels JSON exactly as the
    one-by-one way stores them (from SeriesKey and msgspec)."""
    assert all_plain(PLAIN)
    subjects, plugins, metrics, labels = key_columns(PLAIN)
    for i, text in enumerate(PLAIN):
        key = SeriesKey.parse(text)
        assert str(key) == text
        assert (subjects[i], plugins[i], metrics[i]) == (key.subject, key.plugin, key.metric)
        assert labels[i] == msgspec.json.encode(key.labels).decode()
    assert key_columns([]) == ([], [], [], [])


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_other_texts_are_not_plain(text: str) -> None:
    """One text that is not plain (or not canonical, or not valid) sends the whole batch
    the one-by-one way, wherever it is among plain ones."""
    assert not all_plain([text])
    assert not all_plain([*PLAIN, text])
    assert not all_plain([text, *PLAIN])


def _columns(texts: list[str], units: dict[str, str] | None = None) -> Columns:
    n = len(texts)
    return Columns(series=texts, index=np.arange(n, dtype=np.int32), ts=np.full(n, T0),
                   values=np.arange(n, dtype=np.float64), units=units or {})


def _writer(path: Path) -> Writer:
    writer = Writer(Store.open(path, writer=True), chunk_points=480, max_log_points=10**6)
    writer.load()
    return writer


def _state(writer: Writer) -> dict[str, Any]:
    catalog = writer.catalog
    n = catalog.next_id
    rows = writer.store._conn.execute(
        "SELECT id, key, subject, plugin, metric, labels, unit, kind FROM series ORDER BY id"
    ).fetchall()
    return {
        "rows": rows,
        "ids": dict(catalog.ids_by_text),
        "texts": [catalog.text_of(sid) for sid in range(n)],
        "metas": [catalog.meta(sid) for sid in range(n)],
        "kinds": catalog.kinds[:n].tolist(),
        "count": len(catalog),
        "next_id": n,
    }


def test_a_bulk_write_gives_the_catalog_and_rows_of_one_by_one_writes(tmp_path: Path) -> None:
    """The same series written as one columnar batch (a block) and one measurement at a
    time: the same ids, texts, kinds, units, ranges and series rows, also after a restart."""
    texts = [*PLAIN, PLAIN[1], "x/y/z"]  # one named twice: one series
    units = {"a/b/c": "ms", PLAIN[3]: "B"}
    bulk = _writer(tmp_path / "bulk.sqlite3")
    batch = columnize_columns(_columns(texts, units), bulk.catalog)
    assert isinstance(batch.new_series, NewSeriesBlock)  # the fast way was taken
    assert bulk.write_columns(_columns(texts, units)) == len(texts)

    one = _writer(tmp_path / "one.sqlite3")
    for i, text in enumerate(dict.fromkeys(texts)):
        one.write([Measurement(key=SeriesKey.parse(text), ts=T0, value=float(i),
                               unit=units.get(text, ""))])
    bulk.settle()
    one.settle()
    expected = _state(one)
    assert _state(bulk) == expected
    assert expected["count"] == len(PLAIN) + 1
    for writer in (bulk, one):
        writer.close()
    assert _state(_writer(tmp_path / "bulk.sqlite3")) == _state(_writer(tmp_path / "one.sqlite3"))


def test_a_block_reads_as_new_series() -> None:
    """Other backends read a block one NewSeries at a time: ids in order, parsed keys."""
    catalog = Catalog()
    batch = columnize_columns(_columns(PLAIN, {PLAIN[0]: "s"}), catalog)
    block = batch.new_series
    assert isinstance(block, NewSeriesBlock)
    assert [s.sid for s in block] == list(range(len(PLAIN)))
    assert [s.key for s in block] == [SeriesKey.parse(t) for t in PLAIN]
    assert [s.text for s in block[1:3]] == PLAIN[1:3]
    assert (block[0].unit, block[-1].unit, block[-1].kind) == ("s", "", "float")
    with pytest.raises(IndexError):
        block[len(PLAIN)]


def test_a_batch_with_one_text_not_plain_takes_the_one_by_one_way() -> None:
    """Labels out of order name the canonical series, as before the block existed."""
    catalog = Catalog()
    batch = columnize_columns(_columns(['d/p/m{b="1",a="2"}', 'd/p/m{a="2",b="1"}']),
                              catalog)
    assert not isinstance(batch.new_series, NewSeriesBlock)
    assert [s.text for s in batch.new_series] == ['d/p/m{a="2",b="1"}']
    assert batch.series_table is not None
    assert batch.series_table.tolist() == [0, 0]


def test_a_failed_bulk_write_leaves_no_new_series(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the commit fail, neither the catalog nor the file keeps a series of it, and
    the next write of the same series gets the same ids."""
    writer = _writer(tmp_path / "a.sqlite3")
    assert writer.write_columns(_columns(["k/p/m"])) == 1
    before = _state(writer)

    def broken(seq: int, blob: bytes) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer.store, "append_log", broken)
    with pytest.raises(sqlite3.OperationalError):
        writer.write_columns(_columns(PLAIN))
    assert _state(writer) == before
    assert all(text not in writer.catalog.ids_by_text for text in PLAIN)
    monkeypatch.undo()

    assert writer.write_columns(_columns(PLAIN)) == len(PLAIN)
    assert [writer.catalog.ids_by_text[text] for text in PLAIN] == list(
        range(1, len(PLAIN) + 1))
    writer.close()
    reopened = _writer(tmp_path / "a.sqlite3")
    assert len(reopened.catalog) == len(PLAIN) + 1
