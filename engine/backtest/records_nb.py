"""The simulation kernel's contract by name: record dtypes, argument bundles and codes (numpy and numba only).

Everything the kernel (:mod:`engine.backtest.kernel_nb`) reads or writes is named here, so that
the API (:mod:`engine.backtest.api`), the metrics (:mod:`engine.backtest.metrics`), the exit model
(:mod:`engine.strategy.exits`) and the tests address fields by name, never by position:

- record dtypes (numpy structured dtypes, ``align=True``; numba compiles field access by name):
  :data:`plan_dt` the exit rules, :data:`account_dt` cash, costs and lot size, :data:`state_dt`
  the position state carried from bar to bar, :data:`stats_dt` the streaming statistics of one run;
- NamedTuples of arrays: :class:`Bars`, :class:`Lower`, :class:`Ladder`, :class:`TradeLog`;
- codes: exit reasons of a leg and entry rejection statuses, turned into words by the one table
  :data:`CODE_NAMES` (:func:`code_name`).

Units follow STYLE §4 inside kernels: rates and distances are fractions (``0.001`` = 0.1 %),
money is quote currency (``_quote``), quantities base units (``_base``), times bar numbers.
Records cross into numba as arrays of shape (1,) (a record scalar cannot enter a parallel loop);
the kernels read ``plan[0]``.
"""
from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RecordArray = npt.NDArray[np.void]

# ------------------------------------------------------------------ codes

#: Leg exit reasons 1 … MAX_TP_STEPS are the take-profit steps tp1 … tpN of the ladder.
MAX_TP_STEPS = 99
#: Leg exit reasons other than a take-profit step.
EXIT_SL, EXIT_BE, EXIT_TRAIL, EXIT_SIGNAL, EXIT_TIME, EXIT_END = 100, 101, 102, 103, 104, 105
#: Status of the last entry signal refused (``stats["last_reject"]``); 0 = none refused.
NO_REJECT, REJECT_NO_CASH, REJECT_BELOW_LOT = 0, 200, 201

#: The one table of code → word: exit reasons (``tp1`` … are derived, see :func:`code_name`) and
#: rejection statuses. The API's trade and leg frames and ``BacktestResult.reject_reason`` use it.
CODE_NAMES: dict[int, str] = {
    EXIT_SL: "sl",
    EXIT_BE: "be",
    EXIT_TRAIL: "trail",
    EXIT_SIGNAL: "signal",
    EXIT_TIME: "time",
    EXIT_END: "end",
    REJECT_NO_CASH: "no cash left",
    REJECT_BELOW_LOT: "cash buys less than one lot",
}


def code_name(code: int) -> str:
    """Return the word of a kernel code: ``"tp1"`` … for ladder steps, else :data:`CODE_NAMES`.

    Raises
    ------
    KeyError
        If `code` is neither a ladder step (1 … :data:`MAX_TP_STEPS`) nor in :data:`CODE_NAMES`.
    """
    code = int(code)
    if 1 <= code <= MAX_TP_STEPS:
        return f"tp{code}"
    return CODE_NAMES[code]


# ------------------------------------------------------------------ record dtypes

#: The exit rules of one plan (:func:`engine.backtest.inputs.kernel_plan` builds it).
#: Distances are fractions of the entry fill price; NaN = rule off.
plan_dt = np.dtype([
    ("stop_loss_frac", np.float64),         # stop distance, negative (-0.005 = 0.5 % below entry)
    ("stop_loss_atr_mult", np.float64),     # stop distance in ATRs of the signal bar (> 0)
    ("breakeven", np.bool_),                # move the stop to breakeven after TP1 (from the next bar)
    ("breakeven_offset_frac", np.float64),  # breakeven stop above entry, fraction (may be ≤ 0)
    ("trail_frac", np.float64),             # trailing distance below the peak, fraction (> 0)
    ("trail_atr_mult", np.float64),         # trailing distance in ATRs of the previous bar (> 0)
    ("use_exit_signal", np.bool_),          # act on the exit rule
    ("max_hold_bars", np.int64),            # close at the open of entry_bar + this; -1 = none
    ("check_entry_bar", np.bool_),          # check stops and targets on the entry bar too
], align=True)

#: Cash, costs and sizing of one run (:meth:`engine.strategy.exits.Costs.account` builds it).
account_dt = np.dtype([
    ("initial_cash_quote", np.float64),     # starting cash
    ("fee_rate", np.float64),               # fee per side, fraction of notional
    ("slippage_rate", np.float64),          # adverse price move per fill, fraction of price
    ("lot_size_base", np.float64),          # quantities in whole multiples of this; 0 = fractional
    ("stake_quote", np.float64),            # most one entry spends, fee included; inf = all the cash
], align=True)

#: The position state of one simulation, carried from bar to bar (and from block to block in the
#: grid). Prices in quote per base unit.
state_dt = np.dtype([
    ("cash_quote", np.float64),             # cash, fees paid
    ("remaining_base", np.float64),         # quantity still held
    ("qty_base", np.float64),               # quantity bought at the entry
    ("entry_price", np.float64),            # entry fill, slippage included
    ("entry_fee_quote", np.float64),
    ("proceeds_quote", np.float64),         # sum of the trade's exit fills, net of their fees
    ("fees_quote", np.float64),             # the trade's fees, entry and exits
    ("n_legs", np.int64),                   # exit fills so far (all trades)
    ("n_trades", np.int64),                 # closed trades so far
    ("in_position", np.bool_),
    ("entry_bar", np.int64),                # bar of the open trade's entry; -1 before the first
    ("next_tp", np.int64),                  # ladder step to fill next
    ("tp_next_level", np.float64),          # its price (inf when none is left)
    ("stop_loss", np.float64),              # the stop-loss price set at the entry (-inf = none)
    ("peak_price", np.float64),             # highest high since entry, before the current bar
    ("prev_equity_quote", np.float64),      # equity at the previous close
    ("peak_equity_quote", np.float64),      # running peak of the bar-close equity
], align=True)

#: The streaming statistics of one run (:func:`engine.backtest.metrics.metrics_from_stats` reads
#: them by name). Bars counted from the first simulated bar.
stats_dt = np.dtype([
    ("n_trades", np.int64),                 # closed round trips
    ("n_wins", np.int64),                   # trades with net PnL > 0
    ("gross_profit_quote", np.float64),     # sum of positive trade PnL
    ("gross_loss_quote", np.float64),       # -sum of negative trade PnL (≥ 0)
    ("sum_return_pct", np.float64),         # sum of trade returns, percent of entry notional
    ("max_drawdown_frac", np.float64),      # max drawdown of bar-close equity, fraction
    ("return_sum", np.float64),             # sum of per-bar equity returns
    ("return_sumsq", np.float64),           # sum of squared per-bar equity returns
    ("n_returns", np.int64),                # per-bar returns (n_bars - 1)
    ("exposure_bars", np.int64),            # bars during which a position was held at some moment
    ("final_equity_quote", np.float64),     # equity at the last close
    ("n_ambiguous", np.int64),              # bars where the stop and a target were both touched
    ("n_target_first", np.int64),           # … resolved by lower candles: target first
    ("n_stop_first", np.int64),             # … resolved by lower candles: stop first
    ("n_unresolved", np.int64),             # … not resolvable: stop assumed first
    ("n_rejected", np.int64),               # entry signals refused
    ("last_reject", np.int64),              # status code of the last refusal (NO_REJECT = none)
    ("n_bars", np.int64),                   # bars simulated
], align=True)


def new_record(dtype: np.dtype, **values: float | int | bool) -> RecordArray:
    """Return a record array of shape (1,) with `values` set by field name, the rest zero.

    Raises
    ------
    KeyError
        If a name is not a field of `dtype`, or a field of `dtype` is left out (every field of a
        kernel record is meant to be set).
    """
    missing = set(dtype.names) - set(values)
    unknown = set(values) - set(dtype.names)
    if missing or unknown:
        raise KeyError(f"record fields: missing {sorted(missing)}, unknown {sorted(unknown)}")
    rec = np.zeros(1, dtype=dtype)
    for name, value in values.items():
        rec[0][name] = value
    return rec


# ------------------------------------------------------------------ argument bundles

class Bars(NamedTuple):
    """The candles a simulation runs on: float64 arrays, shape (n_bars,), quote per base unit.

    ``atr`` is the ATR for ATR stops and trails (any array of that shape if the plan uses none).
    """

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    atr: FloatArray


class Lower(NamedTuple):
    """Lower-timeframe candles (e.g. 1m under 5m bars) for intrabar refinement.

    ``open``, ``high``, ``low``: float64, shape (n_lower,). ``start``, ``end``: int64, shape
    (n_bars,): bar t's lower candles are rows ``start[t]:end[t]``. All empty = none
    (:func:`no_lower`).
    """

    open: FloatArray
    high: FloatArray
    low: FloatArray
    start: IntArray
    end: IntArray


def no_lower() -> Lower:
    """Return an empty :class:`Lower` (no intrabar refinement)."""
    empty_f = np.empty(0, dtype=np.float64)
    empty_i = np.empty(0, dtype=np.int64)
    return Lower(empty_f, empty_f, empty_f, empty_i, empty_i)


class Ladder(NamedTuple):
    """The take-profit ladder: float64 arrays, shape (n_tp,), n_tp ≤ :data:`MAX_TP_STEPS`.

    ``level_frac[k]`` is step k's distance above the entry fill (0.009 for 0.9 %, increasing);
    ``alloc_frac[k]`` its share of the entry quantity (sum 1; the last step sells the rest).
    """

    level_frac: FloatArray
    alloc_frac: FloatArray


class TradeLog(NamedTuple):
    """The recorder arrays of one simulation (written only when the kernel's ``record`` is true).

    Trades (shape (trade capacity,)): ``entry_bar`` int64, ``entry_price``, ``qty``,
    ``entry_fee``, ``exit_bar`` int64, ``pnl``, ``fees``. Legs (shape (leg capacity,)):
    ``leg_trade`` int64 (row in the trade arrays), ``leg_bar`` int64, ``leg_price``, ``leg_qty``,
    ``leg_fee``, ``leg_reason`` int64 (code). ``equity``: float64, shape (n_bars,). The grid passes
    :func:`empty_log_nb` (all arrays empty) with ``record`` false.
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


@nb.njit(cache=True, nogil=True)
def new_log_nb(n_bars: int, trade_cap: int, n_tp: int) -> TradeLog:
    """Return a :class:`TradeLog` with room for `trade_cap` trades and their legs.

    A trade has at most ``n_tp + 1`` legs (each ladder step, then the rest), so the legs get
    ``trade_cap × (n_tp + 1)`` rows; ``equity`` has `n_bars`. :func:`grow_log_nb` makes room for more.
    """
    n_leg_cap = trade_cap * (n_tp + 1)
    equity = np.empty(n_bars)
    entry_bar = np.empty(trade_cap, dtype=np.int64)
    entry_price = np.empty(trade_cap)
    qty = np.empty(trade_cap)
    entry_fee = np.empty(trade_cap)
    exit_bar = np.empty(trade_cap, dtype=np.int64)
    pnl = np.empty(trade_cap)
    fees = np.empty(trade_cap)
    leg_trade = np.empty(n_leg_cap, dtype=np.int64)
    leg_bar = np.empty(n_leg_cap, dtype=np.int64)
    leg_price = np.empty(n_leg_cap)
    leg_qty = np.empty(n_leg_cap)
    leg_fee = np.empty(n_leg_cap)
    leg_reason = np.empty(n_leg_cap, dtype=np.int64)
    return TradeLog(entry_bar, entry_price, qty, entry_fee, exit_bar, pnl, fees, leg_trade, leg_bar, leg_price,
                    leg_qty, leg_fee, leg_reason, equity)


@nb.njit(cache=True, nogil=True)
def _grown(a, n_used, cap):
    out = np.empty(cap, dtype=a.dtype)
    for i in range(n_used):  # (a loop: a slice assignment takes seconds to compile)
        out[i] = a[i]
    return out


@nb.njit(cache=True, nogil=True)
def grow_log_nb(log: TradeLog, n_trades: int, n_legs: int) -> TradeLog:
    """Return `log` with twice the room for trades and legs: the rows in use (`n_trades`,
    `n_legs`) copied, the same ``equity`` array."""
    tc = 2 * log.entry_bar.shape[0]
    lc = 2 * log.leg_bar.shape[0]
    return TradeLog(_grown(log.entry_bar, n_trades, tc), _grown(log.entry_price, n_trades, tc),
                    _grown(log.qty, n_trades, tc), _grown(log.entry_fee, n_trades, tc),
                    _grown(log.exit_bar, n_trades, tc), _grown(log.pnl, n_trades, tc), _grown(log.fees, n_trades, tc),
                    _grown(log.leg_trade, n_legs, lc), _grown(log.leg_bar, n_legs, lc),
                    _grown(log.leg_price, n_legs, lc), _grown(log.leg_qty, n_legs, lc),
                    _grown(log.leg_fee, n_legs, lc), _grown(log.leg_reason, n_legs, lc), log.equity)


@nb.njit(cache=True, nogil=True)
def empty_log_nb() -> TradeLog:
    """Return a :class:`TradeLog` of empty arrays, for runs that record nothing (the grid)."""
    e_i = np.empty(0, dtype=np.int64)
    e_f = np.empty(0)
    return TradeLog(e_i, e_f, e_f, e_f, e_i, e_f, e_f, e_i, e_i, e_f, e_f, e_f, e_i, e_f)


@nb.njit(cache=True, nogil=True)
def new_stats_nb(n: int) -> RecordArray:
    """Return zeroed :data:`stats_dt` records, shape (n,)."""
    return np.zeros(n, dtype=stats_dt)


@nb.njit(cache=True, nogil=True)
def new_states_nb(n: int) -> RecordArray:
    """Return zeroed :data:`state_dt` records, shape (n,) (see ``init_state_nb`` for the start values)."""
    return np.zeros(n, dtype=state_dt)
