"""The ingest-log form of a write batch: round trip, and refusal of corrupt rows."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.archive.backends._batch import LOG_VERSION, columnize, decode_batch, encode_batch
from watchkeeper.archive.backends._catalog import Catalog
from watchkeeper.errors import ArchiveError
from watchkeeper.model import Measurement, SeriesKey

T0 = 1_700_000_000.0
A = SeriesKey.make("h", "p", "a")
B = SeriesKey.make("h", "p", "b", {"x": "1"})


def test_a_batch_survives_the_log() -> None:
    """Floats and histograms come back column for column, bit for bit."""
    batch = columnize(
        [
            Measurement(key=A, ts=T0, value=-0.0),
            Measurement(key=B, ts=T0 + 0.5, histogram={"1": 2}),
            Measurement(key=A, ts=T0 + 1, value=float("nan")),
        ],
        Catalog(),
    )

    back = decode_batch(encode_batch(batch))

    assert [s.key for s in batch.new_series] == [A, B]
    assert back.f_sids.tolist() == batch.f_sids.tolist() == [0, 0]
    assert back.f_ts.tolist() == [T0 * 1000, T0 * 1000 + 1000]
    assert back.f_values.view(np.uint64).tolist() == batch.f_values.view(np.uint64).tolist()
    assert (back.h_sids.tolist(), back.h_ts.tolist()) == ([1], [T0 * 1000 + 500])
    assert back.h_values.tolist() == [{"1": 2}]


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(bytes([LOG_VERSION + 1]) + b"x", id="unknown-version"),
        pytest.param(bytes([LOG_VERSION]) + b"not zstd", id="not-zstd"),
        pytest.param(bytes([LOG_VERSION]), id="no-body"),
    ],
)
def test_corrupt_rows_are_refused(blob: bytes) -> None:
    with pytest.raises(ArchiveError, match="ingest log row"):
        decode_batch(blob)
