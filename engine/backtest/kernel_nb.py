"""Bar-by-bar fill and position kernel (numba).

The rules live in one place, the docstring of :func:`simulate_nb`; :func:`grid_nb` runs the
same core for many parameter combinations at once. Kernels take only numpy arrays and numbers and
also run as plain Python (``NUMBA_DISABLE_JIT=1``). Rejected entries are counted as status codes
(:data:`REJECT_NAMES` turns them into words).
"""
from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numba as nb
import numpy as np
import numpy.typing as npt

from engine.strategy.rules_nb import _line, _sig
from engine.strategy.exits import (
    P_BE_OFFSET, P_BREAKEVEN, P_CASH, P_CHECK_ENTRY_BAR, P_FEE, P_LOT, P_MAX_HOLD, P_SL_ATR,
    P_SL_PCT, P_SLIP, P_TRAIL_ATR, P_TRAIL_PCT, P_USE_EXIT_SIGNAL,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Exit reason codes of a leg: 1..n_tp are take-profit steps tp1..tpN.
R_SL, R_BE, R_TRAIL, R_SIGNAL, R_TIME, R_END = 100, 101, 102, 103, 104, 105
REASON_NAMES = {R_SL: "sl", R_BE: "be", R_TRAIL: "trail", R_SIGNAL: "signal", R_TIME: "time", R_END: "end"}

# Entry rejection status codes.
REJECT_NO_CASH, REJECT_BELOW_LOT = 1, 2
REJECT_NAMES = {REJECT_NO_CASH: "no cash left", REJECT_BELOW_LOT: "cash buys less than one lot"}

# Layout of the per-run statistics vector (all float64).
S_N_TRADES = 0          # closed round trips
S_N_WINS = 1            # trades with net PnL > 0
S_GROSS_PROFIT = 2      # sum of positive trade PnL, quote
S_GROSS_LOSS = 3        # -sum of negative trade PnL, quote (≥ 0)
S_SUM_RET_PCT = 4       # sum of trade returns, percent
S_MAX_DD = 5            # max drawdown of bar-close equity, fraction
S_RET_SUM = 6           # sum of per-bar equity returns
S_RET_SUMSQ = 7         # sum of squared per-bar equity returns
S_N_RET = 8             # number of per-bar returns (n_bars - 1)
S_EXPOSURE_BARS = 9     # bars during which a position was held at some moment
S_FINAL_EQUITY = 10     # equity at the last close, quote
S_N_AMBIGUOUS = 11      # bars where the stop and a target were both touched
S_AMB_TARGET_FIRST = 12  # … resolved by lower candles: target first
S_AMB_STOP_FIRST = 13   # … resolved by lower candles: stop first
S_AMB_UNRESOLVED = 14   # … not resolvable (no lower candles, or ambiguous there too): stop assumed first
S_N_REJECTED = 15       # entry signals refused (status code below)
S_LAST_REJECT = 16      # last rejection status code, 0 = none
S_N_BARS = 17
N_STATS = 18

# Position state vector used inside the kernel.
_CASH, _REM, _QTY, _ENTRY, _ENTRY_FEE, _PROCEEDS, _FEES, _NLEG, _NTR = 0, 1, 2, 3, 4, 5, 6, 7, 8
_INPOS, _ENTRY_BAR, _NEXT_TP, _SL, _PEAK, _FLAT_PREV, _PREV_EQ, _PEAK_EQ = 9, 10, 11, 12, 13, 14, 15, 16
_PXE, _PYE, _PXX, _PYX, _TP_NEXT = 17, 18, 19, 20, 21
N_STATE = 22


@nb.njit(cache=True, nogil=True, inline="always")
def _sell(st, level, q, reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason):
    # Sell q base units at `level` (before slippage); book cash, fees and the leg.
    price = level * (1.0 - slip)
    notional = q * price
    f = notional * fee
    st[_CASH] += notional - f
    st[_REM] -= q
    st[_PROCEEDS] += notional - f
    st[_FEES] += f
    if record:
        k = int(st[_NLEG])
        lg_trade[k] = int(st[_NTR])
        lg_bar[k] = j
        lg_price[k] = price
        lg_qty[k] = q
        lg_fee[k] = f
        lg_reason[k] = reason
    st[_NLEG] += 1.0


@nb.njit(cache=True, nogil=True, inline="always")
def _close_all(st, level, reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason):
    q = st[_REM]
    _sell(st, level, q, reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
    st[_REM] = 0.0


@nb.njit(cache=True, nogil=True, inline="always")
def _fill_targets(st, high, next_tp, tp_next, n_tp, tp_lvl, tp_frac, lot, j, fee, slip, record,
                  lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason):
    # sell every TP step whose level the high reached, lowest first, each at its own level;
    # return the next step and its level (inf after the last)
    while high >= tp_next:
        q = _tp_qty(st, next_tp, n_tp, tp_frac, lot)
        if q > 0.0:
            _sell(st, tp_next, q, next_tp + 1, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee,
                  lg_reason)
        next_tp += 1
        tp_next = st[_ENTRY] * (1.0 + tp_lvl[next_tp]) if next_tp < n_tp else np.inf
    return next_tp, tp_next


@nb.njit(cache=True, nogil=True, inline="always")
def _with_trail(stop, stop_reason, peak, has_trail_pct, trail_pct, has_trail_atr, trail_atr, atr, j):
    # raise the stop to the trailing stop (peak = highest high before bar j) when that is higher
    if has_trail_pct:
        tr = peak * (1.0 - trail_pct)
    elif has_trail_atr:
        tr = peak - trail_atr * atr[j - 1]
    else:
        return stop, stop_reason
    if tr > stop:
        return tr, R_TRAIL
    return stop, stop_reason


@nb.njit(cache=True, nogil=True, inline="always")
def _tp_qty(st, k, n_tp, tp_frac, lot):
    # Quantity of ladder step k: its share of the entry quantity (whole lots), the rest on the last step.
    if k == n_tp - 1:
        return st[_REM]
    q = st[_QTY] * tp_frac[k]
    if lot > 0.0:
        q = math.floor(q / lot + 1e-9) * lot
    if q > st[_REM]:
        q = st[_REM]
    return q


@nb.njit(cache=True, nogil=True)
def _init_state(plan):
    st = np.zeros(N_STATE)
    st[_CASH] = plan[P_CASH]
    st[_ENTRY_BAR] = -1.0
    st[_SL] = -np.inf
    st[_FLAT_PREV] = 1.0
    st[_PREV_EQ] = plan[P_CASH]
    st[_PEAK_EQ] = plan[P_CASH]
    st[_PXE] = np.nan
    st[_PYE] = np.nan
    st[_PXX] = np.nan
    st[_PYX] = np.nan
    st[_TP_NEXT] = np.inf
    return st


@nb.njit(cache=True, nogil=True)
def _core(o, h, l, c, atr, lines, er, xr, tp_lvl, tp_frac, plan, lo_o, lo_h, lo_l, lo_start, lo_end,
          record, st, stats, j0, j1, first_bar, eq_out, tr_entry_bar, tr_entry_price, tr_qty, tr_entry_fee, tr_exit_bar, tr_pnl,
          tr_fees, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason):
    # Advance one simulation over bars j0..j1-1; all state lives in `st` and `stats`, so the grid
    # can run many simulations block by block while the bars of a block stay in cache.
    n = o.shape[0]
    n_tp = tp_lvl.shape[0]
    sl_pct = plan[P_SL_PCT]
    sl_atr = plan[P_SL_ATR]
    use_be = plan[P_BREAKEVEN] > 0.5
    be_off = plan[P_BE_OFFSET]
    trail_pct = plan[P_TRAIL_PCT]
    trail_atr = plan[P_TRAIL_ATR]
    use_exit = plan[P_USE_EXIT_SIGNAL] > 0.5
    max_hold = int(plan[P_MAX_HOLD])
    check_entry = plan[P_CHECK_ENTRY_BAR] > 0.5
    lot = plan[P_LOT]
    fee = plan[P_FEE]
    slip = plan[P_SLIP]
    has_sl_pct = not math.isnan(sl_pct)
    has_sl_atr = not math.isnan(sl_atr)
    has_trail_pct = not math.isnan(trail_pct)
    has_trail_atr = not math.isnan(trail_atr)
    has_trail = has_trail_pct or has_trail_atr
    has_lower = lo_start.shape[0] == n
    inf = np.inf
    e_mode, e_xa, e_xb, e_xk, e_xc = int(er[0]), int(er[1]), int(er[2]), er[3], er[4]
    e_ya, e_yb, e_yk, e_yc = int(er[5]), int(er[6]), er[7], er[8]
    x_mode, x_xa, x_xb, x_xk, x_xc = int(xr[0]), int(xr[1]), int(xr[2]), xr[3], xr[4]
    x_ya, x_yb, x_yk, x_yc = int(xr[5]), int(xr[6]), xr[7], xr[8]
    # entry and exit rules over the same two lines (crossovers): read them once per bar
    same_lines = (e_xa == x_xa and e_xb == x_xb and e_xk == x_xk and e_xc == x_xc and e_ya == x_ya
                  and e_yb == x_yb and e_yk == x_yk and e_yc == x_yc)

    in_pos = st[_INPOS] > 0.5
    entry_bar = int(st[_ENTRY_BAR])
    next_tp = int(st[_NEXT_TP])
    sl_level = st[_SL]
    peak = st[_PEAK]
    flat_prev_close = st[_FLAT_PREV] > 0.5
    prev_eq = st[_PREV_EQ]
    peak_eq = st[_PEAK_EQ]
    pxe, pye, pxx, pyx = st[_PXE], st[_PYE], st[_PXX], st[_PYX]
    tp_next = st[_TP_NEXT]  # level of the next take-profit step (inf when none is left)

    n_trades = stats[S_N_TRADES]
    n_wins = stats[S_N_WINS]
    gross_profit = stats[S_GROSS_PROFIT]
    gross_loss = stats[S_GROSS_LOSS]
    sum_ret = stats[S_SUM_RET_PCT]
    max_dd = stats[S_MAX_DD]
    ret_sum = stats[S_RET_SUM]
    ret_sumsq = stats[S_RET_SUMSQ]
    n_ret = stats[S_N_RET]
    exposure = stats[S_EXPOSURE_BARS]
    n_amb = stats[S_N_AMBIGUOUS]
    amb_t = stats[S_AMB_TARGET_FIRST]
    amb_s = stats[S_AMB_STOP_FIRST]
    amb_u = stats[S_AMB_UNRESOLVED]
    n_rej = stats[S_N_REJECTED]
    last_rej = stats[S_LAST_REJECT]
    stop = -inf
    stop_reason = R_SL

    for j in range(j0, j1):
        # line values of the rules on the close of bar j-1 (the signal bar of this open)
        if j >= 1:
            xe = _line(lines, e_xa, e_xb, e_xk, e_xc, j - 1)
            ye = _line(lines, e_ya, e_yb, e_yk, e_yc, j - 1)
            if same_lines:
                xx = xe
                yx = ye
            else:
                xx = _line(lines, x_xa, x_xb, x_xk, x_xc, j - 1)
                yx = _line(lines, x_ya, x_yb, x_yk, x_yc, j - 1)
        else:
            xe = ye = xx = yx = np.nan
        if not in_pos and not _sig(e_mode, pxe, pye, xe, ye):
            # flat through the whole bar (no entry at its open): equity, peak and drawdown unchanged
            pxe, pye, pxx, pyx = xe, ye, xx, yx
            if record:
                eq_out[j] = prev_eq
            if j > first_bar:
                n_ret += 1.0
            continue
        held = in_pos
        # ---------------- at the open ----------------
        if in_pos:
            # the stop for this whole bar: highest of stop-loss, breakeven (TP1 filled before this bar), trail
            stop = sl_level
            stop_reason = R_SL
            if use_be and next_tp >= 1:
                be = st[_ENTRY] * (1.0 + be_off)
                if be > stop:
                    stop = be
                    stop_reason = R_BE
            stop, stop_reason = _with_trail(stop, stop_reason, peak, has_trail_pct, trail_pct, has_trail_atr,
                                            trail_atr, atr, j)
            if o[j] <= stop:
                _close_all(st, o[j], stop_reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
            else:
                while o[j] >= tp_next:
                    q = _tp_qty(st, next_tp, n_tp, tp_frac, lot)
                    if q > 0.0:
                        _sell(st, o[j], q, next_tp + 1, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
                    next_tp += 1
                    tp_next = st[_ENTRY] * (1.0 + tp_lvl[next_tp]) if next_tp < n_tp else inf
                if st[_REM] > 0.0:
                    if use_exit and _sig(x_mode, pxx, pyx, xx, yx) and not _sig(e_mode, pxe, pye, xe, ye):
                        _close_all(st, o[j], R_SIGNAL, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
                    elif max_hold > 0 and j - entry_bar >= max_hold:
                        _close_all(st, o[j], R_TIME, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
            if st[_REM] <= 0.0:
                in_pos = False
        entered = False
        if not in_pos and flat_prev_close and _sig(e_mode, pxe, pye, xe, ye):
            price = o[j] * (1.0 + slip)
            cash = st[_CASH]
            q = cash / (price * (1.0 + fee)) if cash > 0.0 else 0.0
            if lot > 0.0:
                q = math.floor(q / lot + 1e-9) * lot
                if q * price * (1.0 + fee) > cash:
                    q -= lot
            if cash <= 0.0:
                n_rej += 1.0
                last_rej = REJECT_NO_CASH
            elif q <= 0.0:
                n_rej += 1.0
                last_rej = REJECT_BELOW_LOT
            else:
                f = q * price * fee
                st[_CASH] = cash - q * price - f
                st[_QTY] = q
                st[_REM] = q
                st[_ENTRY] = price
                st[_ENTRY_FEE] = f
                st[_PROCEEDS] = 0.0
                st[_FEES] = f
                in_pos = True
                entered = True
                entry_bar = j
                next_tp = 0
                tp_next = price * (1.0 + tp_lvl[0]) if n_tp > 0 else inf
                peak = price
                if has_sl_pct:
                    sl_level = price * (1.0 + sl_pct)
                elif has_sl_atr:
                    sl_level = price - sl_atr * atr[j - 1]
                    if math.isnan(sl_level):
                        sl_level = -inf
                else:
                    sl_level = -inf
                stop = sl_level
                stop_reason = R_SL
                stop, stop_reason = _with_trail(stop, stop_reason, peak, has_trail_pct, trail_pct, has_trail_atr,
                                                trail_atr, atr, j)
                if check_entry and o[j] <= stop:
                    # a stop closer than the entry slippage sits at or above this bar's open: the bar
                    # opened through it, so it fills at the open like any gap (never above the high)
                    _close_all(st, o[j], stop_reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty,
                               lg_fee, lg_reason)
                    in_pos = False
        pxe, pye, pxx, pyx = xe, ye, xx, yx
        # ---------------- inside the bar ----------------
        if in_pos and (check_entry or not entered):
            s_hit = l[j] <= stop
            t_hit = h[j] >= tp_next
            if s_hit and t_hit:
                n_amb += 1.0
                first = 0  # 1 target first, 2 stop first, 3 still ambiguous
                if has_lower and lo_start[j] < lo_end[j]:
                    for k in range(lo_start[j], lo_end[j]):
                        so = lo_o[k]
                        if so <= stop:
                            if first == 0:
                                first = 2
                            _close_all(st, so, stop_reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
                            break
                        while so >= tp_next:
                            if first == 0:
                                first = 1
                            q = _tp_qty(st, next_tp, n_tp, tp_frac, lot)
                            if q > 0.0:
                                _sell(st, so, q, next_tp + 1, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
                            next_tp += 1
                            tp_next = st[_ENTRY] * (1.0 + tp_lvl[next_tp]) if next_tp < n_tp else inf
                        if st[_REM] <= 0.0:
                            break
                        s2 = lo_l[k] <= stop
                        t2 = lo_h[k] >= tp_next
                        if s2:
                            if first == 0:
                                first = 3 if t2 else 2
                            _close_all(st, stop, stop_reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
                            break
                        if t2:
                            if first == 0:
                                first = 1
                            next_tp, tp_next = _fill_targets(st, lo_h[k], next_tp, tp_next, n_tp, tp_lvl, tp_frac,
                                                             lot, j, fee, slip, record, lg_trade, lg_bar, lg_price,
                                                             lg_qty, lg_fee, lg_reason)
                            if st[_REM] <= 0.0:
                                break
                if first == 1:
                    amb_t += 1.0
                elif first == 2:
                    amb_s += 1.0
                else:
                    amb_u += 1.0
                if st[_REM] > 0.0 and first != 1:
                    # not resolved by lower candles (or none): the stop is assumed to come first
                    _close_all(st, stop, stop_reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
            elif s_hit:
                _close_all(st, stop, stop_reason, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
            elif t_hit:
                next_tp, tp_next = _fill_targets(st, h[j], next_tp, tp_next, n_tp, tp_lvl, tp_frac, lot, j, fee,
                                                 slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
            if st[_REM] <= 0.0:
                in_pos = False
        # ---------------- at the close ----------------
        if in_pos and j == n - 1:
            _close_all(st, c[j], R_END, j, fee, slip, record, lg_trade, lg_bar, lg_price, lg_qty, lg_fee, lg_reason)
            in_pos = False
        if (held or entered) and not in_pos:
            # the trade closed in this bar: book it
            cost = st[_QTY] * st[_ENTRY] + st[_ENTRY_FEE]
            pnl = st[_PROCEEDS] - cost
            n_trades += 1.0
            if pnl > 0.0:
                n_wins += 1.0
                gross_profit += pnl
            elif pnl < 0.0:
                gross_loss -= pnl
            sum_ret += pnl / (st[_QTY] * st[_ENTRY]) * 100.0
            if record:
                t = int(st[_NTR])
                tr_entry_bar[t] = entry_bar
                tr_entry_price[t] = st[_ENTRY]
                tr_qty[t] = st[_QTY]
                tr_entry_fee[t] = st[_ENTRY_FEE]
                tr_exit_bar[t] = j
                tr_pnl[t] = pnl
                tr_fees[t] = st[_FEES]
            st[_NTR] += 1.0
            st[_REM] = 0.0
        if held or entered:
            exposure += 1.0
            if has_trail and in_pos:
                peak = max(peak, h[j])
            eq = st[_CASH] + st[_REM] * c[j]
        else:
            eq = prev_eq
        flat_prev_close = not in_pos
        if record:
            eq_out[j] = eq
        if j > first_bar:
            if eq != prev_eq:
                r = eq / prev_eq - 1.0
                ret_sum += r
                ret_sumsq += r * r
            n_ret += 1.0
        # drawdown of the bar-close equity curve, which starts at the close of first_bar (DESIGN.md);
        # equal to the initial cash there unless a window enters at its first open
        peak_eq = eq if j == first_bar else max(peak_eq, eq)
        if peak_eq - eq > max_dd * peak_eq:
            max_dd = (peak_eq - eq) / peak_eq
        prev_eq = eq

    st[_INPOS] = 1.0 if in_pos else 0.0
    st[_ENTRY_BAR] = entry_bar
    st[_NEXT_TP] = next_tp
    st[_SL] = sl_level
    st[_PEAK] = peak
    st[_FLAT_PREV] = 1.0 if flat_prev_close else 0.0
    st[_PREV_EQ] = prev_eq
    st[_PEAK_EQ] = peak_eq
    st[_PXE], st[_PYE], st[_PXX], st[_PYX] = pxe, pye, pxx, pyx
    st[_TP_NEXT] = tp_next
    stats[S_N_TRADES] = n_trades
    stats[S_N_WINS] = n_wins
    stats[S_GROSS_PROFIT] = gross_profit
    stats[S_GROSS_LOSS] = gross_loss
    stats[S_SUM_RET_PCT] = sum_ret
    stats[S_MAX_DD] = max_dd
    stats[S_RET_SUM] = ret_sum
    stats[S_RET_SUMSQ] = ret_sumsq
    stats[S_N_RET] = n_ret
    stats[S_EXPOSURE_BARS] = exposure
    stats[S_FINAL_EQUITY] = prev_eq
    stats[S_N_AMBIGUOUS] = n_amb
    stats[S_AMB_TARGET_FIRST] = amb_t
    stats[S_AMB_STOP_FIRST] = amb_s
    stats[S_AMB_UNRESOLVED] = amb_u
    stats[S_N_REJECTED] = n_rej
    stats[S_LAST_REJECT] = last_rej
    stats[S_N_BARS] = n - first_bar
    return int(st[_NTR]), int(st[_NLEG])


class Fills(NamedTuple):
    """Output of :func:`simulate_nb`. Prices in quote per base unit, quantities in base units.

    Trades (one row per round trip, shape (n_trades,)): ``entry_bar`` (int64, bar of the entry
    fill at its open), ``entry_price`` (incl. slippage), ``qty`` (base), ``entry_fee``
    (quote), ``exit_bar`` (bar of the last exit leg), ``pnl`` (net quote, fees included),
    ``fees`` (quote, entry + all legs). Legs (one row per exit fill, shape (n_legs,)): ``leg_trade``
    (row in the trade arrays), ``leg_bar``, ``leg_price`` (incl. slippage), ``leg_qty``,
    ``leg_fee``, ``leg_reason`` (1..N = tp1..tpN, else the ``R_*`` codes). ``equity``: shape
    (n_bars,), cash + position × close at each bar close. ``stats``: shape (N_STATS,), ``S_*``.
    """

    entry_bar: IntArray
    entry_price: FloatArray
    qty: FloatArray
    entry_fee: FloatArray
    exit_bar: IntArray
    pnl: FloatArray
    fees: FloatArray
    leg_trade: IntArray
    leg_bar: IntArray
    leg_price: FloatArray
    leg_qty: FloatArray
    leg_fee: FloatArray
    leg_reason: IntArray
    equity: FloatArray
    stats: FloatArray


@nb.njit(cache=True, nogil=True)
def simulate_nb(o, h, l, c, atr, lines, entry_rule, exit_rule, tp_level_frac, tp_alloc_frac, plan,
                lo_o, lo_h, lo_l, lo_start, lo_end, first_bar):
    """Simulate one long-only spot strategy bar by bar and return its fills.

    Parameters
    ----------
    o, h, l, c : float64 arrays, shape (n_bars,)
        Candle open/high/low/close, quote per base unit.
    atr : float64 array, shape (n_bars,)
        ATR for ATR stops/trails (any array if the plan uses none).
    lines, entry_rule, exit_rule : see :mod:`engine.strategy.signals`
        ``entry_rule``/``exit_rule`` true on the close of bar t = signal of bar t.
    tp_level_frac, tp_alloc_frac : float64 arrays, shape (n_tp,)
        Take-profit distances (fractions, increasing) and shares of the entry quantity (sum 1).
    plan : float64 array, shape (N_PLAN,)
        Layout ``engine.strategy.exits.P_*`` (:meth:`engine.strategy.exits.ExitPlan.as_kernel_args`).
    lo_o, lo_h, lo_l : float64 arrays, shape (n_lower,)
        Lower-timeframe candles (e.g. 1m under 5m bars) for intrabar refinement; empty = none.
    lo_start, lo_end : int64 arrays, shape (n_bars,) or (0,)
        Bar t's lower candles are rows ``lo_start[t]:lo_end[t]``.
    first_bar : int
        First bar simulated (0 = all). Earlier bars only feed the indicators (warm-up), so the
        first entry can fill at the open of `first_bar` on the signal of the bar before it.

    Returns
    -------
    Fills
        Bars are absolute row numbers; ``equity`` and the statistics cover bars
        ``first_bar … n_bars-1`` only.

    Notes
    -----
    **The fill rules (DESIGN.md "Backtest conventions"), in the order they apply within bar t:**

    1. *Signals.* A signal is evaluated on the close of bar t-1 and acts at the open of bar t.
    2. *Open, if in a position.* The stop for the whole bar is fixed first: the highest of the
       stop-loss (``entry × (1 + sl_pct)`` or ``entry − sl_atr_mult × ATR[signal bar]``), the
       breakeven stop ``entry × (1 + breakeven_offset)`` if TP1 was reached in an earlier bar, and
       the trailing stop (``peak × (1 − trail_pct)`` or ``peak − trail_atr_mult × ATR[t−1]``, peak
       = highest high of the bars before t since entry, at least the entry fill). Its reason is
       the rule that set it (``sl``, ``be``, ``trail``; ties go to the earlier in that list).
       Then: (a) *gap through the stop*: open ≤ stop → everything sells at the open; (b) *gap
       through targets*: every TP step with level ≤ open sells at the open; (c) the exit signal
       (``use_exit_signal``, exit rule true on bar t-1 and the entry rule not) or the max holding
       time (``t − entry_bar ≥ max_hold_bars``) sells the rest at the open (``signal``/``time``).
    3. *Entry.* If flat at the close of bar t-1 and the entry rule held on bar t-1: buy at
       ``open × (1 + slippage)`` with all cash, ``qty = cash / (price × (1 + fee))``, rounded down
       to whole lots if ``lot_size_base`` is set. No cash → status REJECT_NO_CASH; less than one
       lot → REJECT_BELOW_LOT. Levels are set from this fill price; a stop that
       lands at or above the bar's open (closer than the slippage) sells at the open at once
       (checked on the entry bar only with ``check_entry_bar``). One position at a time: an
       entry signal while in a position is ignored.
    4. *Inside the bar* (on the entry bar only if ``check_entry_bar``): stop touched = low ≤
       stop; target touched = high ≥ next TP level. Only the stop → the rest sells at the stop.
       Only targets → each step with level ≤ high sells at its level, lowest first (several steps
       may fill in one bar). **Both → ambiguous bar**: if lower-timeframe candles are given they
       are replayed in order with these same rules (gaps at each lower open, stop first inside a
       lower candle) and the bar counts as resolved *target first* or *stop first* by the first
       event; otherwise, or if a lower candle is itself ambiguous, the stop is assumed first and
       the rest sells at the stop (*unresolved*). Levels stay fixed inside a bar: a TP1 fill moves
       the breakeven stop, and a new high raises the trail, from the next bar on.
    5. *Close.* On the last bar an open position sells at the close (reason ``end``). Equity at
       the close = cash + remaining quantity × close.

    Every sell fills at its level × (1 − slippage); fees are ``fee × notional`` per fill. The
    last TP step sells whatever remains, so allocations always close fully. Gap fills at the open
    are the only fills away from the level, and every level used lies inside the bar's low–high.
    """
    n = o.shape[0]
    n_tp = tp_level_frac.shape[0]
    # at most one entry per bar; np.empty maps pages lazily, so only the rows written cost memory
    cap = n + 1
    n_leg_cap = cap * (n_tp + 1)
    stats = np.zeros(N_STATS)
    eq = np.empty(n)
    tr_entry_bar = np.empty(cap, dtype=np.int64)
    tr_entry_price = np.empty(cap)
    tr_qty = np.empty(cap)
    tr_entry_fee = np.empty(cap)
    tr_exit_bar = np.empty(cap, dtype=np.int64)
    tr_pnl = np.empty(cap)
    tr_fees = np.empty(cap)
    lg_trade = np.empty(n_leg_cap, dtype=np.int64)
    lg_bar = np.empty(n_leg_cap, dtype=np.int64)
    lg_price = np.empty(n_leg_cap)
    lg_qty = np.empty(n_leg_cap)
    lg_fee = np.empty(n_leg_cap)
    lg_reason = np.empty(n_leg_cap, dtype=np.int64)
    st = _init_state(plan)
    if first_bar >= 2:  # the rules' line values of the bar before the signal bar of first_bar
        t = first_bar - 2
        st[_PXE] = _line(lines, int(entry_rule[1]), int(entry_rule[2]), entry_rule[3], entry_rule[4], t)
        st[_PYE] = _line(lines, int(entry_rule[5]), int(entry_rule[6]), entry_rule[7], entry_rule[8], t)
        st[_PXX] = _line(lines, int(exit_rule[1]), int(exit_rule[2]), exit_rule[3], exit_rule[4], t)
        st[_PYX] = _line(lines, int(exit_rule[5]), int(exit_rule[6]), exit_rule[7], exit_rule[8], t)
    nt, nl = _core(o, h, l, c, atr, lines, entry_rule, exit_rule, tp_level_frac, tp_alloc_frac, plan,
                   lo_o, lo_h, lo_l, lo_start, lo_end, True, st, stats, first_bar, n, first_bar, eq, tr_entry_bar, tr_entry_price,
                   tr_qty, tr_entry_fee, tr_exit_bar, tr_pnl, tr_fees, lg_trade, lg_bar, lg_price, lg_qty, lg_fee,
                   lg_reason)
    return (tr_entry_bar[:nt].copy(), tr_entry_price[:nt].copy(), tr_qty[:nt].copy(), tr_entry_fee[:nt].copy(),
            tr_exit_bar[:nt].copy(), tr_pnl[:nt].copy(), tr_fees[:nt].copy(), lg_trade[:nl].copy(),
            lg_bar[:nl].copy(), lg_price[:nl].copy(), lg_qty[:nl].copy(), lg_fee[:nl].copy(), lg_reason[:nl].copy(),
            eq if first_bar == 0 else eq[first_bar:].copy(), stats)


@nb.njit(cache=True, nogil=True, parallel=True)
def grid_nb(o, h, l, c, atr, lines, entry_rules, exit_rules, tp_level_frac, tp_alloc_frac, plan,
            lo_o, lo_h, lo_l, lo_start, lo_end, n_groups, block_bars):
    """Run the :func:`simulate_nb` rules for many signal parameter combinations; stats only.

    Parameters
    ----------
    entry_rules, exit_rules : float64 arrays, shape (n_combos, 9)
        One rule pair per combination, over the shared `lines` (indicators computed once per
        distinct parameter value). Other parameters as :func:`simulate_nb`.
    n_groups : int
        Parallel groups (one per core); combination k runs in group ``k % n_groups``.
    block_bars : int
        Each group advances all its combinations through one block of bars before the next block,
        so the block's candles and lines stay in the core's cache (2048 is a good size).

    Returns
    -------
    float64 array, shape (n_combos, N_STATS)
        The ``S_*`` statistics of each combination, computed on the fly (no per-combination
        equity curve or trade list is allocated). Results equal :func:`simulate_nb`'s.
    """
    n = o.shape[0]
    m = entry_rules.shape[0]
    out = np.zeros((m, N_STATS))
    states = np.empty((m, N_STATE))
    for k in range(m):
        states[k] = _init_state(plan)
    groups = max(1, min(m, n_groups))
    e_i = np.empty(0, dtype=np.int64)
    e_f = np.empty(0)
    for g in nb.prange(groups):
        for j0 in range(0, n, block_bars):
            j1 = min(n, j0 + block_bars)
            for k in range(g, m, groups):
                _core(o, h, l, c, atr, lines, entry_rules[k], exit_rules[k], tp_level_frac, tp_alloc_frac, plan,
                      lo_o, lo_h, lo_l, lo_start, lo_end, False, states[k], out[k], j0, j1, 0, e_f, e_i, e_f, e_f,
                      e_f, e_i, e_f, e_f, e_i, e_i, e_f, e_f, e_f, e_i)
    return out


def _read_only(args: tuple) -> list:
    # Numba compiles one specialisation per array flag set; pandas (copy-on-write) hands out
    # read-only arrays, numpy writable ones. Passing read-only views everywhere means one
    # compilation (and one cache entry) per kernel.
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            a = np.ascontiguousarray(a).view()
            a.flags.writeable = False
        out.append(a)
    return out


def run_simulation(*args) -> Fills:
    """Call :func:`simulate_nb` (same arguments) on read-only views and wrap the result in :class:`Fills`."""
    return Fills(*simulate_nb(*_read_only(args)))


def run_grid_stats(*args) -> FloatArray:
    """Call :func:`grid_nb` (same arguments) on read-only views; returns its statistics array."""
    return grid_nb(*_read_only(args))
