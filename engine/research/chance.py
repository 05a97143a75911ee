"""The chance baseline of a row: random-entry twins with the same exits, costs and number of trades.

DESIGN.md: "Promotion is a claim about chance". A row's out-of-sample return means little until it
is set against what entries *without* information would have earned on the same bars with the same
exit plan and costs. :func:`chance_baseline` simulates ``n_twins`` such twins and reports where the
row falls among them (:class:`ChanceResult`).

A twin enters at random bars: its entry signals are bars drawn uniformly at random without
replacement from the out-of-sample bars (a signal on the close of bar t, filled at the open of
t+1, as for every strategy), and its exit signal never fires, so it leaves only by the exit plan
(take-profit ladder, stop-loss, breakeven, trailing stop, max hold, end of data). One position at
a time: a signal while the twin holds a position is ignored, as it is for the row. So ``n`` random
signals make fewer than ``n`` trades; each twin therefore draws as many signals as it takes to
make the row's number of trades (within 5 %, exactly below 20 trades; see
:func:`chance_baseline`, Notes).

The twins of a row run in batched kernel calls (:func:`engine.backtest.kernel_nb.run_grid_stats`),
one per round of that search: the lines matrix holds one row of random keys per twin (and a zero
row), twin j's entry rule is "key row j < its threshold", its exit rule "never".
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.backtest import kernel_nb as sim
from engine.backtest.api import GRID_BLOCK_BARS
from engine.backtest.inputs import KernelInputs, check_candles, kernel_inputs
from engine.errors import ConfigError, DataError
from engine.fileio import json_safe
from engine.markets import periods_per_year
from engine.research.twins_nb import twin_keys_nb
from engine.strategy import signals
from engine.strategy.exits import Costs, ExitPlan

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Bins of :attr:`ChanceResult.twins_hist`.
HIST_BINS = 10
#: Rounds of the threshold search that matches a twin's trades to the row's (see chance_baseline).
MAX_ROUNDS = 12
#: Rounds with fewer twins than this run on one thread (see _run_batch).
PARALLEL_TWINS = 64
#: Twins of the first round, which finds where the others start (see _match_trades).
PILOT_TWINS = 16
#: A twin matches the row when its trades are within this share of the row's (rounded down).
TRADES_TOLERANCE = 0.05
#: Memory of one batch of twins: their keys, 8 bytes per twin and bar; more twins run in batches.
MAX_BATCH_BYTES = 128 * 2**20
#: A twin's total return counts as "at least the row's" down to this many percentage points below
#: it (float rounding between the chained out-of-sample metrics and the kernel's statistics).
TIE_TOLERANCE_PCT = 1e-9


@dataclass(frozen=True)
class ChanceResult:
    """Where a row's out-of-sample return falls among its random-entry twins.

    The first six names are those of :class:`engine.research.reports.rows.Judgement`.

    Attributes
    ----------
    p_value_vs_random : float
        Share of the twins whose total return is at least the row's, in [0, 1]; NaN when the row
        made no trade (or its return is undefined). Resolution ``1 / n_twins``: 0.0 means "no twin
        did as well", i.e. below ``1 / n_twins``, not impossible.
    excess_vs_random_pct : float
        Row's total return minus the twins' median, percentage points.
    twins_median_pct : float
        Median total return of the twins, percent.
    twins_hist : dict
        ``{"edges": [11 floats], "counts": [10 ints]}``: :func:`numpy.histogram` of the twins'
        total returns (percent) in 10 equal bins; counts sum to `n_twins`.
    n_twins : int
        Twins simulated.
    twins_seed : int
        Seed of their entry bars (the keys of :func:`engine.research.twins_nb.twin_keys_nb`).
    n_entries : int
        Trades the twins were asked to make (the row's out-of-sample trades).
    twins_median_n_trades : float
        Median trades the twins made: `n_entries` (within :data:`TRADES_TOLERANCE`) unless the
        exit plan holds a twin's positions too long to fit that many trades into the bars (then
        fewer: the twins trade less often than the row, so pay less in costs).
    """

    p_value_vs_random: float
    excess_vs_random_pct: float
    twins_median_pct: float
    twins_hist: dict[str, list] = field(default_factory=dict)
    n_twins: int = 0
    twins_seed: int = 0
    n_entries: int = 0
    twins_median_n_trades: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict (NaN → None)."""
        return json_safe({f.name: getattr(self, f.name) for f in fields(self)})


def twins_seed(seed: int, pair: str, timeframe: str, entry_set: str) -> int:
    """Return the twins' seed of one row: a 32-bit hash of the configured seed and the row's names.

    Rows get different twins, and a re-run the same ones, whatever order or process runs them
    (as :func:`engine.research.studies.study_seed` does for optuna studies).
    """
    digest = hashlib.sha256(f"chance|{int(seed)}|{pair}|{timeframe}|{entry_set}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def chance_baseline(candles: pd.DataFrame, exit_plan: ExitPlan, costs: Costs, *, n_entries: int,
                    row_total_return_pct: float, n_twins: int, seed: int, timeframe: str,
                    initial_cash_quote: float, lower_candles: pd.DataFrame | None = None) -> ChanceResult:
    """Simulate random-entry twins of a row on its out-of-sample bars and rank the row among them.

    Parameters
    ----------
    candles : DataFrame
        Exactly the bars the row was scored on out-of-sample (its test windows, contiguous),
        candle frame contract (UTC open times, float64 OHLC).
    exit_plan : ExitPlan
        The row's exit plan; its exit signal never fires for a twin.
    costs : Costs
        The row's fees and slippage per side.
    n_entries : int
        Trades each twin should make: the row's out-of-sample ``n_trades`` (≥ 0).
    row_total_return_pct : float
        The row's out-of-sample total return, percent.
    n_twins : int
        Twins to simulate (≥ 1).
    seed : int
        Seed of the twins' random keys (:func:`twins_seed` derives one per row).
    timeframe : str
        Timeframe of `candles` (maps `lower_candles`).
    initial_cash_quote : float
        Starting cash of each twin, quote (the total return does not depend on it without a lot size).
    lower_candles : DataFrame, optional
        Lower-timeframe candles of the same span (1m under 5m/15m): ambiguous bars are replayed
        on them as for the row; without them the stop is assumed first, as for the row.

    Returns
    -------
    ChanceResult
        A twin's total return is ``(final equity / initial_cash_quote − 1) × 100``. With
        ``n_entries == 0`` no twin is simulated: each stays flat (0 %), the p-value is NaN.

    Raises
    ------
    DataError
        Malformed candles, or fewer than 2 bars with `n_entries` > 0.
    ConfigError
        `n_entries` < 0, `n_twins` < 1, a bad timeframe or initial cash.

    Notes
    -----
    *Matching the row's trades.* Entry signals that land inside a twin's own position are
    ignored (one position at a time), so ``n`` random signals make fewer than ``n`` trades. Each
    twin draws one uniform key per signal bar (bars ``0 … n_bars−2``; a signal on the last bar
    cannot fill) and signals on the bars whose key is below its threshold ``q``: given their
    number, its signal bars are a uniform draw without replacement, and a higher ``q`` only adds
    signals. Rounds of one kernel call search each twin's ``q``: a pilot of
    :data:`PILOT_TWINS` twins starts at ``q = n/S`` (``S`` signal bars, ``n = n_entries``); the
    others start at the pilot's median next step; each step is a secant on the bars per trade
    ``S/r`` against the mean wait ``1/q`` (a renewal cycle: ``S/r ≈ 1/q + bars held − 1``), kept
    inside the bracket of thresholds that gave too few and too many trades. A twin stops when its
    trades ``r`` are within ``n ×`` :data:`TRADES_TOLERANCE` of ``n`` (rounded down: exactly ``n``
    below 20 trades), when every bar signals and it still makes too few (the exit plan holds
    positions too long to fit ``n`` trades into the bars: it keeps the most it made, and
    :attr:`ChanceResult.twins_median_n_trades` shows it), or after :data:`MAX_ROUNDS` rounds
    (it keeps its round closest to ``n``). The twins run over the out-of-sample span in one
    piece, whereas the row closes its position at the end of each test window; ATR levels need
    ``atr_period`` bars of these candles first (no ATR stop before, as in the kernel).

    *p-value.* The share of twins doing at least as well as the row is the Monte Carlo p-value of
    the null hypothesis "the row's entries carry no information" (its return is one more draw of
    the twins' distribution); under that null it is uniform on {0, 1/N, …, 1}.

    References
    ----------
    Aronson, D. R. (2006). Evidence-Based Technical Analysis, ch. 5 (hypothesis tests and
    sampling distributions of a rule's return under "no predictive power", by Monte Carlo
    permutation). Wiley.
    White, H. (2000). A Reality Check for Data Snooping. Econometrica 68(5), 1097-1126.
    Phipson, B. and Smyth, G. K. (2010). Permutation P-values Should Never Be Zero. Statistical
    Applications in Genetics and Molecular Biology 9(1): why 0.0 here means "< 1/n_twins".
    """
    if isinstance(n_entries, bool) or not isinstance(n_entries, (int, np.integer)) or n_entries < 0:
        raise ConfigError(f"n_entries = {n_entries!r}: expected an integer ≥ 0 (trades)")
    if isinstance(n_twins, bool) or not isinstance(n_twins, (int, np.integer)) or n_twins < 1:
        raise ConfigError(f"n_twins = {n_twins!r}: expected an integer ≥ 1")
    if not (isinstance(initial_cash_quote, (int, float)) and math.isfinite(initial_cash_quote)
            and initial_cash_quote > 0):
        raise ConfigError(f"initial_cash_quote = {initial_cash_quote!r}: expected a finite number > 0 (quote)")
    periods_per_year(timeframe)  # raises ConfigError on an unknown timeframe
    n_entries, n_twins, seed = int(n_entries), int(n_twins), int(seed)
    t0 = time.perf_counter()
    if n_entries == 0:
        returns, trades, rounds = np.zeros(n_twins), np.zeros(n_twins, dtype=np.int64), 0
    else:
        bars = check_candles(candles)
        if len(candles) < 2:
            raise DataError(f"candles: {len(candles)} bar(s); random entries need at least 2 (signal, then fill)")
        k = kernel_inputs(candles, bars, exit_plan, costs, timeframe=timeframe,
                          initial_cash_quote=float(initial_cash_quote), lower_candles=lower_candles)
        returns, trades, _, rounds = _simulate_twins(k, n_entries, n_twins, seed, float(initial_cash_quote))
    result = _rank(float(row_total_return_pct), returns, trades, n_entries, seed)
    logger.debug("chance: %d twins × %d bars, %d entries (twins' median %g trades), %d round(s): median %.2f %%, "
                 "p %.3f (%.3f s)", n_twins, len(candles), n_entries, result.twins_median_n_trades, rounds,
                 result.twins_median_pct, result.p_value_vs_random, time.perf_counter() - t0)
    return result


def _rank(row_pct: float, returns: FloatArray, trades: IntArray, n_entries: int, seed: int) -> ChanceResult:
    median = float(np.median(returns))
    defined = n_entries > 0 and math.isfinite(row_pct)
    p = float(np.mean(returns >= row_pct - TIE_TOLERANCE_PCT)) if defined else math.nan
    counts, edges = np.histogram(returns, bins=HIST_BINS)
    return ChanceResult(
        p_value_vs_random=p, excess_vs_random_pct=row_pct - median if math.isfinite(row_pct) else math.nan,
        twins_median_pct=median, twins_hist={"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        n_twins=int(returns.size), twins_seed=seed, n_entries=n_entries,
        twins_median_n_trades=float(np.median(trades)))


def _simulate_twins(k: KernelInputs, n_entries: int, n_twins: int, seed: int,
                    cash: float) -> tuple[FloatArray, IntArray, FloatArray, int]:
    """Return each twin's total return (percent), trades and key threshold, and the most rounds a batch took.

    Twin j's signal bars are those where its key (:func:`_twin_keys`) is below its threshold;
    batches hold ``_batch_size`` twins.
    """
    n_bars = k.bars.open.shape[0]
    batch = _batch_size(n_twins, n_bars)
    returns, thresholds = np.empty(n_twins), np.empty(n_twins)
    trades = np.empty(n_twins, dtype=np.int64)
    rounds = 0
    for b0 in range(0, n_twins, batch):
        b1 = min(n_twins, b0 + batch)
        keys = _twin_keys(seed, b0, b1 - b0, n_bars)
        returns[b0:b1], trades[b0:b1], thresholds[b0:b1], used = _match_trades(k, keys, n_entries, cash)
        rounds = max(rounds, used)
    return returns, trades, thresholds, rounds


def _batch_size(n_twins: int, n_bars: int) -> int:
    return max(1, min(n_twins, MAX_BATCH_BYTES // (8 * n_bars) - 1))


_scratch = threading.local()


def _twin_keys(seed: int, first_twin: int, n_twins: int, n_bars: int) -> FloatArray:
    """Return the lines matrix of a batch of twins: float64 (n_twins + 1, n_bars), a view of this
    thread's scratch buffer (valid until its next call).

    Row 0 zeros; row j + 1 twin ``first_twin + j``'s uniform key of each signal bar
    ``0 … n_bars−2`` (:func:`engine.research.twins_nb.twin_keys_nb`: a function of the seed, the
    twin and the bar); the last bar gets key 2, above any threshold (a signal there could not fill).
    """
    size = (n_twins + 1) * n_bars
    buf = getattr(_scratch, "keys", None)
    if buf is None or buf.size < size:  # one buffer per thread, reused: fresh pages cost as much as the keys
        buf = _scratch.keys = np.empty(size)
    keys = buf[:size].reshape(n_twins + 1, n_bars)
    t0 = time.perf_counter()
    twin_keys_nb(int(seed), int(first_twin), keys)
    signals.count_line_seconds(time.perf_counter() - t0)  # the twins' signal inputs
    return keys


def _match_trades(k: KernelInputs, keys: FloatArray, n: int, cash: float
                  ) -> tuple[FloatArray, IntArray, FloatArray, int]:
    """Search each twin's key threshold so that it makes `n` trades (chance_baseline, Notes).

    `keys`: the lines matrix of :func:`_run_batch`. Returns the twins' total returns (percent),
    trades and thresholds (of the round kept), and the rounds run.
    """
    m, s = keys.shape[0] - 1, keys.shape[1] - 1  # twins, signal bars
    tol = int(n * TRADES_TOLERANCE)  # floor: exact below 20 trades
    target = s / n                                      # bars per trade wanted
    wait = np.full(m, max(1.0, target))                 # 1/q: mean bars between signals; n signals expected
    lo_w, hi_w = np.zeros(m), np.full(m, np.inf)        # waits known to give too many trades / too few
    prev_w, prev_z = np.full(m, np.nan), np.full(m, np.nan)
    best_err = np.full(m, np.inf)
    best_ret, best_trades, best_q = np.zeros(m), np.zeros(m, dtype=np.int64), np.zeros(m)
    # round 0: a pilot of a few twins at n signals expected; the others start from where the
    # pilot says n trades lie (it learns how long the exit plan holds a position)
    pilot = min(m, PILOT_TWINS)
    active = np.zeros(m, dtype=bool)
    active[:pilot] = True
    used = 0
    while active.any() and used < MAX_ROUNDS:
        idx = np.flatnonzero(active)
        w = wait[idx]
        stats = _run_batch(k, keys, idx, 1.0 / w)
        used += 1
        r = stats["n_trades"].astype(np.float64)
        ret = (stats["final_equity_quote"] / cash - 1.0) * 100.0
        err = np.abs(r - n)
        better = err < best_err[idx]
        best_err[idx[better]] = err[better]
        best_ret[idx[better]] = ret[better]
        best_trades[idx[better]] = r[better].astype(np.int64)
        best_q[idx[better]] = 1.0 / w[better]
        few, many = r < n - tol, r > n + tol
        hi_w[idx[few]] = np.minimum(hi_w[idx[few]], w[few])
        lo_w[idx[many]] = np.maximum(lo_w[idx[many]], w[many])
        # bars per trade z = S/r ≈ wait + bars held − 1 (a renewal cycle): a secant step on z(wait)
        # towards S/n, slope 1 until two rounds give one, kept in [0.25, 4]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = s / r
            slope = (z - prev_z[idx]) / (w - prev_w[idx])
        slope = np.where(np.isfinite(slope), np.clip(slope, 0.25, 4.0), 1.0)
        nxt = np.where(r > 0, w + (target - z) / slope, 0.5 * w)  # no trade (entries refused): twice the signals
        nxt = np.clip(nxt, 0.25 * w, 4.0 * w)
        lo, hi = lo_w[idx], hi_w[idx]
        # outside the bracket: bisect it, or double the wait while only "too many" is known
        nxt = np.where((nxt > lo) & (nxt < hi), nxt, np.where(np.isfinite(hi), 0.5 * (lo + hi), 2.0 * lo))
        prev_w[idx], prev_z[idx] = w, np.where(r > 0, z, np.nan)
        wait[idx] = np.maximum(nxt, 1.0)
        stop = ~(few | many) | (few & (w <= 1.0))  # matched, or every bar signals and still too few
        active[idx[stop]] = False
        if used == 1 and pilot < m:
            wait[pilot:] = np.median(wait[:pilot])
            active[pilot:] = True
    return best_ret, best_trades, best_q, used


def _run_batch(k: KernelInputs, keys: FloatArray, twins: IntArray, q: FloatArray) -> npt.NDArray[np.void]:
    """Run some twins in one kernel call; return their stats_dt records, shape (len(twins),).

    `keys` float64 (n_twins + 1, n_bars) is the lines matrix (row 0 zeros, row j + 1 twin j's
    keys); twin ``twins[i]`` signals on the bars whose key is below ``q[i]``: entry rule
    "line twins[i] + 1 < q[i]", exit rule never (over the same lines, which the kernel then
    reads once per bar). A round of few twins runs on this thread alone: waking the other
    threads would cost more than it saves (most rounds are such tails).
    """
    m = twins.shape[0]
    entry = np.tile(signals.rule(signals.BELOW, (0, signals.ROW_ZERO, 0.0, 0.0),
                                 (signals.ROW_ZERO, signals.ROW_ZERO, 0.0, 0.0)), (m, 1))
    entry[:, 1] = twins + 1
    entry[:, 8] = q
    exit_never = entry.copy()
    exit_never[:, 0] = signals.NEVER
    threads = numba.get_num_threads()
    if m < PARALLEL_TWINS:
        numba.set_num_threads(1)  # this thread only; restored below
    try:
        return sim.run_grid_stats(k.bars, keys, entry, exit_never, k.ladder, k.plan, k.account, k.lower,
                                  n_groups=numba.get_num_threads(), block_bars=GRID_BLOCK_BARS)
    finally:
        numba.set_num_threads(threads)
