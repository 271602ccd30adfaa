"""The one mapping between Prometheus label sets and watchkeeper series keys (decision D-prom).

Every ecosystem route uses it: remote write and the ``prometheus`` collector going in,
``/federate`` (and the PromQL API) going out, so a series written by Prometheus comes back
with exactly its labels.

In: ``{__name__=N, instance=I, job=J, rest...}`` is ``I/J/N{rest}`` when ``instance`` and
``job`` are both present and valid watchkeeper names (and not both ``prometheus``, which
would read back as the fallback form below and lose them); otherwise
``prometheus/prometheus/N{every other label, instance and job included}``.

Out: ``S/P/M{L}`` is ``{__name__=M, **L}`` when ``S == P == "prometheus"``; otherwise
``{__name__=sanitize(M), instance=S, job=P, **L}``, where a label of ``L`` named
``instance`` or ``job`` (a native series may carry one) becomes ``exported_instance`` /
``exported_job``, as Prometheus renames a clashing scraped label.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence

from watchkeeper.errors import InvalidData
from watchkeeper.model.measurement import SeriesKey

FALLBACK = "prometheus"
"""Subject and plugin of a series whose labels carry no usable ``instance``/``job``."""
NAME_LABEL = "__name__"
STALE_BITS = 0x7FF0000000000002
"""The bits of Prometheus' stale marker, the NaN it writes when a series disappears. It is
stored as sent (decision D42): PromQL ends the series at it, ``/federate`` leaves the
series out, a native read shows it as a NaN point."""

_WK_NAME = re.compile(r"^[A-Za-z0-9_.:@-]+$")
_PROM_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9_:]")


def key_text(labels: Sequence[tuple[str, str]]) -> str:
    """The series key text of one Prometheus label set (pairs, any order).

    Empty values are absent labels, as in Prometheus. Raises :class:`InvalidData` for a
    missing or invalid ``__name__`` or a label name that is not an identifier.
    """
    name = ""
    instance = job = None
    rest: list[tuple[str, str]] = []
    for label, value in labels:
        if label == NAME_LABEL:
            name = value
        elif not value:
            continue
        elif label == "instance":
            instance = value
        elif label == "job":
            job = value
        else:
            rest.append((label, value))
    if not name:
        raise InvalidData("a series needs a __name__ label", field="labels",
                          value=_show(labels))
    if not _WK_NAME.match(name):
        raise InvalidData("metric names use only letters, digits and _ :", field="__name__",
                          value=name)
    if (instance is not None and job is not None and _WK_NAME.match(instance)
            and _WK_NAME.match(job) and not instance == job == FALLBACK):
        return _text(instance, job, name, rest)
    if instance is not None:
        rest.append(("instance", instance))
    if job is not None:
        rest.append(("job", job))
    return _text(FALLBACK, FALLBACK, name, rest)


def to_key(labels: Mapping[str, str] | Sequence[tuple[str, str]]) -> SeriesKey:
    """The :class:`SeriesKey` of one Prometheus label set."""
    pairs = list(labels.items()) if isinstance(labels, Mapping) else list(labels)
    return SeriesKey.parse(key_text(pairs))


def to_labels(key: SeriesKey) -> dict[str, str]:
    """The Prometheus label set of a series key (``__name__`` first)."""
    if key.subject == FALLBACK and key.plugin == FALLBACK:
        return {NAME_LABEL: key.metric, **dict(key.labels)}
    out = {NAME_LABEL: sanitize(key.metric), "instance": key.subject, "job": key.plugin}
    for label, value in key.labels:
        out[f"exported_{label}" if label in ("instance", "job") else label] = value
    return out


def is_metric_name(name: str) -> bool:
    """Whether ``name`` is a valid Prometheus metric name (``[a-zA-Z_:][a-zA-Z0-9_:]*``)."""
    return bool(name) and not name[0].isdigit() and not _NOT_METRIC_CHAR.search(name)


@functools.lru_cache(maxsize=65_536)
def sanitize(metric: str) -> str:
    """A Prometheus metric name: each character outside ``[a-zA-Z0-9_:]`` becomes ``_``,
    and a leading digit gets ``_`` before it (``cpu.percent`` -> ``cpu_percent``)."""
    name = _NOT_METRIC_CHAR.sub("_", metric)
    return f"_{name}" if name[:1].isdigit() else name


def _text(subject: str, plugin: str, name: str, rest: Iterable[tuple[str, str]]) -> str:
    pairs = sorted(rest)
    for label, _ in pairs:
        if not _PROM_LABEL.match(label):
            raise InvalidData("label names are identifiers", field="labels", value=label)
    if not pairs:
        return f"{subject}/{plugin}/{name}"
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return f"{subject}/{plugin}/{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _show(labels: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels)[:200] + "}"
