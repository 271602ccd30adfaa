"""The engine pipeline's throughput: five engines, local bus and RabbitMQ; the alarm engine alone.

The chain is threshold -> dedup -> enrich -> alarms -> archive writer (into an
in-memory sink), fed with check events carrying one measurement each, for 1,000
entities whose values drift across the thresholds, in batches (one queue hop per
batch). Reported: the median of several runs, events per second end to end.

- local: the chain in one process on the local bus (no serialisation);
- amqp: the same chain, every hop through RabbitMQ (quorum queues, persistent
  messages, publisher confirms, acknowledgements after each engine committed), either
  as the scaled deployment runs it, each engine in its own ``watchkeeper engine``
  process (this process publishes and runs the archive writer), or all five engines
  in this one process; needs the broker of ``scripts/services`` on 127.0.0.1:5672;
- alarms: the alarm engine's state machine alone (updates per second);
- with ``--state sqlite,postgres``, the local chain again with the stateful engines'
  state there (threshold and dedup ``state``, alarms ``store``; SQLite in a temporary
  directory, PostgreSQL in a schema of its own on ``WATCHKEEPER_TEST_PG_DSN``'s server):
  what durable state costs against memory, in the same run.

Like ``watchkeeper engine`` workers, the benchmark freezes what exists at start-up out of
the garbage collector's scans and raises its thresholds (``runtime.engines.tune_gc``).

Run: python benchmarks/pipeline.py [--events N] [--runs R] [--no-amqp]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import msgspec

from watchkeeper.clock import SystemClock
from watchkeeper.model import Event, Measurement, SeriesKey
from watchkeeper.pipeline import Bus, Engine, EngineDefinition, Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engines import archive_writer, dedup, enrich, threshold
from watchkeeper.pipeline.engines.alarms import ENGINE as ALARMS
from watchkeeper.pipeline.engines.alarms import AlarmBook, AlarmOptions
from watchkeeper.pipeline.engines.alarms.store import MemoryStore
from watchkeeper.runtime.assemble import build_engines
from watchkeeper.runtime.engines import tune_gc
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

ENTITIES = 1_000
BATCH = 1_000
T0 = 1_700_000_000.0


def make_events(n: int, *, seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    values = [rng.uniform(0, 100) for _ in range(ENTITIES)]
    keys = [SeriesKey.make(f"host{i}", "system", "cpu.percent") for i in range(ENTITIES)]
    events = []
    for k in range(n):
        i = k % ENTITIES
        values[i] = min(100.0, max(0.0, values[i] + rng.gauss(0, 4)))
        t = T0 + k * 0.01
        events.append(Event(event_type="check", component=f"host{i}", resource="system",
                            timestamp=t, output="ok",
                            measurements=(Measurement(key=keys[i], ts=t, value=values[i]),)))
    return events


class MemorySink:
    """The archive writer's sink: counts what it is given."""

    def __init__(self) -> None:
        self.points = 0
        self.writes = 0

    async def write(self, measurements: Sequence[Measurement]) -> int:
        self.points += len(measurements)
        self.writes += 1
        return len(measurements)


def lookup(component: str) -> dict[str, str]:
    """What the runtime's inventory lookup gives for the configured devices (see config)."""
    n = int(component[4:]) if component.startswith("host") else 0
    return {"address": f"10.0.{n // 256}.{n % 256}", "tags": f"site{n % 7}"}


def config(url: str, prefix: str) -> str:
    """The same chain as a config file, for ``watchkeeper engine`` processes."""
    devices = "\n".join(f"    - {{name: host{n}, address: 10.0.{n // 256}.{n % 256}, "
                         f"tags: [site{n % 7}]}}" for n in range(ENTITIES))
    engines = "\n".join(
        f"  - {{name: {name}, engine: {name if name != 'archive' else 'archive_writer'}, "
        f"beat_interval: 3600, options: {msgspec.json.encode(options).decode()}"
        + (f", next: [{SPECS[i + 1][0]}]}}" if i + 1 < len(SPECS) else "}")
        for i, (name, _, options) in enumerate(SPECS))
    return (f"log_level: warning\nbus:\n  backend: amqp\n  options: {{url: '{url}', "
            f"prefix: {prefix}}}\ninventory:\n  devices:\n{devices}\nengines:\n{engines}\n")


SPECS: list[tuple[str, EngineDefinition, dict[str, Any]]] = [
    ("threshold", threshold.ENGINE,
     {"rules": [{"metric": "cpu.*", "warning": 80, "critical": 90, "hysteresis": 2}]}),
    ("dedup", dedup.ENGINE, {}),
    ("enrich", enrich.ENGINE, {"keys": ["address", "tags"]}),
    ("alarms", ALARMS, {}),
    ("archive", archive_writer.ENGINE, {"batch_size": 10_000}),
]


PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN",
                        "host=127.0.0.1 user=postgres dbname=watchkeeper_test")


def state_options(name: str, state: str, schema: str) -> dict[str, Any]:
    """The options that put engine ``name``'s state in ``state`` (none for memory)."""
    key = {"threshold": "state", "dedup": "state", "alarms": "store"}.get(name)
    if key is None or state == "memory":
        return {}
    where = {"dsn": PG_DSN, "schema": schema} if state == "postgres" else {}
    return {key: state, **where}


def chain(sink: MemorySink, state: str = "memory", *, data_dir: Path | None = None,
          schema: str = "") -> list[Engine]:
    services = Services(clock=SystemClock(), metrics=SelfMetrics(), sink=sink, lookup=lookup,
                        data_dir=data_dir)
    specs = [(name, definition, {**options, **state_options(name, state, schema)})
             for name, definition, options in SPECS]
    engines = []
    for index, (name, definition, options) in enumerate(specs):
        nxt = (specs[index + 1][0],) if index + 1 < len(specs) else ()
        engines.append(Engine(
            name=name, services=services, event_task=definition.event_task,
            batch_task=definition.batch_task, beat_task=definition.beat_task,
            commit_task=definition.commit_task, beat_interval=3600, next_engines=nxt,
            options=msgspec.convert(options, definition.options),
            ordered=definition.partitioned))
    return engines


async def run_chain(events: list[Event], bus: Bus, sink: MemorySink,
                    engines: list[Engine] | None = None) -> float:
    """Seconds from the first publish until the archive has every point."""
    async with AsyncExitStack() as stack:
        await bus.start(stack)
        pipeline = Pipeline(engines or chain(sink), bus)
        await pipeline.start(stack)
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            await pipeline.publish(events[start:start + BATCH])
        if bus.durable:
            while sink.points < len(events):
                await asyncio.sleep(0.001)
        else:
            await pipeline.stop()
        elapsed = time.perf_counter() - started
        await pipeline.stop()
        delete = getattr(bus, "delete_queues", None)
        if delete is not None:
            await delete()
    if sink.points != len(events):
        raise AssertionError(f"{sink.points} points archived, {len(events)} sent")
    return elapsed


async def run_processes(events: list[Event], url: str) -> float:
    """The chain as deployed: one ``watchkeeper engine`` process per engine (the archive
    writer runs here, into the in-memory sink); seconds until every point is archived."""
    prefix = f"wkbench.{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wk.yaml"
        path.write_text(config(url, prefix))
        settings, locator = load_settings(path.read_text(), source=str(path))
        sink = MemorySink()
        services = Services(clock=SystemClock(), metrics=SelfMetrics(), sink=sink)
        engines = build_engines(settings, locator, services)
        procs = [subprocess.Popen(
            [sys.executable, "-m", "watchkeeper.cli.main", "engine", "--name", name,
             "--config", str(path)], cwd=tmp, stdout=subprocess.PIPE)
            for name, _, _ in SPECS[:-1]]
        try:
            for proc in procs:  # each says when it runs
                assert proc.stdout is not None
                line = proc.stdout.readline().decode()
                if "running" not in line:
                    raise RuntimeError(f"an engine did not start: {line!r}")
            async with AsyncExitStack() as stack:
                from watchkeeper.pipeline.bus.amqp import AmqpBus

                bus = AmqpBus(url=url, prefix=prefix)
                await bus.start(stack)
                pipeline = Pipeline(engines, bus, run={"archive"})
                await pipeline.start(stack)
                tune_gc()
                started = time.perf_counter()
                for start in range(0, len(events), BATCH):
                    await pipeline.publish(events[start:start + BATCH])
                while sink.points < len(events):
                    await asyncio.sleep(0.001)
                elapsed = time.perf_counter() - started
                _stop(procs)
                await pipeline.stop(drain=False)
                await bus.delete_queues()
        finally:
            _stop(procs)
    return elapsed


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


async def _pass(engine: Engine, batch: list[Event]) -> list[Event]:
    return batch


async def run_framework(events: list[Event]) -> float:
    """Five pass-through engines on the local bus: what the bus and batching cost."""
    services = Services(clock=SystemClock(), metrics=SelfMetrics())
    names = [name for name, _, _ in SPECS]
    engines = [Engine(name=n, services=services, event_task=None, batch_task=_pass,
                      next_engines=tuple(names[i + 1:i + 2])) for i, n in enumerate(names)]
    async with AsyncExitStack() as stack:
        bus = LocalBus()
        await bus.start(stack)
        pipeline = Pipeline(engines, bus)
        await pipeline.start(stack)
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            await pipeline.publish(events[start:start + BATCH])
        await pipeline.stop()
        return time.perf_counter() - started


def durable_run(events: list[Event], store: str) -> float:
    """The local chain with its state in ``store`` (a fresh SQLite directory or schema)."""
    schema = f"wk_bench_state_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        sink = MemorySink()
        try:
            return asyncio.run(run_chain(events, LocalBus(), sink,
                                         chain(sink, store, data_dir=Path(tmp), schema=schema)))
        finally:
            if store == "postgres":
                import psycopg

                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def alarms_alone(events: list[Event]) -> float:
    """Seconds for the alarm book to apply ``events`` (already threshold-checked)."""
    book = AlarmBook(AlarmOptions(), MemoryStore())
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        book.apply_batch(events[start:start + BATCH])
    return time.perf_counter() - started


def checked(events: list[Event]) -> list[Event]:
    engine = chain(MemorySink())[0]
    return [threshold.evaluate(engine, e) for e in events]


def report(name: str, samples: list[float], n: int, unit: str) -> float:
    rates = sorted(n / s for s in samples)
    median = statistics.median(rates)
    print(f"{name:<44} {median:>12,.0f} {unit}  (runs: "
          f"{', '.join(f'{r:,.0f}' for r in rates)})", flush=True)
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--amqp-events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-amqp", action="store_true")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--state", default="",
                        help="also run the local chain with the state in these stores"
                             " (sqlite, postgres; comma-separated)")
    args = parser.parse_args()

    events = make_events(args.events)
    tune_gc()
    stores = [s for s in args.state.split(",") if s]
    durable: dict[str, list[float]] = {store: [] for store in stores}
    local: list[float] = []
    for _ in range(args.runs):  # the state kinds interleaved, run by run
        local.append(asyncio.run(run_chain(events, LocalBus(), MemorySink())))
        for store in stores:
            durable[store].append(durable_run(events, store))
    local_rate = report("local bus, 5 engines, one process", local, len(events), "events/s")
    for store, samples in durable.items():
        rate = report(f"  the same, state in {store}", samples, len(events), "events/s")
        print(f"{'  memory / ' + store:<44} {local_rate / rate:>12.2f}x")

    framework = [asyncio.run(run_framework(events)) for _ in range(args.runs)]
    report("local bus, 5 pass-through engines", framework, len(events), "events/s")

    ready = checked(events)
    alone = [alarms_alone(ready) for _ in range(args.runs)]
    report("alarm engine alone", alone, len(events), "updates/s")

    if args.no_amqp:
        return
    few = events[:args.amqp_events]
    spread = [asyncio.run(run_processes(few, args.url)) for _ in range(args.runs)]
    amqp_rate = report("RabbitMQ, 5 engines, one process each", spread, len(few), "events/s")
    single = []
    for _ in range(args.runs):
        from watchkeeper.pipeline.bus.amqp import AmqpBus

        bus = AmqpBus(url=args.url, prefix=f"wkbench.{uuid.uuid4().hex[:8]}")
        single.append(asyncio.run(run_chain(few, bus, MemorySink())))
    report("RabbitMQ, 5 engines, all in one process", single, len(few), "events/s")
    print(f"{'ratio local / RabbitMQ (one process each)':<44} {local_rate / amqp_rate:>12.1f}x")


if __name__ == "__main__":
    main()
