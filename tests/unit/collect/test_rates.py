"""Counter deltas and rates: wrap, reset, discontinuity and time rules, from tables."""

from __future__ import annotations

import pytest

from watchkeeper.collect.rates import CounterSample, counter_delta, counter_rate, uptime_reset

M32 = 2**32
M64 = 2**64


@pytest.mark.parametrize(
    ("previous", "current", "bits", "delta"),
    [
        (100, 150, 32, 50),  # plain growth
        (0, 0, 32, 0),  # no growth
        (M32 - 10, 5, 32, 15),  # one 32-bit wrap
        (M32 - 1, 0, 32, 1),  # wrap exactly at the top
        (4_000_000_000, 1_000_000_000, 32, M32 - 3_000_000_000),  # big but < half: a wrap
        (1000, 5, 32, None),  # a drop needing > half the range to explain: a reset
        (M32 // 2, 0, 32, M32 // 2),  # exactly half: still a wrap
        (10, 20, 64, 10),
        (M64 - 10, 5, 64, None),  # 64-bit counters never wrap in practice: reset
        (500, 499, 64, None),
        (-1, 5, 32, None),  # not a counter reading
        (5, M32, 32, None),  # out of range for 32 bits
        (5, M32, 64, M32 - 5),  # fine for 64 bits
    ],
)
def test_counter_delta(previous: int, current: int, bits: int, delta: int | None) -> None:
    assert counter_delta(previous, current, bits=bits) == delta


@pytest.mark.parametrize(
    ("previous", "current", "bits", "max_rate", "rate"),
    [
        ((0, 100.0), (1000, 110.0), 64, None, 100.0),
        ((M32 - 500, 0.0), (500, 10.0), 32, None, 100.0),  # wrapped 32-bit counter
        ((M32 - 500, 0.0), (500, 10.0), 32, 50.0, None),  # ... but faster than possible
        ((100, 10.0), (100, 10.0), 64, None, None),  # no time passed
        ((100, 10.0), (200, 9.0), 64, None, None),  # time went backwards
        ((200, 0.0), (100, 10.0), 64, None, None),  # 64-bit reset
        ((0, 0.0), (0, 30.0), 32, 1.0, 0.0),  # idle
    ],
)
def test_counter_rate(previous: tuple[int, float], current: tuple[int, float], bits: int,
                      max_rate: float | None, rate: float | None) -> None:
    got = counter_rate(CounterSample(*previous), CounterSample(*current), bits=bits,
                       max_rate=max_rate)
    assert got == (pytest.approx(rate) if rate is not None else None)


@pytest.mark.parametrize(
    ("previous", "current", "reset"),
    [(1000, 1100, False), (1000, 10, True), (M32 - 100, 50, False), (1000, 1000, False)],
)
def test_uptime_reset(previous: int, current: int, reset: bool) -> None:
    assert uptime_reset(previous, current) is reset
