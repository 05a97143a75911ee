"""Bar-by-bar fill and position kernel (numba): one simulation, or a grid of them.

The rules live in one place, the docstring of :func:`simulate_nb`; :func:`grid_nb` runs the
same core (:func:`engine.backtest.core_nb.advance_nb`) for many parameter combinations at once, and
:func:`grid_range_nb` does the same over one range of bars at a time, carrying each combination's
state between calls (the chunked grid, :mod:`engine.backtest.chunks`).
Kernels take only numpy arrays, records and numbers and also run as plain Python
(``NUMBA_DISABLE_JIT=1``). Their inputs and outputs are named in :mod:`engine.backtest.records_nb`:
the :data:`~engine.backtest.records_nb.plan_dt` exit rules, the
:data:`~engine.backtest.records_nb.account_dt` cash and costs, the
:data:`~engine.backtest.records_nb.stats_dt` statistics, and the codes of exit reasons and
rejected entries (:data:`~engine.backtest.records_nb.CODE_NAMES` turns them into words).

:func:`run_simulation`, :func:`run_grid_stats` and :func:`run_grid_range` are the entry points for
Python callers: they check the record dtypes and hand the kernels read-only views, so each kernel
compiles once.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numba as nb
import numpy as np
import numpy.typing as npt

from engine.backtest.core_nb import advance_nb, init_state_nb
from engine.backtest.records_nb import (
    Bars, Ladder, Lower, TradeLog, account_dt, empty_log_nb, grow_log_nb, new_log_nb, new_states_nb, new_stats_nb,
    no_lower, plan_dt, state_dt, stats_dt,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RecordArray = npt.NDArray[np.void]


class Fills(NamedTuple):
    """Output of :func:`run_simulation`. Prices in quote per base unit, quantities in base units.

    Trades (one row per round trip, shape (n_trades,)): ``entry_bar`` (int64, bar of the entry
    fill at its open), ``entry_price`` (incl. slippage), ``qty`` (base), ``entry_fee``
    (quote), ``exit_bar`` (bar of the last exit leg), ``pnl`` (net quote, fees included),
    ``fees`` (quote, entry + all legs). Legs (one row per exit fill, shape (n_legs,)): ``leg_trade``
    (row in the trade arrays), ``leg_bar``, ``leg_price`` (incl. slippage), ``leg_qty``,
    ``leg_fee``, ``leg_reason`` (code: 1..N = tp1..tpN, else the ``EXIT_*`` codes of
    :mod:`engine.backtest.records_nb`). ``equity``: shape (n_bars,), cash + position × close at each
    bar close. ``stats``: one :data:`~engine.backtest.records_nb.stats_dt` record (``numpy.void``),
    read by field name (``fills.stats["n_trades"]``).
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
    stats: np.void


@nb.njit(cache=True, nogil=True)
def simulate_nb(bars: Bars, lines: FloatArray, entry_rule: FloatArray, exit_rule: FloatArray, ladder: Ladder,
                plan: RecordArray, account: RecordArray, lower: Lower, first_bar: int) -> tuple[TradeLog, RecordArray]:
    """Simulate one long-only spot strategy bar by bar and return its fills.

    Parameters
    ----------
    bars : Bars
        Candle open/high/low/close and the ATR, float64 arrays of shape (n_bars,), quote per base
        unit (the ATR only matters for ATR stops and trails).
    lines, entry_rule, exit_rule : see :mod:`engine.strategy.signals`
        ``lines`` float64 (n_lines, n_bars); the rules float64 (9,), true on the close of bar t =
        signal of bar t.
    ladder : Ladder
        Take-profit distances (fractions, increasing) and shares of the entry quantity (sum 1),
        float64 arrays of shape (n_tp,).
    plan : plan_dt record array, shape (1,)
        The exit rules (:func:`engine.backtest.inputs.kernel_plan`).
    account : account_dt record array, shape (1,)
        Initial cash (quote), fee and slippage rates (fractions), lot size (base units, 0 = none)
        (:meth:`engine.strategy.exits.Costs.account`).
    lower : Lower
        Lower-timeframe candles (e.g. 1m under 5m bars) for intrabar refinement: open/high/low
        float64 (n_lower,), bar t's lower candles are rows ``start[t]:end[t]`` (int64 (n_bars,));
        all empty = none.
    first_bar : int
        First bar simulated (0 = all). Earlier bars only feed the indicators (warm-up), so the
        first entry can fill at the open of `first_bar` on the signal of the bar before it.

    Returns
    -------
    (TradeLog, stats_dt record array of shape (1,))
        The trades, legs and equity (:class:`Fills` without ``stats``; trimmed copies); bars are
        absolute row numbers; ``equity`` and the statistics cover bars ``first_bar … n_bars-1``
        only.

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
       ``open × (1 + slippage)`` spending ``min(cash, stake_quote)`` (all cash by default),
       ``qty = spend / (price × (1 + fee))``, rounded down
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
    n = bars.open.shape[0]
    n_tp = ladder.level_frac.shape[0]
    # Memory: the small stats record first, then the log (equity, trades, legs), then the state,
    # and each scratch array freed right after its copy below, as the kernel before the records
    # did. With glibc's malloc other orders hand the equity and the copies fresh pages on every
    # call: measured up to 2,500 page faults, 15-25 % of a 1M-bar run. The trade log starts with
    # room for one trade in 32 bars and doubles when an entry would not fit (advance_nb stops
    # before it): room for every possible trade (one per bar) is a 250 MB mapping for 1M bars,
    # whose touched pages cost 1.3 ms of faults.
    stats = new_stats_nb(1)
    log = new_log_nb(n, min(n + 1, 1024 + n // 32), n_tp)
    state = new_states_nb(1)
    init_state_nb(state[0], account[0])
    j = first_bar
    while True:
        nt, nl, j = advance_nb(bars, lines, entry_rule, exit_rule, ladder, plan[0], account[0], lower, state[0],
                               stats[0], j, n, first_bar, log, True)
        if j >= n:
            break
        log = grow_log_nb(log, nt, nl)
    # the rows in use; unpacked, each scratch array is freed right after its copy (numba frees a
    # variable after its last use) instead of all at the end with the log
    (entry_bar, entry_price, qty, entry_fee, exit_bar, pnl, fees, leg_trade, leg_bar, leg_price, leg_qty, leg_fee,
     leg_reason, equity) = log
    out = TradeLog(
        entry_bar[:nt].copy(), entry_price[:nt].copy(), qty[:nt].copy(), entry_fee[:nt].copy(), exit_bar[:nt].copy(),
        pnl[:nt].copy(), fees[:nt].copy(), leg_trade[:nl].copy(), leg_bar[:nl].copy(), leg_price[:nl].copy(),
        leg_qty[:nl].copy(), leg_fee[:nl].copy(), leg_reason[:nl].copy(),
        equity if first_bar == 0 else equity[first_bar:].copy(),
    )
    return out, stats


@nb.njit(cache=True, nogil=True)
def new_grid_records_nb(m: int, account: RecordArray) -> tuple[RecordArray, RecordArray]:
    """Return the start of `m` grid simulations: (state_dt records, zeroed stats_dt records), shapes (m,).

    Each state is flat with all the cash of ``account[0]`` (:func:`engine.backtest.core_nb.init_state_nb`).
    """
    states = new_states_nb(m)
    for k in range(m):
        init_state_nb(states[k], account[0])
    return states, new_stats_nb(m)


@nb.njit(cache=True, nogil=True)
def _group_nb(bars, lines, entry_rules, exit_rules, ladder, plan, account, lower, states, out, g, groups, j0, j1,
              first_bar, block_bars):
    # group g's combinations (g, g + groups, …) over bars j0 … j1-1, block by block; the grid records
    # nothing: one empty log per group (numba cannot carry a NamedTuple built outside a prange loop
    # into it), shared by all its blocks and combinations
    log = empty_log_nb()
    m = entry_rules.shape[0]
    for b0 in range(j0, j1, block_bars):
        b1 = min(j1, b0 + block_bars)
        for k in range(g, m, groups):
            advance_nb(bars, lines, entry_rules[k], exit_rules[k], ladder, plan[0], account[0], lower, states[k],
                       out[k], b0, b1, first_bar, log, False)


@nb.njit(cache=True, nogil=True, parallel=True)
def grid_nb(bars: Bars, lines: FloatArray, entry_rules: FloatArray, exit_rules: FloatArray, ladder: Ladder,
            plan: RecordArray, account: RecordArray, lower: Lower, n_groups: int, block_bars: int) -> RecordArray:
    """Run the :func:`simulate_nb` rules for many signal parameter combinations; stats only.

    Parameters
    ----------
    entry_rules, exit_rules : float64 arrays, shape (n_combos, 9)
        One rule pair per combination, over the shared `lines` (indicators computed once per
        distinct parameter value). Other parameters as :func:`simulate_nb` (one plan and account
        for all combinations).
    n_groups : int
        Parallel groups (one per core); combination k runs in group ``k % n_groups``.
    block_bars : int
        Each group advances all its combinations through one block of bars before the next block,
        so the block's candles and lines stay in the core's cache (2048 is a good size).

    Returns
    -------
    stats_dt record array, shape (n_combos,)
        The statistics of each combination, computed on the fly (no per-combination equity curve
        or trade list is allocated). Results equal :func:`simulate_nb`'s.
    """
    n = bars.open.shape[0]
    m = entry_rules.shape[0]
    states, out = new_grid_records_nb(m, account)
    groups = max(1, min(m, n_groups))
    for g in nb.prange(groups):
        _group_nb(bars, lines, entry_rules, exit_rules, ladder, plan, account, lower, states, out, np.int64(g), groups,
                  0, n, 0, block_bars)
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def grid_range_nb(bars: Bars, lines: FloatArray, entry_rules: FloatArray, exit_rules: FloatArray, ladder: Ladder,
                  plan: RecordArray, account: RecordArray, lower: Lower, states: RecordArray, out: RecordArray,
                  j0: int, j1: int, first_bar: int, n_groups: int, block_bars: int) -> None:
    """Advance a grid's simulations over bars ``j0 … j1-1``: :func:`grid_nb` resumable, for chunks of bars.

    Parameters
    ----------
    states, out : state_dt and stats_dt record arrays, shape (n_combos,)
        Each combination's state and statistics (:func:`new_grid_records_nb` before the first
        call), read and updated in place.
    j0, j1 : int
        Bars to simulate; consecutive calls continue the previous one's state (a call may see
        another window of the bars, see :mod:`engine.backtest.chunks`).
    first_bar : int
        First bar of the whole simulation in this call's bar numbers (negative when it lies
        before `bars`): drawdown and returns start at its close.
    Other parameters as :func:`grid_nb`. Bar ``n_bars - 1`` of `bars` is the last bar (an open
    position sells at its close), and ``out["n_bars"]`` is set to ``n_bars - first_bar``.
    """
    m = entry_rules.shape[0]
    groups = max(1, min(m, n_groups))
    for g in nb.prange(groups):
        # np.int64(g): the parallel loop's index is unsigned in one of numba's two compilations of the
        # loop body, which would compile _group_nb (and the simulation core in it) twice
        _group_nb(bars, lines, entry_rules, exit_rules, ladder, plan, account, lower, states, out, np.int64(g), groups,
                  j0, j1, first_bar, block_bars)


_kernel_clock = [0.0]  # seconds inside simulate_nb, grid_nb and grid_range_nb in this process (kernel_seconds)


def kernel_seconds() -> float:
    """Return the wall seconds this process has spent inside the simulation kernels so far.

    Counts the calls through :func:`run_simulation`, :func:`run_grid_stats` and
    :func:`run_grid_range` (the input checks and read-only views excluded): the "kernel" of a research profile
    (:mod:`engine.research.timing`), which subtracts two readings.
    """
    return _kernel_clock[0]


def _read_only(a: np.ndarray) -> np.ndarray:
    # Numba compiles one specialisation per array flag set; pandas (copy-on-write) hands out
    # read-only arrays, numpy writable ones. Passing read-only views everywhere means one
    # compilation (and one cache entry) per kernel. An array that is read-only and contiguous
    # already goes as it is (the research jobs pass the same inputs thousands of times).
    if type(a) is np.ndarray and not a.flags.writeable and a.flags.c_contiguous:
        return a
    a = np.ascontiguousarray(a).view()
    a.flags.writeable = False
    return a


def _read_only_tuple(t: tuple) -> tuple:
    return type(t)(*(_read_only(a) for a in t))


def _record(rec: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    # the records enter the kernels as arrays of shape (1,) of their exact dtype
    if not isinstance(rec, np.ndarray) or rec.dtype != dtype or rec.shape != (1,):
        found = f"{rec.dtype} {rec.shape}" if isinstance(rec, np.ndarray) else type(rec).__name__
        raise TypeError(f"{name}: expected a {name}_dt record array of shape (1,), found {found}")
    return _read_only(rec)


def run_simulation(bars: Bars, lines: FloatArray, entry_rule: FloatArray, exit_rule: FloatArray, ladder: Ladder,
                   plan: RecordArray, account: RecordArray, lower: Lower | None = None, first_bar: int = 0) -> Fills:
    """Run :func:`simulate_nb` on read-only views of the inputs and return its :class:`Fills`.

    Parameters as :func:`simulate_nb`; ``lower=None`` means no lower-timeframe candles.

    Raises
    ------
    TypeError
        If `plan` or `account` is not a record array of shape (1,) of its dtype.
    """
    args = (_read_only_tuple(Bars(*bars)), _read_only(lines), _read_only(entry_rule), _read_only(exit_rule),
            _read_only_tuple(Ladder(*ladder)), _record(plan, plan_dt, "plan"), _record(account, account_dt, "account"),
            _read_only_tuple(Lower(*(no_lower() if lower is None else lower))), int(first_bar))
    t0 = time.perf_counter()
    log, stats = simulate_nb(*args)
    _kernel_clock[0] += time.perf_counter() - t0
    return Fills(*log, stats[0])


def new_grid_records(account: RecordArray, m: int) -> tuple[RecordArray, RecordArray]:
    """Return the writable (state_dt, stats_dt) records of `m` grid simulations at their start
    (:func:`new_grid_records_nb`), for :func:`run_grid_range`.

    Raises
    ------
    TypeError
        If `account` is not an account_dt record array of shape (1,).
    """
    return new_grid_records_nb(int(m), _record(account, account_dt, "account"))


def run_grid_range(bars: Bars, lines: FloatArray, entry_rules: FloatArray, exit_rules: FloatArray, ladder: Ladder,
                   plan: RecordArray, account: RecordArray, lower: Lower | None, states: RecordArray,
                   out: RecordArray, *, j0: int, j1: int, first_bar: int, n_groups: int, block_bars: int) -> None:
    """Run :func:`grid_range_nb` on read-only views of the inputs, updating `states` and `out` in place.

    Parameters as :func:`grid_range_nb`; ``lower=None`` means no lower-timeframe candles.

    Raises
    ------
    TypeError
        If `plan` or `account` is not a record array of shape (1,) of its dtype, or `states`/`out`
        are not writable state_dt/stats_dt arrays of shape (n_combos,).
    """
    m = entry_rules.shape[0]
    for rec, dtype, name, kind in ((states, state_dt, "states", "state_dt"), (out, stats_dt, "out", "stats_dt")):
        if not (isinstance(rec, np.ndarray) and rec.dtype == dtype and rec.shape == (m,) and rec.flags.writeable
                and rec.flags.c_contiguous):
            raise TypeError(f"{name}: expected a writable {kind} record array of shape ({m},) (new_grid_records)")
    args = (_read_only_tuple(Bars(*bars)), _read_only(lines), _read_only(entry_rules), _read_only(exit_rules),
            _read_only_tuple(Ladder(*ladder)), _record(plan, plan_dt, "plan"), _record(account, account_dt, "account"),
            _read_only_tuple(Lower(*(no_lower() if lower is None else lower))), states, out, int(j0), int(j1),
            int(first_bar), int(n_groups), int(block_bars))
    t0 = time.perf_counter()
    grid_range_nb(*args)
    _kernel_clock[0] += time.perf_counter() - t0


def run_grid_stats(bars: Bars, lines: FloatArray, entry_rules: FloatArray, exit_rules: FloatArray, ladder: Ladder,
                   plan: RecordArray, account: RecordArray, lower: Lower | None = None, *, n_groups: int,
                   block_bars: int) -> RecordArray:
    """Run a grid over all bars (what :func:`grid_nb` does) on read-only views of the inputs; return
    its stats_dt records, shape (n_combos,).

    Runs :func:`grid_range_nb` once over every bar from fresh records, the same loop as
    :func:`grid_nb` (tests compare them): one compiled grid kernel serves the chunked grid
    (:mod:`engine.backtest.chunks`), the chance twins and the PBO blocks, so a fresh install
    compiles it once. Parameters as :func:`grid_nb`; ``lower=None`` means no lower-timeframe candles.

    Raises
    ------
    TypeError
        If `plan` or `account` is not a record array of shape (1,) of its dtype.
    """
    states, out = new_grid_records(account, np.asarray(entry_rules).shape[0])
    run_grid_range(bars, lines, entry_rules, exit_rules, ladder, plan, account, lower, states, out,
                   j0=0, j1=np.asarray(bars[0]).shape[0], first_bar=0, n_groups=n_groups, block_bars=block_bars)
    return out
