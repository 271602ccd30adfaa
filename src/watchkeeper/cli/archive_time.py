"""Free-form times for the archive tools: epoch, ISO 8601, 'January 1', '2h ago', 'now'.

A time without a zone is UTC (as esmond's tools read it with dateutil). A date without a
year is in the current year; a date without a time is midnight.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

MONTHS = {name: i + 1 for i, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"))}
MONTHS.update({name[:3]: number for name, number in list(MONTHS.items())})
MONTHS["sept"] = 9
UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
         "hr": 3600, "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}
_RELATIVE = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*([a-z]+?)s?(?:\s+ago)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_SLASHED = re.compile(r"^(\d{1,4})/(\d{1,2})/(\d{1,4})$")


class TimeParseError(ValueError):
    """The text is not a time this parser understands."""


def parse_time(text: str, *, now: datetime | None = None) -> int:
    """Unix seconds for ``text`` (see the module docstring for the accepted forms)."""
    now = now or datetime.now(tz=UTC)
    value = text.strip().lower()
    if not value:
        raise TimeParseError("empty time")
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return int(float(value))
    if value == "now":
        return int(now.timestamp())
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if value in ("today", "yesterday", "tomorrow"):
        shift = {"today": 0, "yesterday": -1, "tomorrow": 1}[value]
        return int((midnight + timedelta(days=shift)).timestamp())
    relative = _RELATIVE.match(value)
    if relative and relative.group(2) in UNITS:
        return int(now.timestamp() - float(relative.group(1)) * UNITS[relative.group(2)])
    for parse in (_iso, _slashed, _words):
        found = parse(text.strip(), now)
        if found is not None:
            return int(found.timestamp())
    raise TimeParseError(f"cannot read {text!r} as a time (try 2014-04-30, '2014-04-30 12:00',"
                         " 1398816000, 'January 1', '2h ago')")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(text: str, now: datetime) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _slashed(text: str, now: datetime) -> datetime | None:
    match = _SLASHED.match(text)
    if not match:
        return None
    a, b, c = (int(g) for g in match.groups())
    year, month, day = (a, b, c) if len(match.group(1)) == 4 else (c, a, b)  # Y/M/D or M/D/Y
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None


def _words(text: str, now: datetime) -> datetime | None:
    """'January 1', 'Jan 1 2015', '1 January 2015 10:30', 'January 1, 2015 10:30:05'."""
    month = day = year = None
    clock = (0, 0, 0)
    for word in text.lower().replace(",", " ").split():
        token = word.rstrip(".")
        if token in MONTHS and month is None:
            month = MONTHS[token]
        elif (match := _CLOCK.match(token)) is not None:
            clock = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
        elif token.rstrip("stndrh").isdigit():
            number = int(token.rstrip("stndrh"))
            if len(token) == 4 and year is None:
                year = number
            elif day is None and 1 <= number <= 31:
                day = number
            else:
                return None
        elif token in ("utc", "gmt", "z", "at"):
            continue
        else:
            return None
    if month is None:
        return None
    try:
        return datetime(year or now.year, month, day or 1, *clock, tzinfo=UTC)
    except ValueError:
        return None
