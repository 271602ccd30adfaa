"""Graphite plaintext (``path value timestamp``) and templates mapping dotted paths to
series (pure; no I/O).

A template is written as InfluxDB's graphite input writes them: ``[filter] template
[tag=value,...]``. The filter (``servers.*.cpu``: ``*`` matches one node) picks the paths
it applies to; the template names the path's nodes in order: ``host`` (or ``subject``)
the series' subject, ``plugin`` its plugin, ``metric`` (or ``measurement``) and ``field``
its metric (joined with ``.``), an empty name skips the node, any other word makes a label.
A ``*`` after the last name takes every remaining node (``metric*``). The most specific
template whose filter matches maps the path (as InfluxDB chooses: longer filters first,
then fewer ``*``, then settings order; a template without filter matches everything and
comes last); no match: ``graphite/graphite/<path>``. Example: collectd's ``write_graphite`` sends
``host.cpu-0.cpu-idle``; ``host.plugin.metric*`` makes it ``host/cpu-0/cpu-idle``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from watchkeeper.errors import InvalidData

DEFAULT = "graphite"
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.:@-]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SUBJECT = frozenset({"host", "subject"})
_METRIC = frozenset({"metric", "measurement", "field"})


@dataclass(frozen=True)
class Template:
    """One parsed template (see the module's description)."""

    filter: tuple[str, ...]
    names: tuple[str, ...]
    greedy: bool
    tags: tuple[tuple[str, str], ...] = field(default=())

    def matches(self, nodes: Sequence[str]) -> bool:
        if not self.filter:
            return True
        if len(nodes) < len(self.filter):
            return False
        return all(f in ("*", n) for f, n in zip(self.filter, nodes, strict=False))

    def key_text(self, nodes: Sequence[str]) -> str:
        """The series key text of a path's nodes under this template."""
        subject, plugin, metric = DEFAULT, DEFAULT, []
        labels = dict(self.tags)
        last = len(self.names) - 1
        for i, name in enumerate(self.names):
            if i >= len(nodes):
                break
            taken = nodes[i:] if (i == last and self.greedy) else nodes[i:i + 1]
            value = ".".join(taken)
            if not name:
                continue
            if name in _SUBJECT:
                subject = value
            elif name == "plugin":
                plugin = value
            elif name in _METRIC:
                metric.append(value)
            else:
                labels[name] = value
        if not metric:  # a template naming no metric: the rest of the path is the metric
            metric = [".".join(nodes[len(self.names):]) or DEFAULT]
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        base = f"{_name(subject)}/{_name(plugin)}/{_name('.'.join(metric))}"
        return f"{base}{{{inner}}}" if inner else base


def parse_template(text: str) -> Template:
    """A template from its settings text; InvalidData naming what is wrong."""
    words = text.split()
    tags: tuple[tuple[str, str], ...] = ()
    if words and "=" in words[-1]:
        pairs = words.pop().split(",")
        for pair in pairs:
            if "=" not in pair:
                raise InvalidData(f"tag {pair!r} is not tag=value", field="graphite.templates",
                                  value=text)
        tags = tuple((tag, value) for tag, value in (p.split("=", 1) for p in pairs))
    if len(words) not in (1, 2):
        raise InvalidData("expected [filter] template [tag=value,...]", field="graphite.templates",
                          value=text)
    pattern = words[-1]
    greedy = pattern.endswith("*")
    names = tuple(pattern.rstrip("*").split("."))
    for name in names:
        if name and name not in _SUBJECT | _METRIC | {"plugin"} and not _IDENT.match(name):
            raise InvalidData(f"{name!r} is not a node name", field="graphite.templates",
                              value=text)
    for tag, _ in tags:
        if not _IDENT.match(tag):
            raise InvalidData(f"{tag!r} is not a label name", field="graphite.templates",
                              value=text)
    return Template(filter=tuple(words[0].split(".")) if len(words) == 2 else (),
                    names=names, greedy=greedy, tags=tags)


def key_text(path: str, templates: Sequence[Template]) -> str:
    """The series of a dotted path: the first matching template's, or the default."""
    nodes = path.split(".")
    for template in by_specificity(templates):
        if template.matches(nodes):
            return template.key_text(nodes)
    return f"{DEFAULT}/{DEFAULT}/{_name(path)}"


def by_specificity(templates: Sequence[Template]) -> list[Template]:
    """The order templates are tried in (see the module's description)."""
    return sorted(templates, key=lambda t: (-len(t.filter), t.filter.count("*")))


def parse_line(line: str, now: float) -> tuple[str, float, float]:
    """``path value [timestamp]`` as (path, seconds, value); InvalidData for a bad line.

    A missing timestamp, or ``-1`` (as carbon takes it), means now.
    """
    parts = line.split()
    if len(parts) not in (2, 3):
        raise InvalidData("expected 'path value timestamp'", field="line", value=line[:200])
    try:
        value = float(parts[1])
        stamp = now if len(parts) == 2 or parts[2] == "-1" else float(parts[2])
    except ValueError:
        raise InvalidData("value and timestamp must be numbers", field="line",
                          value=line[:200]) from None
    if not math.isfinite(stamp):
        raise InvalidData("timestamp must be finite", field="line", value=line[:200])
    return parts[0], stamp, value


def _name(text: str) -> str:
    return _NOT_NAME.sub("_", text) or "_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
