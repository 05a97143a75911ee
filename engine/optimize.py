"""Search that does not fool you: parameters chosen in-sample, scored out-of-sample.

Every (pair, timeframe, entry set) is searched on walk-forward folds. In each fold the search
(grid, or optuna when configured) runs on the **train** window (in-sample); the best parameter set
that meets the constraints is then scored on the following **test** window (out-of-sample), which
the search never saw. The out-of-sample result of an entry set is the concatenation of its test
windows; promotion looks only at that.

Fold layout (bars of one series, ``T`` test bars, ``R`` train bars, ``E`` embargo bars)::

    rolling : fold j trains on [j·T, j·T + R) and tests on [j·T + R + E, (j+1)·T + R)
    anchored: fold j trains on [0,   j·T + R) and tests on the same window as rolling

With ``train_bars``/``test_bars`` unset, ``R / (R + T) = train_ratio`` and the folds span the
whole series: ``n_bars = R + n_splits · T``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from engine.config import BacktestConfig, EntrySet, WalkForward, expand_grid
from engine.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold as bar positions ``[start, stop)`` of the series."""

    index: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


def walk_forward_folds(n_bars: int, wf: WalkForward) -> list[Fold]:
    """Return the folds of a series of `n_bars` bars (see the module docstring for the layout).

    Raises
    ------
    DataError
        If the series is too short for the folds: fewer than 10 test bars or 20 train bars.
    """
    k = wf.n_splits
    if wf.train_bars is not None and wf.test_bars is not None:
        train, test = int(wf.train_bars), int(wf.test_bars)
        if train + k * test > n_bars:
            raise DataError(f"walk-forward needs {train + k * test} bars (train {train} + {k} × test {test}); "
                            f"the series has {n_bars}. Lower walk_forward.train_bars/test_bars/n_splits.")
        offset = n_bars - (train + k * test)  # use the most recent bars
    else:
        r = wf.train_ratio
        test = int(n_bars / (r / (1.0 - r) + k))
        train = n_bars - k * test
        offset = 0
    if test - wf.embargo_bars < 10 or train < 20:
        raise DataError(f"walk-forward: {n_bars} bars give train windows of {train} and test windows of "
                        f"{test - wf.embargo_bars} bars after the embargo; expected at least 20 and 10. "
                        "Backfill more candles or lower walk_forward.n_splits.")
    folds = []
    for j in range(k):
        train_stop = offset + j * test + train
        train_start = offset if wf.scheme == "anchored" else offset + j * test
        folds.append(Fold(j, train_start, train_stop, train_stop + wf.embargo_bars, train_stop + test))
    return folds


@dataclass
class SearchResult:
    """The walk-forward search of one (pair, timeframe, entry set).

    Attributes
    ----------
    params : dict
        Parameters chosen in the last (most recent) fold: what would trade next.
    in_sample, out_of_sample : dict
        Metrics (DESIGN.md keys). In-sample: the mean over folds of the chosen parameters' train
        metrics (``n_trades`` summed). Out-of-sample: the concatenated test windows.
    folds : list of dict
        Per fold: bar ranges and times, chosen params, in-sample and out-of-sample metrics.
    n_configs_tried : int
        Parameter sets evaluated over all folds.
    oos_equity : pandas.Series
        Equity (quote) at each bar close of the concatenated test windows, chained.
    oos_trades : pandas.DataFrame
        The trades of the test windows.
    """

    params: dict[str, Any]
    in_sample: dict[str, float]
    out_of_sample: dict[str, float]
    folds: list[dict[str, Any]]
    n_configs_tried: int
    oos_equity: pd.Series
    oos_trades: pd.DataFrame = field(repr=False)


def _objective_value(metrics: dict, objective: str) -> float:
    value = metrics.get(objective)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return -math.inf
    return float(value)


def choose_best(metrics_list: Sequence[dict], objective: str, min_trades: int, max_drawdown_pct: float) -> int:
    """Return the index of the best parameter set: highest `objective` among those that meet the
    constraints; when none meets them, highest objective overall (ties: the first)."""
    def meets(m: dict) -> bool:
        dd = m.get("max_drawdown_pct")
        return int(m.get("n_trades") or 0) >= min_trades and (dd is None or not dd > max_drawdown_pct)

    order = sorted(range(len(metrics_list)),
                   key=lambda i: (not meets(metrics_list[i]), -_objective_value(metrics_list[i], objective), i))
    return order[0]


def _mean_metrics(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in rows[0]:
        values = [r[key] for r in rows if r.get(key) is not None and not (isinstance(r[key], float) and math.isnan(r[key]))]
        if key == "n_trades":
            out[key] = int(sum(values))
        else:
            out[key] = float(np.mean(values)) if values else float("nan")
    return out


def search_entry_set(candles: pd.DataFrame, entry_set: EntrySet, bt: BacktestConfig, *, timeframe: str,
                     space: dict[str, list] | None = None) -> SearchResult:
    """Search one entry set on walk-forward folds of `candles`.

    Parameters
    ----------
    candles : DataFrame
        Candles (DESIGN.md shape) of one pair and timeframe.
    entry_set : EntrySet
        Signal, default params and exit rules.
    bt : BacktestConfig
        Objective, constraints, walk-forward layout, initial cash.
    space : dict, optional
        Grid ``{param: [values]}``; default ``bt.grid[entry_set.name]``, else the entry set's
        default params alone.

    Raises
    ------
    DataError
        If the series is too short for the walk-forward folds.
    """
    from engine import backtest

    space = space if space is not None else bt.grid.get(entry_set.name)
    combos = expand_grid(space) if space else [dict(entry_set.params)]
    combos = [{**entry_set.params, **c} for c in combos]
    plan, costs = entry_set.exit_plan, entry_set.costs
    folds = walk_forward_folds(len(candles), bt.walk_forward)
    fold_rows, is_rows, oos_parts = [], [], []
    for fold in folds:
        train = candles.iloc[fold.train_start:fold.train_stop]
        grid_metrics = backtest.run_grid(train, entry_set.signal, combos, plan, costs, timeframe=timeframe,
                                         initial_cash_quote=bt.initial_cash_quote)
        best = choose_best(grid_metrics, bt.objective, bt.constraints.min_trades, bt.constraints.max_drawdown_pct)
        params = combos[best]
        # out-of-sample: indicators warm up on the train window, trades only inside the test window
        oos = backtest.run_backtest(candles.iloc[fold.train_start:fold.test_stop], entry_set.signal, params, plan,
                                    costs, timeframe=timeframe, initial_cash_quote=bt.initial_cash_quote,
                                    start_bar=fold.test_start - fold.train_start)
        oos_parts.append(oos)
        is_rows.append(grid_metrics[best])
        fold_rows.append({
            "fold": fold.index, "params": params,
            "train": {"first_ms": _ms(candles.index[fold.train_start]), "last_ms": _ms(candles.index[fold.train_stop - 1]),
                      "bars": fold.train_stop - fold.train_start},
            "test": {"first_ms": _ms(candles.index[fold.test_start]), "last_ms": _ms(candles.index[fold.test_stop - 1]),
                     "bars": fold.test_stop - fold.test_start},
            "in_sample": grid_metrics[best], "out_of_sample": oos.metrics,
        })
    equity, trades, oos_metrics = concat_results(oos_parts, timeframe=timeframe,
                                                 initial_cash_quote=bt.initial_cash_quote)
    return SearchResult(
        params=fold_rows[-1]["params"], in_sample=_mean_metrics(is_rows), out_of_sample=oos_metrics,
        folds=fold_rows, n_configs_tried=len(combos) * len(folds), oos_equity=equity, oos_trades=trades)


def concat_results(parts: Sequence[Any], *, timeframe: str, initial_cash_quote: float
                   ) -> tuple[pd.Series, pd.DataFrame, dict[str, float]]:
    """Chain the results of consecutive test windows into one out-of-sample result.

    Each window's equity is rescaled so that it starts from the capital the previous window ended
    with (compounding, as one account trading through every window); trade PnL is rescaled by the
    same factor. The metrics are then computed on the chained curve and the trade list with the
    DESIGN.md definitions (:func:`engine.metrics.compute_metrics`).

    Parameters
    ----------
    parts : sequence of BacktestResult
        In time order, not overlapping.

    Returns
    -------
    (equity, trades, metrics)
        Equity in quote at each bar close of the windows, their trades, the metrics.
    """
    from engine import metrics
    from engine.markets import periods_per_year

    capital = float(initial_cash_quote)
    curves, trade_frames, held = [], [], 0
    for r in parts:
        scale = capital / float(r.initial_cash_quote)
        curves.append(r.equity * scale)
        t = r.trades.copy()
        for col in ("pnl_quote", "fees_quote"):
            if col in t:
                t[col] = t[col] * scale
        trade_frames.append(t)
        held += metrics.bars_held(r.trades["entry_bar"], r.trades["exit_bar"]) if len(r.trades) else 0
        if len(r.equity):
            capital = float(r.equity.iloc[-1] * scale)
    equity = pd.concat(curves) if curves else pd.Series(dtype=float)
    trades = pd.concat(trade_frames, ignore_index=True) if trade_frames else pd.DataFrame()
    pnl = trades["pnl_quote"].to_numpy(dtype=float) if len(trades) else np.empty(0)
    ret = trades["return_pct"].to_numpy(dtype=float) if len(trades) else np.empty(0)
    m = metrics.compute_metrics(pnl, ret, equity.to_numpy(dtype=float), initial_cash_quote=initial_cash_quote,
                                n_bars_held=held, periods_per_year=periods_per_year(timeframe))
    return equity, trades, m


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)
