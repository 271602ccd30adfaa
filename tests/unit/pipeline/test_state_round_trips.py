"""Threshold and dedup ask their state store for a partition's version once per batch.

In PostgreSQL each ask is a round trip: asked per event, it cost ~150 µs of engine CPU
per event and as much again in the database (benchmarks/scaleout.py, issue 16), ten
times the engines' own work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from watchkeeper.clock import SystemClock
from watchkeeper.model import Event, Measurement, SeriesKey
from watchkeeper.pipeline import Engine, EngineDefinition, Services
from watchkeeper.pipeline.engines import dedup, threshold
from watchkeeper.pipeline.state import SqlitePartitionStore
from watchkeeper.telemetry import SelfMetrics

PARTITIONS = 4


def _events(n: int, t0: float) -> list[Event]:
    out = []
    for i in range(n):
        host = f"h{i % 40}"
        t = t0 + i
        m = Measurement(key=SeriesKey.make(host, "system", "cpu.percent"), ts=t,
                        value=float(50 + i % 50))
        out.append(Event(event_type="check", component=host, resource="system", timestamp=t,
                         measurements=(m,), id=f"{host}-{t}"))
    return out


def _engine(definition: EngineDefinition, options: dict[str, Any], tmp_path: Path) -> Engine:
    return Engine(name="e", services=Services(clock=SystemClock(), metrics=SelfMetrics(),
                                              data_dir=tmp_path),
                  event_task=definition.event_task, batch_task=definition.batch_task,
                  beat_task=definition.beat_task, commit_task=definition.commit_task,
                  partitions=PARTITIONS, options=msgspec.convert(options, definition.options))


@pytest.mark.parametrize(("definition", "options"), [
    (threshold.ENGINE, {"rules": [{"metric": "cpu.*", "warning": 80, "critical": 90}]}),
    (dedup.ENGINE, {"window": 1000}),
], ids=["threshold", "dedup"])
async def test_a_batch_checks_each_partition_version_once(
        definition: EngineDefinition, options: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two batches of 200 events over 4 partitions: a few version checks per partition
    (threshold checks before and after judging), not one per event."""
    asked: list[int] = []
    version = SqlitePartitionStore.version

    def counted(self: SqlitePartitionStore, partition: int) -> int:
        asked.append(partition)
        return version(self, partition)

    monkeypatch.setattr(SqlitePartitionStore, "version", counted)
    engine = _engine(definition, {**options, "state": "sqlite"}, tmp_path)
    try:
        for batch in (_events(200, 0), _events(200, 1000)):
            asked.clear()
            out = await engine.process(batch)
            await engine.commit()
            assert len(out) == 200
            assert len(asked) <= 2 * PARTITIONS, len(asked)
    finally:
        engine.close()
