"""Metrics against values worked out by hand on a small trade list and equity curve.

The hand case (used throughout):

    trades: PnL [+30, −10, +20, −20] quote, returns [+3, −1, +2, −2] % of entry notional
    equity at bar closes: [100, 110, 88, 121, 108.9] quote, initial cash 100

    n_trades       = 4
    win_rate_pct   = 2 winners / 4 = 50 %
    profit_factor  = (30 + 20) / (10 + 20) = 50 / 30 = 1.6667
    expectancy_pct = (3 − 1 + 2 − 2) / 4 = 0.5 %
    max_drawdown   : peak 110 → 88 is (110 − 88)/110 = 20 %; peak 121 → 108.9 is 10 % → 20 %
    returns r      = 110/100−1, 88/110−1, 121/88−1, 108.9/121−1 = 0.1, −0.2, 0.375, −0.1
                     mean = 0.175/4 = 0.04375; deviations 0.05625, −0.24375, 0.33125, −0.14375;
                     squares sum 0.19296875; sample var = 0.19296875/3; sd = 0.2536196
    sharpe (4 bars a year) = 0.04375 / 0.2536196 × √4 = 0.345005
    total_return_pct = 108.9/100 − 1 = 8.9 %
    exposure_pct   = 3 bars held of 5 = 60 %
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.fileio import json_safe

from engine.backtest import metrics
from engine.backtest.records_nb import stats_dt
from engine.errors import DataError

PNL = np.array([30.0, -10.0, 20.0, -20.0])
RET = np.array([3.0, -1.0, 2.0, -2.0])
EQ = np.array([100.0, 110.0, 88.0, 121.0, 108.9])


def test_hand_derived_values():
    assert metrics.n_trades(PNL) == 4
    assert metrics.win_rate_pct(PNL) == 50.0
    assert metrics.profit_factor(PNL) == pytest.approx(50.0 / 30.0)
    assert metrics.expectancy_pct(RET) == pytest.approx(0.5)
    assert metrics.max_drawdown_pct(EQ) == pytest.approx(20.0)
    assert metrics.sharpe(EQ, 4.0) == pytest.approx(0.345005, abs=1e-6)
    assert metrics.total_return_pct(EQ, 100.0) == pytest.approx(8.9)
    assert metrics.exposure_pct(3, 5) == 60.0
    assert metrics.bars_held([1, 3], [1, 4]) == 3  # bars 1, 3, 4


def test_compute_metrics_bundles_the_hand_values():
    m = metrics.compute_metrics(PNL, RET, EQ, initial_cash_quote=100.0, n_bars_held=3, periods_per_year=4.0)
    assert list(m) == list(metrics.METRIC_KEYS)
    assert m["profit_factor"] == pytest.approx(1.666667, abs=1e-6) and m["max_drawdown_pct"] == pytest.approx(20.0)


def test_streaming_stats_give_the_same_metrics():
    # the kernel's on-the-fly sums for the hand case: Σr = 0.175, Σr² = 0.0703125 + … (computed here)
    r = EQ[1:] / EQ[:-1] - 1
    s = np.zeros(1, dtype=stats_dt)[0]
    s["n_trades"], s["n_wins"] = 4, 2
    s["gross_profit_quote"], s["gross_loss_quote"], s["sum_return_pct"] = 50.0, 30.0, 2.0
    s["max_drawdown_frac"], s["return_sum"], s["return_sumsq"], s["n_returns"] = 0.2, r.sum(), (r * r).sum(), 4
    s["exposure_bars"], s["final_equity_quote"], s["n_bars"] = 3, 108.9, 5
    a = metrics.metrics_from_stats(s, initial_cash_quote=100.0, periods_per_year=4.0)
    b = metrics.compute_metrics(PNL, RET, EQ, initial_cash_quote=100.0, n_bars_held=3, periods_per_year=4.0)
    assert a == pytest.approx(b, rel=1e-12)


def test_undefined_metrics_are_nan_not_zero():
    none = np.array([])
    assert math.isnan(metrics.win_rate_pct(none))
    assert math.isnan(metrics.profit_factor(none))
    assert math.isnan(metrics.profit_factor(np.array([5.0, 1.0])))  # no losing trade
    assert metrics.profit_factor(np.array([-5.0])) == 0.0  # losses, no wins
    assert math.isnan(metrics.expectancy_pct(none))
    assert math.isnan(metrics.sharpe(np.array([100.0, 100.0, 100.0]), 365.0))  # zero deviation
    assert math.isnan(metrics.sharpe(np.array([100.0, 101.0]), 365.0))  # one return only
    assert metrics.win_rate_pct(np.array([0.0, 1.0])) == 50.0  # a zero trade is not a win


def test_json_safe_replaces_nan_and_inf_recursively():
    obj = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": np.float64(2.5), "e": np.int64(3),
           "f": (np.nan,), "g": "x", "h": np.array([1.0, np.nan])}
    out = json_safe(obj)
    assert out == {"a": None, "b": [1.0, None, {"c": None}], "d": 2.5, "e": 3, "f": [None], "g": "x",
                   "h": [1.0, None]}
    json.dumps(out, allow_nan=False)


def test_bad_equity_raises_data_error():
    with pytest.raises(DataError, match=r"equity\[1\] = 0.0: expected a finite value > 0"):
        metrics.max_drawdown_pct(np.array([100.0, 0.0]))
    with pytest.raises(DataError, match=r"equity\[0\] = nan"):
        metrics.sharpe(np.array([np.nan, 1.0, 2.0]), 365.0)
