"""get-bulk's fast CSV path for numeric series writes exactly what the generic path writes."""

from __future__ import annotations

import io

from watchkeeper.cli.archive_bulk import _fast_numeric_lines, _numeric_prefix
from watchkeeper.cli.archive_format import CsvWriter, columns, rows
from watchkeeper.client._archive_models import WirePoint


def test_fast_path_equals_the_csv_writer() -> None:
    common = {"source": "10.0.0.1", "destination": "host, with comma", "event_type": "throughput",
              "tool": "bwctl/tracepath,traceroute", "summary_type": "base", "summary_window": 0}
    cols = columns("numeric", None)
    page = [WirePoint(0, 1.5), WirePoint(1398816005, 9e9), WirePoint(1398902399, 7),
            WirePoint(4102444800, 0.1 + 0.2)]
    generic = io.StringIO()
    CsvWriter(generic, cols).write(rows("numeric", common, page))
    prefix = _numeric_prefix("numeric", common, cols)
    assert prefix is not None
    assert _fast_numeric_lines(prefix, page) == generic.getvalue()
