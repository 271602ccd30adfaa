"""From collector settings and devices to scheduled jobs: plugins loaded, options validated.

Used by the runtime (``up``, ``collect``), the :class:`~watchkeeper.collect.manager.Manager`
and remote collectors alike, so every path refuses the same mistakes the same way: an
unknown plugin, a collector name no series may carry, a wrong option type, a device that
is not in the inventory, a bad connection setting; each named with its file and line when a
:class:`Locator` knows them.

:class:`CollectorPool` keeps collector instances across rebuilds (a remote collector
rebuilds on every config change): an unchanged collector keeps its instance, so its
state (connections, counters, cursors) survives, and only dropped ones are closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from watchkeeper import plugins
from watchkeeper.collect.abc import Collector
from watchkeeper.collect.scheduler import Job
from watchkeeper.errors import ConfigError, InvalidData, PluginError
from watchkeeper.model import Device, SeriesKey
from watchkeeper.settings import CollectorSettings, Locator

log = logging.getLogger(__name__)

_NOWHERE = Locator(None, {}, {})


def validate_options(options: dict[str, Any], model: type[Any], locator: Locator,
                     path: str) -> Any:
    """``options`` converted to the plugin's ``Options``; errors point at the config line."""
    try:
        return msgspec.convert(options, model, str_keys=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        sub = where.rstrip("`").lstrip(".")
        for prefix, text in (("Object contains unknown field", "unknown option"),
                             ("Object missing required field", "required option is missing")):
            if message.startswith(prefix):
                sub = message.split("`")[1] if "`" in message else sub
                message = text
        full = f"{path}.{sub}" if sub else path
        value = options.get(sub) if sub and "." not in sub and "[" not in sub else None
        raise locator.error(full, message, value) from None


def select_devices(devices: Sequence[Device], selectors: Sequence[str]) -> list[Device]:
    """Devices matching any selector (name, ``tag:X``, ``group:X``, ``*``), in order.

    A plain name that matches no device is an error: a typo must not select nothing.
    """
    names = {d.name for d in devices}
    for selector in selectors:
        if selector != "*" and ":" not in selector and selector not in names:
            raise ConfigError(f"no device {selector!r} in the inventory "
                              f"(devices: {', '.join(sorted(names)) or 'none'})")
    return [d for d in devices if any(d.matches(s) for s in selectors)]


class CollectorPool:
    """Builds jobs from settings, reusing the instance of every unchanged collector."""

    def __init__(self) -> None:
        self._instances: dict[str, tuple[bytes, Collector]] = {}

    def collectors(self) -> list[Collector]:
        return [collector for _, collector in self._instances.values()]

    def build(
        self,
        specs: Sequence[CollectorSettings],
        devices: Sequence[Device],
        *,
        locator: Locator | None = None,
    ) -> tuple[list[Job], list[Collector]]:
        """The jobs for ``specs`` on ``devices``, and the dropped collectors to ``aclose``.

        Validates everything before changing the pool, so a bad config leaves it as it was.
        """
        locator = locator or _NOWHERE
        built: dict[str, tuple[bytes, Collector]] = {}
        jobs: list[Job] = []
        for index, spec in enumerate(specs):
            path = f"collectors[{index}]"
            if spec.name in built:
                raise locator.error(f"{path}.name", "collector names must be unique", spec.name)
            identity = msgspec.json.encode([spec.plugin, spec.options])
            kept = self._instances.get(spec.name)
            if kept is not None and kept[0] == identity:
                collector = kept[1]
            else:
                collector = build_collector(spec, locator=locator, path=path)
            built[spec.name] = (identity, collector)
            jobs.extend(_jobs_of(collector, spec, devices, locator, path))
        dropped = [c for key, (ident, c) in self._instances.items()
                   if built.get(key, (b"", None))[1] is not c]
        self._instances = built
        return jobs, dropped


def check_name(spec: CollectorSettings, locator: Locator, path: str) -> None:
    """Refuse a collector name that every poll would fail on: it is the plugin part of each
    series key the collector writes (``device/<name>/metric``), which has its own rules."""
    try:
        SeriesKey.make("device", spec.name, "metric")
    except InvalidData:
        raise locator.error(f"{path}.name", "a collector name is non-empty and uses only "
                            "letters, digits and _ . : @ - (it names its series)",
                            spec.name) from None


def build_collector(spec: CollectorSettings, *, locator: Locator | None = None,
                    path: str = "collector") -> Collector:
    """Load ``spec.plugin``, validate its options and construct it (no I/O happens here)."""
    locator = locator or _NOWHERE
    check_name(spec, locator, path)
    try:
        cls = plugins.load(plugins.COLLECTORS, spec.plugin, plugins.subclass_of(Collector))
    except PluginError as exc:
        raise locator.error(f"{path}.plugin", str(exc), spec.plugin) from None
    options = validate_options(spec.options, cls.Options, locator, f"{path}.options")
    if spec.interval <= 0 or spec.timeout <= 0:
        raise locator.error(f"{path}.interval", "interval and timeout must be positive",
                            spec.interval)
    collector: Collector = cls(options, name=spec.name)
    return collector


def build_jobs(specs: Sequence[CollectorSettings], devices: Sequence[Device], *,
               locator: Locator | None = None) -> list[Job]:
    """One pass of :meth:`CollectorPool.build` with a fresh pool."""
    jobs, _ = CollectorPool().build(specs, devices, locator=locator)
    return jobs


def _jobs_of(collector: Collector, spec: CollectorSettings, devices: Sequence[Device],
             locator: Locator, path: str) -> Iterable[Job]:
    try:
        selected = select_devices(devices, spec.devices)
    except ConfigError as exc:
        raise locator.error(f"{path}.devices", _bare(exc), spec.devices) from None
    try:
        return [Job(collector=collector, spec=job, timeout=spec.timeout)
                for job in collector.jobs(selected, (spec.interval,))]
    except ConfigError as exc:
        raise locator.error(f"{path}.devices", _bare(exc)) from None


def _bare(exc: ConfigError) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("<settings>") else text


CLOSE_TIMEOUT = 5.0
"""Seconds one collector's ``aclose`` may take at shutdown before it is given up on."""


async def close_collectors(collectors: Iterable[Collector], *,
                           timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109 - per close
    """``aclose`` each once, each within ``timeout``; one failing or hanging never stops the
    others closing, nor the process stopping."""
    seen: set[int] = set()
    for collector in collectors:
        if id(collector) in seen:
            continue
        seen.add(id(collector))
        try:
            async with asyncio.timeout(timeout):
                await collector.aclose()
        except TimeoutError:
            log.warning("closing collector %s took over %gs; given up", collector.name, timeout)
        except Exception:
            log.exception("closing collector %s failed", collector.name)
