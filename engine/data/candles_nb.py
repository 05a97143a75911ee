"""Candle checks as a kernel: find the first invalid candle in one pass (numba; numpy and numba only).

:func:`engine.data.candles.check_bars` runs this scan over the whole frame and words the error with
:func:`engine.data.candles._ohlcv_problem` on the offending row only, so a valid million-row frame
costs one pass instead of a dozen numpy passes. The rules are those of ``_ohlcv_problem`` without
the timeframe grid; a test keeps the two in agreement.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@nb.njit(cache=True, nogil=True)
def first_bad_candle_nb(ts_raw: IntArray, ts_div: int, o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray,
                        v: FloatArray) -> int:
    """Return the row of the first invalid candle, or -1 when every candle is valid.

    Parameters
    ----------
    ts_raw : int64 array, shape (n,)
        Open times in the index's own unit (``DatetimeIndex.asi8``).
    ts_div : int
        Index units per millisecond: 1000 for "us", 1,000,000 for "ns", 1 for "ms" and "s" (two
        open times share a millisecond when ``t // ts_div`` is equal: floored, as
        ``DatetimeIndex.as_unit("ms")``).
    o, h, lo, c, v : float64 arrays, shape (n,)
        Open, high, low, close (quote per base unit) and volume (base units).

    Notes
    -----
    A candle is invalid when a value is not finite, a price is ≤ 0, the volume is < 0, ``high <
    low``, ``low > min(open, close)``, ``high < max(open, close)``, or its open time (in ms) is not
    after the previous candle's.
    """
    prev = 0
    for i in range(o.shape[0]):
        t = ts_raw[i]
        oi, hi, li, ci, vi = o[i], h[i], lo[i], c[i], v[i]
        # all of the rules above in one test: it holds only for finite prices > 0 with low ≤ open,
        # close ≤ high (NaN compares false) and a finite volume ≥ 0
        if not (li > 0.0 and hi < math.inf and li <= oi and li <= ci and oi <= hi and ci <= hi
                and vi >= 0.0 and vi < math.inf):
            return i
        # "not after the previous candle in ms": compare in the index's unit; only two times less
        # than 1 ms apart need the (slow) division into ms
        if i > 0 and (t <= prev or (t - prev < ts_div and t // ts_div == prev // ts_div)):
            return i
        prev = t
    return -1
