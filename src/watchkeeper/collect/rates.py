"""Counter deltas and rates with 32/64-bit wrap and reset detection. Pure: no I/O, no clock.

SNMP counters (``Counter32``, ``Counter64``) only ever grow and wrap to zero at 2**bits.
When a counter went *down* between two samples it either wrapped once or was reset (the
agent or interface restarted). The rules, in order:

* a 64-bit counter never wraps in practice (2**64 bytes at 400 Gbit/s take 11 years), so
  a decrease is a reset: no rate;
* a 32-bit decrease is a wrap, unless the implied growth is more than half the range,
  which is far likelier a reset (a wrap that big needs polls too slow for the link);
* a rate above ``max_rate`` (e.g. twice the interface speed) is a discontinuity: no rate;
* no time elapsed (or time going backwards): no rate.

"No rate" is ``None``: the caller skips that point and keeps the new sample as the base.
"""

from __future__ import annotations

from typing import NamedTuple

COUNTER32_BITS = 32
COUNTER64_BITS = 64


class CounterSample(NamedTuple):
    """One reading of a counter: its raw value and when it was read (seconds)."""

    value: int
    ts: float


def counter_delta(previous: int, current: int, *, bits: int = COUNTER64_BITS) -> int | None:
    """How much a ``bits``-wide counter grew from ``previous`` to ``current``; None if reset.

    Values outside ``0 <= v < 2**bits`` are not readings of such a counter: None.
    """
    modulus = 1 << bits
    if not (0 <= previous < modulus and 0 <= current < modulus):
        return None
    if current >= previous:
        return current - previous
    if bits >= COUNTER64_BITS:
        return None  # a 64-bit counter that went down was reset, not wrapped
    wrapped = current + modulus - previous
    return wrapped if wrapped <= modulus // 2 else None


def counter_rate(
    previous: CounterSample,
    current: CounterSample,
    *,
    bits: int = COUNTER64_BITS,
    max_rate: float | None = None,
) -> float | None:
    """Growth per second between two samples, or None when it cannot be trusted."""
    elapsed = current.ts - previous.ts
    if elapsed <= 0:
        return None
    delta = counter_delta(previous.value, current.value, bits=bits)
    if delta is None:
        return None
    rate = delta / elapsed
    if max_rate is not None and rate > max_rate:
        return None
    return rate


def uptime_reset(previous_ticks: int, current_ticks: int) -> bool:
    """True when an agent's ``sysUpTime`` (TimeTicks, 1/100 s) says it restarted.

    TimeTicks wrap at 2**32 (after 497 days): a decrease that a wrap explains with less
    than half the range of growth is that wrap; any other decrease is a restart.
    """
    return counter_delta(previous_ticks, current_ticks, bits=COUNTER32_BITS) is None
