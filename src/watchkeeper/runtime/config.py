"""Where settings come from: the one place that reads config files and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
