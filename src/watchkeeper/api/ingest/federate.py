"""Series selectors (``name{l="v",l!="v",l=~"re",l!~"re"}``) and the text exposition
format, for ``/federate`` (pure; no I/O).

Selectors match the Prometheus label sets of :mod:`watchkeeper.model.promlabels`, so a
Prometheus scraping ``/federate`` sees every series by the labels it would query.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from watchkeeper.errors import InvalidData
from watchkeeper.model import promlabels

_NAME: Final = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*")
_MATCHER: Final = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,)?\s*')
_UNESCAPE: Final = re.compile(r"\\(.)")
_ESCAPES: Final = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}


@dataclass(frozen=True)
class Matcher:
    """One label matcher; a missing label matches as the empty string (as in Prometheus)."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """A series selector: every matcher must match."""

    matchers: tuple[Matcher, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def parse_selector(text: str) -> Selector:
    """A selector from its text; InvalidData (naming the text) when it is not one.

    Like Prometheus, a selector must have a matcher that does not match the empty string.
    """
    matchers: list[Matcher] = []
    pos = 0
    name = _NAME.match(text)
    if name:
        matchers.append(Matcher("__name__", "=", name.group(1)))
        pos = name.end()
    if pos < len(text):
        if text[pos] != "{" or not text.rstrip().endswith("}"):
            raise InvalidData("expected name{label=\"value\",...}", field="match[]", value=text)
        body, pos, end = text.rstrip()[:-1], pos + 1, len(text.rstrip()) - 1
        while pos < end:
            found = _MATCHER.match(body, pos)
            if not found:
                raise InvalidData(f"bad matcher at {body[pos:]!r}", field="match[]", value=text)
            value = _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), found.group(3))
            if found.group(2) in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise InvalidData(f"bad regular expression {value!r}: {exc}",
                                      field="match[]", value=text) from None
            matchers.append(Matcher(found.group(1), found.group(2), value))
            pos = found.end()
            if pos < end and not found.group(4):
                raise InvalidData("matchers are separated by ','", field="match[]", value=text)
    if not any(not m.matches({}) for m in matchers):
        raise InvalidData("a selector needs a matcher that does not match the empty string",
                          field="match[]", value=text)
    return Selector(tuple(matchers))


def is_stale(value: float) -> bool:
    """Whether ``value`` is Prometheus' stale marker: a series whose latest point is one
    has ended, and is not federated (as Prometheus' own ``/federate`` leaves it out)."""
    bits: int = struct.unpack("<Q", struct.pack("<d", value))[0]
    return bits == promlabels.STALE_BITS


def exposition(samples: Iterable[tuple[Mapping[str, str], float, float]]) -> str:
    """Text format 0.0.4: ``# TYPE name untyped`` once per name, then
    ``name{labels} value timestamp_ms`` (samples grouped by name, as the format wants)."""
    by_name: dict[str, list[str]] = {}
    for labels, ts, value in samples:
        name = labels["__name__"]
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())
                         if k != "__name__")
        head = f"{name}{{{inner}}}" if inner else name
        by_name.setdefault(name, []).append(f"{head} {_value(value)} {round(ts * 1000)}")
    out: list[str] = []
    for name in sorted(by_name):
        out.append(f"# TYPE {name} untyped")
        out.extend(by_name[name])
    return "\n".join(out) + "\n" if out else ""


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
