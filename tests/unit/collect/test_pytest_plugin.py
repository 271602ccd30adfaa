"""The pytest plugin, driven by pytester in a subprocess: checks around each module."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[3]

CONFIG = """\
inventory:
  devices:
    - {{name: r1, address: 127.0.0.1}}
    - {{name: r2, address: 127.0.0.1}}
collectors:
  - name: health
    plugin: tests.unit.collect.plugins:Fixed
    options: {{status: ok, status_file: {flag}}}
  - name: steady
    plugin: tests.unit.collect.plugins:Fixed
"""

BREAKS = """
from pathlib import Path

def test_breaks_the_device():
    Path({flag!r}).write_text("critical")

def test_something_else():
    pass
"""

FIXES = """
from pathlib import Path

def test_fixes_it():
    Path({flag!r}).write_text("ok")
"""

OPTED_OUT = """
from pathlib import Path

watchkeeper = False

def test_breaks_it_unseen():
    Path({flag!r}).write_text("critical")
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the test plugins live in this repository
    flag = pytester.path / "status"
    (pytester.path / "wk.yaml").write_text(CONFIG.format(flag=flag))
    pytester.makepyfile(test_a_breaks=BREAKS.format(flag=str(flag)),
                        test_b_fixes=FIXES.format(flag=str(flag)))
    return flag


def test_a_module_that_makes_a_device_worse_fails(pytester: pytest.Pytester,
                                                   project: Path) -> None:
    report = pytester.path / "health.yaml"
    result = pytester.runpytest_subprocess("--watchkeeper-config", "wk.yaml",
                                           "--watchkeeper-report", str(report))
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_something_else*",
        "*devices got worse during this module*",
        "*health on r1: ok -> critical (r1 is critical)*",
        "*health on r2: ok -> critical*",
    ])
    assert "steady on" not in result.stdout.str()
    runs = yaml.safe_load(report.read_text())["runs"]
    assert list(runs) == ["test_a_breaks.py:before", "test_a_breaks.py:after",
                          "test_b_fixes.py:before", "test_b_fixes.py:after"]
    assert runs["test_b_fixes.py:after"]["status"] == "ok"  # getting better is not a failure


def test_annotate_mode_passes_and_reports(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess("--watchkeeper-config", "wk.yaml",
                                           "--watchkeeper-mode", "annotate", "-rA")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*watchkeeper: devices that got worse*",
        "test_a_breaks.py:",
        "  health on r1: ok -> critical*",
    ])


def test_modules_may_opt_out_or_pick_checks(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_a_breaks=OPTED_OUT.format(flag=str(project)))
    result = pytester.runpytest_subprocess("--watchkeeper-config", "wk.yaml")
    result.assert_outcomes(passed=2)


def test_without_the_option_nothing_happens(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    assert "got worse" not in result.stdout.str()


def test_a_bad_config_is_a_usage_error(pytester: pytest.Pytester, project: Path) -> None:
    (pytester.path / "bad.yaml").write_text("collectors:\n  - {name: x, plugin: nosuch}\n")
    result = pytester.runpytest_subprocess("--watchkeeper-config", "bad.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--watchkeeper-config: bad.yaml:2: collectors?0?.plugin: *no such plugin*"])


LOCAL_PLUGIN = """
import msgspec
from watchkeeper.collect import Collector

class Here(Collector):
    async def poll(self, device, ctx):
        return ctx.result([ctx.measure("up", 1.0)])
"""


def test_the_plain_pytest_command_finds_a_module_plugin_in_the_current_directory(
        tmp_path: Path) -> None:
    """``pytest`` (not ``python -m pytest``) does not put the current directory on sys.path;
    the plugin does, so ``here:Here`` resolves as it does for ``watchkeeper`` itself."""
    import os
    import subprocess
    import sys

    (tmp_path / "here.py").write_text(LOCAL_PLUGIN)
    (tmp_path / "wk.yaml").write_text(
        "inventory:\n  devices: [{name: r1, address: 127.0.0.1}]\n"
        "collectors:\n  - {name: local, plugin: 'here:Here'}\n")
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "test_it.py").write_text("def test_nothing():\n    pass\n")
    pytest_command = Path(sys.executable).with_name("pytest")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(pytest_command), "-p", "no:cacheprovider", "--watchkeeper-config", "wk.yaml",
         "--watchkeeper-report", "out.yaml", "checks"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = yaml.safe_load((tmp_path / "out.yaml").read_text())
    assert report["plugins"] == {"local": "ok"}
