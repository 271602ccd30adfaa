"""The engine pipeline: event and beat tasks chained by config, on a local or AMQP bus."""

from __future__ import annotations

from watchkeeper.pipeline.abc import Bus, EngineDefinition, Services
from watchkeeper.pipeline.chain import Pipeline, check_chain
from watchkeeper.pipeline.engine import DeadLetter, Engine
from watchkeeper.pipeline.tasks import TASKS, TaskRegistry, register_task

__all__ = [
    "TASKS",
    "Bus",
    "DeadLetter",
    "Engine",
    "EngineDefinition",
    "Pipeline",
    "Services",
    "TaskRegistry",
    "check_chain",
    "register_task",
]
