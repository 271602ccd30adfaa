"""The one wire form of event batches between processes: msgspec msgpack, encoded once per hop.

Decoding ignores fields it does not know, so a newer producer can talk to an older
consumer; every event carries its schema version (``Event.v``).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline.abc import DeadLetter

CONTENT_TYPE = "application/x-watchkeeper-events+msgpack"
DEAD_CONTENT_TYPE = "application/x-watchkeeper-dead-letters+msgpack"

_encoder = msgspec.msgpack.Encoder()
_events = msgspec.msgpack.Decoder(list[Event])
_letters = msgspec.msgpack.Decoder(list[DeadLetter])


def encode_batch(events: Sequence[Event]) -> bytes:
    return _encoder.encode(events)


def decode_batch(data: bytes) -> list[Event]:
    """The events of one message; a malformed body is a :class:`PipelineError`."""
    try:
        return _events.decode(data)
    except (msgspec.DecodeError, ValueError) as exc:
        raise PipelineError(f"undecodable event batch ({len(data)} bytes): {exc}") from None


def encode_dead_letters(letters: Sequence[DeadLetter]) -> bytes:
    return _encoder.encode(letters)


def decode_dead_letters(data: bytes) -> list[DeadLetter]:
    try:
        return _letters.decode(data)
    except (msgspec.DecodeError, ValueError) as exc:
        raise PipelineError(f"undecodable dead letters ({len(data)} bytes): {exc}") from None
