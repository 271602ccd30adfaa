"""server.promql in the settings: defaults, values, and a bad value refused at its line."""

from __future__ import annotations

import pytest

from watchkeeper.errors import ConfigError
from watchkeeper.settings import load_settings


def test_promql_limits_are_settings() -> None:
    default, _ = load_settings("")
    assert (default.server.promql.max_series, default.server.promql.max_samples,
            default.server.promql.timeout) == (100_000, 50_000_000, 120.0)
    chosen, _ = load_settings("server:\n  promql: {max_series: 10, timeout: 2.5}\n")
    assert chosen.server.promql.max_series == 10
    assert chosen.server.promql.timeout == 2.5
    with pytest.raises(ConfigError, match=r"max_samples"):
        load_settings("server:\n  promql:\n    max_samples: 0\n", source="wk.yaml")
