"""The loops :mod:`kernels` compiles with numba (decision D48), apart so that numba is
imported only once a query needs them (this module imports it).

Series are read where they lie: a loop takes each series' address and length and views
its memory as an array (``_pointer`` and ``numba.carray``), so the archive's kept runs
need no copy into one array first (D51). :mod:`kernels` checks every array before its
address is taken (1-d, contiguous, of the right type) and keeps them alive meanwhile.
"""

from __future__ import annotations

from typing import Any, Final

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from watchkeeper.archive.promql.values import Floats, Ints, Mask


def _as_pointer(typingctx: Any, address: Any) -> Any:  # pragma: no cover (compile time)
    """An int64 address as a pointer, for ``carray``."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(address), codegen


_pointer: Any = intrinsic(_as_pointer)


def jit(loop: Any, *, cache: bool) -> Any:
    # error_model="numpy": a division by zero gives inf or NaN as in numpy and Go, and no
    # check before every division (twice as fast)
    return numba.njit(loop, cache=cache, nogil=True, boundscheck=False, error_model="numpy")


# numba's calls are positional, hence the noqa; the loops run compiled, out of coverage's
# sight, and are tested through kernels' functions against Prometheus' own answers
def bounds_loop(  # noqa: PLR0917
    ts: Ints, bounds: Ints, ref: Ints, range_ms: np.int64, lo: Ints, hi: Ints,
) -> None:  # pragma: no cover
    n = len(ref)
    for s in range(len(bounds) - 1):
        end = bounds[s + 1]
        a = bounds[s]
        b = a
        for k in range(n):
            while a < end and ts[a] < ref[k] - range_ms:
                a += 1
            b = max(a, b)
            while b < end and ts[b] <= ref[k]:
                b += 1
            lo[s * n + k] = a
            hi[s * n + k] = b


def rate_loop(  # noqa: PLR0917
    ts_at: Ints, values_at: Ints, lengths: Ints, ref: Ints, range_ms: np.int64,
    counter: bool, falls: Ints, per_second: bool, out: Floats, ok: Mask,
) -> None:  # pragma: no cover
    n = len(ref)
    seconds = range_ms / 1000.0
    for s in range(len(lengths)):
        size = lengths[s]
        ts = carray(_pointer(ts_at[s]), size, np.int64)
        values = carray(_pointer(values_at[s]), size, np.float64)
        # where the counter falls, in sample order
        count = 0
        if counter:
            for i in range(1, size):
                falls[count] = i  # kept where the value fell (no branch to mispredict)
                count += values[i] < values[i - 1]
        a = b = 0
        at = 0  # the next fall after a window's first sample
        for k in range(n):
            row = s * n + k
            r = ref[k]
            while a < size and ts[a] < r - range_ms:
                a += 1
            b = max(a, b)
            while b < size and ts[b] <= r:
                b += 1
            first, last = a, b - 1
            ok[row] = last > first
            if last <= first:
                continue
            v_first = values[first]
            result = values[last] - v_first
            # Prometheus: each fall adds the value before it, in sample order
            while at < count and falls[at] <= first:
                at += 1
            j = at
            while j < count and falls[j] <= last:
                result += values[falls[j] - 1]
                j += 1
            t_first, t_last = ts[first], ts[last]
            sampled = (t_last - t_first) / 1000.0
            average = sampled / (last - first)
            to_start = (t_first - (r - range_ms)) / 1000.0
            to_end = (r - t_last) / 1000.0
            if counter and result > 0 and v_first >= 0:
                to_zero = sampled * (v_first / result)
                if to_zero < to_start:  # noqa: PLR1730  (min() is not NaN-safe the same way)
                    to_start = to_zero
            threshold = average * 1.1
            interval = sampled
            interval += to_start if to_start < threshold else average / 2
            interval += to_end if to_end < threshold else average / 2
            result = result * (interval / sampled)
            if per_second:
                result = result / seconds
            out[row] = result


def stale_loop(values_at: Ints, lengths: Ints, marker: np.uint64,
               out: Ints) -> None:  # pragma: no cover
    for s in range(len(lengths)):
        bits = carray(_pointer(values_at[s]), lengths[s], np.uint64)
        found = 0
        for i in range(lengths[s]):
            found += bits[i] == marker  # no branch: the loop runs vectorised
        out[s] = found


def pairs_loop(  # noqa: PLR0917
    encoded: Any, times: Any, time_at: Ints, steps_of: Ints, counts: Ints, out: Any,
    ends: Ints,
) -> None:  # pragma: no cover
    i = 1  # past the list's "["
    o = 0
    k = 0
    for s in range(len(counts)):
        out[o] = 91  # [
        o += 1
        for j in range(counts[s]):
            if j:
                out[o] = 44  # ,
                o += 1
            out[o] = 91  # [
            o += 1
            step = steps_of[k]
            for c in range(time_at[step], time_at[step + 1]):
                out[o] = times[c]
                o += 1
            out[o] = 44  # ,
            out[o + 1] = 34  # "
            o += 2
            start = i
            while encoded[i] != 44 and encoded[i] != 93:  # to the next "," or the "]"
                i += 1
            stop = i
            if stop - start > 2 and encoded[stop - 2] == 46 and encoded[stop - 1] == 48:
                stop -= 2  # a whole number: Go writes no ".0"
            for c in range(start, stop):
                out[o] = encoded[c]
                o += 1
            i += 1
            out[o] = 34  # "
            out[o + 1] = 93  # ]
            o += 2
            k += 1
        out[o] = 93  # ]
        o += 1
        ends[s] = o


LOOPS: Final = (bounds_loop, rate_loop, stale_loop, pairs_loop)
"""In the order of kernels' ``_Kernels``."""
