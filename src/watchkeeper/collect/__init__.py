"""Collectors: plugins polled on schedules against the devices of the inventory."""

from __future__ import annotations

from watchkeeper.collect.abc import Collector, JobSpec, PollContext, PollResult

__all__ = ["Collector", "JobSpec", "PollContext", "PollResult"]
