"""Graphite plaintext: line parsing, templates, and the TCP listener into a real archive."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from watchkeeper.api.ingest.graphite import key_text, parse_line, parse_template
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.cli.main import main
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError, InvalidData
from watchkeeper.model import SeriesKey
from watchkeeper.runtime.config import check_config
from watchkeeper.runtime.graphite import CHUNK, MAX_LINE, build_graphite, start_graphite
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics


def test_lines() -> None:
    """path value timestamp; a missing or -1 timestamp is now; junk is refused."""
    assert parse_line("a.b 1.5 1700000000", 5.0) == ("a.b", 1.7e9, 1.5)
    assert parse_line("a.b 2", 5.0) == ("a.b", 5.0, 2.0)
    assert parse_line("a.b 2 -1", 5.0)[1] == 5.0
    for bad in ("a.b", "a.b x 1", "a b c d", "a 1 inf"):
        with pytest.raises(InvalidData):
            parse_line(bad, 5.0)


def test_templates() -> None:
    """Filters pick templates in order; names map nodes to subject, plugin, metric and
    labels; * is greedy; extra tags apply; no match is graphite/graphite/<path>."""
    templates = [parse_template("servers.* .host.metric* dc=eu"),
                 parse_template("host.plugin.metric*"),
                 parse_template("stats.* .region")]
    assert key_text("servers.web1.cpu.idle", templates) == 'web1/graphite/cpu.idle{dc="eu"}'
    assert key_text("h1.cpu-0.cpu-idle", templates) == "h1/cpu-0/cpu-idle"
    assert key_text("stats.eu.x.y", templates) == \
        'graphite/graphite/x.y{region="eu"}'
    assert key_text("a b", []) == "graphite/graphite/a_b"
    assert key_text("solo", [parse_template("host.plugin.metric")]) == "solo/graphite/graphite"
    for bad in ("a b c", "host.1x", "host x-y=1", "host a=1,b", ""):
        with pytest.raises(InvalidData):
            parse_template(bad)


async def test_listener_stores_lines(tmp_path: Path) -> None:
    """Lines sent over TCP (split across writes, with a bad one) are stored on the
    template's series once the connection's chunk is written; bad settings fail."""
    settings, locator = load_settings(
        "graphite: {listen: '127.0.0.1:0', templates: ['host.plugin.metric*']}\n", source="s.yaml")
    async with AsyncExitStack() as stack:
        archive = EmbeddedArchive(data_dir=tmp_path, options=EmbeddedArchive.Options(),
                                  clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)
        listener = await start_graphite(stack, settings, locator, archive=archive,
                                        clock=archive.clock)
        assert listener is not None
        assert listener.address is not None
        reader, writer = await asyncio.open_connection(*listener.address)
        writer.write(b"h1.cpu-0.cpu-idle 97 1700000000\nbad line here x\nh1.cpu-0.cpu-")
        await writer.drain()
        writer.write(b"idle 96 1700000010\n")
        writer.close()
        await writer.wait_closed()
        key = SeriesKey.parse("h1/cpu-0/cpu-idle")
        for _ in range(200):
            metas, _ = await archive.list_series()
            if metas and (await archive.read(key, 0, 2e9)).values.tolist() == [97.0, 96.0]:
                break
            await asyncio.sleep(0.05)
        assert (await archive.read(key, 0, 2e9)).values.tolist() == [97.0, 96.0]
        del reader
    off, locator = load_settings("{}\n", source="s.yaml")
    async with AsyncExitStack() as stack:
        assert await start_graphite(stack, off, locator, archive=archive, clock=archive.clock) \
            is None
    bad, locator = load_settings("graphite: {listen: '127.0.0.1:0', templates: ['a b c']}\n",
                                 source="s.yaml")
    with pytest.raises(ConfigError):
        await start_graphite(AsyncExitStack(), bad, locator, archive=archive, clock=archive.clock)


async def test_listener_refusals(tmp_path: Path) -> None:
    """A taken port or a bad listen address is a ConfigError; a connection sending a line
    longer than the limit is closed, what came before it stored."""
    async with AsyncExitStack() as stack:
        archive = EmbeddedArchive(data_dir=tmp_path, options=EmbeddedArchive.Options(),
                                  clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)
        settings, locator = load_settings("graphite: {listen: '127.0.0.1:0'}\n", source="s")
        listener = await start_graphite(stack, settings, locator, archive=archive,
                                        clock=archive.clock)
        assert listener is not None
        assert listener.address is not None
        taken, locator = load_settings(
            f"graphite: {{listen: '127.0.0.1:{listener.address[1]}'}}\n", source="s")
        with pytest.raises(ConfigError):
            await start_graphite(AsyncExitStack(), taken, locator, archive=archive,
                                 clock=archive.clock)
        bad, locator = load_settings("graphite: {listen: 'nowhere'}\n", source="s")
        with pytest.raises(ConfigError):
            await start_graphite(AsyncExitStack(), bad, locator, archive=archive,
                                 clock=archive.clock)
        reader, writer = await asyncio.open_connection(*listener.address)
        with contextlib.suppress(ConnectionError):  # closed with our bytes unread: a reset
            writer.write(b"a.b 1 1700000000\n" + b"x" * (MAX_LINE + CHUNK))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the listener
        writer.close()
        points = await archive.read(SeriesKey.parse("graphite/graphite/a.b"), 0, 2e9)
        assert points.values.tolist() == [1.0]


@pytest.mark.parametrize(("yaml", "error"), [
    (("graphite:\n  listen: 127.0.0.1:0\n  templates:\n    - 'servers.* .host.metric*'\n"
     "    - 'a.b c d e f'\n"),
     ("wk.yaml:6: graphite.templates[1]: expected [filter] template [tag=value,...] "
     "(value: 'a.b c d e f')")),
    ("graphite:\n  templates: ['host x-y=1']\n",  # checked with the listener off too
     "wk.yaml:3: graphite.templates[0]: 'x-y' is not a label name (value: 'host x-y=1')"),
    ("graphite:\n  templates:\n    - host.1x\n",
     "wk.yaml:4: graphite.templates[0]: '1x' is not a node name (value: 'host.1x')"),
    ("graphite:\n  templates: ['servers.* .host.metric* dc=eu,rack']\n",
     ("wk.yaml:3: graphite.templates[0]: tag 'rack' is not tag=value "
      "(value: 'servers.* .host.metric* dc=eu,rack')")),
    ("graphite:\n  listen: nowhere\n",
     ("wk.yaml:3: graphite.listen: expected HOST:PORT (e.g. 127.0.0.1:2003) "
     "(value: 'nowhere')")),
])
def test_config_check_names_file_line_and_key_of_a_bad_template(
        tmp_path: Path, yaml: str, error: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`config check` refuses what `up` refuses, as file:line: key: why (value) (the
    file's first line sets data_dir)."""
    path = tmp_path / "wk.yaml"
    path.write_text(f"data_dir: {tmp_path / 'var'}\n" + yaml)
    with pytest.raises(ConfigError) as refused:
        check_config(str(path), env={})
    assert str(refused.value) == f"{tmp_path}/{error}"
    settings, locator = load_settings(path.read_text(), source=str(path))
    with pytest.raises(ConfigError) as at_start:  # what `up` and `serve` say
        build_graphite(settings, locator, archive=None,  # type: ignore[arg-type]
                       clock=FakeClock())
    assert str(at_start.value) == str(refused.value)
    assert main(["config", "check", str(path)]) == 78
    assert error.split(": ", 1)[1] in capsys.readouterr().err


def test_config_check_passes_good_templates(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text(f"data_dir: {tmp_path / 'var'}\ngraphite:\n  listen: 127.0.0.1:2003\n"
                    "  templates: ['servers.* .host.metric* dc=eu', 'host.plugin.metric*']\n")
    assert str(check_config(str(path), env={})).startswith(f"{path}: ok (")
