"""The RabbitMQ bus: durable queues, persistent batches, acks after the work is safe.

Topology (``prefix`` defaults to ``watchkeeper``):

- one durable queue per engine, ``<prefix>.<engine>``, or one per partition,
  ``<prefix>.<engine>.<p>``, for partitioned (stateful) engines. Partitioned and
  ordered queues are *single active consumer*: many workers may subscribe, one at a
  time receives, so an entity's events are never handled by two workers at once or out
  of order; when the active worker dies the broker hands the queue to the next one.
- batches go through the default exchange as one persistent msgpack message per
  (target, partition), encoded once for all targets; publishing waits for the broker's
  confirm, and waits (back-pressure) while a queue is at ``max_length``.
- a consumer holds at most ``prefetch`` unacknowledged batches; consecutive ones are
  merged into one handler call (up to ``max_batch_events``) and acknowledged together
  *after* the handler returned, i.e. after the results were published and confirmed
  and the engine committed. A handler that raises is retried ``attempts`` times with
  back-off, then its events go to ``<prefix>.dead.<engine>`` with the traceback; a
  message that keeps killing its worker is dead-lettered there by the broker after
  ``delivery_limit`` deliveries (quorum queues).
- the workers of a partitioned engine share its partitions by themselves: they hear each
  other by heartbeats on ``<prefix>.members.<engine>`` and each subscribes to its share
  (:mod:`.members`); single active consumer keeps a partition with one worker at a time
  while it moves.
- with ``canopsis_exchange`` set, Canopsis connectors' JSON events published to that
  topic exchange are converted and fed to the chain's roots (:meth:`consume_ingress`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline.abc import INGRESS, Bus, DeadLetter, Handler
from watchkeeper.pipeline.bus.members import Members, share
from watchkeeper.pipeline.canopsis import from_canopsis_json
from watchkeeper.pipeline.codec import (
    CONTENT_TYPE,
    DEAD_CONTENT_TYPE,
    decode_batch,
    decode_dead_letters,
    encode_batch,
    encode_dead_letters,
)
from watchkeeper.pipeline.partition import EntityIds, split

log = logging.getLogger(__name__)

_MAX_ERROR_HEADER = 4096
_MAX_BACKOFF = 30.0


class AmqpOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``bus.options`` for ``backend: amqp``."""

    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    prefix: str = "watchkeeper"
    queue_type: Literal["quorum", "classic"] = "quorum"
    prefetch: int = 16
    max_batch_events: int = 20_000
    max_message_events: int = 5_000
    max_length: int | None = None
    attempts: int = 5
    retry_delay: float = 1.0
    delivery_limit: int = 20
    publish_timeout: float = 30.0
    connect_timeout: float = 10.0
    standby_delay: float = 1.0
    heartbeat: float = 0.5
    member_timeout: float = 3.0
    canopsis_exchange: str | None = None
    canopsis_routing_key: str = "#"

    def __post_init__(self) -> None:
        for name in ("prefetch", "max_batch_events", "max_message_events", "attempts",
                     "delivery_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError("max_length must be at least 1 (or null for no limit)")
        for name in ("retry_delay", "publish_timeout", "connect_timeout", "standby_delay",
                     "heartbeat", "member_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.heartbeat <= 0 or self.member_timeout <= self.heartbeat:
            raise ValueError("heartbeat must be positive and member_timeout longer than it")
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise ValueError("prefix must be a non-empty word")
        if urlsplit(self.url).scheme not in ("amqp", "amqps"):
            raise ValueError("url must start with amqp:// or amqps://")


@dataclass
class _Queue:
    partitions: int
    ordered: bool
    names: list[str] = field(default_factory=list)
    dead: str = ""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class AmqpBus(Bus):
    """Event batches over RabbitMQ (aio-pika, robust connection, publisher confirms).

    Options are checked when the bus is built, before anything connects.
    """

    durable = True
    Options = AmqpOptions

    def __init__(self, **options: Any) -> None:
        try:
            self.options = msgspec.convert(options, AmqpOptions)
        except (msgspec.ValidationError, ValueError) as exc:
            # build_bus turns TypeError into a ConfigError at bus.options
            raise TypeError(str(exc)) from None
        self._queues: dict[str, _Queue] = {}
        self._consumers: dict[str, list[_Consumer]] = {}
        self._sharing: dict[str, _Sharing] = {}
        self._connection: Any = None
        self._publisher: Any = None
        self._admin: Any = None
        self._entity_ids = EntityIds()
        self.redeliveries = 0

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, exit_stack: AsyncExitStack) -> None:
        try:
            import aio_pika
        except ImportError:
            raise PipelineError("the amqp bus needs aio-pika: pip install 'watchkeeper[amqp]'"
                                ) from None
        url = self.options.url
        try:
            self._connection = await aio_pika.connect_robust(
                url, timeout=self.options.connect_timeout,
                client_properties={"connection_name": f"watchkeeper {self.options.prefix}"})
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
            raise PipelineError(f"cannot connect to the AMQP broker at {redact(url)}: "
                                f"{exc!r}") from None
        exit_stack.push_async_callback(self._close)
        self._publisher = await self._connection.channel(publisher_confirms=True,
                                                         on_return_raises=True)
        self._admin = await self._connection.channel(publisher_confirms=False)

    async def _close(self) -> None:
        for queue in list({**self._consumers, **self._sharing}):
            await self.stop_consuming(queue)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None

    def prefer_partitions(self, index: int, count: int) -> None:
        """Kept for old callers: the workers now agree on their shares by themselves
        (:mod:`.members`), so this only checks its arguments."""
        if not 0 <= index < count:
            raise PipelineError(f"worker index {index} is not in 0..{count - 1}")

    # -- topology -------------------------------------------------------------------

    def queue_names(self, queue: str) -> list[str]:
        """The broker queues behind ``queue`` (one per partition)."""
        return list(self._declared(queue).names)

    def dead_queue(self, queue: str) -> str:
        return self._declared(queue).dead

    def _declared(self, queue: str) -> _Queue:
        info = self._queues.get(queue)
        if info is None:
            raise PipelineError(f"queue {queue!r} was not declared on the amqp bus")
        return info

    async def declare(self, queue: str, *, partitions: int = 1, ordered: bool = False) -> None:
        if partitions < 1:
            raise PipelineError(f"queue {queue!r}: partitions must be at least 1")
        prefix = self.options.prefix
        ordered = ordered or partitions > 1
        names = ([f"{prefix}.{queue}"] if partitions == 1
                 else [f"{prefix}.{queue}.{p}" for p in range(partitions)])
        info = _Queue(partitions=partitions, ordered=ordered, names=names,
                      dead=f"{prefix}.dead.{queue}")
        await self._declare_queue(info.dead, self._arguments(dead=True), queue)
        for name in names:
            await self._declare_queue(name, self._arguments(dead_letter_to=info.dead,
                                                            ordered=ordered), queue)
        self._queues[queue] = info

    def _arguments(self, *, dead: bool = False, dead_letter_to: str = "",
                   ordered: bool = False) -> dict[str, Any]:
        opts = self.options
        args: dict[str, Any] = {"x-queue-type": opts.queue_type}
        if dead:
            return args
        if ordered:
            args["x-single-active-consumer"] = True
        if opts.queue_type == "quorum":
            args["x-delivery-limit"] = opts.delivery_limit
            args["x-dead-letter-exchange"] = ""
            args["x-dead-letter-routing-key"] = dead_letter_to
        if opts.max_length is not None:
            args["x-max-length"] = opts.max_length
            args["x-overflow"] = "reject-publish"
        return args

    async def _declare_queue(self, name: str, arguments: dict[str, Any], queue: str) -> None:
        import aio_pika

        self._require_connection()
        try:
            await self._admin.declare_queue(name, durable=True, arguments=arguments)
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            # the channel is closed by the broker after a failed declare: reopen it
            self._admin = await self._connection.channel(publisher_confirms=False)
            raise PipelineError(
                f"queue {name!r} (engine {queue!r}) exists on the broker with other settings "
                f"({exc}); delete it, or use another bus prefix") from None

    async def delete_queues(self) -> None:
        """Delete every queue this bus declared (tests, and tearing a deployment down)."""
        self._require_connection()
        for queue, info in self._queues.items():
            for name in [*info.names, info.dead]:
                with contextlib.suppress(Exception):
                    await self._admin.queue_delete(name)
            if info.partitions > 1:
                with contextlib.suppress(Exception):
                    await self._admin.exchange_delete(self._members_exchange(queue))
        self._queues.clear()

    def _require_connection(self) -> None:
        if self._connection is None:
            raise PipelineError("the amqp bus is not started")

    # -- publishing -----------------------------------------------------------------

    async def publish(self, queue: str, events: Sequence[Event]) -> None:
        await self.fan_out((queue,), events)

    async def fan_out(self, queues: Sequence[str], events: Sequence[Event]) -> None:
        """Publish ``events`` to every queue in ``queues``, encoding each group only once."""
        if not events or not queues:
            return
        self._require_connection()
        bodies: dict[int, list[tuple[int, bytes, int]]] = {}  # partitions -> (p, body, n)
        sends: list[Awaitable[None]] = []
        for queue in queues:
            info = self._declared(queue)
            encoded = bodies.get(info.partitions)
            if encoded is None:
                encoded = bodies[info.partitions] = self._encode(events, info.partitions)
            sends.extend(self._send(info.names[p], body, n) for p, body, n in encoded)
        await asyncio.gather(*sends)

    def _encode(self, events: Sequence[Event], partitions: int) -> list[tuple[int, bytes, int]]:
        size = self.options.max_message_events
        out = []
        for partition, group in split(events, partitions, self._entity_ids).items():
            for start in range(0, len(group), size):
                chunk = group[start:start + size]
                out.append((partition, encode_batch(chunk), len(chunk)))
        return out

    async def _send(self, name: str, body: bytes, count: int, *,
                    content_type: str = CONTENT_TYPE,
                    headers: dict[str, Any] | None = None) -> None:
        import aio_pika

        message = aio_pika.Message(
            body, content_type=content_type, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=uuid.uuid4().hex, headers={"x-events": count, **(headers or {})})
        delay = 0.01
        waited = 0.0
        while True:
            try:
                await self._publisher.default_exchange.publish(
                    message, routing_key=name, mandatory=True,
                    timeout=self.options.publish_timeout)
            except aio_pika.exceptions.PublishError as exc:  # returned: no such queue
                raise PipelineError(f"queue {name!r} does not exist on the broker "
                                    f"(was it deleted?): {exc!r}") from None
            except aio_pika.exceptions.DeliveryError:
                # nacked: the queue is at max_length (reject-publish). Wait: back-pressure.
                if waited >= 10 and waited - delay < 10:
                    log.warning("queue %s is full; publishers are waiting", name)
            except (TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError,
                    RuntimeError) as exc:
                # connection trouble: the robust connection reconnects; publish again
                # (at least once: a lost confirm may mean the broker has it already)
                log.warning("publishing to %s failed (%r); retrying", name, exc)
                if waited > self.options.publish_timeout * 4:
                    raise PipelineError(f"cannot publish to {name!r}: {exc!r}") from exc
            else:
                return
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 1.0)

    async def dead_letter(self, queue: str, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        info = self._declared(queue)
        error = letters[0].error[-_MAX_ERROR_HEADER:]
        await self._send(info.dead, encode_dead_letters(letters), len(letters),
                         content_type=DEAD_CONTENT_TYPE,
                         headers={"x-engine": queue, "x-error": error})

    async def read_dead_letters(self, queue: str, *, limit: int = 1000) -> list[DeadLetter]:
        """Take up to ``limit`` dead letters of ``queue`` off the broker (tests, replay tools).

        Batches the broker dead-lettered itself (delivery limit reached: the message kept
        killing its worker) come back as letters whose error says so.
        """
        self._require_connection()
        info = self._declared(queue)
        channel = await self._connection.channel(publisher_confirms=False)
        letters: list[DeadLetter] = []
        try:
            dead = await channel.get_queue(info.dead, ensure=False)
            while len(letters) < limit:
                message = await dead.get(fail=False, no_ack=True)
                if message is None:
                    break
                if message.content_type == DEAD_CONTENT_TYPE:
                    letters.extend(decode_dead_letters(message.body))
                elif message.content_type != CONTENT_TYPE:
                    log.error("dead queue %s: undecodable message dropped (error: %s)",
                              info.dead, (message.headers or {}).get("x-error"))
                else:
                    deaths = (message.headers or {}).get("x-death")
                    letters.extend(
                        DeadLetter(engine=queue, event=e, attempts=0,
                                   error=f"dead-lettered by the broker: {deaths!r}")
                        for e in decode_batch(message.body))
        finally:
            await channel.close()
        return letters

    # -- Canopsis connectors in -----------------------------------------------------

    async def consume_ingress(self, handler: Handler, *, now: Callable[[], float]) -> bool:
        """With ``canopsis_exchange`` set: take Canopsis JSON events published there (a topic
        exchange, as Canopsis connectors expect), convert them, and hand them to ``handler``
        (the pipeline publishes them to its roots). A body that is not a valid Canopsis
        event goes to ``<prefix>.dead.ingress`` with the error in ``x-error``."""
        import aio_pika

        exchange_name = self.options.canopsis_exchange
        if exchange_name is None:
            return False
        self._require_connection()
        prefix = self.options.prefix
        info = _Queue(partitions=1, ordered=False, names=[f"{prefix}.{INGRESS}.canopsis"],
                      dead=f"{prefix}.dead.{INGRESS}")
        await self._declare_queue(info.dead, self._arguments(dead=True), INGRESS)
        await self._declare_queue(info.names[0], self._arguments(dead_letter_to=info.dead),
                                  INGRESS)
        self._queues[INGRESS] = info
        exchange = await self._admin.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await self._admin.get_queue(info.names[0], ensure=False)
        await queue.bind(exchange, routing_key=self.options.canopsis_routing_key)

        source = f"amqp:{exchange_name}"

        def decode(message: Any) -> list[Event]:
            # ids from the message (its body, and its message id when the connector set
            # one): a redelivered message converted again gives the same ids
            return from_canopsis_json(message.body, now=now(), source=source,
                                      key=message.message_id or "")

        consumer = _Consumer(self, INGRESS, info.names[0], handler, decode=decode)
        await consumer.start()
        self._consumers.setdefault(INGRESS, []).append(consumer)
        return True

    # -- consuming ------------------------------------------------------------------

    async def consume(self, queue: str, handler: Handler, *, workers: int = 1) -> None:
        self._require_connection()
        info = self._declared(queue)
        consumers = self._consumers.setdefault(queue, [])
        if not info.ordered:
            for _ in range(max(1, workers)):
                consumer = _Consumer(self, queue, info.names[0], handler)
                await consumer.start()
                consumers.append(consumer)
            return
        if info.partitions == 1:  # one queue: every worker waits in line for it
            consumer = _Consumer(self, queue, info.names[0], handler)
            await consumer.start()
            consumers.append(consumer)
            return
        opts = self.options
        members = Members(self._connection, self._members_exchange(queue),
                          heartbeat=opts.heartbeat, timeout=opts.member_timeout)
        await members.start()
        sharing = _Sharing(members)
        sharing.task = asyncio.create_task(self._share(queue, handler, sharing),
                                           name=f"share:{queue}")
        self._sharing[queue] = sharing

    def _members_exchange(self, queue: str) -> str:
        return f"{self.options.prefix}.members.{queue}"

    async def _share(self, queue: str, handler: Handler, sharing: _Sharing) -> None:
        """Keep this process subscribed to its share of ``queue``'s partitions."""
        info = self._declared(queue)
        members = sharing.members
        # hear the workers already running before taking partitions, so a worker that
        # joins takes its share without first grabbing (and then giving back) the rest
        await asyncio.sleep(self.options.standby_delay)
        while not sharing.closing:
            members.changed.clear()
            try:
                await self._take_share(queue, info, handler, sharing)
            except Exception as exc:  # noqa: BLE001 - connection trouble: try again shortly
                log.warning("queue %s: could not take this worker's share (%r); retrying",
                            queue, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(members.changed.wait(), self.options.heartbeat)

    async def _take_share(self, queue: str, info: _Queue, handler: Handler,
                          sharing: _Sharing) -> None:
        members = sharing.members
        alive = members.alive()
        wanted = set(share(alive, members.me, info.partitions))
        held = sharing.consumers
        for p in sorted(set(held) - wanted):  # finish the batch in hand, then let go
            consumer = held.pop(p)
            self._consumers[queue] = list(held.values())
            await consumer.stop()
        for p in sorted(wanted - set(held)):
            if sharing.closing:
                break
            consumer = _Consumer(self, queue, info.names[p], handler)
            await consumer.start()
            held[p] = consumer
            self._consumers[queue] = list(held.values())
        if set(held) != sharing.reported:
            sharing.reported = set(held)
            log.info("queue %s: worker %s (of %d) takes partitions %s",
                     queue, members.me[:8], len(alive), sorted(held))

    async def stop_consuming(self, queue: str) -> None:
        sharing = self._sharing.pop(queue, None)
        if sharing is not None:
            sharing.closing = True
            sharing.members.changed.set()
            if sharing.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await sharing.task
        consumers = self._consumers.pop(queue, [])
        for consumer in consumers:
            consumer.stopping()
        for consumer in consumers:
            await consumer.stop()
        if sharing is not None:
            await sharing.members.stop()

    async def drain(self, queue: str) -> None:
        """Wait until ``queue`` has no message ready and this process holds none.

        Messages other processes hold are not visible; a drain across processes is
        exact only once those have stopped.
        """
        self._require_connection()
        info = self._declared(queue)
        quiet = 0
        while quiet < 2:  # twice in a row: a batch may be between queues
            ready = await self._ready(info.names)
            held = sum(c.held for c in self._consumers.get(queue, []))
            quiet = quiet + 1 if ready == 0 and held == 0 else 0
            await asyncio.sleep(0.02)

    async def depth(self, queue: str) -> int:
        """Messages (batches) ready in ``queue``'s broker queues."""
        self._require_connection()
        return await self._ready(self._declared(queue).names)

    async def _ready(self, names: Sequence[str]) -> int:
        # the robust channel answers a passive declare from its cache: ask the broker
        channel = await self._admin.get_underlay_channel()
        total = 0
        for name in names:
            declared = await channel.queue_declare(name, passive=True)
            total += declared.message_count or 0
        return total


@dataclass
class _Sharing:
    """One partitioned queue's share in this process: who we are, what we hold."""

    members: Members
    consumers: dict[int, _Consumer] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    closing: bool = False


def _decode_message(message: Any) -> list[Event]:
    return decode_batch(message.body)


class _Consumer:
    """One subscription: a channel with its prefetch, and the task that handles its batches."""

    def __init__(self, bus: AmqpBus, queue: str, name: str, handler: Handler, *,
                 decode: Callable[[Any], list[Event]] | None = None) -> None:
        self._bus = bus
        self._decode_message = decode or _decode_message
        self._queue = queue
        self._name = name
        self._handler = handler
        self._buffer: asyncio.Queue[Any] = asyncio.Queue()
        self._channel: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._poison: list[tuple[Any, str]] = []
        self.held = 0

    async def start(self) -> None:
        opts = self._bus.options
        connection = self._bus._connection
        self._channel = await connection.channel(publisher_confirms=False)
        await self._channel.set_qos(prefetch_count=opts.prefetch)
        queue = await self._channel.get_queue(self._name, ensure=False)
        await queue.consume(self._on_message, no_ack=False)
        self._task = asyncio.create_task(self._run(), name=f"consume:{self._name}")

    async def _on_message(self, message: Any) -> None:
        self.held += 1
        self._buffer.put_nowait(message)

    def stopping(self) -> None:
        self._stopping = True
        self._buffer.put_nowait(None)  # wakes an idle worker

    async def stop(self) -> None:
        """Finish the batch in hand, then close the channel: what is left is requeued."""
        self.stopping()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
        self.held = 0

    async def _run(self) -> None:
        limit = self._bus.options.max_batch_events
        while not self._stopping:
            first = await self._buffer.get()
            if first is None:
                continue
            messages = [first]
            events = self._decode(first)
            while len(events) < limit and not self._buffer.empty():
                message = self._buffer.get_nowait()
                if message is None:
                    break
                messages.append(message)
                events.extend(self._decode(message))
            again = sum(1 for m in messages if m.redelivered)
            if again:
                log.warning("queue %s: %d batch(es) redelivered (a worker died or a handler "
                            "failed); engines skip what they already applied", self._name, again)
            live = [m for m in messages if not m.channel.is_closed]
            if len(live) < len(messages):
                # delivered on a channel lost since: the broker redelivers those
                self.held -= len(messages)
                continue
            done = await self._handle(events)
            if not done:  # stopping while retrying: leave them to be requeued
                return
            try:
                await messages[-1].ack(multiple=True)
            except Exception as exc:  # noqa: BLE001 - the broker redelivers; stages dedup
                log.warning("queue %s: ack failed (%r); the batch will come again",
                            self._name, exc)
            self.held -= len(messages)

    def _decode(self, message: Any) -> list[Event]:
        if message.redelivered:
            self._bus.redeliveries += 1
        try:
            return self._decode_message(message)
        except PipelineError as exc:
            log.error("queue %s: %s; dead-lettering the message", self._name, exc)
            self._poison.append((message, str(exc)))
            return []

    async def _handle(self, events: list[Event]) -> bool:
        """Run the handler with retries; False when stopping cut the retries short."""
        bus = self._bus
        opts = bus.options
        await self._bury_poison()
        if not events:
            return True
        delay = opts.retry_delay
        for attempt in range(1, opts.attempts + 1):
            try:
                await self._handler(events)
            except Exception as exc:
                if attempt == opts.attempts:
                    log.error("queue %s: handler failed %d times; dead-lettering %d events",
                              self._name, attempt, len(events))
                    error = "".join(traceback.format_exception(exc))
                    await bus.dead_letter(self._queue, [
                        DeadLetter(engine=self._queue, event=e, error=error, attempts=attempt)
                        for e in events])
                    return True
                log.exception("queue %s: handler failed (attempt %d/%d); retrying",
                              self._name, attempt, opts.attempts)
                await asyncio.sleep(delay)
                delay = min(max(delay * 2, 0.01), _MAX_BACKOFF)
                if self._stopping:
                    return False
            else:
                return True
        return True  # pragma: no cover - the loop always returns

    async def _bury_poison(self) -> None:
        poison = self._poison
        while poison:
            message, error = poison.pop()
            info = self._bus._declared(self._queue)
            await self._bus._send(info.dead, message.body, 0,
                                  content_type="application/octet-stream",
                                  headers={"x-engine": self._queue, "x-error": error})
