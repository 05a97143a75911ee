"""The kernels' inputs: checked candles as arrays, ExitPlan → (Ladder, plan record), Costs → account
record, the ATR and the lower-timeframe candles (:func:`kernel_inputs` gathers them).

The exit rules are declared once (:class:`engine.strategy.exits.ExitPlan`); this is the one place
that turns them into the record the kernel reads by name (:mod:`engine.backtest.records_nb`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.backtest.records_nb import Bars, Ladder, Lower, RecordArray, account_dt, new_record, no_lower, plan_dt
from engine.data.candles import check_bars, index_ms
from engine.errors import DataError
from engine.markets import timeframe_to_ms
from engine.strategy import indicators_nb as indicators
from engine.strategy import signals
from engine.strategy.exits import Costs, ExitPlan

FloatArray = npt.NDArray[np.float64]


def kernel_plan(exit_plan: ExitPlan) -> tuple[Ladder, RecordArray]:
    """Return the take-profit ladder and the exit-rule record of `exit_plan` for the kernels.

    Returns
    -------
    Ladder
        ``level_frac[k]``: step k's distance as a fraction (0.009 for 0.9 %); ``alloc_frac[k]``
        its share of the entry quantity (0.5 for 50 %); float64 arrays, shape (n_tp,).
    plan_dt record array, shape (1,)
        :data:`engine.backtest.records_nb.plan_dt`: percentages as fractions, NaN = rule off,
        ``max_hold_bars`` -1 = none. Costs, cash and the lot size are not exit rules: they go in
        :func:`kernel_account`.
    """
    p = exit_plan
    ladder = Ladder(np.array([pct / 100.0 for pct, _ in p.tp_ladder], dtype=np.float64),
                    np.array([alloc / 100.0 for _, alloc in p.tp_ladder], dtype=np.float64))
    nan = np.nan
    plan = new_record(
        plan_dt,
        stop_loss_frac=nan if p.sl_pct is None else p.sl_pct / 100.0,
        stop_loss_atr_mult=nan if p.sl_atr_mult is None else p.sl_atr_mult,
        breakeven=p.breakeven,
        breakeven_offset_frac=p.breakeven_offset_pct / 100.0,
        trail_frac=nan if p.trail_pct is None else p.trail_pct / 100.0,
        trail_atr_mult=nan if p.trail_atr_mult is None else p.trail_atr_mult,
        use_exit_signal=p.use_exit_signal,
        max_hold_bars=-1 if p.max_hold_bars is None else p.max_hold_bars,
        check_entry_bar=p.check_entry_bar,
    )
    return ladder, plan


def kernel_account(costs: Costs, initial_cash_quote: float, *, lot_size_base: float | None = None,
                   stake_quote: float | None = None) -> RecordArray:
    """Return the kernels' account record: `costs` with a starting cash and a lot size.

    Parameters
    ----------
    initial_cash_quote : float
        Starting cash, quote currency (> 0; the API checks it).
    lot_size_base : float or None
        Quantities in whole multiples of this many base units (:attr:`ExitPlan.lot_size_base`);
        None = fractional quantities.
    stake_quote : float or None
        Most one entry spends, fee included, quote currency (freqtrade's ``stake_amount``); None =
        all the cash (compounding).

    Returns
    -------
    account_dt record array, shape (1,)
        :data:`engine.backtest.records_nb.account_dt`: fee and slippage as fractions
        (:attr:`Costs.fee_rate`, :attr:`Costs.slippage_rate`), ``lot_size_base`` 0.0 for None.
    """
    return new_record(account_dt, initial_cash_quote=float(initial_cash_quote), fee_rate=costs.fee_rate,
                      slippage_rate=costs.slippage_rate,
                      lot_size_base=0.0 if lot_size_base is None else float(lot_size_base),
                      stake_quote=np.inf if stake_quote is None else float(stake_quote))


@dataclass(frozen=True, eq=False)
class CheckedCandles:
    """Candles checked once, as arrays, with their lower-timeframe map: what a research job shares.

    A (pair, timeframe) job searches many folds and entry sets on windows of one series. Built by
    :func:`prepare_candles`, the series is validated, converted to float64 arrays and mapped onto
    its 1m candles once; :meth:`window` hands out row ranges as views, and every function that
    takes a candle frame for a backtest (:func:`engine.backtest.run_backtest`,
    :func:`engine.backtest.run_grid`, :func:`engine.research.chance.chance_baseline`) also takes
    one of these and skips the checks and the mapping it already holds. Results are identical.

    Attributes
    ----------
    index : DatetimeIndex
        The open times (UTC), length n_bars.
    bars : BarArrays
        Their open/high/low/close, read-only float64 arrays of shape (n_bars,).
    lower : Lower
        Each bar's lower-timeframe candles (rows ``start[t]:end[t]`` of the whole lower series,
        int64 arrays of shape (n_bars,)); empty arrays when none were given.
    has_lower : bool
        Whether lower-timeframe candles lie under these bars (the ``lower_timeframe_used`` of
        results).
    frame : DataFrame
        The candle rows (candle frame contract), sliced from the whole frame when first read.
    """

    index: pd.DatetimeIndex
    bars: signals.BarArrays
    lower: Lower
    has_lower: bool
    source: pd.DataFrame = field(repr=False)
    offset: int = 0

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The candle rows of this window (a slice of the frame the candles were prepared from)."""
        return self.source.iloc[self.offset:self.offset + len(self.index)]

    def __len__(self) -> int:
        return len(self.index)

    def window(self, start: int, stop: int) -> "CheckedCandles":
        """Return rows ``start … stop-1`` (0 ≤ start < stop ≤ n_bars): views, nothing checked again.

        Raises
        ------
        DataError
            An empty or out-of-range window.
        """
        n = len(self.index)
        if not 0 <= start < stop <= n:
            raise DataError(f"candle window {start}:{stop}: expected 0 ≤ start < stop ≤ {n}")
        lower, has_lower = self.lower, self.has_lower
        if has_lower:  # a window under which no lower candle lies runs without them, as with none given
            has_lower = bool(lower.end[stop - 1] > lower.start[start])
            lower = Lower(lower.open, lower.high, lower.low, lower.start[start:stop], lower.end[start:stop]) \
                if has_lower else no_lower()
        return CheckedCandles(self.index[start:stop], signals.BarArrays(*(a[start:stop] for a in self.bars)),
                              lower, has_lower, self.source, self.offset + start)


def prepare_candles(candles: pd.DataFrame | CheckedCandles, *, timeframe: str,
                    lower_candles: pd.DataFrame | None = None, where: str = "candles") -> CheckedCandles:
    """Check `candles` once, convert them to arrays and map them onto `lower_candles` once.

    Parameters
    ----------
    candles : DataFrame or CheckedCandles
        Candle frame of `timeframe` (returned as it is when already checked and no
        `lower_candles` are given).
    timeframe : str
        Timeframe of `candles` (``1m 5m 15m 1h 4h 1d``): each bar spans one step of it.
    lower_candles : DataFrame, optional
        Candles of a lower timeframe (1m under 5m/15m) covering the same period.
    where : str
        Names the candles in error messages.

    Returns
    -------
    CheckedCandles

    Raises
    ------
    DataError
        Malformed candles or lower candles (naming `where` or ``lower_candles``, the row and the
        value), lower candles not of a lower timeframe, or `lower_candles` given with candles that
        already carry a map.
    """
    if isinstance(candles, CheckedCandles):
        if lower_candles is not None:
            raise DataError("lower_candles: given with checked candles that already carry their lower-timeframe "
                            "map; pass them to prepare_candles() once")
        return candles
    bars = check_candles(candles, where=where)
    checked = CheckedCandles(candles.index, bars, _lower_arrays(candles, lower_candles, timeframe),
                             lower_candles is not None, candles)
    return checked.window(0, len(candles)) if checked.has_lower else checked


def check_candles(candles: pd.DataFrame | CheckedCandles, *, where: str = "candles") -> signals.BarArrays:
    """Check the candles (:func:`engine.data.candles.check_bars`) and return their OHLC arrays.

    Returns
    -------
    BarArrays
        The open/high/low/close columns as contiguous float64 arrays, shape (n_bars,); those of
        :class:`CheckedCandles` as they are (checked when they were prepared).

    Raises
    ------
    DataError
        Naming `where`, the row and the value found, with a hint to fix it.
    """
    if isinstance(candles, CheckedCandles):
        return candles.bars
    check_bars(candles, where=where)
    return signals.to_bar_arrays(candles)


def _lower_arrays(candles: pd.DataFrame, lower: pd.DataFrame | None, timeframe: str) -> Lower:
    if lower is None:
        return no_lower()
    check_candles(lower, where="lower_candles")
    step_ms = timeframe_to_ms(timeframe)
    lo_ts = index_ms(lower.index)
    bar_ts = index_ms(candles.index)
    if lo_ts.size > 1 and np.diff(lo_ts).min() >= step_ms:
        raise DataError(f"lower_candles: spacing {int(np.diff(lo_ts).min())} ms is not below the "
                        f"{timeframe} bars; pass candles of a lower timeframe (e.g. 1m under 5m)")
    start = np.searchsorted(lo_ts, bar_ts, side="left").astype(np.int64)
    end = np.searchsorted(lo_ts, bar_ts + step_ms, side="left").astype(np.int64)
    return Lower(np.ascontiguousarray(lower["open"].to_numpy(np.float64)),
                 np.ascontiguousarray(lower["high"].to_numpy(np.float64)),
                 np.ascontiguousarray(lower["low"].to_numpy(np.float64)), start, end)


def _atr_for(plan: ExitPlan, bars: signals.BarArrays) -> FloatArray:
    if plan.uses_atr:
        t0 = time.perf_counter()
        atr = indicators.atr_nb(bars.high, bars.low, bars.close, plan.atr_period)
        signals.count_line_seconds(time.perf_counter() - t0)
        return atr
    return bars.close  # unused by the kernel


class KernelInputs(NamedTuple):
    """What every kernel call needs besides the signal lines and rules (:func:`kernel_inputs`)."""

    bars: Bars
    ladder: Ladder
    plan: RecordArray
    account: RecordArray
    lower: Lower


def kernel_inputs(candles: pd.DataFrame | CheckedCandles, bars: signals.BarArrays, exit_plan: ExitPlan, costs: Costs, *,
                  timeframe: str, initial_cash_quote: float,
                  lower_candles: pd.DataFrame | None = None, stake_quote: float | None = None) -> KernelInputs:
    """Return the kernels' candles (with the ATR when the plan uses it), exit rules, account and lower candles.

    Parameters
    ----------
    candles : DataFrame or CheckedCandles
        The candles `bars` came from (:func:`check_candles`); their index maps `lower_candles`
        (checked candles bring their map instead).
    bars : BarArrays
        Their open/high/low/close, float64 arrays of shape (n_bars,).
    exit_plan, costs, timeframe, initial_cash_quote, lower_candles, stake_quote
        As :func:`run_backtest` (checked by the caller, except `lower_candles`).

    Returns
    -------
    KernelInputs
        ``bars``: :class:`~engine.backtest.records_nb.Bars` (ATR(``atr_period``) of the candles
        when the plan has an ATR stop or trail, NaN over its warm-up; else the close, unused);
        ``ladder`` and ``plan`` from :func:`engine.backtest.inputs.kernel_plan`; ``account`` from
        :func:`engine.backtest.inputs.kernel_account`; ``lower``: bar t's lower candles (empty
        arrays without `lower_candles`).

    Raises
    ------
    DataError
        Malformed `lower_candles`, or not of a lower timeframe than `timeframe`.
    """
    ladder, plan = kernel_plan(exit_plan)
    account = kernel_account(costs, initial_cash_quote, lot_size_base=exit_plan.lot_size_base, stake_quote=stake_quote)
    lower = prepare_candles(candles, timeframe=timeframe, lower_candles=lower_candles).lower \
        if isinstance(candles, CheckedCandles) else _lower_arrays(candles, lower_candles, timeframe)
    return KernelInputs(Bars(*bars, _atr_for(exit_plan, bars)), ladder, plan, account, lower)
