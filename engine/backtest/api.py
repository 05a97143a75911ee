"""run_backtest(): candles + entry set + exit plan in, BacktestResult out; run_grid() for many.

The API layer around the simulator kernel (:mod:`engine.backtest.kernel_nb`, whose docstring of
:func:`~engine.backtest.kernel_nb.simulate_nb` holds the fill rules): validate once, convert candles to
float64 arrays once, compute each indicator once, call the kernel, re-attach the time index.
There is no second implementation of the rules outside tests.
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.backtest import chunks
from engine.backtest import kernel_nb as sim
from engine.backtest.inputs import CheckedCandles, KernelInputs, check_candles, kernel_inputs
from engine.backtest import metrics
from engine.backtest.results import BacktestResult, ambiguity, result_from_fills
from engine.data.store import read_candles
from engine.errors import ConfigError, DataError
from engine.markets import periods_per_year
from engine.strategy import signals
from engine.strategy.exits import Costs, ExitPlan

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Bars per cache block in run_grid (see engine.backtest.kernel_nb.grid_nb).
GRID_BLOCK_BARS = 2048

def _check_common(exit_plan: ExitPlan, costs: Costs, timeframe: str, initial_cash_quote: float,
                  stake_quote: float | None = None) -> float:
    if not isinstance(exit_plan, ExitPlan):
        raise ConfigError(f"exit_plan: expected an ExitPlan, found {type(exit_plan).__name__}")
    if not isinstance(costs, Costs):
        raise ConfigError(f"costs: expected a Costs, found {type(costs).__name__}")
    if not (isinstance(initial_cash_quote, (int, float)) and math.isfinite(initial_cash_quote) and initial_cash_quote > 0):
        raise ConfigError(f"initial_cash_quote = {initial_cash_quote!r}: expected a finite number > 0 (quote)")
    if stake_quote is not None and not (isinstance(stake_quote, (int, float)) and not isinstance(stake_quote, bool)
                                        and math.isfinite(stake_quote) and stake_quote > 0):
        raise ConfigError(f"stake_quote = {stake_quote!r}: expected a finite number > 0 (quote) or None (all the cash)")
    return periods_per_year(timeframe)


def run_backtest(candles: pd.DataFrame | CheckedCandles, signal: str, params: dict | None, exit_plan: ExitPlan,
                 costs: Costs, *,
                 timeframe: str, initial_cash_quote: float = 10_000.0,
                 lower_candles: pd.DataFrame | None = None, start_bar: int = 0,
                 stake_quote: float | None = None) -> BacktestResult:
    """Backtest one entry set with one exit plan on one candle frame.

    Parameters
    ----------
    candles : DataFrame or CheckedCandles
        Candles in memory (contracts): UTC DatetimeIndex of open times, float64 open high low
        close (volume unused), ascending, unique, closed candles only; or candles checked once
        by :func:`engine.backtest.inputs.prepare_candles` (not checked again, their lower-timeframe
        map used instead of `lower_candles`).
    signal : str
        Entry set name in :data:`engine.strategy.signals.SIGNALS` (e.g. ``"sma_cross"``).
    params : dict or None
        Its parameters; missing ones take the defaults.
    exit_plan : ExitPlan
    costs : Costs
        Fee and slippage per side, basis points.
    timeframe : str
        Timeframe of `candles` (``1m 5m 15m 1h 4h 1d``), for the Sharpe annualisation and the
        lower-candle mapping.
    initial_cash_quote : float
        Starting cash, quote currency.
    lower_candles : DataFrame, optional
        Candles of a lower timeframe covering the same period (e.g. 1m under 5m); bars where the
        stop and a target are both touched are replayed on them (intrabar refinement).
    start_bar : int
        Trade only from this row on (e.g. the first bar of an out-of-sample window): the rows
        before it only warm the indicators up. The first entry can fill at the open of
        `start_bar` on the signal of the bar before. The result (equity, trades, metrics,
        bar numbers) covers rows ``start_bar …`` only.

    Returns
    -------
    BacktestResult

    Raises
    ------
    DataError
        Malformed candles. ConfigError: unknown entry set, bad parameters, bad timeframe,
        `start_bar` outside ``0 … n_bars-1``.

    Notes
    -----
    Fill rules: :func:`engine.backtest.kernel_nb.simulate_nb`. Metrics: :mod:`engine.backtest.metrics`.
    """
    _check_common(exit_plan, costs, timeframe, initial_cash_quote, stake_quote)
    params = signals.validate_params(signal, params)
    bars = check_candles(candles)
    lines, entry_rule, exit_rule = signals.prepare(signal, bars, params)
    if isinstance(start_bar, bool) or not isinstance(start_bar, (int, np.integer)) or not 0 <= start_bar < len(candles):
        raise ConfigError(f"start_bar = {start_bar!r}: expected an integer row in 0 … {len(candles) - 1}")
    return _run(candles, bars, lines, entry_rule, exit_rule, exit_plan, costs, timeframe, initial_cash_quote,
                lower_candles, signal, params, int(start_bar), stake_quote)


def run_signals(candles: pd.DataFrame | CheckedCandles, entries: npt.ArrayLike, exits: npt.ArrayLike,
                exit_plan: ExitPlan, costs: Costs, *, timeframe: str, initial_cash_quote: float = 10_000.0,
                lower_candles: pd.DataFrame | None = None, stake_quote: float | None = None) -> BacktestResult:
    """Backtest precomputed signals (e.g. from a notebook) with the same kernel as :func:`run_backtest`.

    Parameters
    ----------
    entries, exits : bool arrays, shape (n_bars,)
        ``entries[t]`` true = entry signal on the close of bar t (filled at the open of t+1);
        likewise ``exits``. They must not look ahead: the simulator cannot check that.
    Others as :func:`run_backtest`.

    Raises
    ------
    DataError
        Signal arrays of another length than `candles`, or malformed candles.
    """
    _check_common(exit_plan, costs, timeframe, initial_cash_quote, stake_quote)
    bars = check_candles(candles)
    e = np.asarray(entries)
    x = np.asarray(exits)
    if e.shape != (len(candles),) or x.shape != (len(candles),):
        raise DataError(f"entries/exits: shapes {e.shape} and {x.shape}, expected ({len(candles)},) like the candles")
    lines, entry_rule, exit_rule = signals.arrays_to_lines(e.astype(bool), x.astype(bool))
    return _run(candles, bars, lines, entry_rule, exit_rule, exit_plan, costs, timeframe, initial_cash_quote,
                lower_candles, "custom", {}, 0, stake_quote)


def _run(candles, bars, lines, entry_rule, exit_rule, exit_plan, costs, timeframe, initial_cash_quote,
         lower_candles, signal, params, start_bar, stake_quote=None) -> BacktestResult:
    ppy = periods_per_year(timeframe)
    k = kernel_inputs(candles, bars, exit_plan, costs, timeframe=timeframe, initial_cash_quote=initial_cash_quote,
                      lower_candles=lower_candles, stake_quote=stake_quote)
    t0 = time.perf_counter()
    fills = sim.run_simulation(k.bars, lines, entry_rule, exit_rule, k.ladder, k.plan, k.account, k.lower, start_bar)
    elapsed = time.perf_counter() - t0
    if start_bar:  # bar numbers relative to the window
        fills = fills._replace(entry_bar=fills.entry_bar - start_bar, exit_bar=fills.exit_bar - start_bar,
                               leg_bar=fills.leg_bar - start_bar)
    used_lower = candles.has_lower if isinstance(candles, CheckedCandles) else lower_candles is not None
    result = result_from_fills(fills, candles.index[start_bar:], ppy, initial_cash_quote, used_lower,
                                signal=signal, params=params, timeframe=timeframe, exit_plan=exit_plan, costs=costs)
    logger.debug("%s %s %s: %d bars, %d trades, return %.2f %%, %d ambiguous bars (%.3f s)", signal, params, timeframe,
                len(candles) - start_bar, result.metrics["n_trades"], result.metrics["total_return_pct"],
                result.ambiguity["n_ambiguous_bars"], elapsed)
    if result.n_rejected:
        logger.warning("%s: %d entry signals refused (%s)", signal, result.n_rejected, result.reject_reason)
    return result


class GridSetup(NamedTuple):
    """A checked grid without its indicator lines (:func:`grid_setup`): validated combinations, the
    distinct indicator keys (key i is line row ``1 + i``), entry and exit rules over those rows
    (shape (n_combos, RULE_LEN)), bars per year and the :class:`KernelInputs`."""

    combos: list[dict[str, Any]]
    keys: list[signals.IndicatorKey]
    entry_rules: FloatArray
    exit_rules: FloatArray
    periods_per_year: float
    kernel: KernelInputs


class GridInputs(NamedTuple):
    """A grid ready for the kernel (:func:`grid_inputs`): validated combinations, indicator lines
    (shape (1 + n_lines, n_bars)), entry and exit rules (shape (n_combos, RULE_LEN)), bars per year
    and the :class:`KernelInputs`."""

    combos: list[dict[str, Any]]
    lines: FloatArray
    entry_rules: FloatArray
    exit_rules: FloatArray
    periods_per_year: float
    kernel: KernelInputs


def grid_setup(candles: pd.DataFrame | CheckedCandles, signal: str, param_grid: list[dict], exit_plan: ExitPlan,
               costs: Costs, *, timeframe: str, initial_cash_quote: float = 10_000.0,
               lower_candles: pd.DataFrame | None = None) -> GridSetup:
    """Check a grid's inputs and build its rules and kernel inputs, without computing any line.

    Parameters and errors as :func:`run_grid`.
    """
    ppy = _check_common(exit_plan, costs, timeframe, initial_cash_quote)
    if not isinstance(param_grid, (list, tuple)) or not param_grid:
        raise ConfigError(f"param_grid: expected a non-empty list of parameter dicts, found {param_grid!r}")
    spec = signals.get_signal(signal)
    combos = [signals.validate_params(signal, p, where=f"param_grid[{i}]") for i, p in enumerate(param_grid)]
    bars = check_candles(candles)
    keys, row = signals.line_rows([k for p in combos for k in spec.indicators(p)])
    entry_rules = np.empty((len(combos), signals.RULE_LEN))
    exit_rules = np.empty((len(combos), signals.RULE_LEN))
    for i, p in enumerate(combos):
        entry_rules[i], exit_rules[i] = spec.rules(p, row)
    k = kernel_inputs(candles, bars, exit_plan, costs, timeframe=timeframe, initial_cash_quote=initial_cash_quote,
                      lower_candles=lower_candles)
    return GridSetup(combos, keys, entry_rules, exit_rules, ppy, k)


def grid_inputs(candles: pd.DataFrame | CheckedCandles, signal: str, param_grid: list[dict], exit_plan: ExitPlan,
                costs: Costs, *, timeframe: str, initial_cash_quote: float = 10_000.0,
                lower_candles: pd.DataFrame | None = None) -> GridInputs:
    """Check a grid's inputs and build what the whole-series kernel (:func:`~engine.backtest.kernel_nb.grid_nb`)
    takes: :func:`grid_setup` plus every distinct indicator line over all bars, float64 of shape
    (1 + n_lines, n_bars) (8 × n_lines × n_bars bytes; :func:`run_grid` computes them chunk by
    chunk instead). Parameters and errors as :func:`run_grid`."""
    g = grid_setup(candles, signal, param_grid, exit_plan, costs, timeframe=timeframe,
                   initial_cash_quote=initial_cash_quote, lower_candles=lower_candles)
    lines, _ = signals.build_lines(signals.BarArrays(*g.kernel.bars[:4]), g.keys)
    return GridInputs(g.combos, lines, g.entry_rules, g.exit_rules, g.periods_per_year, g.kernel)


def run_grid(candles: pd.DataFrame | CheckedCandles, signal: str, param_grid: list[dict], exit_plan: ExitPlan,
             costs: Costs, *,
             timeframe: str, initial_cash_quote: float = 10_000.0,
             lower_candles: pd.DataFrame | None = None, details: bool = False) -> list[dict[str, Any]]:
    """Backtest every parameter combination of one entry set, chunk of bars by chunk, in parallel kernel calls.

    Each distinct indicator (e.g. SMA(20)) is computed once for the whole grid; the combinations
    run over all cores (numba ``prange``) and compute their metrics on the fly, without storing
    per-combination equity curves or trade lists. For the trade list and equity curve of any
    combination, call :func:`run_backtest` with ``param_grid[k]``: it runs the same kernel and
    gives the same metrics.

    The lines are computed one chunk of bars at a time (:mod:`engine.backtest.chunks`), so the
    grid's memory beyond the candles is a line buffer of at most
    :data:`~engine.backtest.chunks.CHUNK_LINE_BYTES` (64 MiB; more only past about 2,000 distinct
    lines, whose chunks stop shrinking at :data:`~engine.backtest.chunks.MIN_CHUNK_BARS`) and two
    small records per combination, whatever the number of bars; the results are bit for bit those
    of the whole-series kernel. Every grid takes this path, with no size threshold: a series that
    fits one chunk (399,457 bars for 20 lines) is one call on the whole series, as before, and on
    longer ones the chunks did not make the grid slower in the benchmark (README, "Benchmarks"),
    so one code path serves every size.

    Parameters
    ----------
    param_grid : list of dict
        Parameter combinations of `signal` (defaults filled in for missing keys). Other
        parameters as :func:`run_backtest`.
    details : bool
        Also return ``"params"`` (validated parameters), ``"ambiguity"`` (counters as
        :attr:`BacktestResult.ambiguity`) and the per-bar return moments ``"return_sum"``,
        ``"return_sumsq"``, ``"n_returns"`` per combination.

    Returns
    -------
    list of dict
        Per combination, in `param_grid` order: exactly the metric keys of
        :data:`engine.backtest.metrics.METRIC_KEYS` (plus the two above with `details`).

    Raises
    ------
    ConfigError
        An empty grid, unknown entry set or bad parameters (the message names the combination).
    DataError
        Malformed candles.
    """
    t0 = time.perf_counter()
    g = grid_setup(candles, signal, param_grid, exit_plan, costs, timeframe=timeframe,
                   initial_cash_quote=initial_cash_quote, lower_candles=lower_candles)
    combos, ppy, k = g.combos, g.periods_per_year, g.kernel
    stats = chunks.run_grid_chunked(k.bars, k.lower, g.keys, g.entry_rules, g.exit_rules, k.ladder, k.plan, k.account,
                                    n_groups=numba.get_num_threads(), block_bars=GRID_BLOCK_BARS)
    out = []
    for p, s in zip(combos, stats):
        m: dict[str, Any] = metrics.metrics_from_stats(s, initial_cash_quote=initial_cash_quote, periods_per_year=ppy)
        if details:
            m["params"] = p
            m["ambiguity"] = ambiguity(s, k.lower.start.shape[0] > 0)
            for key in ("return_sum", "return_sumsq", "n_returns"):  # for CSCV over blocks (engine.research.pbo)
                m[key] = s[key].item()
        out.append(m)
    logger.debug("%s grid %s: %d combinations × %d bars, %d indicator lines (%.3f s)", signal, timeframe,
                len(combos), len(candles), len(g.keys), time.perf_counter() - t0)
    return out


def run_single_csv(csv_path: str | os.PathLike, timeframe: str, signal: str, params: dict | None,
                   exit_plan: ExitPlan, costs: Costs, *, initial_cash_quote: float = 10_000.0,
                   stake_quote: float | None = None) -> BacktestResult:
    """Read a candle CSV and backtest one entry set on it (the single-run CLI's engine call).

    Parameters
    ----------
    csv_path : path
        Candle CSV (``timestamp,open,high,low,close,volume``, ms open times; ``.gz`` allowed),
        read and validated by :func:`engine.data.store.read_candles`.
    Others as :func:`run_backtest`.

    Raises
    ------
    DataError
        Missing or malformed file (naming file, row and value). ConfigError: bad entry set,
        parameters or timeframe.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise DataError(f"{path}: no such candle file; pass --csv with a path to a candle CSV")
    candles = read_candles(path, timeframe)
    return run_backtest(candles, signal, params, exit_plan, costs, timeframe=timeframe,
                        initial_cash_quote=initial_cash_quote, stake_quote=stake_quote)
