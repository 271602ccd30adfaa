"""The command line, in-process: config check, argument errors, output formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.cli.main import main
from watchkeeper.cli.render import table


def test_config_check_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """config check builds every part and says what it found."""
    path = tmp_path / "wk.yaml"
    path.write_text("collectors:\n  - name: cpu\n    plugin: system\n")
    assert main(["config", "check", str(path)]) == 0
    assert "ok (1 devices, 1 collectors, 1 jobs, 2 engines)" in capsys.readouterr().out
    assert main(["config", "check", "-c", str(path)]) == 0  # the shared -c/--config too
    assert "ok (1 devices" in capsys.readouterr().out


def test_config_check_reports_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad key names file, line, key and value, and exits 78 (EX_CONFIG)."""
    path = tmp_path / "wk.yaml"
    path.write_text("server:\n  listen: 1.2.3.4:80\n  port: 80\n")
    assert main(["config", "check", str(path)]) == 78
    assert f"{path}:3: server.port: unknown setting (value: 80)" in capsys.readouterr().err


def test_table_formats(capsys: pytest.CaptureFixture[str]) -> None:
    """CSV carries floats as repr, JSON keeps null and objects, the table shows them."""
    rows = [[1.5, None], [2.0, {"a": 1}]]
    table(["ts", "value"], rows, fmt="csv")
    assert capsys.readouterr().out == 'ts,value\n1.5,\n2.0,"{""a"":1}"\n'
    table(["ts", "value"], rows, fmt="json")
    assert '"value": null' in capsys.readouterr().out
    table(["ts", "value"], rows, fmt="human", title="t")
    out = capsys.readouterr().out
    assert "1.5" in out
    assert "ts" in out


def test_alarm_title_names_the_cause() -> None:
    """The title of `alarms show` names the state in the one vocabulary and the cause."""
    from watchkeeper.cli.alarms import alarm_title
    from watchkeeper.wire import AlarmInfo

    alarm = AlarmInfo(id="a", entity_id="resource/web1/http", component="web1",
                      resource="http", opened=0.0, state=3, state_name="critical", status=1,
                      status_name="ongoing", caused_by="component/core1")
    assert alarm_title(alarm) == ("resource/web1/http: critical, ongoing "
                                  "(caused by component/core1)")
    plain = AlarmInfo(id="b", entity_id="component/core1", component="core1", resource="",
                      opened=0.0, state=3, state_name="critical", status=1,
                      status_name="ongoing")
    assert alarm_title(plain) == "component/core1: critical, ongoing"
