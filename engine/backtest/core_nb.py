"""The bar loop of the simulation kernel: advance one simulation's state over a range of bars (numba).

:func:`advance_nb` is the one implementation of the fill rules written in the docstring of
:func:`engine.backtest.kernel_nb.simulate_nb`; the single run calls it once over all bars, the grid
(:func:`engine.backtest.kernel_nb.grid_nb`) block by block for each combination. Between calls the
state lives in a :data:`~engine.backtest.records_nb.state_dt` record and a
:data:`~engine.backtest.records_nb.stats_dt` record, so a simulation can stop after any bar and go
on later; inside a call it lives in local variables. Also runs as plain Python
(``NUMBA_DISABLE_JIT=1``).

Three loops share the bars, each doing only what its bars need:

- *flat bars* (no position, no entry at the open): a scan for the next entry signal that reads
  only the entry rule's rows (:func:`engine.strategy.rules_nb.rule_terms_nb`; never the all-zero
  row 0). Nothing else moves: the equity is unchanged, so each bar's return is 0 and the
  statistics only count it;
- *quiet bars in a position*: no order can fill (open, low and high strictly between the bar's
  stop and the next take-profit level), before the next exit signal (found by a scan of the exit
  rule's rows, kept for the bars after it), the maximum hold and the last bar. Only exposure,
  equity and the running statistics (:func:`engine.backtest.bars_nb.position_bar_nb`) move;
- every other bar runs all the rules, in their order.

The state is kept in locals (registers): the helpers return it as values
(:class:`~engine.backtest.fills_nb.Position`, :class:`~engine.backtest.bars_nb.Running`) and LLVM
inlines them, so no reference counting happens per bar; the hot loops index with unsigned integers, which spares
numba's negative-index check. Compiled with numba's ``error_model="numpy"``: a division by zero
would give inf or NaN instead of raising (none happens with validated inputs: prices, cash and
lot sizes are positive).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy.typing as npt

from engine.backtest.bars_nb import Running, position_bar_nb
from engine.backtest.fills_nb import Position, close_all_nb, fill_targets_nb, stop_nb
from engine.backtest.records_nb import (
    EXIT_END, EXIT_SIGNAL, EXIT_SL, EXIT_TIME, REJECT_BELOW_LOT, REJECT_NO_CASH, Bars, Ladder, Lower, TradeLog,
)
from engine.strategy.rules_nb import _first_holds, _holds, _value, rule_terms_nb

FloatArray = npt.NDArray[np.float64]


@nb.njit(cache=True, nogil=True)
def init_state_nb(st: np.void, account: np.void) -> None:
    """Set a :data:`~engine.backtest.records_nb.state_dt` record to the start of a simulation.

    Flat, all cash (``account["initial_cash_quote"]``), no stop, no ladder step left.
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
    st["prev_equity_quote"] = cash
    st["peak_equity_quote"] = cash


@nb.njit(cache=True, nogil=True)
def _xy(rt, xa, xb, ya, yb, t):
    # the lines x, y of decoded rule rt (rows xa, xb, ya, yb) on the close of bar t ≥ 0
    return _value(rt[2], xa, xb, rt[5], rt[6], t), _value(rt[7], ya, yb, rt[10], rt[11], t)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def advance_nb(bars: Bars, lines: FloatArray, er: FloatArray, xr: FloatArray, ladder: Ladder, plan: np.void,
               account: np.void, lower: Lower, st: np.void, stats: np.void, j0: int, j1: int, first_bar: int,
               log: TradeLog, record: bool) -> tuple[int, int, int]:
    """Advance one simulation over bars ``j0 … j1-1`` (the rules of ``simulate_nb``, in order).

    Parameters
    ----------
    bars : Bars
    lines : float64 array, shape (n_lines, n_bars)
        Row 0 all zeros (``ROW_ZERO``; only its first value is read).
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
    (int, int, int)
        Trades and legs booked so far (rows of `log` in use), and the bar the call stopped before:
        `j1`, or with `record` an earlier bar whose entry would not fit in `log` (call again from
        it with a bigger log, :func:`engine.backtest.records_nb.grow_log_nb`).
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
    max_hold = plan["max_hold_bars"]
    check_entry = plan["check_entry_bar"]
    lot = account["lot_size_base"]
    stake = account["stake_quote"]
    fee = account["fee_rate"]
    slip = account["slippage_rate"]
    has_sl_frac = not math.isnan(sl_frac)
    has_sl_atr = not math.isnan(sl_atr)
    has_trail = not (math.isnan(trail_frac) and math.isnan(trail_atr))
    has_lower = lo_start.shape[0] == n
    inf = np.inf
    nan = np.nan
    # the fill helpers get plain flags and codes, not literal ones, so numba compiles one version of
    # each (per `record`, which must stay literal there: its log writes decide whether LLVM inlines
    # them) instead of one per literal value
    at_open, at_level = np.bool_(True), np.bool_(False)
    code_signal, code_time, code_end = np.int64(EXIT_SIGNAL), np.int64(EXIT_TIME), np.int64(EXIT_END)
    e_rt = rule_terms_nb(er)
    x_rt = rule_terms_nb(xr)
    # the rows each rule reads (row 0 where a term has none: never read)
    e_xa, e_xb, e_ya, e_yb = lines[e_rt[3]], lines[e_rt[4]], lines[e_rt[8]], lines[e_rt[9]]
    x_xa, x_xb, x_ya, x_yb = lines[x_rt[3]], lines[x_rt[4]], lines[x_rt[8]], lines[x_rt[9]]
    use_exit = plan["use_exit_signal"] and x_rt[0]  # looked at only in a position, and only if it can fire

    # the state in locals for the loop; written back at the end
    pos = Position(st["cash_quote"], st["remaining_base"], st["proceeds_quote"], st["fees_quote"], st["n_legs"])
    qty = st["qty_base"]
    entry_price = st["entry_price"]
    entry_fee = st["entry_fee_quote"]
    in_pos = st["in_position"]
    entry_bar = st["entry_bar"]
    next_tp = st["next_tp"]
    tp_next = st["tp_next_level"]  # level of the next take-profit step (inf when none is left)
    sl_level = st["stop_loss"]
    peak = st["peak_price"]
    run = Running(st["prev_equity_quote"], st["peak_equity_quote"], stats["max_drawdown_frac"], stats["return_sum"],
                  stats["return_sumsq"], stats["n_returns"], stats["exposure_bars"])
    n_trades = stats["n_trades"]  # also the trade log's next row
    n_wins = stats["n_wins"]
    gross_profit = stats["gross_profit_quote"]
    gross_loss = stats["gross_loss_quote"]
    sum_ret = stats["sum_return_pct"]
    n_amb = stats["n_ambiguous"]
    amb_t = stats["n_target_first"]
    amb_s = stats["n_stop_first"]
    amb_u = stats["n_unresolved"]
    n_rej = stats["n_rejected"]
    last_rej = stats["last_reject"]
    stop = -inf
    stop_reason = EXIT_SL
    next_exit = -1  # the first bar ≥ the bars looked at so far with an exit signal (j1: none before j1)
    trade_cap = log.entry_bar.shape[0]
    leg_cap = log.leg_bar.shape[0]
    full = False

    j = j0
    while j < j1:
        held = in_pos
        if not in_pos:
            # ---------------- flat: scan to the next entry signal ----------------
            jf = j
            if j == 0:
                j = 1  # no signal bar before bar 0: no entry at its open
            if not e_rt[0]:
                j = j1  # an entry rule that never fires
            px, py = _xy(e_rt, e_xa, e_xb, e_ya, e_yb, j - 2) if j >= 2 else (nan, nan)
            while j < j1:
                # the next bar whose signal bar (the one before) the entry rule holds on
                j = _first_holds(e_rt, e_xa, e_xb, e_ya, e_yb, px, py, j - 1, j1 - 1) + 1
                if j >= j1:
                    break
                if record and (n_trades >= trade_cap or pos.n_legs + n_tp + 1 > leg_cap):
                    full = True  # no room for this trade and its legs: stop before its bar
                    break
                # the entry at the open of bar j (flat at the close of bar j-1)
                price = o[j] * (1.0 + slip)
                cash = pos.cash_quote
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
                    pos = Position(cash - q * price - f, q, 0.0, f, pos.n_legs)
                    qty = q
                    entry_price = price
                    entry_fee = f
                    in_pos = True
                    entry_bar = j
                    break
                # refused: the bar stays flat; the scan goes on from the next one
                px, py = _xy(e_rt, e_xa, e_xb, e_ya, e_yb, j - 1)
                j += 1
            # bars jf … j-1 were flat: equity unchanged, so each return after first_bar is 0 (counted only)
            if record:
                eq_out[jf:j] = run.prev_equity  # (a slice: an indexed loop would scatter, index by index)
            run = Running(run.prev_equity, run.peak_equity, run.max_drawdown, run.return_sum, run.return_sumsq,
                          run.n_returns + max(0, j - max(jf, first_bar + 1)), run.exposure_bars)
            if not in_pos:
                break  # flat to the end of the range, or the log is full
            next_tp = 0
            tp_next = entry_price * (1.0 + tp_lvl[0]) if n_tp > 0 else inf
            peak = entry_price
            if has_sl_frac:
                sl_level = entry_price * (1.0 + sl_frac)
            elif has_sl_atr:
                sl_level = entry_price - sl_atr * atr[j - 1]
                if math.isnan(sl_level):
                    sl_level = -inf
            else:
                sl_level = -inf
            stop, stop_reason = stop_nb(sl_level, False, entry_price, be_off, peak, trail_frac, trail_atr, atr[j - 1])
            if check_entry and o[j] <= stop:
                # a stop closer than the entry slippage sits at or above this bar's open: the bar
                # opened through it, so it fills at the open like any gap (never above the high)
                pos = close_all_nb(pos, o[j], stop_reason, j, n_trades, fee, slip, record, log)
                in_pos = False
        else:
            # ------- quiet bars: nothing can fill before the next exit signal, the maximum hold or
            # the last bar (which closes the position), while the bar stays between stop and target -------
            quiet_end = min(j1, n - 1)
            if max_hold > 0:
                quiet_end = min(quiet_end, entry_bar + max_hold)
            if use_exit:
                if next_exit < j:
                    # the next exit signal: the exit rule holds on its signal bar t and the entry rule not
                    t = j - 1
                    px, py = _xy(x_rt, x_xa, x_xb, x_ya, x_yb, t - 1) if t >= 1 else (nan, nan)
                    while True:
                        t = _first_holds(x_rt, x_xa, x_xb, x_ya, x_yb, px, py, t, j1 - 1)
                        if t >= j1 - 1:
                            break
                        pe_x, pe_y = _xy(e_rt, e_xa, e_xb, e_ya, e_yb, t - 1) if t >= 1 else (nan, nan)
                        e_x, e_y = _xy(e_rt, e_xa, e_xb, e_ya, e_yb, t)
                        if not _holds(e_rt, pe_x, pe_y, e_x, e_y):
                            break
                        px, py = _xy(x_rt, x_xa, x_xb, x_ya, x_yb, t)
                        t += 1
                    next_exit = t + 1
                quiet_end = min(quiet_end, next_exit)
            breakeven = use_be and next_tp >= 1  # TP1 filled before this bar
            stop, stop_reason = stop_nb(sl_level, breakeven, entry_price, be_off, peak, trail_frac, trail_atr,
                                        atr[j - 1])
            while j < quiet_end:
                u = np.uint64(j)  # j ≥ 1: an unsigned index
                if o[u] <= stop or o[u] >= tp_next or l[u] <= stop or h[u] >= tp_next:
                    break
                if has_trail:
                    peak = max(peak, h[u])
                eq = pos.cash_quote + pos.remaining_base * c[u]
                if record:
                    eq_out[u] = eq
                run = position_bar_nb(run, eq, True, False)  # j > entry bar ≥ first_bar
                j += 1
                if has_trail:
                    stop, stop_reason = stop_nb(sl_level, breakeven, entry_price, be_off, peak, trail_frac,
                                                trail_atr, atr[j - 1])
            if j >= j1:
                break
            # ---------------- at the open, in a position ----------------
            # the stop for this whole bar (from stop_nb above): highest of stop-loss, breakeven, trail
            if o[j] <= stop:
                pos = close_all_nb(pos, o[j], stop_reason, j, n_trades, fee, slip, record, log)
            else:
                if o[j] >= tp_next:
                    pos, next_tp, tp_next = fill_targets_nb(pos, o[j], at_open, next_tp, tp_next, entry_price, qty,
                                                            ladder, lot, j, n_trades, fee, slip, record, log)
                if pos.remaining_base > 0.0:
                    if use_exit and j == next_exit:
                        pos = close_all_nb(pos, o[j], code_signal, j, n_trades, fee, slip, record, log)
                    elif max_hold > 0 and j - entry_bar >= max_hold:
                        pos = close_all_nb(pos, o[j], code_time, j, n_trades, fee, slip, record, log)
            if pos.remaining_base <= 0.0:
                in_pos = False
        # ---------------- inside the bar ----------------
        if in_pos and (held or check_entry):
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
                            pos = close_all_nb(pos, so, stop_reason, j, n_trades, fee, slip, record, log)
                            break
                        if first == 0 and so >= tp_next:
                            first = 1
                        pos, next_tp, tp_next = fill_targets_nb(pos, so, at_open, next_tp, tp_next, entry_price, qty,
                                                                ladder, lot, j, n_trades, fee, slip, record, log)
                        if pos.remaining_base <= 0.0:
                            break
                        s2 = lo_l[k] <= stop
                        t2 = lo_h[k] >= tp_next
                        if s2:
                            if first == 0:
                                first = 3 if t2 else 2
                            pos = close_all_nb(pos, stop, stop_reason, j, n_trades, fee, slip, record, log)
                            break
                        if t2:
                            if first == 0:
                                first = 1
                            pos, next_tp, tp_next = fill_targets_nb(pos, lo_h[k], at_level, next_tp, tp_next,
                                                                    entry_price, qty, ladder, lot, j, n_trades, fee,
                                                                    slip, record, log)
                            if pos.remaining_base <= 0.0:
                                break
                if first == 1:
                    amb_t += 1
                elif first == 2:
                    amb_s += 1
                else:
                    amb_u += 1
                if pos.remaining_base > 0.0 and first != 1:
                    # not resolved by lower candles (or none): the stop is assumed to come first
                    pos = close_all_nb(pos, stop, stop_reason, j, n_trades, fee, slip, record, log)
            elif s_hit:
                pos = close_all_nb(pos, stop, stop_reason, j, n_trades, fee, slip, record, log)
            elif t_hit:
                pos, next_tp, tp_next = fill_targets_nb(pos, h[j], at_level, next_tp, tp_next, entry_price, qty, ladder,
                                                        lot, j, n_trades, fee, slip, record, log)
            if pos.remaining_base <= 0.0:
                in_pos = False
        # ---------------- at the close ----------------
        if in_pos and j == n - 1:
            pos = close_all_nb(pos, c[j], code_end, j, n_trades, fee, slip, record, log)
            in_pos = False
        if not in_pos:
            # the trade closed in this bar: book it
            cost = qty * entry_price + entry_fee
            pnl = pos.proceeds_quote - cost
            if pnl > 0.0:
                n_wins += 1
                gross_profit += pnl
            elif pnl < 0.0:
                gross_loss -= pnl
            sum_ret += pnl / (qty * entry_price) * 100.0
            if record:
                log.entry_bar[n_trades] = entry_bar
                log.entry_price[n_trades] = entry_price
                log.qty[n_trades] = qty
                log.entry_fee[n_trades] = entry_fee
                log.exit_bar[n_trades] = j
                log.pnl[n_trades] = pnl
                log.fees[n_trades] = pos.fees_quote
            n_trades += 1
        if has_trail and in_pos:
            peak = max(peak, h[j])
        eq = pos.cash_quote + pos.remaining_base * c[j]
        if record:
            eq_out[j] = eq
        run = position_bar_nb(run, eq, j > first_bar, j == first_bar)
        j += 1

    st["cash_quote"] = pos.cash_quote
    st["remaining_base"] = pos.remaining_base
    st["proceeds_quote"] = pos.proceeds_quote
    st["fees_quote"] = pos.fees_quote
    st["n_legs"] = pos.n_legs
    st["n_trades"] = n_trades
    st["qty_base"] = qty
    st["entry_price"] = entry_price
    st["entry_fee_quote"] = entry_fee
    st["in_position"] = in_pos
    st["entry_bar"] = entry_bar
    st["next_tp"] = next_tp
    st["tp_next_level"] = tp_next
    st["stop_loss"] = sl_level
    st["peak_price"] = peak
    st["prev_equity_quote"] = run.prev_equity
    st["peak_equity_quote"] = run.peak_equity
    stats["n_trades"] = n_trades
    stats["n_wins"] = n_wins
    stats["gross_profit_quote"] = gross_profit
    stats["gross_loss_quote"] = gross_loss
    stats["sum_return_pct"] = sum_ret
    stats["max_drawdown_frac"] = run.max_drawdown
    stats["return_sum"] = run.return_sum
    stats["return_sumsq"] = run.return_sumsq
    stats["n_returns"] = run.n_returns
    stats["exposure_bars"] = run.exposure_bars
    stats["final_equity_quote"] = run.prev_equity
    stats["n_ambiguous"] = n_amb
    stats["n_target_first"] = amb_t
    stats["n_stop_first"] = amb_s
    stats["n_unresolved"] = amb_u
    stats["n_rejected"] = n_rej
    stats["last_reject"] = last_rej
    stats["n_bars"] = n - first_bar
    return n_trades, pos.n_legs, j1 if not full else j
