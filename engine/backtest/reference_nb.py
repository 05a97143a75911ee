"""The benchmark's reference: a bare numba loop of ``sma_cross`` with the simulator's exit rules.

What "as fast as it can be" means for :mod:`engine.bench`: the same rules as
:func:`engine.backtest.kernel_nb.simulate_nb` for this one entry set — entry on the open after a
cross above (plus slippage, all cash, fee), a take-profit ladder whose steps fill at their levels or
at a gapping open, a stop-loss that fills at its level or at a gapping open and wins a bar where both
are touched, breakeven after TP1 from the next bar on, the exit signal (a cross below, unless the
entry signal fires too) and the maximum hold at the open, everything left closed at the last close —
written as one loop with the state in local variables and nothing recorded but the trade count and
the cash. It returns the same trades' count and final cash as the simulator (a test checks it), so
the simulator's speed is quoted as a ratio to this loop measured in the same run.

Not a second implementation for use: it knows one entry set, one exit model, no trailing stop, no
lower-timeframe candles, no lots. Imports only numpy and numba (a kernel module).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@nb.njit(cache=True, nogil=True, inline="always")
def _run(o, h, lo, c, fast, slow, tp_lvl, tp_alloc, sl_frac, be_off, max_hold, fee, slip, cash):
    n = o.shape[0]
    n_tp = tp_lvl.shape[0]
    in_pos = False
    flat_prev = True
    qty = rem = entry = 0.0
    entry_bar = next_tp = 0
    tp_next = sl = stop = -np.inf
    trades = 0
    pf = ps = np.nan  # the lines at j-2
    for j in range(n):
        if j >= 1:
            f1 = fast[j - 1]
            s1 = slow[j - 1]
        else:
            f1 = s1 = np.nan
        ent = pf < ps and f1 > s1
        ext = pf > ps and f1 < s1
        pf, ps = f1, s1
        if not in_pos and not ent:
            continue
        held = in_pos
        if in_pos:
            stop = sl
            if next_tp >= 1:
                be = entry * (1.0 + be_off)
                if be > stop:
                    stop = be
            if o[j] <= stop:
                cash += rem * o[j] * (1.0 - slip) * (1.0 - fee)
                rem = 0.0
            else:
                while o[j] >= tp_next:
                    q = rem if next_tp == n_tp - 1 else min(qty * tp_alloc[next_tp], rem)
                    cash += q * o[j] * (1.0 - slip) * (1.0 - fee)
                    rem -= q
                    next_tp += 1
                    tp_next = entry * (1.0 + tp_lvl[next_tp]) if next_tp < n_tp else np.inf
                if rem > 0.0 and ((ext and not ent) or (max_hold > 0 and j - entry_bar >= max_hold)):
                    cash += rem * o[j] * (1.0 - slip) * (1.0 - fee)
                    rem = 0.0
            if rem <= 0.0:
                in_pos = False
        entered = False
        if not in_pos and flat_prev and ent:
            price = o[j] * (1.0 + slip)
            qty = cash / (price * (1.0 + fee))
            cash -= qty * price * (1.0 + fee)
            rem = qty
            entry = price
            entry_bar = j
            in_pos = entered = True
            next_tp = 0
            tp_next = price * (1.0 + tp_lvl[0]) if n_tp > 0 else np.inf
            sl = price * (1.0 + sl_frac) if not math.isnan(sl_frac) else -np.inf
            stop = sl
            if o[j] <= stop:
                cash += rem * o[j] * (1.0 - slip) * (1.0 - fee)
                rem = 0.0
                in_pos = False
        if in_pos:
            if lo[j] <= stop:
                cash += rem * stop * (1.0 - slip) * (1.0 - fee)
                rem = 0.0
            elif h[j] >= tp_next:
                while h[j] >= tp_next:
                    q = rem if next_tp == n_tp - 1 else min(qty * tp_alloc[next_tp], rem)
                    cash += q * tp_next * (1.0 - slip) * (1.0 - fee)
                    rem -= q
                    next_tp += 1
                    tp_next = entry * (1.0 + tp_lvl[next_tp]) if next_tp < n_tp else np.inf
            if rem <= 0.0:
                in_pos = False
        if in_pos and j == n - 1:
            cash += rem * c[j] * (1.0 - slip) * (1.0 - fee)
            rem = 0.0
            in_pos = False
        if (held or entered) and not in_pos:
            trades += 1
        flat_prev = not in_pos
    return trades, cash


@nb.njit(cache=True, nogil=True)
def bare_sma_cross_nb(o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray, fast: FloatArray,
                      slow: FloatArray, tp_lvl: FloatArray, tp_alloc: FloatArray, sl_frac: float, be_off: float,
                      max_hold: int, fee: float, slip: float, cash: float) -> tuple[int, float]:
    """One backtest: ``(number of trades, final cash in quote)``.

    Parameters
    ----------
    o, h, lo, c : float64 arrays, shape (n,)
        Candles.
    fast, slow : float64 arrays, shape (n,)
        The two moving averages (NaN in their warm-up).
    tp_lvl, tp_alloc : float64 arrays, shape (k,)
        Ladder levels and allocations as fractions (0.009, 0.5).
    sl_frac, be_off : float
        Stop-loss and breakeven offset as fractions (-0.005, 0.0005); `sl_frac` NaN = no stop,
        `be_off` NaN = no breakeven.
    max_hold : int
        Bars; ≤ 0 = none.
    fee, slip : float
        Per side, fractions of notional / price.
    cash : float
        Starting cash, quote.
    """
    return _run(o, h, lo, c, fast, slow, tp_lvl, tp_alloc, sl_frac, be_off, max_hold, fee, slip, cash)


@nb.njit(cache=True, nogil=True, parallel=True)
def bare_sma_cross_grid_nb(o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray, lines: FloatArray,
                           pairs: IntArray, tp_lvl: FloatArray, tp_alloc: FloatArray, sl_frac: float, be_off: float,
                           max_hold: int, fee: float, slip: float, cash: float) -> tuple[IntArray, FloatArray]:
    """Many backtests, combinations across threads: ``pairs[i] = (row of fast, row of slow)`` in
    `lines` (shape (n_lines, n)); returns the trade counts and final cash, shape (n_combos,)."""
    m = pairs.shape[0]
    trades = np.zeros(m, dtype=np.int64)
    final = np.zeros(m, dtype=np.float64)
    for i in nb.prange(m):
        t, f = _run(o, h, lo, c, lines[pairs[i, 0]], lines[pairs[i, 1]], tp_lvl, tp_alloc, sl_frac, be_off,
                    max_hold, fee, slip, cash)
        trades[i] = t
        final[i] = f
    return trades, final
