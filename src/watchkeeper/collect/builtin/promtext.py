"""Prometheus scraping, the pure part: exposition text to samples and to its families'
metadata, target labels, ``honor_labels``, ``metric_relabel_configs`` and ``file_sd``
files (no I/O here).

Samples are parsed by prometheus_client (``parser`` for text 0.0.4, ``openmetrics.parser``
for OpenMetrics), so what an exporter writes reads as its reference library reads it.
Metadata is read from the ``# TYPE``/``# HELP`` (and OpenMetrics' ``# UNIT``) lines as
Prometheus reads it: by the family name those lines give, help unescaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import msgspec
import yaml
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from watchkeeper.errors import InvalidData
from watchkeeper.model import MetricMetadata

OPENMETRICS = "application/openmetrics-text"
ACCEPT = (f"{OPENMETRICS};version=1.0.0,{OPENMETRICS};version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
"""What Prometheus 2.x asks an exporter for."""

_COMMENT = re.compile(r"^#[ \t]+(HELP|TYPE|UNIT)[ \t]+(\S+)(?:[ \t](.*))?$", re.MULTILINE)
_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
          "summary": "summary", "untyped": "unknown", "unknown": "unknown",
          "gaugehistogram": "gaugehistogram", "info": "info", "stateset": "stateset"}
"""Exposition types as Prometheus' API spells them (text 0.0.4's ``untyped`` is unknown)."""
_UNESCAPE = {"\\\\": "\\", "\\n": "\n"}
_UNESCAPE_OPENMETRICS = {**_UNESCAPE, '\\"': '"'}

Sample = tuple[dict[str, str], float, float | None]
"""Labels (``__name__`` included), value, and the exporter's timestamp (s) if it gave one."""


class Relabel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``metric_relabel_configs`` rule, Prometheus' fields and defaults."""

    source_labels: tuple[str, ...] = ()
    separator: str = ";"
    regex: str = "(.*)"
    target_label: str = ""
    replacement: str = "$1"
    action: Literal["replace", "keep", "drop", "labelkeep", "labeldrop"] = "replace"

    def __post_init__(self) -> None:
        try:
            re.compile(self.regex)
        except re.error as exc:
            raise InvalidData(f"bad regex: {exc}", field="metric_relabel_configs.regex",
                              value=self.regex) from None
        if self.action == "replace" and not self.target_label:
            raise InvalidData("replace needs a target_label", field="metric_relabel_configs")


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A scrape target from a ``file_sd`` file: ``host:port``, scheme, path, labels."""

    address: str
    scheme: str = "http"
    path: str = "/metrics"
    labels: dict[str, str] = msgspec.field(default_factory=dict)


def parse(text: str, content_type: str) -> Iterator[Sample]:
    """Samples of an exposition body; InvalidData when it does not parse."""
    openmetrics = content_type.split(";", maxsplit=1)[0].strip() == OPENMETRICS
    families = (openmetrics_families(text) if openmetrics  # type: ignore[no-untyped-call]
                else text_families(text))
    try:
        for family in families:
            for sample in family.samples:
                if openmetrics and sample.name.endswith("_created"):
                    continue  # creation times are not samples in Prometheus 2.x
                stamp = None if sample.timestamp is None else float(sample.timestamp)
                yield {**sample.labels, "__name__": sample.name}, float(sample.value), stamp
    except ValueError as exc:
        raise InvalidData(f"exposition does not parse: {exc}", field="body") from None


def families(text: str, content_type: str) -> dict[str, MetricMetadata]:
    """Each family's metadata from an exposition's comment lines (a family with help and
    no type is ``unknown``; a family with neither has none, as in Prometheus)."""
    openmetrics = content_type.split(";", maxsplit=1)[0].strip() == OPENMETRICS
    escapes = _UNESCAPE_OPENMETRICS if openmetrics else _UNESCAPE
    found: dict[str, dict[str, str]] = {}
    for match in _COMMENT.finditer(text):
        kind, name, rest = match.group(1), match.group(2), match.group(3) or ""
        if kind == "UNIT" and not openmetrics:  # a plain comment in text 0.0.4
            continue
        entry = found.setdefault(name, {"type": "unknown", "help": "", "unit": ""})
        if kind == "TYPE":
            entry["type"] = _TYPES.get(rest.strip(), "unknown")
        elif kind == "HELP":
            entry["help"] = re.sub(r'\\[\\n"]', lambda m: escapes.get(m.group(0), m.group(0)),
                                   rest.lstrip(" \t"))
        else:
            entry["unit"] = rest.strip()
    return {name: MetricMetadata(**entry) for name, entry in found.items()}


def attach(scraped: dict[str, str], target: Mapping[str, str], *,
           honor_labels: bool) -> dict[str, str]:
    """The target's labels on a scraped sample, as Prometheus attaches them: with
    ``honor_labels`` the scraped value wins a clash, else it is kept as ``exported_<name>``."""
    out = dict(scraped)
    for name, value in target.items():
        if out.get(name):
            if honor_labels:
                continue
            out[f"exported_{name}"] = out[name]
        out[name] = value
    return out


def relabel(labels: dict[str, str], rules: Sequence[Relabel]) -> dict[str, str] | None:
    """``labels`` after the rules; None when a keep/drop rule drops the sample."""
    for rule in rules:
        if rule.action in ("labelkeep", "labeldrop"):
            keep = rule.action == "labelkeep"
            labels = {k: v for k, v in labels.items()
                      if (re.fullmatch(rule.regex, k) is not None) == keep or k == "__name__"}
            continue
        value = rule.separator.join(labels.get(name, "") for name in rule.source_labels)
        match = re.fullmatch(rule.regex, value)
        if rule.action == "keep" and match is None:
            return None
        if rule.action == "drop" and match is not None:
            return None
        if rule.action == "replace" and match is not None:
            result = match.expand(_python_template(rule.replacement))
            if result:
                labels[rule.target_label] = result
            else:
                labels.pop(rule.target_label, None)
    return labels


def _python_template(replacement: str) -> str:
    """Prometheus' ``$1``/``${name}`` replacement as a :meth:`re.Match.expand` template."""
    escaped = replacement.replace("\\", "\\\\")
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: f"\\g<{m.group(1) or m.group(2)}>",
                  escaped)


def file_sd(text: str, *, source: str) -> list[Target]:
    """Targets of a Prometheus ``file_sd`` file (JSON, or YAML by ``source``'s extension):
    a list of ``{targets: [host:port...], labels: {...}}``; ``__scheme__`` and
    ``__metrics_path__`` set the scheme and path, other ``__`` labels are dropped."""
    try:
        groups = (yaml.safe_load(text) if source.endswith((".yml", ".yaml"))
                  else json.loads(text)) or []
        return [target for group in _groups(groups) for target in _targets(group)]
    except (ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
        raise InvalidData(f"not a file_sd target list: {exc}", field="file_sd",
                          value=source) from None


def _groups(loaded: object) -> list[Any]:
    if not isinstance(loaded, list):
        raise TypeError("the file must hold a list of target groups")
    return loaded


def _targets(group: Any) -> list[Target]:
    labels = {str(k): str(v) for k, v in (group.get("labels") or {}).items()}
    scheme = labels.pop("__scheme__", "http")
    path = labels.pop("__metrics_path__", "/metrics")
    labels = {k: v for k, v in labels.items() if not k.startswith("__")}
    return [Target(address=str(address), scheme=scheme, path=path, labels=labels)
            for address in group["targets"]]
