"""Plugin loading: entry points and dotted paths, checked against their contracts."""

from __future__ import annotations

import pytest

from watchkeeper import plugins
from watchkeeper.collect import Collector
from watchkeeper.errors import PluginError


class NotACollector:
    pass


class Incomplete(Collector):  # abstract: no poll
    pass


BROKEN_ATTR = 42


def test_builtins_are_registered_through_entry_points() -> None:
    assert {"system", "tcp", "http", "ping"} <= set(plugins.available(plugins.COLLECTORS))
    assert "embedded" in plugins.available(plugins.ARCHIVES)
    assert "local" in plugins.available(plugins.BUSES)
    assert "archive_writer" in plugins.available(plugins.ENGINES)


def test_load_by_entry_point_and_by_path() -> None:
    by_name = plugins.load(plugins.COLLECTORS, "system", plugins.subclass_of(Collector))
    by_path = plugins.load(plugins.COLLECTORS, "watchkeeper.collect.builtin.system:SystemCollector")
    assert by_name is by_path


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("nosuch", "no such plugin (known: "),
        ("nosuch.module:Thing", "cannot import 'nosuch.module'"),
        ("tests.unit.core.test_plugins:Missing", "has no attribute 'Missing'"),
        ("tests.unit.core.test_plugins:NotACollector", "not a subclass of watchkeeper.collect"),
        ("tests.unit.core.test_plugins:Incomplete", "does not implement poll"),
        ("tests.unit.core.test_plugins:BROKEN_ATTR", "is 42"),
        ("justamodule:", "expected package.module:Name"),
    ],
)
def test_errors_name_plugin_group_and_problem(ref: str, fragment: str) -> None:
    with pytest.raises(PluginError) as info:
        plugins.load(plugins.COLLECTORS, ref, plugins.subclass_of(Collector))
    assert info.value.group == plugins.COLLECTORS
    assert info.value.plugin == ref
    assert fragment in str(info.value)


def test_instance_check() -> None:
    check = plugins.instance_of(int)
    assert check(3) is None
    assert "not a builtins.int" in (check("x") or "")
