"""Where settings come from: the one place that reads config files and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from watchkeeper.errors import ConfigError
from watchkeeper.settings import Locator, Settings, load_settings


def read_settings(
    config: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> tuple[Settings, Locator]:
    """Settings from ``config`` (or ``$WATCHKEEPER_CONFIG``), the environment and flags."""
    environ = os.environ if env is None else env
    path = config or environ.get("WATCHKEEPER_CONFIG")
    text = None
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration file: {exc.strerror}",
                              file=path) from None
        except UnicodeDecodeError:
            raise ConfigError("the configuration file is not UTF-8 text", file=path) from None
    return load_settings(text, source=path, env=environ, overrides=overrides)


@dataclass(frozen=True)
class CheckSummary:
    """What ``config check`` found buildable."""

    source: str
    devices: int
    collectors: int
    jobs: int
    engines: int

    def __str__(self) -> str:
        return (f"{self.source}: ok ({self.devices} devices, {self.collectors} collectors, "
                f"{self.jobs} jobs, {self.engines} engines)")


def check_config(
    config: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> CheckSummary:
    """Build everything ``up`` builds from the same sources (file, environment, flags),
    opening nothing: so ``config check`` and ``up`` always agree."""
    settings, locator = read_settings(config, env=env, overrides=overrides)
    # Imported here: reading settings must stay light for the client commands.
    from watchkeeper.clock import SystemClock
    from watchkeeper.inventory import StaticInventory
    from watchkeeper.pipeline import Services
    from watchkeeper.runtime.assemble import (
        build_archive,
        build_bus,
        build_engines,
        build_jobs,
        build_pipeline,
        devices_from,
        self_watch,
    )
    from watchkeeper.telemetry import SelfMetrics

    metrics = SelfMetrics()
    inventory = StaticInventory(devices_from(settings))
    build_archive(settings, locator, clock=SystemClock(), metrics=metrics)
    jobs = build_jobs(settings, locator, inventory)
    engines = build_engines(settings, locator, Services(clock=SystemClock(), metrics=metrics))
    build_pipeline(engines, build_bus(settings, locator), locator)
    from watchkeeper.runtime.graphite import check_graphite
    from watchkeeper.runtime.inventory import build_inventory

    check_graphite(settings, locator)  # templates and listen address, binding nothing

    build_inventory(settings, locator, clock=SystemClock())  # model collectors, their options
    collectors = settings.collectors if settings.collectors is not None else self_watch(settings)
    environ = os.environ if env is None else env
    source = config or environ.get("WATCHKEEPER_CONFIG") or "defaults"
    return CheckSummary(source, len(inventory.devices()), len(collectors), len(jobs),
                        len(engines))
