"""Failover of a stateful engine to another host: kill -9, and the state is as if nothing happened.

Two ``watchkeeper engine --name alarms`` processes, each with a data directory of its
own (standing in for two hosts), run on RabbitMQ with the alarm store on PostgreSQL.
Started separately, with no worker flags, they share the eight partitions by
themselves. The test feeds 400 entities' check events, kills one process with SIGKILL
in the middle of the stream, lets the other take its partitions over (and the batches
it held unacknowledged), and compares every entity's final alarm state (alarm ids,
step history, state, counters) with an uninterrupted single-process run. A second test
puts the threshold engine (its held levels in PostgreSQL too) in front, runs two
processes of each engine and kills one of each: once with every engine's state named in
its options, once with none named, the configuration only putting the archive in
PostgreSQL (the engines then keep their state there by default, D45).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import msgspec
import pytest

from watchkeeper.clock import SystemClock
from watchkeeper.model import Event, Measurement, SeriesKey
from watchkeeper.pipeline import Engine, Services
from watchkeeper.pipeline.bus.amqp import AmqpBus
from watchkeeper.pipeline.engines import threshold
from watchkeeper.pipeline.engines.alarms import AlarmBook, AlarmOptions
from watchkeeper.pipeline.engines.alarms.pgstore import PostgresStore
from watchkeeper.pipeline.engines.alarms.store import MemoryStore
from watchkeeper.pipeline.pgconnect import DEFAULT_DSN
from watchkeeper.telemetry import SelfMetrics

pytestmark = [pytest.mark.external_service, pytest.mark.slow, pytest.mark.timeout(120)]

PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN", DEFAULT_DSN)
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
ENTITIES = 400
ROUNDS = 40
PARTITIONS = 8
T0 = 1_700_000_000.0
ALARM_OPTIONS = {"flap_changes": 6, "flap_window": 120, "stealthy_time": 30,
                 "stealthy_show": 60, "resolve_after": 300, "hard_after": 2}
RULE = {"metric": "value", "warning": 60, "critical": 85, "hysteresis": 3}


def stream() -> list[Event]:
    """Check events of 400 entities whose states wander, so alarms open, flap and resolve."""
    rng = random.Random(16)
    states = [0] * ENTITIES
    events = []
    for n in range(ROUNDS):
        for i in range(ENTITIES):
            if rng.random() < 0.3:
                states[i] = rng.choice((0, 0, 1, 2, 3))
            events.append(Event(event_type="check", component=f"h{i}", resource="probe",
                                timestamp=T0 + n * 20 + i * 0.01, state=states[i],
                                id=f"h{i}-{n}"))
    return events


def measured() -> list[Event]:
    """Events of 400 entities carrying a value that drifts across the thresholds (the
    threshold engine turns them into states; its hysteresis is state that must survive)."""
    rng = random.Random(17)
    values = [rng.uniform(0, 100) for _ in range(ENTITIES)]
    events = []
    for n in range(ROUNDS):
        for i in range(ENTITIES):
            values[i] = min(100.0, max(0.0, values[i] + rng.gauss(0, 9)))
            t = T0 + n * 20 + i * 0.01
            key = SeriesKey.make(f"h{i}", "probe", "value")
            events.append(Event(event_type="check", component=f"h{i}", resource="probe",
                                timestamp=t, id=f"h{i}-{n}",
                                measurements=(Measurement(key=key, ts=t, value=values[i]),)))
    return events


def reference(events: list[Event], *, with_threshold: bool = False) -> dict[str, object]:
    """The uninterrupted run: the same engines in this process, no bus, nothing killed."""
    if with_threshold:
        services = Services(clock=SystemClock(), metrics=SelfMetrics())
        engine = Engine(name="threshold", services=services, event_task=threshold.evaluate,
                        options=msgspec.convert({"rules": [RULE]}, threshold.ThresholdOptions))
        events = [threshold.evaluate(engine, e) for e in events]
    book = AlarmBook(msgspec.convert(ALARM_OPTIONS, AlarmOptions), MemoryStore(),
                     partitions=PARTITIONS)
    for start in range(0, len(events), 1000):
        book.apply_batch(events[start:start + 1000])
    return {t.entity_id: msgspec.to_builtins(t) for t in book.tracks()}


def applied(schema: str) -> int:
    """Events applied and committed, over every partition (each counted once)."""
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        try:
            row = conn.execute(f"SELECT coalesce(sum(seen_seq), 0) "
                               f"FROM {schema}.alarm_partitions").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def stored(schema: str) -> dict[str, object]:
    store = PostgresStore(PG_DSN, "alarms", PARTITIONS, dedup_window=ENTITIES * ROUNDS,
                          schema=schema)
    try:
        return {entity: msgspec.to_builtins(track)
                for p in range(PARTITIONS) for entity, track in store.load(p).tracks.items()}
    finally:
        store.close()


def held(log: Path, engine: str = "alarms") -> list[int] | None:
    """The partitions of ``engine`` the process said it took last (None before it said)."""
    found = re.findall(rf"queue {engine}: worker \w+ \(of \d+\) takes partitions "
                       r"\[([\d, ]*)\]", log.read_text())
    if not found:
        return None
    return [int(p) for p in found[-1].split(",") if p.strip()]


def launch(tmp_path: Path, host: str, engine: str = "alarms") -> subprocess.Popen[bytes]:
    """``watchkeeper engine --name ENGINE`` with a data directory of its own (a "host")."""
    command = [sys.executable, "-m", "watchkeeper.cli.main", "engine", "--name", engine,
               "--config", str(tmp_path / "wk.yaml"), "--data-dir", str(tmp_path / host)]
    with (tmp_path / f"{host}-{engine}.log").open("wb") as out:
        return subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)


def wait_for(check: object, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: "
                                 + "\n".join(p.read_text()[-3000:] for p in logs))
        time.sleep(0.05)


async def test_kill_9_of_an_alarms_host_gives_the_state_of_an_uninterrupted_run(
        tmp_path: Path) -> None:
    """Two processes share the partitions by themselves; after kill -9 of one, the other
    takes its partitions and every entity ends exactly as in an uninterrupted run."""
    prefix = f"wkfailover.{uuid.uuid4().hex[:8]}"
    schema = f"wk_failover_{uuid.uuid4().hex[:12]}"
    events = stream()
    total = len(events)
    options = {**ALARM_OPTIONS, "store": "postgres", "dsn": PG_DSN, "schema": schema,
               "emit": "changes", "dedup_window": total}
    (tmp_path / "wk.yaml").write_text(f"""\
log_level: info
bus:
  backend: amqp
  options: {{url: "{AMQP_URL}", prefix: {prefix}, prefetch: 4, max_batch_events: 2000,
            heartbeat: 0.2, member_timeout: 1.5, standby_delay: 0.5}}
engines:
  - name: alarms
    engine: alarms
    partitions: {PARTITIONS}
    beat_interval: 3600
    options: {msgspec.json.encode(options).decode()}
""")
    expected = reference(events)
    logs = [tmp_path / "host-a-alarms.log", tmp_path / "host-b-alarms.log"]
    procs: list[subprocess.Popen[bytes]] = []
    async with AsyncExitStack() as stack:
        bus = AmqpBus(url=AMQP_URL, prefix=prefix)
        await bus.start(stack)
        await bus.declare("alarms", partitions=PARTITIONS)
        try:
            procs = [launch(tmp_path, "host-a"), launch(tmp_path, "host-b")]
            wait_for(lambda: all((held(log) or []) for log in logs), 30,
                     "both processes to take partitions", logs)
            wait_for(lambda: sorted(p for log in logs for p in held(log) or []) ==
                     list(range(PARTITIONS)), 30, "the partitions to be shared out", logs)
            shares = [held(log) for log in logs]
            half = total // 2
            for start in range(0, half, 1000):
                await bus.publish("alarms", events[start:start + 1000])
            wait_for(lambda: applied(schema) >= total * 0.2, 60, "20% applied", logs)
            victim = procs[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            at_kill = applied(schema)
            for start in range(half, total, 1000):
                await bus.publish("alarms", events[start:start + 1000])
            wait_for(lambda: held(logs[1]) == list(range(PARTITIONS)), 30,
                     "the survivor to take every partition", logs)
            wait_for(lambda: applied(schema) >= total, 60, "every event applied", logs)
            await bus.drain("alarms")
            assert applied(schema) == total  # each event applied exactly once
            result = stored(schema)
            assert sum(t["events"] for t in result.values()) == total  # type: ignore[index]
            assert result.keys() == expected.keys()
            differing = [e for e, track in expected.items() if result[e] != track]
            assert differing == [], f"{len(differing)} of {ENTITIES} entities differ"
            assert await bus.read_dead_letters("alarms") == []
            assert all(shares)
            assert at_kill < total
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(timeout=60) for proc in procs]
            await bus.delete_queues()
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    assert codes == [-signal.SIGKILL, 0], [p.read_text()[-3000:] for p in logs]


@pytest.mark.parametrize("configured", ["named", "by-the-archive"])
async def test_kill_9_of_a_threshold_and_an_alarms_host_mid_stream(
        tmp_path: Path, configured: str) -> None:
    """threshold -> alarms, two processes of each, all state in PostgreSQL (named in the
    engines' options, or only by the archive's backend); kill -9 one process of each
    engine mid-stream: the held levels and the alarms continue on the survivors, and
    every entity ends as in an uninterrupted run."""
    prefix = f"wkfailover.{uuid.uuid4().hex[:8]}"
    schema = f"wk_failover_{uuid.uuid4().hex[:12]}"
    events = measured()
    total = len(events)
    state = {"dsn": PG_DSN, "schema": schema}
    alarms = {**ALARM_OPTIONS, "emit": "changes", "dedup_window": total}
    levels: dict[str, object] = {"rules": [RULE]}
    archive = ""
    if configured == "named":
        alarms |= {**state, "store": "postgres"}
        levels |= {**state, "state": "postgres"}
    else:  # the engines' options say nothing of their state
        archive = f"archive: {{backend: postgres, options: {msgspec.json.encode(state).decode()}}}"
    (tmp_path / "wk.yaml").write_text(f"""\
log_level: info
{archive}
bus:
  backend: amqp
  options: {{url: "{AMQP_URL}", prefix: {prefix}, prefetch: 4, max_batch_events: 2000,
            heartbeat: 0.2, member_timeout: 1.5, standby_delay: 0.5}}
engines:
  - name: threshold
    engine: threshold
    partitions: {PARTITIONS}
    options: {msgspec.json.encode(levels).decode()}
    next: [alarms]
  - name: alarms
    engine: alarms
    partitions: {PARTITIONS}
    beat_interval: 3600
    options: {msgspec.json.encode(alarms).decode()}
""")
    expected = reference(events, with_threshold=True)
    roles = [(host, engine) for engine in ("threshold", "alarms")
             for host in ("host-a", "host-b")]
    logs = {role: tmp_path / f"{role[0]}-{role[1]}.log" for role in roles}
    procs: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
    async with AsyncExitStack() as stack:
        bus = AmqpBus(url=AMQP_URL, prefix=prefix)
        await bus.start(stack)
        await bus.declare("threshold", partitions=PARTITIONS)
        await bus.declare("alarms", partitions=PARTITIONS)
        try:
            procs = {role: launch(tmp_path, *role) for role in roles}
            all_logs = list(logs.values())
            for host, engine in roles:
                wait_for(lambda h=host, e=engine: bool(held(logs[h, e], e)), 30,
                         f"{engine} on {host} to take partitions", all_logs)
            half = total // 2
            for start in range(0, half, 1000):
                await bus.publish("threshold", events[start:start + 1000])
            wait_for(lambda: applied(schema) >= total * 0.2, 60, "20% applied", all_logs)
            for engine in ("threshold", "alarms"):
                procs["host-a", engine].send_signal(signal.SIGKILL)
            for engine in ("threshold", "alarms"):
                procs["host-a", engine].wait(timeout=10)
            for start in range(half, total, 1000):
                await bus.publish("threshold", events[start:start + 1000])
            for engine in ("threshold", "alarms"):
                wait_for(lambda e=engine: held(logs["host-b", e], e) == list(range(PARTITIONS)),
                         30, f"the surviving {engine} to take every partition", all_logs)
            wait_for(lambda: applied(schema) >= total, 60, "every event applied", all_logs)
            await bus.drain("threshold")
            await bus.drain("alarms")
            assert applied(schema) == total
            result = stored(schema)
            assert result.keys() == expected.keys()
            differing = [e for e, track in expected.items() if result[e] != track]
            assert differing == [], f"{len(differing)} of {ENTITIES} entities differ"
            assert await bus.read_dead_letters("threshold") == []
            assert await bus.read_dead_letters("alarms") == []
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            codes = {role: proc.wait(timeout=60) for role, proc in procs.items()}
            await bus.delete_queues()
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    assert codes == {("host-a", "threshold"): -signal.SIGKILL, ("host-b", "threshold"): 0,
                     ("host-a", "alarms"): -signal.SIGKILL, ("host-b", "alarms"): 0}, \
        [p.read_text()[-3000:] for p in logs.values()]
