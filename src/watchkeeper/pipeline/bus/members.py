"""Who works on a partitioned engine: the live workers agree on a share of partitions each.

Every worker of a partitioned engine announces itself every ``heartbeat`` seconds on a
fanout exchange, ``<prefix>.members.<engine>``, and hears the others on an exclusive queue
of its own. The members heard within ``member_timeout`` (and itself), sorted by id, split
the partitions: the member at rank ``r`` of ``n`` takes the partitions ``p % n == r``
(:func:`share`). So two processes started separately, on one host or two, share the
partitions by themselves, and a worker that stops (it says so) or is killed (it falls
silent) leaves its share to the others.

Membership only decides who *subscribes*. Each partition queue is single active
consumer, so while views differ for a moment (a worker not yet heard, one falsely
thought dead) at most one worker receives from a partition, in order: the old owner
finishes its batch in hand and cancels, the new one is already waiting. A wrong view
costs time, never order or exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

log = logging.getLogger(__name__)


class _Beat(msgspec.Struct, frozen=True):
    member: str
    leaving: bool = False


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Beat).decode


def share(members: Sequence[str], me: str, partitions: int) -> list[int]:
    """The partitions ``me`` takes among ``members`` (``me`` counts even if absent)."""
    ranked = sorted({*members, me})
    rank, count = ranked.index(me), len(ranked)
    return [p for p in range(partitions) if p % count == rank]


class Members:
    """This worker's view of the live members of one engine, kept by heartbeats."""

    def __init__(self, connection: Any, exchange: str, *, heartbeat: float,
                 timeout: float, now: Callable[[], float] = time.monotonic) -> None:
        self.me = uuid.uuid4().hex
        self._connection = connection
        self._exchange_name = exchange
        self._heartbeat = heartbeat
        self._timeout = timeout
        self._now = now
        self._heard: dict[str, float] = {}
        self._channel: Any = None
        self._exchange: Any = None
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    async def start(self) -> None:
        """Listen to the others and start announcing this worker."""
        import aio_pika

        self._channel = await self._connection.channel(publisher_confirms=False)
        self._exchange = await self._channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.FANOUT, durable=True)
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self._exchange)
        await queue.consume(self._on_beat, no_ack=True)
        await self._announce()
        self._task = asyncio.create_task(self._beat(), name=f"members:{self._exchange_name}")

    def alive(self) -> list[str]:
        """The members heard from within the timeout, this one included, sorted."""
        limit = self._now() - self._timeout
        gone = [m for m, at in self._heard.items() if at < limit]
        for member in gone:
            del self._heard[member]
            log.warning("%s: worker %s fell silent; sharing its partitions out",
                        self._exchange_name, member[:8])
        if gone:
            self.changed.set()
        return sorted({*self._heard, self.me})

    async def _on_beat(self, message: Any) -> None:
        try:
            beat = _decode(message.body)
        except msgspec.DecodeError:
            log.warning("%s: ignoring a message that is not a heartbeat", self._exchange_name)
            return
        if beat.member == self.me:
            return
        if beat.leaving:
            if self._heard.pop(beat.member, None) is not None:
                self.changed.set()
            return
        if beat.member not in self._heard:
            self.changed.set()
        self._heard[beat.member] = self._now()

    async def _announce(self, *, leaving: bool = False) -> None:
        import aio_pika

        body = _encode(_Beat(member=self.me, leaving=leaving))
        expiration = None if leaving else max(self._timeout, 0.001)
        await self._exchange.publish(aio_pika.Message(body, expiration=expiration),
                                     routing_key="")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self._announce()
            except Exception as exc:  # noqa: BLE001 - the robust connection reconnects
                log.warning("%s: heartbeat not sent (%r)", self._exchange_name, exc)
            self.alive()  # notices the silent ones

    async def stop(self) -> None:
        """Say goodbye (the others take the partitions at once) and stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._announce(leaving=True)
            with contextlib.suppress(Exception):
                await self._channel.close()
        self._channel = None
