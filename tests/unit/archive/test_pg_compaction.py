"""A PostgreSQL compaction's thread stops between series and between parts of its
encoding (to let reads go first): the chunks it makes are those of one pass."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.archive.abc import Kind
from watchkeeper.archive.backends import _pgcompact
from watchkeeper.archive.backends._chunks import ChunkRow, Flush, Tail
from watchkeeper.archive.backends._head import Grouped, Head


def _grouped(series: int, points: int) -> list[tuple[Kind, Grouped]]:
    head = Head(np.float64)
    rng = np.random.default_rng(3)
    for seq in range(points):
        sids = np.arange(series, dtype=np.int32)
        head.append(seq, sids, np.full(series, 1_000 * seq, dtype=np.int64),
                    rng.normal(size=series))
    return [("float", head.take())]


def test_the_encoding_in_parts_gives_the_chunks_of_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_pgcompact, "ENCODE_POINTS", 250)
    grouped = _grouped(series=7, points=100)
    old: dict[int, tuple[Tail | None, list[ChunkRow]]] = {sid: (None, []) for sid in range(7)}
    pauses: list[int] = []
    deleted, inserted = _pgcompact.flushed(grouped, old, 30, lambda: pauses.append(1))

    one = Flush("float", 30)
    g = grouped[0][1]
    for i in range(len(g.sids)):
        one.add(*g.series(i), None, [])
    assert deleted == one.deleted == []
    assert inserted == one.inserted()
    assert len(inserted) == 7 * 4
    assert len(pauses) >= 7
