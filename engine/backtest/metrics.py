"""Trade and equity statistics, one small function each (DESIGN.md "Metrics").

All metrics are net of costs. An undefined metric is NaN in memory and null in JSON
(:func:`engine.fileio.json_safe`), never a made-up 0. The grid kernel computes the same quantities on the fly
(:func:`metrics_from_stats`); a test keeps both in agreement.

Definitions used throughout:

- a **trade** is one round trip; a laddered exit is one trade. Its **PnL** (quote) is the sum of
  its exit proceeds minus its entry cost, all fees included; its **return** (%) is PnL divided by
  the entry notional ``qty × entry_price`` × 100.
- the **equity curve** is cash + position × close at each bar close, in quote.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt

from engine.errors import DataError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: The metric keys, in display order.
METRIC_KEYS = (
    "n_trades", "win_rate_pct", "profit_factor", "max_drawdown_pct", "sharpe",
    "total_return_pct", "expectancy_pct", "exposure_pct",
)


def n_trades(pnl_quote: FloatArray) -> int:
    """Return the number of round trips (length of the per-trade PnL array)."""
    return int(np.asarray(pnl_quote).shape[0])


def win_rate_pct(pnl_quote: FloatArray) -> float:
    """Return the percentage of trades with net PnL > 0; NaN without trades.

    ``100 × #(pnl > 0) / #trades``. A trade at exactly 0 counts as not winning.
    """
    pnl = np.asarray(pnl_quote, dtype=np.float64)
    if pnl.size == 0:
        return math.nan
    return float(np.count_nonzero(pnl > 0.0)) / pnl.size * 100.0


def profit_factor(pnl_quote: FloatArray) -> float:
    """Return gross profit / gross loss of the trades; NaN when there is no losing trade.

    Gross profit = sum of positive trade PnL; gross loss = −sum of negative trade PnL. With
    losses but no wins the factor is 0.0; with no loss (incl. no trades) it is undefined (NaN).
    """
    pnl = np.asarray(pnl_quote, dtype=np.float64)
    loss = -float(pnl[pnl < 0.0].sum())
    if loss <= 0.0:
        return math.nan
    return float(pnl[pnl > 0.0].sum()) / loss


def max_drawdown_pct(equity_quote: FloatArray) -> float:
    """Return the largest peak-to-trough fall of the bar-close equity curve, percent (≥ 0).

    ``max over t of (max(equity[:t+1]) − equity[t]) / max(equity[:t+1]) × 100``; 0.0 if equity
    never falls. NaN for an empty curve.

    Raises
    ------
    DataError
        If the equity holds NaN or a non-positive value.
    """
    eq = _check_equity(equity_quote)
    if eq.size == 0:
        return math.nan
    peak = np.maximum.accumulate(eq)
    return float(((peak - eq) / peak).max()) * 100.0


def sharpe(equity_quote: FloatArray, periods_per_year: float) -> float:
    """Return the annualised Sharpe ratio of per-bar equity returns (risk-free rate 0).

    Parameters
    ----------
    equity_quote : float64 array, shape (n_bars,)
        Equity at each bar close, quote, net of fees.
    periods_per_year : float
        Bars in a 365-day year (525600 for 1m, 8760 for 1h).

    Returns
    -------
    float
        ``mean(r) / std(r, ddof=1) × sqrt(periods_per_year)`` with ``r[t] = eq[t]/eq[t-1] − 1``
        for t ≥ 1. NaN with fewer than 2 returns or zero deviation (flat equity).

    Raises
    ------
    DataError
        If the equity holds NaN or a non-positive value.

    References
    ----------
    Sharpe, W. F. (1994). The Sharpe Ratio. Journal of Portfolio Management 21(1).
    """
    eq = _check_equity(equity_quote)
    if eq.size < 3:
        return math.nan
    r = eq[1:] / eq[:-1] - 1.0
    sd = float(r.std(ddof=1))
    if not sd > 0.0:
        return math.nan
    return float(r.mean()) / sd * math.sqrt(periods_per_year)


def total_return_pct(equity_quote: FloatArray, initial_cash_quote: float) -> float:
    """Return ``(equity[-1] / initial_cash − 1) × 100``; NaN for an empty curve."""
    eq = np.asarray(equity_quote, dtype=np.float64)
    if eq.size == 0:
        return math.nan
    return (float(eq[-1]) / initial_cash_quote - 1.0) * 100.0


def expectancy_pct(return_pct: FloatArray) -> float:
    """Return the mean trade return, percent of entry notional; NaN without trades."""
    r = np.asarray(return_pct, dtype=np.float64)
    return float(r.mean()) if r.size else math.nan


def exposure_pct(n_bars_held: int, n_bars: int) -> float:
    """Return the share of bars during which a position was held at some moment, percent.

    A trade holds bars ``entry_bar … exit_bar`` inclusive (as backtesting.py's "Exposure Time").
    NaN when there are no bars.
    """
    return n_bars_held / n_bars * 100.0 if n_bars > 0 else math.nan


def bars_held(entry_bar: npt.ArrayLike, exit_bar: npt.ArrayLike) -> int:
    """Return the number of bars covered by trades ``[entry_bar, exit_bar]`` (inclusive)."""
    e = np.asarray(entry_bar, dtype=np.int64)
    x = np.asarray(exit_bar, dtype=np.int64)
    return int((x - e + 1).sum())


def compute_metrics(pnl_quote: FloatArray, return_pct: FloatArray, equity_quote: FloatArray, *,
                    initial_cash_quote: float, n_bars_held: int, periods_per_year: float) -> dict[str, float]:
    """Return every metric of :data:`METRIC_KEYS` from a trade list and an equity curve."""
    eq = np.asarray(equity_quote, dtype=np.float64)
    return {
        "n_trades": n_trades(pnl_quote),
        "win_rate_pct": win_rate_pct(pnl_quote),
        "profit_factor": profit_factor(pnl_quote),
        "max_drawdown_pct": max_drawdown_pct(eq),
        "sharpe": sharpe(eq, periods_per_year),
        "total_return_pct": total_return_pct(eq, initial_cash_quote),
        "expectancy_pct": expectancy_pct(return_pct),
        "exposure_pct": exposure_pct(n_bars_held, eq.size),
    }


def metrics_from_stats(stats: np.void | npt.NDArray[np.void], *, initial_cash_quote: float,
                       periods_per_year: float) -> dict[str, float]:
    """Return the metrics of one run from the kernel's streaming statistics.

    Same definitions as the functions above; the standard deviation comes from the sums of
    returns and squared returns: ``var = (Σr² − (Σr)²/m) / (m − 1)``.

    Parameters
    ----------
    stats : one :data:`engine.backtest.records_nb.stats_dt` record
        A ``numpy.void`` (an element of the kernel's record array) or a 0-d record array, read
        by field name.
    initial_cash_quote : float
        Starting cash, quote.
    periods_per_year : float
        Bars in a 365-day year (525600 for 1m).

    Returns
    -------
    dict
        :data:`METRIC_KEYS` → value; NaN where undefined (as the functions above).
    """
    s = stats
    nt = int(s["n_trades"])
    m = float(s["n_returns"])
    ret_sum = float(s["return_sum"])
    sh = math.nan
    if m >= 2:
        mean = ret_sum / m
        var = (float(s["return_sumsq"]) - ret_sum * mean) / (m - 1.0)
        if var > 0.0:
            sh = mean / math.sqrt(var) * math.sqrt(periods_per_year)
    loss = float(s["gross_loss_quote"])
    n_bars = int(s["n_bars"])
    return {
        "n_trades": nt,
        "win_rate_pct": float(s["n_wins"]) / nt * 100.0 if nt else math.nan,
        "profit_factor": float(s["gross_profit_quote"]) / loss if loss > 0.0 else math.nan,
        "max_drawdown_pct": float(s["max_drawdown_frac"]) * 100.0 if n_bars else math.nan,
        "sharpe": sh,
        "total_return_pct": (float(s["final_equity_quote"]) / initial_cash_quote - 1.0) * 100.0 if n_bars else math.nan,
        "expectancy_pct": float(s["sum_return_pct"]) / nt if nt else math.nan,
        "exposure_pct": exposure_pct(int(s["exposure_bars"]), n_bars),
    }


def _check_equity(equity_quote: FloatArray) -> FloatArray:
    eq = np.asarray(equity_quote, dtype=np.float64)
    if eq.size and (not np.isfinite(eq).all() or (eq <= 0.0).any()):
        bad = int(np.flatnonzero(~np.isfinite(eq) | (eq <= 0.0))[0])
        raise DataError(f"equity[{bad}] = {float(eq[bad])!r}: expected a finite value > 0 (quote)")
    return eq
