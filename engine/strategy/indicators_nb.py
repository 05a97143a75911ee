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

# Plain (not literal) constants for the range kernels' arguments: a literal 0 or True would make
# numba compile one more specialisation of each range kernel (seconds of a fresh install's start).
_ZERO = np.int64(0)
_TRUE, _FALSE = np.bool_(True), np.bool_(False)


@nb.njit(cache=True, nogil=True)
def sma_range_nb(x: FloatArray, period: int, t0: int, t1: int, s: float, out: FloatArray, col0: int) -> float:
    """Write the simple moving average of bars ``t0 … t1-1`` into ``out[t - col0]``; return the running sum.

    The resumable form of :func:`sma_into_nb`, for lines computed chunk by chunk: a call for
    ``t0 > 0`` continues with `s` as returned by the call that ended at ``t0``, and then writes
    values bit for bit equal to the whole-series computation (the same running sum, re-summed at
    the same bars).

    Parameters
    ----------
    x : float64 array, shape (n,)
        The whole series (bars before `t0` are read for the window).
    period : int, ≥ 1
    t0, t1 : int
        Bars to compute, ``0 ≤ t0 ≤ t1 ≤ n``.
    s : float
        Running sum carried from the previous call (0.0 when ``t0 = 0``).
    out : float64 array
        Receives bar t at ``out[t - col0]``.
    col0 : int
        The bar of ``out[0]``.

    Returns
    -------
    float
        The running sum to pass to the call that starts at `t1`.
    """
    for t in range(t0, t1):
        if t >= period and (t % 4096) == 0:
            s = 0.0
            for k in range(t - period + 1, t + 1):
                s += x[k]
        else:
            s += x[t]
            if t >= period:
                s -= x[t - period]
        out[t - col0] = s / period if t >= period - 1 else np.nan
    return s


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
    to ~1e-12 relative. One call of :func:`sma_range_nb` over all bars.
    """
    sma_range_nb(x, period, _ZERO, x.shape[0], 0.0, out, _ZERO)


@nb.njit(cache=True, nogil=True)
def sma_pair_into_nb(x: FloatArray, period_a: int, period_b: int, out_a: FloatArray, out_b: FloatArray) -> None:
    """Write the simple moving averages of `x` over `period_a` and `period_b` bars into `out_a` and `out_b`.

    The same values as two :func:`sma_into_nb` calls, bit for bit (the same running sums,
    re-summed at the same bars, in the same order of operations), in one pass over `x`: each
    running sum is a chain of dependent additions, so one line alone waits on the adder's latency;
    two independent chains in one loop overlap (measured: two lines of 1M bars in ~1.7 ms instead
    of ~3.4 ms).

    Parameters
    ----------
    x : float64 array, shape (n,)
    period_a, period_b : int, ≥ 1
    out_a, out_b : float64 arrays, shape (n,)
        Receive ``mean(x[t-period+1 : t+1])`` at t; NaN for ``t < period-1``.

    Notes
    -----
    Causal; warm-up ``period - 1`` bars, as :func:`sma_into_nb`.
    """
    sa = 0.0
    sb = 0.0
    for t in range(x.shape[0]):
        xt = x[t]
        resum = (t % 4096) == 0
        if t >= period_a and resum:
            sa = 0.0
            for k in range(t - period_a + 1, t + 1):
                sa += x[k]
        else:
            sa += xt
            if t >= period_a:
                sa -= x[t - period_a]
        if t >= period_b and resum:
            sb = 0.0
            for k in range(t - period_b + 1, t + 1):
                sb += x[k]
        else:
            sb += xt
            if t >= period_b:
                sb -= x[t - period_b]
        out_a[t] = sa / period_a if t >= period_a - 1 else np.nan
        out_b[t] = sb / period_b if t >= period_b - 1 else np.nan


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
def ema_range_nb(x: FloatArray, span: int, t0: int, t1: int, e: float, out: FloatArray, col0: int) -> float:
    """Write the exponential moving average of bars ``t0 … t1-1`` into ``out[t - col0]``; return its last value.

    The resumable form of :func:`ema_into_nb`: `e` is the average at bar ``t0 - 1`` as returned by
    the previous call (ignored when ``t0 = 0``), so values equal the whole-series computation bit
    for bit. `x` is the whole series; `t0`, `t1`, `out`, `col0` as :func:`sma_range_nb`.
    """
    alpha = 2.0 / (span + 1.0)
    for t in range(t0, t1):
        if t == 0:
            e = x[0]
        else:
            e = e + alpha * (x[t] - e)
        out[t - col0] = e if t >= span - 1 else np.nan
    return e


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
    Causal; warm-up ``span - 1`` bars. One call of :func:`ema_range_nb` over all bars.
    """
    ema_range_nb(x, span, _ZERO, x.shape[0], 0.0, out, _ZERO)


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
def std_range_nb(x: FloatArray, period: int, t0: int, t1: int, out: FloatArray, col0: int) -> None:
    """Write the population standard deviation of bars ``t0 … t1-1`` into ``out[t - col0]``.

    The windowed form of :func:`rolling_std_nb` (each value reads only its own window of the whole
    series `x`, so any range gives the whole-series values); arguments as :func:`sma_range_nb`.
    """
    t = t0
    while t < t1 and t < period - 1:
        out[t - col0] = np.nan
        t += 1
    # four bars at a time, each summed in its own order (its window, first to last): the same
    # values as one bar at a time, but four independent chains of additions keep the CPU busy
    while t + 3 < t1:
        a = t - period + 1
        m0 = 0.0
        m1 = 0.0
        m2 = 0.0
        m3 = 0.0
        for k in range(period):
            m0 += x[a + k]
            m1 += x[a + k + 1]
            m2 += x[a + k + 2]
            m3 += x[a + k + 3]
        m0 /= period
        m1 /= period
        m2 /= period
        m3 /= period
        v0 = 0.0
        v1 = 0.0
        v2 = 0.0
        v3 = 0.0
        for k in range(period):
            d0 = x[a + k] - m0
            d1 = x[a + k + 1] - m1
            d2 = x[a + k + 2] - m2
            d3 = x[a + k + 3] - m3
            v0 += d0 * d0
            v1 += d1 * d1
            v2 += d2 * d2
            v3 += d3 * d3
        out[t - col0] = np.sqrt(v0 / period)
        out[t + 1 - col0] = np.sqrt(v1 / period)
        out[t + 2 - col0] = np.sqrt(v2 / period)
        out[t + 3 - col0] = np.sqrt(v3 / period)
        t += 4
    while t < t1:
        m = 0.0
        for k in range(t - period + 1, t + 1):
            m += x[k]
        m /= period
        v = 0.0
        for k in range(t - period + 1, t + 1):
            d = x[k] - m
            v += d * d
        out[t - col0] = np.sqrt(v / period)
        t += 1


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
    O(n × period), exact enough for prices of any magnitude (:func:`std_range_nb` over all bars).
    """
    out = np.empty(x.shape[0], dtype=np.float64)
    std_range_nb(x, period, _ZERO, x.shape[0], out, _ZERO)
    return out


@nb.njit(cache=True, nogil=True)
def rsi_range_nb(close: FloatArray, period: int, t0: int, t1: int, gain: float, loss: float, out: FloatArray,
                 col0: int) -> tuple[float, float]:
    """Write Wilder's RSI of bars ``t0 … t1-1`` into ``out[t - col0]``; return the average gain and loss.

    The resumable form of :func:`rsi_nb`: `gain` and `loss` are the running sums (up to bar
    `period`) or averages (after it) as returned by the call that ended at ``t0`` (0.0 when ``t0 =
    0``), so values equal the whole-series computation bit for bit. `close` is the whole series;
    other arguments as :func:`sma_range_nb`.
    """
    for t in range(t0, t1):
        if t == 0:
            out[t - col0] = np.nan
            continue
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
                out[t - col0] = np.nan
                continue
        else:
            gain = (gain * (period - 1) + g) / period
            loss = (loss * (period - 1) + lo) / period
        out[t - col0] = 100.0 if loss == 0.0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return gain, loss


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
    Causal; warm-up `period` bars (:func:`rsi_range_nb` over all bars). Source: Wilder, J. W.
    (1978). New Concepts in Technical Trading Systems.
    """
    out = np.empty(close.shape[0], dtype=np.float64)
    rsi_range_nb(close, period, _ZERO, close.shape[0], 0.0, 0.0, out, _ZERO)
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
def extreme_prev_range_nb(x: FloatArray, period: int, highest: bool, t0: int, t1: int, out: FloatArray,
                          col0: int) -> None:
    """Write the highest (`highest`) or lowest value of the `period` bars before bar t, for bars
    ``t0 … t1-1``, into ``out[t - col0]``; NaN for ``t < period``.

    The windowed form of :func:`highest_prev_nb` and :func:`lowest_prev_nb`: the values of bars
    ``t0 …`` read only the `period` bars before ``t0`` and the range itself, so any range gives the
    whole-series values; other arguments as :func:`sma_range_nb`. O(t1 − t0 + period) whatever the
    period: a monotonic queue of the window's candidates (Lemire 2006, "Streaming maximum-minimum
    filter using no more than three comparisons per element", Nordic Journal of Computing 13(4));
    each value is one of the window's own, exactly what a scan of the window gives.
    """
    first = max(0, t0 - period)
    queue = np.empty(max(1, t1 - first), dtype=np.int64)  # bar numbers, best value at the head
    head = 0
    tail = 0
    i = first
    for t in range(t0, t1):
        while i < t:  # the window of bar t ends at bar t - 1
            v = x[i]
            if highest:
                while tail > head and x[queue[tail - 1]] <= v:
                    tail -= 1
            else:
                while tail > head and x[queue[tail - 1]] >= v:
                    tail -= 1
            queue[tail] = i
            tail += 1
            i += 1
        if t < period:
            out[t - col0] = np.nan
            continue
        while queue[head] < t - period:
            head += 1
        out[t - col0] = x[queue[head]]


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
    out = np.empty(x.shape[0], dtype=np.float64)
    extreme_prev_range_nb(x, period, _TRUE, _ZERO, x.shape[0], out, _ZERO)
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
    Causal (excludes bar t itself); warm-up `period` bars.
    """
    out = np.empty(x.shape[0], dtype=np.float64)
    extreme_prev_range_nb(x, period, _FALSE, _ZERO, x.shape[0], out, _ZERO)
    return out


#: Indicator kinds as :func:`engine.strategy.signals.lines_range` codes them (``signals.KIND_CODES`` maps the names).
KIND_CLOSE, KIND_SMA, KIND_EMA, KIND_STD, KIND_RSI, KIND_HH, KIND_LL = 0, 1, 2, 3, 4, 5, 6
