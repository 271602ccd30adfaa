"""Decoding a write batch: msgspec typed decode against json.loads plus manual checks.

Run: python benchmarks/wire.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import msgspec

from watchkeeper.wire import WriteBatch

N = 100_000


def median_seconds(func: Callable[[], object], runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    points = [[f'dev{i % 1000}/snmp/if.in{{if="eth{i % 4}"}}', 1.7e9 + i, float(i)]
              for i in range(N)]
    body = json.dumps({"points": points}).encode()
    decoder = msgspec.json.Decoder(WriteBatch)

    def stdlib() -> object:
        out = []
        for series, ts, value in json.loads(body)["points"]:
            if not isinstance(series, str) or not isinstance(ts, (int, float)):
                raise TypeError(series)
            out.append((series, float(ts), float(value)))
        return out

    fast = median_seconds(lambda: decoder.decode(body))
    slow = median_seconds(stdlib)
    print(f"msgspec typed decode          {N / fast / 1e6:6.2f} M points/s")
    print(f"json.loads + manual checks    {N / slow / 1e6:6.2f} M points/s")
    print(f"ratio                         {slow / fast:6.1f}x")


if __name__ == "__main__":
    main()
