"""``watchkeeper engine`` and what it builds on: bus options, the runtime's checks, helpers."""

from __future__ import annotations

import asyncio

import pytest

from watchkeeper.cli.main import build_parser
from watchkeeper.errors import ConfigError, PipelineError
from watchkeeper.model import Device
from watchkeeper.pipeline.bus.amqp import AmqpBus, redact
from watchkeeper.pipeline.codec import decode_batch, decode_dead_letters
from watchkeeper.pipeline.recent import RecentIds
from watchkeeper.runtime.assemble import build_bus
from watchkeeper.runtime.engines import inventory_lookup, run_engine, worker_command
from watchkeeper.settings import load_settings


def test_the_engine_command_is_registered() -> None:
    args = build_parser().parse_args(["engine", "--name", "alarms", "--workers", "3",
                                      "--log-level", "debug", "--data-dir", "/srv/wk"])
    assert (args.name, args.workers, args.log_level, args.worker_index, args.data_dir) == (
        "alarms", 3, "debug", None, "/srv/wk")


def test_supervised_workers_get_the_same_config_and_data_dir() -> None:
    """Each worker a supervisor starts runs the same engine on the same settings; no flag
    assigns it partitions (the workers share them out by themselves)."""
    command = worker_command("wk.yaml", "alarms", "info", data_dir="/srv/wk")
    assert command[1:] == ["-m", "watchkeeper.cli.main", "engine", "--name", "alarms",
                           "--workers", "1", "--config", "wk.yaml", "--data-dir", "/srv/wk",
                           "--log-level", "info"]
    assert worker_command(None, "alarms", None)[-2:] == ["--workers", "1"]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [({"prefetch": 0}, "prefetch must be at least 1"),
     ({"queue_type": "stream"}, r"Invalid enum value .stream. - at `\$.queue_type`"),
     ({"url": "http://x"}, "url must start with amqp://"),
     ({"prefix": "a b"}, "prefix must be a non-empty word"),
     ({"max_length": 0}, "max_length must be at least 1"),
     ({"prefetc": 3}, "unknown field `prefetc`")],
)
def test_amqp_options_are_checked_before_connecting(options: dict[str, object],
                                                    fragment: str) -> None:
    with pytest.raises(TypeError, match=fragment):
        AmqpBus(**options)


def test_bad_bus_options_point_at_the_config() -> None:
    settings, locator = load_settings("bus:\n  backend: amqp\n  options: {prefetch: 0}\n",
                                      source="wk.yaml")
    with pytest.raises(ConfigError, match=r"wk.yaml:3: bus.options: invalid bus options: "
                                          r"prefetch must be at least 1"):
        build_bus(settings, locator)


def test_passwords_stay_out_of_messages() -> None:
    assert redact("amqp://u:secret@host:5672/vh") == "amqp://u:***@host:5672/vh"
    assert redact("amqp://host/") == "amqp://host/"


async def test_an_unstarted_amqp_bus_says_so() -> None:
    bus = AmqpBus()
    with pytest.raises(PipelineError, match="not started"):
        await bus.declare("q")
    with pytest.raises(PipelineError, match=r"worker index 2 is not in 0\.\.1"):
        bus.prefer_partitions(2, 2)


async def test_the_engine_command_needs_a_shared_bus_and_a_known_engine() -> None:
    stop = asyncio.Event()
    settings, locator = load_settings("engines:\n  - {name: a, engine: archive_writer}\n",
                                      source="wk.yaml")
    with pytest.raises(ConfigError, match="needs a bus shared between processes"):
        await run_engine(settings, locator, name="a", stop=stop)
    with pytest.raises(ConfigError, match=r"no engine named 'b' \(engines: a\)"):
        await run_engine(settings, locator, name="b", stop=stop)


def test_the_inventory_lookup_for_enrich() -> None:
    lookup = inventory_lookup([Device(name="r1", address="10.0.0.1", tags=("core", "par"),
                                      groups=("lab",)), Device(name="bare")])
    assert lookup("r1") == {"address": "10.0.0.1", "tags": "core,par", "groups": "lab"}
    assert lookup("bare") == {}
    assert lookup("unknown") == {}


def test_recent_ids_remember_at_least_the_window() -> None:
    recent = RecentIds(3, ["a", "b"])
    assert recent.add("c")
    assert not recent.add("a")
    assert "b" in recent
    for key in ("d", "e", "f"):
        assert recent.add(key)
    assert all(k in recent for k in ("d", "e", "f"))  # the last three, always
    for key in ("g", "h", "i"):
        recent.add(key)
    assert "a" not in recent  # long forgotten
    assert len(recent) <= 6
    assert set(recent) >= {"g", "h", "i"}


def test_undecodable_bodies_are_pipeline_errors() -> None:
    with pytest.raises(PipelineError, match=r"undecodable event batch \(3 bytes\)"):
        decode_batch(b"\x93\x01\x02")
    with pytest.raises(PipelineError, match="undecodable dead letters"):
        decode_dead_letters(b"\xc1")
