"""Candles checked once per research job: windows as views, the 1m map computed once, the same results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.backtest import run_backtest, run_grid
from engine.backtest.inputs import CheckedCandles, prepare_candles
from engine.errors import DataError
from engine.research.chance import chance_baseline
from engine.strategy.exits import Costs, ExitPlan

COSTS = Costs(10, 2)
PLAN = ExitPlan.only(tp_ladder="0.1:50,0.2:50", sl_pct=-0.1)  # tight levels: 5m bars touch both


@pytest.fixture(scope="module")
def btc_five(sample_1m):
    btc = sample_1m("BTCUSDT", 9_000)
    five = btc.resample("5min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).dropna()
    return btc, five


def _same(a, b):
    assert a.metrics.keys() == b.metrics.keys()
    for k in a.metrics:
        assert a.metrics[k] == b.metrics[k] or (np.isnan(a.metrics[k]) and np.isnan(b.metrics[k])), k
    assert a.ambiguity == b.ambiguity
    pd.testing.assert_frame_equal(a.trades, b.trades)
    pd.testing.assert_frame_equal(a.legs, b.legs)
    pd.testing.assert_series_equal(a.equity, b.equity)


def test_windows_give_what_frames_and_lower_slices_give(btc_five):
    btc, five = btc_five
    checked = prepare_candles(five, timeframe="5m", lower_candles=btc)
    assert isinstance(checked, CheckedCandles) and len(checked) == len(five) and checked.has_lower
    for start, stop, first in ((0, len(five), 0), (200, 1_500, 300), (1_000, len(five), 1)):
        window = checked.window(start, stop)
        frame = five.iloc[start:stop]
        lower = btc.loc[frame.index[0]:frame.index[-1] + pd.Timedelta("5min") - pd.Timedelta("1ms")]
        _same(run_backtest(window, "sma_cross", {"fast": 3, "slow": 8}, PLAN, COSTS, timeframe="5m", start_bar=first),
              run_backtest(frame, "sma_cross", {"fast": 3, "slow": 8}, PLAN, COSTS, timeframe="5m", start_bar=first,
                           lower_candles=lower))
        grid = [{"fast": f, "slow": s} for f in (3, 5) for s in (8, 20)]
        assert run_grid(window, "sma_cross", grid, PLAN, COSTS, timeframe="5m", details=True) == \
            run_grid(frame, "sma_cross", grid, PLAN, COSTS, timeframe="5m", lower_candles=lower, details=True)
        pd.testing.assert_frame_equal(window.frame, frame)
    twins = dict(n_entries=5, row_total_return_pct=0.0, n_twins=20, seed=4, timeframe="5m", initial_cash_quote=1e4)
    assert chance_baseline(checked.window(300, 900), PLAN, COSTS, **twins) == chance_baseline(
        five.iloc[300:900], PLAN, COSTS, lower_candles=btc, **twins)


def test_a_window_under_no_lower_candle_runs_without_them(btc_five):
    btc, five = btc_five
    checked = prepare_candles(five, timeframe="5m", lower_candles=btc.iloc[:600])  # 1m under the first 120 bars
    assert checked.window(0, 100).has_lower
    late = checked.window(500, 900)
    assert not late.has_lower and late.lower.start.shape == (0,)
    r = run_backtest(late, "sma_cross", {"fast": 3, "slow": 8}, PLAN, COSTS, timeframe="5m")
    assert not r.ambiguity["lower_timeframe_used"]
    assert r.ambiguity["n_unresolved_stop_first"] == r.ambiguity["n_ambiguous_bars"] > 0


def test_bad_inputs_are_named_once(btc_five):
    btc, five = btc_five
    bad = five.copy()
    bad.iloc[7, bad.columns.get_loc("high")] = bad["low"].iloc[7] - 1.0
    with pytest.raises(DataError, match=r"ETH 5m row 7: high"):
        prepare_candles(bad, timeframe="5m", where="ETH 5m")
    with pytest.raises(DataError, match="lower_candles: spacing 300000 ms is not below the 5m bars"):
        prepare_candles(five, timeframe="5m", lower_candles=five)
    checked = prepare_candles(five, timeframe="5m", lower_candles=btc)
    with pytest.raises(DataError, match="already carry their lower-timeframe map"):
        run_backtest(checked, "sma_cross", {}, PLAN, COSTS, timeframe="5m", lower_candles=btc)
    for start, stop in ((5, 5), (-1, 3), (0, len(five) + 1)):
        with pytest.raises(DataError, match=rf"candle window {start}:{stop}: expected 0 ≤ start < stop ≤ {len(five)}"):
            checked.window(start, stop)
    # checked candles are returned as they are; nothing is validated twice
    assert prepare_candles(checked, timeframe="5m") is checked


def test_result_frames_are_built_only_when_read(btc_five):
    btc, _ = btc_five
    r = run_backtest(btc, "sma_cross", {"fast": 5, "slow": 20}, PLAN, COSTS, timeframe="1m")
    assert "trades" not in r.__dict__ and "legs" not in r.__dict__ and "equity" not in r.__dict__
    assert len(r.trades) == r.metrics["n_trades"] == len(r.fills.entry_bar) > 0
    assert r.trades is r.trades  # built once
    assert r.equity.to_numpy().tolist() == r.fills.equity.tolist() and (r.equity.index == btc.index).all()
    assert r.legs["trade"].tolist() == r.fills.leg_trade.tolist()
