"""What a backtest returns: :class:`BacktestResult`, built from the kernel's arrays.

The metrics come from the kernel's streaming statistics; the trade, leg and equity frames are built
from its :class:`~engine.backtest.kernel_nb.Fills` on first read (a search that only needs metrics
and equity values never pays for them).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.backtest import kernel_nb as sim
from engine.backtest import metrics
from engine.backtest.records_nb import CODE_NAMES, MAX_TP_STEPS, code_name
from engine.data.candles import index_ms
from engine.fileio import atomic_write_text
from engine.strategy.exits import Costs, ExitPlan

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


#: Columns of BacktestResult.trades, one row per round trip.
TRADE_COLUMNS = (
    "trade", "entry_time", "entry_ms", "entry_bar", "entry_price", "qty_base", "exit_time", "exit_ms",
    "exit_bar", "exit_price", "exit_reason", "exit_reasons", "n_legs", "fees_quote", "pnl_quote",
    "return_pct",
)
#: Columns of BacktestResult.fills_frame(), one row per exit leg with its trade's entry.
FILL_COLUMNS = ("trade", "entry_time", "entry_price", "exit_time", "exit_price", "qty_base", "reason", "fee_quote",
                "entry_fee_quote", "trade_pnl_quote", "trade_return_pct")
#: Columns of BacktestResult.legs, one row per exit fill.
LEG_COLUMNS = ("trade", "time", "timestamp_ms", "bar", "price", "qty_base", "fee_quote", "reason")


def reason_name(code: int) -> str:
    """Return the exit reason word of a kernel code: ``tp1``… for ladder steps, else sl be trail signal time end.

    The words come from the one code table, :data:`engine.backtest.records_nb.CODE_NAMES`.
    """
    return code_name(code)


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Result of one backtest.

    Attributes
    ----------
    metrics : dict
        :data:`engine.backtest.metrics.METRIC_KEYS` → value (NaN when undefined; use
        :func:`engine.backtest.metrics.json_safe` for JSON).
    trades : DataFrame
        One row per round trip, columns :data:`TRADE_COLUMNS`: entry/exit times (UTC open time of
        the bar of the fill) and ms, prices in quote per base unit incl. slippage (``exit_price``
        is the quantity-weighted mean of the legs), ``qty_base``, ``exit_reason`` (reason of the
        last leg), ``exit_reasons`` (all legs, ``"tp1+tp2+be"``), fees and net PnL in quote,
        ``return_pct`` = PnL / entry notional × 100.
    legs : DataFrame
        One row per exit fill, columns :data:`LEG_COLUMNS`; reasons ``tp1 tp2 … sl be trail
        signal time end``.
    equity : Series
        Equity in quote at each bar close (cash + position × close), index = candle index.
    ambiguity : dict
        ``n_ambiguous_bars`` (stop and target touched in one bar), ``n_resolved_target_first`` and
        ``n_resolved_stop_first`` (decided by lower-timeframe candles), ``n_unresolved_stop_first``
        (stop assumed first), ``lower_timeframe_used`` (bool).
    n_rejected : int
        Entry signals refused by the simulator; ``reject_reason`` says why (last one).
    fills : Fills
        The kernel's arrays (bar numbers relative to the first bar of the result), from which
        ``trades``, ``legs`` and ``equity`` are built on first use: a search that only needs the
        metrics and the equity values never pays for the frames.
    """

    metrics: dict[str, float]
    fills: sim.Fills = field(repr=False)
    index: pd.DatetimeIndex = field(repr=False)
    ambiguity: dict[str, Any] = field(default_factory=dict)
    n_rejected: int = 0
    reject_reason: str | None = None
    signal: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    timeframe: str = ""
    exit_plan: ExitPlan | None = None
    costs: Costs | None = None
    initial_cash_quote: float = 10_000.0

    @cached_property
    def trades(self) -> pd.DataFrame:
        """The round trips, columns :data:`TRADE_COLUMNS` (built from ``fills`` on first use)."""
        return _trades_frame(self.fills, self.index, self._reason_names)

    @cached_property
    def legs(self) -> pd.DataFrame:
        """The exit fills, columns :data:`LEG_COLUMNS` (built from ``fills`` on first use)."""
        f, index = self.fills, self.index
        return pd.DataFrame({
            "trade": f.leg_trade, "time": index[f.leg_bar], "timestamp_ms": index_ms(index[f.leg_bar]),
            "bar": f.leg_bar, "price": f.leg_price, "qty_base": f.leg_qty, "fee_quote": f.leg_fee,
            "reason": self._reason_names,
        }, columns=list(LEG_COLUMNS))

    @cached_property
    def equity(self) -> pd.Series:
        """Equity in quote at each bar close, indexed by the candles' open times."""
        return pd.Series(self.fills.equity, index=self.index, name="equity_quote", copy=False)

    @cached_property
    def _reason_names(self) -> npt.NDArray[np.object_]:
        return _reason_names(self.fills.leg_reason)

    def fills_frame(self) -> pd.DataFrame:
        """Return one row per exit leg with its trade's entry: columns :data:`FILL_COLUMNS`.

        ``exit_*``, ``qty_base``, ``reason`` and ``fee_quote`` are the leg's; ``entry_fee_quote``,
        ``trade_pnl_quote`` and ``trade_return_pct`` are the whole trade's (repeated on its legs).
        """
        legs = self.legs
        t = self.trades.set_index("trade")
        entry_fee = (t["entry_price"] * t["qty_base"]).to_numpy()
        rows = legs["trade"].to_numpy()
        fee_rate = self.costs.fee_rate if self.costs is not None else 0.0
        return pd.DataFrame({
            "trade": rows, "entry_time": t["entry_time"].to_numpy()[rows], "entry_price": t["entry_price"].to_numpy()[rows],
            "exit_time": legs["time"].to_numpy(), "exit_price": legs["price"].to_numpy(),
            "qty_base": legs["qty_base"].to_numpy(), "reason": legs["reason"].to_numpy(),
            "fee_quote": legs["fee_quote"].to_numpy(), "entry_fee_quote": entry_fee[rows] * fee_rate,
            "trade_pnl_quote": t["pnl_quote"].to_numpy()[rows], "trade_return_pct": t["return_pct"].to_numpy()[rows],
        }, columns=list(FILL_COLUMNS))

    def write_trades_csv(self, path: str | os.PathLike, *, per_leg: bool = False) -> Path:
        """Write the trade list to a CSV atomically (temporary file in the same folder + os.replace).

        Parameters
        ----------
        path : path
        per_leg : bool
            False: one row per round trip, columns :data:`TRADE_COLUMNS`. True: one row per exit
            leg (:meth:`fills_frame`, quantity and reason of each leg).

        Times are ISO-8601 UTC; returns the path.
        """
        frame = self.fills_frame() if per_leg else self.trades
        text = frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
        return atomic_write_text(Path(path), text, lock=False)


def _reason_names(codes: IntArray) -> npt.NDArray[np.object_]:
    # the words of the leg reason codes: a table over 0 … max code built from code_name, then one lookup
    top = int(codes.max()) if codes.size else 0
    table = np.full(top + 1, "", dtype=object)
    for code in range(1, top + 1):
        if code <= MAX_TP_STEPS or code in CODE_NAMES:
            table[code] = code_name(code)
    return table[codes]


def _trades_frame(f: sim.Fills, index: pd.DatetimeIndex, names: npt.NDArray[np.object_]) -> pd.DataFrame:
    nt = f.entry_bar.shape[0]
    n_legs = np.bincount(f.leg_trade, minlength=nt) if nt else np.empty(0, np.int64)
    if nt:
        notional = np.bincount(f.leg_trade, weights=f.leg_qty * f.leg_price, minlength=nt)
        qty = np.bincount(f.leg_trade, weights=f.leg_qty, minlength=nt)
        exit_price = notional / qty
        first = np.cumsum(n_legs) - n_legs   # legs are stored trade by trade
        last_reason = names[first + n_legs - 1]
        joined = names[first].copy()
        for k in range(1, int(n_legs.max())):
            more = n_legs > k
            joined[more] = joined[more] + "+" + names[first[more] + k]
    else:
        exit_price = np.empty(0)
        last_reason = joined = np.empty(0, dtype=object)
    entry_time, exit_time = index[f.entry_bar], index[f.exit_bar]
    return pd.DataFrame({
        "trade": np.arange(nt), "entry_time": entry_time, "entry_ms": index_ms(entry_time),
        "entry_bar": f.entry_bar, "entry_price": f.entry_price, "qty_base": f.qty,
        "exit_time": exit_time, "exit_ms": index_ms(exit_time), "exit_bar": f.exit_bar,
        "exit_price": exit_price, "exit_reason": last_reason, "exit_reasons": joined,
        "n_legs": n_legs, "fees_quote": f.fees, "pnl_quote": f.pnl, "return_pct": trade_returns_pct(f),
    }, columns=list(TRADE_COLUMNS))


def trade_returns_pct(f: sim.Fills) -> FloatArray:
    """Return each trade's net return, percent of its entry notional: PnL / (qty × entry price) × 100,
    float64 array of shape (n_trades,)."""
    return f.pnl / (f.qty * f.entry_price) * 100.0 if f.entry_bar.shape[0] else np.empty(0)


def result_from_fills(f: sim.Fills, index: pd.DatetimeIndex, ppy: float, cash0: float, used_lower: bool,
                      **meta: Any) -> BacktestResult:
    """Return the :class:`BacktestResult` of the kernel's fills: `index` the open times of the bars
    of `f` (bar numbers relative to it), `ppy` bars per year, `cash0` the initial cash (quote),
    `used_lower` whether lower-timeframe candles were given; `meta` the other fields."""
    s = f.stats
    # the kernel's streaming statistics give the metrics of engine.backtest.metrics (a test keeps them equal)
    m = metrics.metrics_from_stats(s, initial_cash_quote=cash0, periods_per_year=ppy)
    n_rej = int(s["n_rejected"])
    return BacktestResult(
        metrics=m, fills=f, index=index, ambiguity=ambiguity(s, used_lower), n_rejected=n_rej,
        reject_reason=code_name(s["last_reject"]) if n_rej else None, initial_cash_quote=cash0, **meta)


def ambiguity(s: np.void, used_lower: bool) -> dict[str, Any]:
    """Return the ambiguity counters of one stats_dt record (:attr:`BacktestResult.ambiguity`)."""
    return {
        "n_ambiguous_bars": int(s["n_ambiguous"]),
        "n_resolved_target_first": int(s["n_target_first"]),
        "n_resolved_stop_first": int(s["n_stop_first"]),
        "n_unresolved_stop_first": int(s["n_unresolved"]),
        "lower_timeframe_used": bool(used_lower),
    }
