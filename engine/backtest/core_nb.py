"""The bar loop of the simulation kernel: advance one simulation's state over a range of bars (numba).

:func:`advance_nb` is the one implementation of the fill rules written in the docstring of
:func:`engine.backtest.kernel_nb.simulate_nb`; the single run calls it once over all bars, the grid
(:func:`engine.backtest.kernel_nb.grid_nb`) block by block for each combination. All state lives in
a :data:`~engine.backtest.records_nb.state_dt` record and a
:data:`~engine.backtest.records_nb.stats_dt` record, so a simulation can stop after any bar and go
on later. Also runs as plain Python (``NUMBA_DISABLE_JIT=1``).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy.typing as npt

from engine.backtest.fills_nb import close_all_nb, fill_targets_nb, with_trail_nb
from engine.backtest.records_nb import (
    EXIT_BE, EXIT_END, EXIT_SIGNAL, EXIT_SL, EXIT_TIME, REJECT_BELOW_LOT, REJECT_NO_CASH, Bars, Ladder, Lower, TradeLog,
)
from engine.strategy.rules_nb import _line, _sig

FloatArray = npt.NDArray[np.float64]


@nb.njit(cache=True, nogil=True)
def init_state_nb(st: np.void, account: np.void, lines: FloatArray, entry_rule: FloatArray, exit_rule: FloatArray,
                  first_bar: int) -> None:
    """Set a :data:`~engine.backtest.records_nb.state_dt` record to the start of a simulation.

    Flat, all cash (``account["initial_cash_quote"]``), no stop, no ladder step left. With
    ``first_bar ≥ 2`` the rules' line values of bar ``first_bar − 2`` (the bar before the signal
    bar of `first_bar`) are filled in, so a crossover can fire on the first signal bar.
    """
    cash = account["initial_cash_quote"]
    st["cash_quote"] = cash
    st["remaining_base"] = 0.0
    st["qty_base"] = 0.0
    st["entry_price"] = 0.0
    st["entry_fee_quote"] = 0.0
    st["proceeds_quote"] = 0.0
    st["fees_quote"] = 0.0
    st["n_legs"] = 0
    st["n_trades"] = 0
    st["in_position"] = False
    st["entry_bar"] = -1
    st["next_tp"] = 0
    st["tp_next_level"] = np.inf
    st["stop_loss"] = -np.inf
    st["peak_price"] = 0.0
    st["flat_at_prev_close"] = True
    st["prev_equity_quote"] = cash
    st["peak_equity_quote"] = cash
    st["prev_entry_x"] = np.nan
    st["prev_entry_y"] = np.nan
    st["prev_exit_x"] = np.nan
    st["prev_exit_y"] = np.nan
    if first_bar >= 2:
        t = first_bar - 2
        er = entry_rule
        xr = exit_rule
        st["prev_entry_x"] = _line(lines, int(er[1]), int(er[2]), er[3], er[4], t)
        st["prev_entry_y"] = _line(lines, int(er[5]), int(er[6]), er[7], er[8], t)
        st["prev_exit_x"] = _line(lines, int(xr[1]), int(xr[2]), xr[3], xr[4], t)
        st["prev_exit_y"] = _line(lines, int(xr[5]), int(xr[6]), xr[7], xr[8], t)


@nb.njit(cache=True, nogil=True)
def advance_nb(bars: Bars, lines: FloatArray, er: FloatArray, xr: FloatArray, ladder: Ladder, plan: np.void,
               account: np.void, lower: Lower, st: np.void, stats: np.void, j0: int, j1: int, first_bar: int,
               log: TradeLog, record: bool) -> tuple[int, int]:
    """Advance one simulation over bars ``j0 … j1-1`` (the rules of ``simulate_nb``, in order).

    Parameters
    ----------
    bars : Bars
    lines : float64 array, shape (n_lines, n_bars)
    er, xr : float64 arrays, shape (9,)
        Entry and exit rule (:mod:`engine.strategy.rules_nb`).
    ladder : Ladder
    plan, account : plan_dt record, account_dt record
        Scalars (``plan_array[0]``), read only.
    lower : Lower
        Empty arrays = no intrabar refinement.
    st, stats : state_dt record, stats_dt record
        Read at the start and written back at the end of the call.
    j0, j1 : int
        Bars to simulate; consecutive calls must cover consecutive ranges.
    first_bar : int
        First bar of the whole simulation (drawdown and returns start at its close).
    log : TradeLog
        Written only when `record` is true (trades, legs, equity).
    record : bool

    Returns
    -------
    (int, int)
        Trades and legs booked so far (rows of `log` in use).
    """
    # the arrays out of their bundles once, before the loop
    o, h, l, c, atr = bars.open, bars.high, bars.low, bars.close, bars.atr
    tp_lvl = ladder.level_frac
    lo_o, lo_h, lo_l, lo_start, lo_end = lower.open, lower.high, lower.low, lower.start, lower.end
    eq_out = log.equity
    n = o.shape[0]
    n_tp = tp_lvl.shape[0]
    sl_frac = plan["stop_loss_frac"]
    sl_atr = plan["stop_loss_atr_mult"]
    use_be = plan["breakeven"]
    be_off = plan["breakeven_offset_frac"]
    trail_frac = plan["trail_frac"]
    trail_atr = plan["trail_atr_mult"]
    use_exit = plan["use_exit_signal"]
    max_hold = plan["max_hold_bars"]
    check_entry = plan["check_entry_bar"]
    lot = account["lot_size_base"]
    stake = account["stake_quote"]
    fee = account["fee_rate"]
    slip = account["slippage_rate"]
    has_sl_frac = not math.isnan(sl_frac)
    has_sl_atr = not math.isnan(sl_atr)
    has_trail_frac = not math.isnan(trail_frac)
    has_trail_atr = not math.isnan(trail_atr)
    has_trail = has_trail_frac or has_trail_atr
    has_lower = lo_start.shape[0] == n
    inf = np.inf
    e_mode, e_xa, e_xb, e_xk, e_xc = int(er[0]), int(er[1]), int(er[2]), er[3], er[4]
    e_ya, e_yb, e_yk, e_yc = int(er[5]), int(er[6]), er[7], er[8]
    x_mode, x_xa, x_xb, x_xk, x_xc = int(xr[0]), int(xr[1]), int(xr[2]), xr[3], xr[4]
    x_ya, x_yb, x_yk, x_yc = int(xr[5]), int(xr[6]), xr[7], xr[8]
    # entry and exit rules over the same two lines (crossovers): read them once per bar
    same_lines = (e_xa == x_xa and e_xb == x_xb and e_xk == x_xk and e_xc == x_xc and e_ya == x_ya
                  and e_yb == x_yb and e_yk == x_yk and e_yc == x_yc)

    # the state in locals for the loop; written back at the end
    in_pos = st["in_position"]
    entry_bar = st["entry_bar"]
    next_tp = st["next_tp"]
    tp_next = st["tp_next_level"]  # level of the next take-profit step (inf when none is left)
    sl_level = st["stop_loss"]
    peak = st["peak_price"]
    flat_prev_close = st["flat_at_prev_close"]
    prev_eq = st["prev_equity_quote"]
    peak_eq = st["peak_equity_quote"]
    pxe, pye, pxx, pyx = st["prev_entry_x"], st["prev_entry_y"], st["prev_exit_x"], st["prev_exit_y"]

    n_trades = stats["n_trades"]
    n_wins = stats["n_wins"]
    gross_profit = stats["gross_profit_quote"]
    gross_loss = stats["gross_loss_quote"]
    sum_ret = stats["sum_return_pct"]
    max_dd = stats["max_drawdown_frac"]
    ret_sum = stats["return_sum"]
    ret_sumsq = stats["return_sumsq"]
    n_ret = stats["n_returns"]
    exposure = stats["exposure_bars"]
    n_amb = stats["n_ambiguous"]
    amb_t = stats["n_target_first"]
    amb_s = stats["n_stop_first"]
    amb_u = stats["n_unresolved"]
    n_rej = stats["n_rejected"]
    last_rej = stats["last_reject"]
    stop = -inf
    stop_reason = EXIT_SL

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
                n_ret += 1
            continue
        held = in_pos
        # ---------------- at the open ----------------
        if in_pos:
            # the stop for this whole bar: highest of stop-loss, breakeven (TP1 filled before this bar), trail
            stop = sl_level
            stop_reason = EXIT_SL
            if use_be and next_tp >= 1:
                be = st["entry_price"] * (1.0 + be_off)
                if be > stop:
                    stop = be
                    stop_reason = EXIT_BE
            stop, stop_reason = with_trail_nb(stop, stop_reason, peak, has_trail_frac, trail_frac, has_trail_atr,
                                              trail_atr, atr, j)
            if o[j] <= stop:
                close_all_nb(st, o[j], stop_reason, j, fee, slip, record, log)
            else:
                next_tp, tp_next = fill_targets_nb(st, o[j], True, next_tp, tp_next, ladder, lot, j, fee, slip,
                                                   record, log)
                if st["remaining_base"] > 0.0:
                    if use_exit and _sig(x_mode, pxx, pyx, xx, yx) and not _sig(e_mode, pxe, pye, xe, ye):
                        close_all_nb(st, o[j], EXIT_SIGNAL, j, fee, slip, record, log)
                    elif max_hold > 0 and j - entry_bar >= max_hold:
                        close_all_nb(st, o[j], EXIT_TIME, j, fee, slip, record, log)
            if st["remaining_base"] <= 0.0:
                in_pos = False
        entered = False
        if not in_pos and flat_prev_close and _sig(e_mode, pxe, pye, xe, ye):
            price = o[j] * (1.0 + slip)
            cash = st["cash_quote"]
            spend = min(cash, stake)
            q = spend / (price * (1.0 + fee)) if cash > 0.0 else 0.0
            if lot > 0.0:
                q = math.floor(q / lot + 1e-9) * lot
                if q * price * (1.0 + fee) > spend:
                    q -= lot
            if cash <= 0.0:
                n_rej += 1
                last_rej = REJECT_NO_CASH
            elif q <= 0.0:
                n_rej += 1
                last_rej = REJECT_BELOW_LOT
            else:
                f = q * price * fee
                st["cash_quote"] = cash - q * price - f
                st["qty_base"] = q
                st["remaining_base"] = q
                st["entry_price"] = price
                st["entry_fee_quote"] = f
                st["proceeds_quote"] = 0.0
                st["fees_quote"] = f
                in_pos = True
                entered = True
                entry_bar = j
                next_tp = 0
                tp_next = price * (1.0 + tp_lvl[0]) if n_tp > 0 else inf
                peak = price
                if has_sl_frac:
                    sl_level = price * (1.0 + sl_frac)
                elif has_sl_atr:
                    sl_level = price - sl_atr * atr[j - 1]
                    if math.isnan(sl_level):
                        sl_level = -inf
                else:
                    sl_level = -inf
                stop = sl_level
                stop_reason = EXIT_SL
                stop, stop_reason = with_trail_nb(stop, stop_reason, peak, has_trail_frac, trail_frac, has_trail_atr,
                                                  trail_atr, atr, j)
                if check_entry and o[j] <= stop:
                    # a stop closer than the entry slippage sits at or above this bar's open: the bar
                    # opened through it, so it fills at the open like any gap (never above the high)
                    close_all_nb(st, o[j], stop_reason, j, fee, slip, record, log)
                    in_pos = False
        pxe, pye, pxx, pyx = xe, ye, xx, yx
        # ---------------- inside the bar ----------------
        if in_pos and (check_entry or not entered):
            s_hit = l[j] <= stop
            t_hit = h[j] >= tp_next
            if s_hit and t_hit:
                n_amb += 1
                first = 0  # 1 target first, 2 stop first, 3 still ambiguous
                if has_lower and lo_start[j] < lo_end[j]:
                    for k in range(lo_start[j], lo_end[j]):
                        so = lo_o[k]
                        if so <= stop:
                            if first == 0:
                                first = 2
                            close_all_nb(st, so, stop_reason, j, fee, slip, record, log)
                            break
                        if first == 0 and so >= tp_next:
                            first = 1
                        next_tp, tp_next = fill_targets_nb(st, so, True, next_tp, tp_next, ladder, lot, j, fee,
                                                           slip, record, log)
                        if st["remaining_base"] <= 0.0:
                            break
                        s2 = lo_l[k] <= stop
                        t2 = lo_h[k] >= tp_next
                        if s2:
                            if first == 0:
                                first = 3 if t2 else 2
                            close_all_nb(st, stop, stop_reason, j, fee, slip, record, log)
                            break
                        if t2:
                            if first == 0:
                                first = 1
                            next_tp, tp_next = fill_targets_nb(st, lo_h[k], False, next_tp, tp_next, ladder,
                                                               lot, j, fee, slip, record, log)
                            if st["remaining_base"] <= 0.0:
                                break
                if first == 1:
                    amb_t += 1
                elif first == 2:
                    amb_s += 1
                else:
                    amb_u += 1
                if st["remaining_base"] > 0.0 and first != 1:
                    # not resolved by lower candles (or none): the stop is assumed to come first
                    close_all_nb(st, stop, stop_reason, j, fee, slip, record, log)
            elif s_hit:
                close_all_nb(st, stop, stop_reason, j, fee, slip, record, log)
            elif t_hit:
                next_tp, tp_next = fill_targets_nb(st, h[j], False, next_tp, tp_next, ladder, lot, j, fee, slip,
                                                   record, log)
            if st["remaining_base"] <= 0.0:
                in_pos = False
        # ---------------- at the close ----------------
        if in_pos and j == n - 1:
            close_all_nb(st, c[j], EXIT_END, j, fee, slip, record, log)
            in_pos = False
        if (held or entered) and not in_pos:
            # the trade closed in this bar: book it
            cost = st["qty_base"] * st["entry_price"] + st["entry_fee_quote"]
            pnl = st["proceeds_quote"] - cost
            n_trades += 1
            if pnl > 0.0:
                n_wins += 1
                gross_profit += pnl
            elif pnl < 0.0:
                gross_loss -= pnl
            sum_ret += pnl / (st["qty_base"] * st["entry_price"]) * 100.0
            if record:
                t = st["n_trades"]
                log.entry_bar[t] = entry_bar
                log.entry_price[t] = st["entry_price"]
                log.qty[t] = st["qty_base"]
                log.entry_fee[t] = st["entry_fee_quote"]
                log.exit_bar[t] = j
                log.pnl[t] = pnl
                log.fees[t] = st["fees_quote"]
            st["n_trades"] += 1
            st["remaining_base"] = 0.0
        if held or entered:
            exposure += 1
            if has_trail and in_pos:
                peak = max(peak, h[j])
            eq = st["cash_quote"] + st["remaining_base"] * c[j]
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
            n_ret += 1
        # drawdown of the bar-close equity curve, which starts at the close of first_bar (DESIGN.md);
        # equal to the initial cash there unless a window enters at its first open
        peak_eq = eq if j == first_bar else max(peak_eq, eq)
        if peak_eq - eq > max_dd * peak_eq:
            max_dd = (peak_eq - eq) / peak_eq
        prev_eq = eq

    st["in_position"] = in_pos
    st["entry_bar"] = entry_bar
    st["next_tp"] = next_tp
    st["tp_next_level"] = tp_next
    st["stop_loss"] = sl_level
    st["peak_price"] = peak
    st["flat_at_prev_close"] = flat_prev_close
    st["prev_equity_quote"] = prev_eq
    st["peak_equity_quote"] = peak_eq
    st["prev_entry_x"], st["prev_entry_y"], st["prev_exit_x"], st["prev_exit_y"] = pxe, pye, pxx, pyx
    stats["n_trades"] = n_trades
    stats["n_wins"] = n_wins
    stats["gross_profit_quote"] = gross_profit
    stats["gross_loss_quote"] = gross_loss
    stats["sum_return_pct"] = sum_ret
    stats["max_drawdown_frac"] = max_dd
    stats["return_sum"] = ret_sum
    stats["return_sumsq"] = ret_sumsq
    stats["n_returns"] = n_ret
    stats["exposure_bars"] = exposure
    stats["final_equity_quote"] = prev_eq
    stats["n_ambiguous"] = n_amb
    stats["n_target_first"] = amb_t
    stats["n_stop_first"] = amb_s
    stats["n_unresolved"] = amb_u
    stats["n_rejected"] = n_rej
    stats["last_reject"] = last_rej
    stats["n_bars"] = n - first_bar
    return st["n_trades"], st["n_legs"]
