"""The inventory section in `config check` and `up`: every model collector's plugin,
options and notification patterns are checked before anything starts, with file:line:key."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from watchkeeper.cli.main import main
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError
from watchkeeper.inventory import Notification
from watchkeeper.runtime.assemble import convert_options
from watchkeeper.runtime.config import read_settings
from watchkeeper.runtime.inventory import build_inventory
from watchkeeper.settings import Locator

PLUGINS = "tests.unit.inventory.config_plugins"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wk.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "where"), [
    ("inventory:\n  collectors:\n    racks:\n      plugin: nosuch\n",
     "wk.yaml:4: inventory.collectors.racks.plugin: plugin 'nosuch'"),
    ("inventory:\n  collectors:\n    snmp:\n      period: 60\n      bogus: 1\n",
     "wk.yaml:5: inventory.collectors.snmp.bogus: unknown option"),
    ((f"inventory:\n  collectors:\n    racks:\n      plugin: {PLUGINS}:Watched\n"
     "      period: 60\n"),
     "wk.yaml:3: inventory.collectors.racks.url: required option is missing"),
    ("inventory:\n  collectors:\n    system:\n      period: 60\n      publishers: '(['\n",
     "wk.yaml:5: inventory.collectors.system.publishers: `publishers` is not a valid regex"),
    (("inventory:\n  collectors:\n    snmp:\n      period: 60\n      targets:\n"
     "        - {device: a, address: 127.0.0.1}\n        - {device: a, address: 127.0.0.1}\n"),
     "wk.yaml:5: inventory.collectors.snmp.targets: two `targets` describe the same device"),
    ((f"inventory:\n  collectors:\n    racks:\n      plugin: {PLUGINS}:Watched\n"
     "      url: http://cmdb\n      event_type: '(rack'\n"),
     ("wk.yaml:6: inventory.collectors.racks.event_type: plugin "
     f"'{PLUGINS}:Watched': not a valid regex: missing ), unterminated subpattern")),
    (f"inventory:\n  collectors:\n    racks:\n      plugin: {PLUGINS}:Refuses\n",
     (f"wk.yaml:3: inventory.collectors.racks: plugin '{PLUGINS}:Refuses' could not be set "
     "up: RuntimeError: no licence file")),
    ("inventory:\n  history: 0\n", "wk.yaml:2: inventory.history: must be at least 1"),
    ("inventory:\n  replay_limit: -5\n",
     "wk.yaml:2: inventory.replay_limit: must be at least 1"),
])
def test_config_check_refuses_a_bad_model_collector(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str) -> None:
    """Each mistake is one line naming file, line and key; nothing says ok."""
    path = _file(tmp_path, text)
    assert main(["config", "check", str(path)]) != 0  # a config error (its own exit code)
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    assert where in captured.err
    assert "Traceback" not in captured.err


def test_up_refuses_a_bad_endpoint_pattern_as_a_config_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The pattern a plugin builds from its options fails `up` with the key, before it
    opens anything, never with a traceback."""
    path = _file(tmp_path, f"inventory:\n  collectors:\n    racks:\n"
                           f"      plugin: {PLUGINS}:Watched\n      url: http://cmdb\n"
                           "      event_type: '(rack'\n")
    assert main(["up", "--config", str(path), "--listen", "127.0.0.1:0"]) != 0
    err = capsys.readouterr().err
    assert "wk.yaml:6: inventory.collectors.racks.event_type:" in err
    assert "Traceback" not in err


def test_a_good_inventory_section_is_ok(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, f"inventory:\n  history: 8\n  collectors:\n    racks:\n"
                           f"      plugin: {PLUGINS}:Watched\n      url: http://cmdb\n")
    assert main(["config", "check", str(path)]) == 0
    assert ": ok (" in capsys.readouterr().out


async def test_history_comes_from_the_settings(tmp_path: Path) -> None:
    """`inventory.history` bounds the versions kept for diffs."""
    path = _file(tmp_path, "inventory:\n  history: 2\n  replay_limit: 10\n")
    settings, locator = read_settings(str(path), env={})
    manager = build_inventory(settings, locator, clock=FakeClock())
    static = manager.get("static")
    assert await static.rebuild()
    for rack in ("A1", "A2", "A3"):
        assert manager.deliver(Notification(
            publisher_id="operator.me", event_type="node.updated",
            payload={"id": "device/localhost", "attrs": {"rack": rack}})) == 1
    assert static.latest().version == 4
    assert static.versions() == [3, 4]


class _Port(msgspec.Struct, frozen=True):
    number: int

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("`number` must be at least 1")


class _Ports(msgspec.Struct, frozen=True):
    ports: list[_Port] = msgspec.field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        if self.name == "-":
            raise ValueError("no name given")


@pytest.mark.parametrize(("options", "key"), [
    ({"ports": [{"number": 1}, {"number": 0}]}, "c.options.ports[1].number"),
    ({"name": "-"}, "c.options"),  # names no option: the section
])
def test_an_options_own_check_points_at_the_key_it_names(options: dict[str, object],
                                                          key: str) -> None:
    """Also inside lists of nested options."""
    with pytest.raises(ConfigError) as error:
        convert_options(options, _Ports, Locator(None, {}, {}), "c.options")
    assert error.value.key == key
