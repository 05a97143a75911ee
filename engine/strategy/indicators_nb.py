"""Causal indicator kernels: float64 arrays in, float64 arrays out.

Every kernel is a numba function (``cache=True``) that also runs as plain Python with
``NUMBA_DISABLE_JIT=1``. All are causal: ``out[t]`` uses only inputs ``[:t+1]`` (§8 of
STYLE.md); values during the warm-up are NaN. Inputs hold no NaN (candles are validated at the
boundary).
"""
from __future__ import annotations

import logging

import numba as nb
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@nb.njit(cache=True, nogil=True)
def sma_into_nb(x: FloatArray, period: int, out: FloatArray) -> None:
    """Write the simple moving average of `x` over `period` bars into `out` (see :func:`sma_nb`).

    Parameters
    ----------
    x : float64 array, shape (n,)
    period : int, ≥ 1

    Returns
    -------
    float64 array, shape (n,)
        ``out[t] = mean(x[t-period+1 : t+1])``; NaN for ``t < period-1``.

    Notes
    -----
    Causal; warm-up ``period - 1`` bars. A running sum (re-summed every 4096 bars to keep
    rounding from drifting) gives the same values as ``pandas.Series.rolling(period).mean()``
    to ~1e-12 relative.
    """
    n = x.shape[0]
    s = 0.0
    for t in range(n):
        if t >= period and (t % 4096) == 0:
            s = 0.0
            for k in range(t - period + 1, t + 1):
                s += x[k]
        else:
            s += x[t]
            if t >= period:
                s -= x[t - period]
        out[t] = s / period if t >= period - 1 else np.nan


@nb.njit(cache=True, nogil=True)
def sma_nb(x: FloatArray, period: int) -> FloatArray:
    """Return the simple moving average of `x` over `period` bars.

    Parameters
    ----------
    x : float64 array, shape (n,)
    period : int, ≥ 1

    Returns
    -------
    float64 array, shape (n,)
        ``out[t] = mean(x[t-period+1 : t+1])``; NaN for ``t < period-1``.

    Notes
    -----
    Causal; warm-up ``period - 1`` bars. See :func:`sma_into_nb` for the method.
    """
    out = np.empty(x.shape[0], dtype=np.float64)
    sma_into_nb(x, period, out)
    return out


@nb.njit(cache=True, nogil=True)
def ema_into_nb(x: FloatArray, span: int, out: FloatArray) -> None:
    """Write the exponential moving average of `x` with smoothing ``2 / (span + 1)`` into `out`.

    Returns
    -------
    float64 array, shape (n,)
        Seeded with ``x[0]`` and updated ``e = e + alpha (x[t] - e)``, as
        ``pandas.Series.ewm(span=span, adjust=False).mean()``; NaN for ``t < span-1``.

    Notes
    -----
    Causal; warm-up ``span - 1`` bars.
    """
    n = x.shape[0]
    alpha = 2.0 / (span + 1.0)
    e = 0.0
    for t in range(n):
        if t == 0:
            e = x[0]
        else:
            e = e + alpha * (x[t] - e)
        out[t] = e if t >= span - 1 else np.nan


@nb.njit(cache=True, nogil=True)
def ema_nb(x: FloatArray, span: int) -> FloatArray:
    """Return the exponential moving average of `x` with smoothing ``2 / (span + 1)``.

    Returns
    -------
    float64 array, shape (n,)
        As :func:`ema_into_nb`: seeded with ``x[0]``, ``e = e + alpha (x[t] − e)``, NaN for
        ``t < span-1`` (``pandas.Series.ewm(span=span, adjust=False).mean()``).

    Notes
    -----
    Causal; warm-up ``span - 1`` bars.
    """
    out = np.empty(x.shape[0], dtype=np.float64)
    ema_into_nb(x, span, out)
    return out


@nb.njit(cache=True, nogil=True)
def rolling_std_nb(x: FloatArray, period: int) -> FloatArray:
    """Return the population standard deviation (ddof=0) of `x` over `period` bars.

    Returns
    -------
    float64 array, shape (n,)
        NaN for ``t < period-1``. Matches ``pandas.Series.rolling(period).std(ddof=0)``.

    Notes
    -----
    Causal; warm-up ``period - 1`` bars. Computed per window around the window's first value,
    O(n × period), exact enough for prices of any magnitude.
    """
    n = x.shape[0]
    out = np.empty(n, dtype=np.float64)
    for t in range(n):
        if t < period - 1:
            out[t] = np.nan
            continue
        m = 0.0
        for k in range(t - period + 1, t + 1):
            m += x[k]
        m /= period
        v = 0.0
        for k in range(t - period + 1, t + 1):
            d = x[k] - m
            v += d * d
        out[t] = np.sqrt(v / period)
    return out


@nb.njit(cache=True, nogil=True)
def rsi_nb(close: FloatArray, period: int) -> FloatArray:
    """Return Wilder's relative strength index (0..100).

    Returns
    -------
    float64 array, shape (n,)
        Average gain/loss seeded with the mean of the first `period` changes, then smoothed
        ``avg = (avg × (period-1) + change) / period``; RSI = 100 - 100/(1 + gain/loss)
        (100 when there was no loss). NaN for ``t < period``.

    Notes
    -----
    Causal; warm-up `period` bars. Source: Wilder, J. W. (1978). New Concepts in Technical
    Trading Systems.
    """
    n = close.shape[0]
    out = np.full(n, np.nan)
    gain = 0.0
    loss = 0.0
    for t in range(1, n):
        ch = close[t] - close[t - 1]
        g = ch if ch > 0 else 0.0
        lo = -ch if ch < 0 else 0.0
        if t <= period:
            gain += g
            loss += lo
            if t == period:
                gain /= period
                loss /= period
            else:
                continue
        else:
            gain = (gain * (period - 1) + g) / period
            loss = (loss * (period - 1) + lo) / period
        out[t] = 100.0 if loss == 0.0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return out


@nb.njit(cache=True, nogil=True)
def atr_nb(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """Return Wilder's average true range, in quote currency per base unit.

    Returns
    -------
    float64 array, shape (n,)
        True range ``max(h-l, |h-c[t-1]|, |l-c[t-1]|)`` (``h-l`` on the first bar), averaged
        over the first `period` bars, then ``atr = (atr × (period-1) + tr) / period``.
        NaN for ``t < period-1``.

    Notes
    -----
    Causal; warm-up ``period - 1`` bars. Source: Wilder (1978).
    """
    n = high.shape[0]
    out = np.full(n, np.nan)
    a = 0.0
    for t in range(n):
        tr = high[t] - low[t]
        if t > 0:
            tr = max(tr, abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        if t < period:
            a += tr
            if t == period - 1:
                a /= period
                out[t] = a
        else:
            a = (a * (period - 1) + tr) / period
            out[t] = a
    return out


@nb.njit(cache=True, nogil=True)
def highest_prev_nb(x: FloatArray, period: int) -> FloatArray:
    """Return the highest value of the `period` bars *before* bar t (Donchian upper channel).

    Returns
    -------
    float64 array, shape (n,)
        ``out[t] = max(x[t-period : t])``; NaN for ``t < period``.

    Notes
    -----
    Causal (excludes bar t itself); warm-up `period` bars. O(n) whatever the period: a monotonic
    queue of the window's candidates for the maximum (Lemire 2006, "Streaming maximum-minimum
    filter using no more than three comparisons per element", Nordic Journal of Computing 13(4)),
    so each value is one of the window's own, exactly as a scan of the window gives.
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    queue = np.empty(n, dtype=np.int64)  # bar numbers, their values decreasing from head to tail
    head = 0
    tail = 0
    for i in range(n - 1):
        # the window of bar t = i + 1 is x[i+1-period … i]
        while tail > head and x[queue[tail - 1]] <= x[i]:
            tail -= 1
        queue[tail] = i
        tail += 1
        if queue[head] <= i - period:
            head += 1
        if i + 1 >= period:
            out[i + 1] = x[queue[head]]
    return out


@nb.njit(cache=True, nogil=True)
def lowest_prev_nb(x: FloatArray, period: int) -> FloatArray:
    """Return the lowest value of the `period` bars *before* bar t (Donchian lower channel).

    Returns
    -------
    float64 array, shape (n,)
        ``out[t] = min(x[t-period : t])``; NaN for ``t < period``.

    Notes
    -----
    Causal (excludes bar t itself); warm-up `period` bars. ``min(x) = −max(−x)``.
    """
    return -highest_prev_nb(-x, period)
