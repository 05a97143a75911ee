"""Fill helpers of the simulation kernel: book one sell, close a position, fill TP steps, trail the stop.

Inlined into :func:`engine.backtest.core_nb.advance_nb` (numba ``inline="always"``); they also
run as plain Python. ``st`` is a :data:`~engine.backtest.records_nb.state_dt` record, ``log`` a
:class:`~engine.backtest.records_nb.TradeLog` written only when ``record`` is true. The rules they
implement are written once, in :func:`engine.backtest.kernel_nb.simulate_nb`.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy.typing as npt

from engine.backtest.records_nb import EXIT_TRAIL, Ladder, TradeLog

FloatArray = npt.NDArray[np.float64]


@nb.njit(cache=True, nogil=True, inline="always")
def sell_nb(st: np.void, level: float, q: float, reason: int, j: int, fee: float, slip: float, record: bool,
            log: TradeLog) -> None:
    """Sell `q` base units at `level` × (1 − slip) in bar `j`; book cash, fees and the leg (code `reason`)."""
    price = level * (1.0 - slip)
    notional = q * price
    f = notional * fee
    st["cash_quote"] += notional - f
    st["remaining_base"] -= q
    st["proceeds_quote"] += notional - f
    st["fees_quote"] += f
    if record:
        k = st["n_legs"]
        log.leg_trade[k] = st["n_trades"]
        log.leg_bar[k] = j
        log.leg_price[k] = price
        log.leg_qty[k] = q
        log.leg_fee[k] = f
        log.leg_reason[k] = reason
    st["n_legs"] += 1


@nb.njit(cache=True, nogil=True, inline="always")
def close_all_nb(st: np.void, level: float, reason: int, j: int, fee: float, slip: float, record: bool,
                 log: TradeLog) -> None:
    """Sell everything that remains at `level` (before slippage)."""
    q = st["remaining_base"]
    sell_nb(st, level, q, reason, j, fee, slip, record, log)
    st["remaining_base"] = 0.0


@nb.njit(cache=True, nogil=True, inline="always")
def tp_qty_nb(st: np.void, k: int, ladder: Ladder, lot: float) -> float:
    """Return the quantity of ladder step `k`: its share of the entry quantity in whole lots (`lot`
    > 0), at most what remains; the last step sells the rest."""
    if k == ladder.level_frac.shape[0] - 1:
        return st["remaining_base"]
    q = st["qty_base"] * ladder.alloc_frac[k]
    if lot > 0.0:
        q = math.floor(q / lot + 1e-9) * lot
    if q > st["remaining_base"]:
        q = st["remaining_base"]
    return q


@nb.njit(cache=True, nogil=True, inline="always")
def fill_targets_nb(st: np.void, reach: float, at_open: bool, next_tp: int, tp_next: float, ladder: Ladder, lot: float,
                    j: int, fee: float, slip: float, record: bool, log: TradeLog) -> tuple[int, float]:
    """Sell every TP step whose level `reach` attained, lowest first.

    With `at_open` false `reach` is a high and each step sells at its own level; with `at_open`
    true `reach` is an open that gapped through the steps, and they all sell at that open.
    Returns the next step and its level (inf after the last).
    """
    n_tp = ladder.level_frac.shape[0]
    while reach >= tp_next:
        q = tp_qty_nb(st, next_tp, ladder, lot)
        if q > 0.0:
            sell_nb(st, reach if at_open else tp_next, q, next_tp + 1, j, fee, slip, record, log)
        next_tp += 1
        tp_next = st["entry_price"] * (1.0 + ladder.level_frac[next_tp]) if next_tp < n_tp else np.inf
    return next_tp, tp_next


@nb.njit(cache=True, nogil=True, inline="always")
def with_trail_nb(stop: float, stop_reason: int, peak: float, has_trail_frac: bool, trail_frac: float,
                  has_trail_atr: bool, trail_atr: float, atr: FloatArray, j: int) -> tuple[float, int]:
    """Return the stop and its reason raised to the trailing stop when that is higher.

    `peak` is the highest high before bar `j`; the ATR trail uses ``atr[j - 1]``.
    """
    if has_trail_frac:
        tr = peak * (1.0 - trail_frac)
    elif has_trail_atr:
        tr = peak - trail_atr * atr[j - 1]
    else:
        return stop, stop_reason
    if tr > stop:
        return tr, EXIT_TRAIL
    return stop, stop_reason

