"""The API commands against a real server on 127.0.0.1: what they say when the server is
not there, or has no alarms, and what query prints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.support.serve import free_port
from tests.support.server import serve_in_thread
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.cli import exits
from watchkeeper.cli.alarms import step_value
from watchkeeper.cli.main import main
from watchkeeper.client import Client
from watchkeeper.clock import FakeClock
from watchkeeper.errors import (
    AuthError,
    ConfigError,
    HTTPStatusError,
    InvalidData,
    PluginError,
    TransportError,
    UsageError,
)
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import AlarmStep


@pytest.fixture
async def serve_url(tmp_path: Path) -> AsyncIterator[str]:
    """A server like `watchkeeper serve`: an archive with points, no alarms engine."""
    async with AsyncExitStack() as stack:
        clock = FakeClock(start=1_700_000_000)
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=clock, metrics=SelfMetrics())
        await archive.start(stack)
        app = create_app(archive, metrics=archive.metrics)
        with serve_in_thread(app) as base:
            with Client(base) as client:
                client.write([("d/p/m", 1_700_000_000.0 + n, n / 3) for n in range(3)])
            yield base


def test_cannot_reach_names_the_flag_and_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    """The error says which flag and variable choose the server, and how to move `up`."""
    assert main(["series", "--server", f"http://127.0.0.1:{free_port()}"]) == 69
    err = capsys.readouterr().err
    assert "cannot reach" in err
    assert "--server URL or $WATCHKEEPER_SERVER" in err
    assert "--listen 127.0.0.1:9090" in err


def test_the_server_comes_from_the_environment(serve_url: str, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WATCHKEEPER_SERVER", serve_url)
    assert main(["series", "-o", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("d/p/m,")


def test_alarms_against_serve_say_where_alarms_live(
        serve_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`serve` runs no alarms engine: say so instead of a bare 404."""
    assert main(["alarms", "--server", serve_url]) == 65
    assert "alarms live in `watchkeeper up`" in capsys.readouterr().err


def test_query_csv_and_aggregates(serve_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """query: CSV with ISO times and every digit; --step takes 5m-style durations."""
    assert main(["query", "d/p/m", "--server", serve_url, "--start", "1699999000", "-o",
                 "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "time,value"
    assert lines[2] == "2023-11-14T22:13:21.000Z,0.3333333333333333"
    assert main(["query", "d/p/m", "--server", serve_url, "--start", "1699999000", "--step",
                 "5m", "--agg", "count", "-o", "json"]) == 0
    assert '"value": 3' in capsys.readouterr().out
    assert main(["query", "d/p/m", "--server", serve_url, "--start", "1699999000"]) == 0
    assert "d/p/m (3 points)" in capsys.readouterr().out


def test_alarm_steps_name_states_not_codes() -> None:
    assert step_value(AlarmStep(type="stateinc", t=0, val=3.0)) == "critical"
    assert step_value(AlarmStep(type="statusinc", t=0, val=1.0)) == "ongoing"
    assert step_value(AlarmStep(type="snooze", t=0, val=60.0)) == 60.0
    assert step_value(AlarmStep(type="ack", t=0)) is None


@pytest.mark.parametrize(("error", "code"), [
    (UsageError("x"), 64), (ConfigError("x"), 78), (PluginError("x", group="g", plugin="p"), 78),
    (TransportError("x"), 69), (AuthError("x"), 77), (HTTPStatusError(401, "x"), 77),
    (HTTPStatusError(403, "x"), 77), (HTTPStatusError(404, "x"), 65),
    (HTTPStatusError(503, "x"), 69), (InvalidData("x"), 70), (KeyboardInterrupt(), 130),
])
def test_exit_codes_never_collide_with_the_rollup(error: BaseException, code: int) -> None:
    """Failures exit with sysexits codes, never 0-3 (collect --once's status roll-up)."""
    assert exits.exit_code(error) == code


def test_a_401_says_how_to_give_a_token() -> None:
    assert "--token KEY or $WATCHKEEPER_TOKEN" in exits.explain(HTTPStatusError(401, "no"))
    assert exits.explain(HTTPStatusError(404, "gone")) == "HTTP 404 from server: gone"


def test_a_listen_error_says_how_to_choose_the_address() -> None:
    """`up` on a taken port, or a bad listen setting: the message names --listen."""
    error = ConfigError("cannot listen on 127.0.0.1:8080: Address already in use",
                        key="server.listen", value="127.0.0.1:8080")
    assert 'make run ARGS="--listen 127.0.0.1:9090"' in exits.explain(error)
    assert exits.exit_code(error) == 78
