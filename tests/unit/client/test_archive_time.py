"""Free-form times of the archive tools."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchkeeper.cli.archive_time import TimeParseError, parse_time

NOW = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("1398816000", 1398816000),
    ("1398816000.7", 1398816000),
    ("2014-04-30", 1398816000),
    ("2014-04-30 12:00", 1398859200),
    ("2014-04-30T12:00:00+02:00", 1398852000),
    ("2014-04-30T10:00:00Z", 1398852000),
    ("04/30/2014", 1398816000),
    ("2014/04/30", 1398816000),
    ("January 1", int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())),
    ("Jan 1 2015", 1420070400),
    ("1 January 2015 10:30", 1420108200),
    ("now", int(NOW.timestamp())),
    ("today", int(datetime(2026, 5, 5, tzinfo=UTC).timestamp())),
    ("yesterday", int(datetime(2026, 5, 4, tzinfo=UTC).timestamp())),
    ("2h ago", int(NOW.timestamp()) - 7200),
    ("30 minutes ago", int(NOW.timestamp()) - 1800),
    ("1d", int(NOW.timestamp()) - 86400),
    ("3 weeks ago", int(NOW.timestamp()) - 3 * 604800),
])
def test_accepted_forms(text: str, expected: int) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "someday", "2014-13-01", "Febtober 3", "5 parsecs ago",
                                  "January 32"])
def test_refused_forms_say_what_is_accepted(text: str) -> None:
    with pytest.raises(TimeParseError):
        parse_time(text, now=NOW)
