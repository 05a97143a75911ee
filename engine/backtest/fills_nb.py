"""Fill helpers of the simulation kernel: the stop of a bar, book one sell, close a position, fill TP steps.

Small numba functions that LLVM inlines into :func:`engine.backtest.core_nb.advance_nb` (numba's
own ``inline="always"`` would count references to the 14 log arrays at every call site, an atomic
operation each: measured 9 % of a backtest); they also run as plain Python. They take the open
trade's money as a :class:`Position` value and return the new value, so that inside the bar loop
it lives in registers, not in memory; ``log`` is a :class:`~engine.backtest.records_nb.TradeLog`
written only when ``record`` is true. The rules they implement are written once, in
:func:`engine.backtest.kernel_nb.simulate_nb`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np
import numpy.typing as npt

from engine.backtest.records_nb import EXIT_BE, EXIT_SL, EXIT_TRAIL, Ladder, TradeLog

FloatArray = npt.NDArray[np.float64]


class Position(NamedTuple):
    """The money of one simulation while its bar loop runs (the state record holds it between calls).

    ``cash_quote`` cash, fees paid; ``remaining_base`` quantity still held; ``proceeds_quote`` the
    open trade's exit fills net of their fees; ``fees_quote`` the open trade's fees, entry and exits;
    ``n_legs`` exit fills so far, all trades (the next row of the leg log).
    """

    cash_quote: float
    remaining_base: float
    proceeds_quote: float
    fees_quote: float
    n_legs: int


@nb.njit(cache=True, nogil=True)
def sell_nb(pos: Position, level: float, q: float, reason: int, j: int, trade: int, fee: float, slip: float,
            record: bool, log: TradeLog) -> Position:
    """Sell `q` base units at `level` × (1 − slip) in bar `j`; return `pos` with the cash, fees and
    the leg (code `reason`, trade row `trade`) booked."""
    price = level * (1.0 - slip)
    notional = q * price
    f = notional * fee
    k = pos.n_legs
    if record:
        log.leg_trade[k] = trade
        log.leg_bar[k] = j
        log.leg_price[k] = price
        log.leg_qty[k] = q
        log.leg_fee[k] = f
        log.leg_reason[k] = reason
    return Position(pos.cash_quote + (notional - f), pos.remaining_base - q, pos.proceeds_quote + (notional - f),
                    pos.fees_quote + f, k + 1)


@nb.njit(cache=True, nogil=True)
def close_all_nb(pos: Position, level: float, reason: int, j: int, trade: int, fee: float, slip: float, record: bool,
                 log: TradeLog) -> Position:
    """Sell everything that remains at `level` (before slippage); nothing remains after."""
    p = sell_nb(pos, level, pos.remaining_base, reason, j, trade, fee, slip, record, log)
    return Position(p.cash_quote, 0.0, p.proceeds_quote, p.fees_quote, p.n_legs)


@nb.njit(cache=True, nogil=True)
def tp_qty_nb(remaining: float, qty: float, k: int, ladder: Ladder, lot: float) -> float:
    """Return the quantity of ladder step `k` of an entry of `qty`: its share in whole lots (`lot`
    > 0), at most `remaining`; the last step sells the rest."""
    if k == ladder.level_frac.shape[0] - 1:
        return remaining
    q = qty * ladder.alloc_frac[k]
    if lot > 0.0:
        q = math.floor(q / lot + 1e-9) * lot
    if q > remaining:
        q = remaining
    return q


@nb.njit(cache=True, nogil=True)
def fill_targets_nb(pos: Position, reach: float, at_open: bool, next_tp: int, tp_next: float, entry_price: float,
                    qty: float, ladder: Ladder, lot: float, j: int, trade: int, fee: float, slip: float, record: bool,
                    log: TradeLog) -> tuple[Position, int, float]:
    """Sell every TP step whose level `reach` attained, lowest first.

    With `at_open` false `reach` is a high and each step sells at its own level; with `at_open`
    true `reach` is an open that gapped through the steps, and they all sell at that open.
    Returns the position, the next step and its level (inf after the last).
    """
    n_tp = ladder.level_frac.shape[0]
    while reach >= tp_next:
        q = tp_qty_nb(pos.remaining_base, qty, next_tp, ladder, lot)
        if q > 0.0:
            pos = sell_nb(pos, reach if at_open else tp_next, q, next_tp + 1, j, trade, fee, slip, record, log)
        next_tp += 1
        tp_next = entry_price * (1.0 + ladder.level_frac[next_tp]) if next_tp < n_tp else np.inf
    return pos, next_tp, tp_next


@nb.njit(cache=True, nogil=True)
def stop_nb(sl_level: float, breakeven: bool, entry_price: float, be_off: float, peak: float, trail_frac: float,
            trail_atr: float, atr_prev: float) -> tuple[float, int]:
    """Return the stop of a bar in a position and its reason code: the highest of the stop-loss
    `sl_level`, the breakeven stop ``entry × (1 + be_off)`` when `breakeven` (TP1 filled before
    this bar) and the trailing stop from `peak`, the highest high before the bar (``trail_frac``
    below it, or ``trail_atr × atr_prev``, the ATR of the bar before; NaN = off). Ties go to the
    earlier of sl, be, trail."""
    stop = sl_level
    reason = EXIT_SL
    if breakeven:
        be = entry_price * (1.0 + be_off)
        if be > stop:
            stop = be
            reason = EXIT_BE
    if not math.isnan(trail_frac):
        tr = peak * (1.0 - trail_frac)
    elif not math.isnan(trail_atr):
        tr = peak - trail_atr * atr_prev
    else:
        return stop, reason
    if tr > stop:
        return tr, EXIT_TRAIL
    return stop, reason
