"""Remote-write requests that repeat an earlier request's series, read by numpy alone.

A sender such as Prometheus sends the same series round after round, each with one new
sample. A request's *shape* is its decompressed bytes with each sample's value and
timestamp zeroed: two requests of one shape hold the same series in the same order, each
with one sample laid out as ``remote_write`` reads it in bulk (``12 10 09 <value:8> 10
<timestamp varint:6>``, the last 18 bytes of its TimeSeries, or ``12 07 10 <timestamp>``
for a value of 0, which protobuf leaves out). The decoder remembers the
shapes of the last requests it read that way (by decompressed size, bounded in count and
bytes); a request of a remembered size is checked against its shape in a few passes over
its bytes: the values and timestamps are gathered at the remembered offsets, those bytes
zeroed, and the rest compared with the shape byte for byte. Equal, the request's series
are the shape's, checked and mapped when the shape was taken; anything else, and the
request is read as any other.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive import Columns

STAMP_BYTES: Final = 6  # a millisecond timestamp from 1971 to 2109 is a 6-byte varint
_TAG: Final = np.uint64(0x10)  # the Sample's timestamp field, just before the varint
_CONTINUED: Final = np.uint64(0x808080808080)  # the varint's continuation bits, 6 bytes
_FIVE_CONTINUED: Final = np.uint64(0x008080808080)  # ...set on the first five only
_TOKEN_PREFIX: Final = b"remote-write:"

Positions = npt.NDArray[np.intp]


class Offsets(NamedTuple):
    """Where each series' sample is: its value's 8 bytes (-1: a value of 0, left out by
    the sender) and its timestamp's 6-byte varint."""

    values: Positions
    stamps: Positions


@dataclass(frozen=True, eq=False)
class Shape:
    """A request's bytes with its samples zeroed, where its samples are, its series."""

    skeleton: bytes
    offsets: Offsets
    series: list[str]
    token: bytes  # passed to the archive as Columns.series_token: one per shape

    @classmethod
    def of(cls, buf: bytes, offsets: Offsets, series: list[str]) -> Shape:
        skeleton = bytearray(buf)
        _zero_samples(skeleton, offsets)
        return cls(bytes(skeleton), offsets, series, _TOKEN_PREFIX + os.urandom(16))

    def read(self, buf: bytearray) -> Columns | None:
        """The request's columns when ``buf`` (of the shape's size, and overwritten
        here) has this shape; else None."""
        samples = read_samples(buf, self.offsets)
        if samples is None:
            return None
        values, stamps = samples
        _zero_samples(buf, self.offsets)
        if buf != self.skeleton:
            return None
        return columns(self.series, values, stamps, token=self.token)


class Shapes:
    """The shapes of the last requests read in bulk, by decompressed size; at most
    ``count`` of them and ``limit`` bytes of skeletons, the oldest dropped first."""

    def __init__(self, *, count: int = 8, limit: int = 64 * 1024 * 1024) -> None:
        self._shapes: OrderedDict[int, Shape] = OrderedDict()
        self._count = count
        self._limit = limit
        self._lock = threading.Lock()  # large requests are decoded on worker threads

    def __len__(self) -> int:
        return len(self._shapes)

    def get(self, size: int) -> Shape | None:
        return self._shapes.get(size)

    def remember(self, shape: Shape) -> None:
        size = len(shape.skeleton)
        if size > self._limit:
            return
        with self._lock:
            self._shapes.pop(size, None)
            self._shapes[size] = shape
            while (len(self._shapes) > self._count
                   or sum(len(s.skeleton) for s in self._shapes.values()) > self._limit):
                self._shapes.popitem(last=False)


def read_samples(buf: bytes | bytearray, offsets: Offsets
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]] | None:
    """The value and millisecond timestamp of each sample, or None unless each varint
    follows the timestamp field's tag and is 6 bytes long."""
    if not len(offsets.stamps):
        return np.empty(0, np.float64), np.empty(0, np.int64)
    raw = _words(buf, "<u8")[offsets.stamps - 2]  # a byte, the tag, the varint
    varint = raw >> np.uint64(16)
    if not (((raw >> np.uint64(8)) & np.uint64(0xFF)) == _TAG).all() \
            or not ((varint & _CONTINUED) == _FIVE_CONTINUED).all():
        return None
    stamps = np.zeros(len(varint), dtype=np.uint64)
    for byte in range(STAMP_BYTES):
        stamps |= ((varint >> np.uint64(8 * byte)) & np.uint64(0x7F)) << np.uint64(7 * byte)
    floats = _words(buf, "<f8")
    if offsets.values.min() >= 0:  # the usual case: every value written
        values = floats[offsets.values]
    else:
        values = np.zeros(len(offsets.values), dtype=np.float64)
        written = offsets.values >= 0
        values[written] = floats[offsets.values[written]]
    return values, stamps.astype(np.int64)


def columns(series: list[str], values: npt.NDArray[np.float64], stamps: npt.NDArray[np.int64],
            *, token: bytes | None) -> Columns:
    """One sample per series (a stale marker kept as any value, its NaN bits intact)."""
    return Columns(series=series, index=np.arange(len(series), dtype=np.int32),
                   ts=stamps / 1000.0, values=values, series_token=token)


def _zero_samples(buf: bytearray, offsets: Offsets) -> None:
    """Zero each sample's value and timestamp varint, in place (nothing else)."""
    if len(offsets.stamps):
        _words(buf, "<f8")[offsets.values[offsets.values >= 0]] = 0
        _words(buf, "<u4")[offsets.stamps] = 0
        _words(buf, "<u2")[offsets.stamps + 4] = 0


def _words(buf: bytes | bytearray, dtype: str) -> npt.NDArray[Any]:
    """The word of ``dtype`` at every byte offset of ``buf`` (overlapping, unaligned)."""
    size = np.dtype(dtype).itemsize
    return np.ndarray(shape=(max(len(buf) - size + 1, 0),), dtype=dtype, buffer=buf,
                      strides=(1,))
