"""run_backtest / run_grid / run_single_csv on real candles: agreement, outputs, bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.fileio import json_safe

from engine.backtest import metrics
from engine.backtest import check_candles, run_backtest, run_grid, run_single_csv
from engine.backtest.results import FILL_COLUMNS, LEG_COLUMNS, TRADE_COLUMNS
from engine.data import index_ms
from engine.errors import ConfigError, DataError
from engine.research.reports import Curve
from engine.strategy.exits import Costs, ExitPlan
from tests.engine.backtest.reference_simulator import load_sample_slice

PLAN = ExitPlan.only(tp_ladder="0.3:50,0.6:30,0.9:20", sl_pct=-0.4, breakeven=True, breakeven_offset_pct=0.02,
                max_hold_bars=120)
COSTS = Costs(10, 2)


@pytest.fixture(scope="module")
def btc():
    return load_sample_slice("BTCUSDT", 0, 4000)


def _same(a: dict, b: dict) -> None:
    for k in metrics.METRIC_KEYS:
        if isinstance(a[k], float) and math.isnan(a[k]):
            assert math.isnan(b[k]), k
        else:
            assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


GRIDS = {
    "sma_cross": [{"fast": f, "slow": s} for f in (5, 10) for s in (20, 40)],
    "ema_cross": [{"fast": 8, "slow": 21}, {"fast": 12, "slow": 26}],
    "rsi_revert": [{"period": 14, "oversold": 30, "exit_level": 55}, {"period": 7, "oversold": 25, "exit_level": 60}],
    "bollinger_breakout": [{"period": 20, "n_std": 2.0}, {"period": 20, "n_std": 1.5}],
    "donchian_breakout": [{"period": 20}, {"period": 55}],
}


@pytest.mark.parametrize("signal", sorted(GRIDS))
def test_grid_metrics_equal_single_runs(btc, signal):
    plan = ExitPlan.only(tp_ladder="0.5:100", sl_atr_mult=2.0, trail_pct=0.8) if signal == "donchian_breakout" else PLAN
    grid = run_grid(btc, signal, GRIDS[signal], plan, COSTS, timeframe="1m", details=True)
    assert len(grid) == len(GRIDS[signal])
    assert list(run_grid(btc, signal, GRIDS[signal][:1], plan, COSTS, timeframe="1m")[0]) == list(metrics.METRIC_KEYS)
    for params, g in zip(GRIDS[signal], grid):
        r = run_backtest(btc, signal, params, plan, COSTS, timeframe="1m")  # trade list on demand
        _same(g, r.metrics)
        assert g["params"] == r.params and g["ambiguity"] == r.ambiguity


def test_result_outputs(btc):
    r = run_backtest(btc, "sma_cross", {"fast": 10, "slow": 30}, PLAN, COSTS, timeframe="1m")
    assert list(r.trades.columns) == list(TRADE_COLUMNS) and list(r.legs.columns) == list(LEG_COLUMNS)
    assert r.metrics["n_trades"] == len(r.trades) > 10
    assert set(r.legs["reason"]) <= {"tp1", "tp2", "tp3", "sl", "be", "signal", "time", "end"}
    assert r.equity.index.equals(btc.index) and r.equity.iloc[0] == 10_000.0
    # final equity = initial cash + sum of trade PnL (every trade closed by the end)
    assert r.equity.iloc[-1] == pytest.approx(10_000.0 + r.trades["pnl_quote"].sum(), rel=1e-12)
    # quantities per leg add up to the trade's quantity
    q = r.legs.groupby("trade")["qty_base"].sum().to_numpy()
    np.testing.assert_allclose(q, r.trades["qty_base"].to_numpy(), rtol=1e-12)
    json.dumps(json_safe(r.metrics), allow_nan=False)
    # the kernel's streaming metrics equal the definitions of engine.metrics on the trade list + equity
    t = r.trades
    _same(metrics.compute_metrics(t["pnl_quote"], t["return_pct"], r.equity, initial_cash_quote=10_000.0,
                                  n_bars_held=metrics.bars_held(t["entry_bar"], t["exit_bar"]),
                                  periods_per_year=525_600.0), r.metrics)
    # the one producer of curve files takes the equity and trades of any backtest
    curve = Curve.from_equity(r.equity, r.trades, max_points=None)
    assert len(curve.timestamps_ms) == len(btc) and curve.trades[0].reason == r.trades["exit_reasons"].iloc[0]
    assert curve.timestamps_ms[0] == 1617321600000  # 2021-04-02 00:00 UTC


def test_intrabar_refinement_with_1m_under_5m(btc):
    five = btc.resample("5min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).dropna()
    plan = ExitPlan.only(tp_ladder="0.1:100", sl_pct=-0.1)  # tight levels: a few 5m bars touch both
    plain = run_backtest(five, "sma_cross", {"fast": 3, "slow": 8}, plan, COSTS, timeframe="5m")
    refined = run_backtest(five, "sma_cross", {"fast": 3, "slow": 8}, plan, COSTS, timeframe="5m", lower_candles=btc)
    a, b = plain.ambiguity, refined.ambiguity
    assert a["n_ambiguous_bars"] == a["n_unresolved_stop_first"] > 0
    assert b["lower_timeframe_used"] and b["n_ambiguous_bars"] > 0
    assert b["n_resolved_target_first"] + b["n_resolved_stop_first"] + b["n_unresolved_stop_first"] == b["n_ambiguous_bars"]
    assert b["n_resolved_target_first"] + b["n_resolved_stop_first"] > 0
    with pytest.raises(DataError, match="lower_candles: spacing 300000 ms is not below the 5m bars"):
        run_backtest(five, "sma_cross", {}, plan, COSTS, timeframe="5m", lower_candles=five)


def test_run_single_csv_writes_trades(tmp_path, btc):
    csv = tmp_path / "1m.csv"
    out = btc.copy()
    out.insert(0, "timestamp", index_ms(btc.index))
    out.to_csv(csv, index=False)
    r = run_single_csv(csv, "1m", "sma_cross", {"fast": 10, "slow": 30}, ExitPlan.only(tp_ladder="1.0:100", sl_pct=-0.5),
                       Costs(10, 0))
    path = r.write_trades_csv(tmp_path / "out" / "trades.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == list(TRADE_COLUMNS) and len(back) == r.metrics["n_trades"]
    assert back["pnl_quote"].to_numpy() == pytest.approx(r.trades["pnl_quote"].to_numpy())
    legs = pd.read_csv(r.write_trades_csv(tmp_path / "legs.csv", per_leg=True))
    assert list(legs.columns) == list(FILL_COLUMNS) and len(legs) == len(r.legs)
    # per trade: leg quantities add up, exit fees + entry fee = the trade's fees
    np.testing.assert_allclose(legs.groupby("trade")["qty_base"].sum(), back["qty_base"], rtol=1e-12)
    fees = legs.groupby("trade")["fee_quote"].sum() + legs.groupby("trade")["entry_fee_quote"].first()
    np.testing.assert_allclose(fees, back["fees_quote"], rtol=1e-9)
    with pytest.raises(DataError, match="no such candle file"):
        run_single_csv(tmp_path / "missing.csv", "1m", "sma_cross", {}, ExitPlan.only(), Costs())


def test_bad_inputs(btc):
    with pytest.raises(ConfigError, match="param_grid: expected a non-empty list"):
        run_grid(btc, "sma_cross", [], PLAN, COSTS, timeframe="1m")
    with pytest.raises(ConfigError, match=r"param_grid\[1\]: fast = 50 must be below slow = 20"):
        run_grid(btc, "sma_cross", [{"fast": 5}, {"fast": 50, "slow": 20}], PLAN, COSTS, timeframe="1m")
    with pytest.raises(ConfigError, match="timeframe '2m'"):
        run_backtest(btc, "sma_cross", {}, PLAN, COSTS, timeframe="2m")
    with pytest.raises(ConfigError, match="initial_cash_quote = 0"):
        run_backtest(btc, "sma_cross", {}, PLAN, COSTS, timeframe="1m", initial_cash_quote=0)
    bad = btc.iloc[:50].copy()
    bad.iloc[7, bad.columns.get_loc("high")] = 1.0
    with pytest.raises(DataError, match=r"candles row 7: high 1.0 \(low [0-9.]+\), expected high >= low"):
        check_candles(bad)
    with pytest.raises(DataError, match="row 2: timestamp [0-9]+, expected a timestamp after the previous row"):
        check_candles(pd.concat([btc.iloc[:2], btc.iloc[1:3]]))
    with pytest.raises(DataError, match="no candles"):
        check_candles(btc.iloc[:0])


def test_start_bar_trades_only_inside_the_window(btc):
    # Pick k so that the full run is flat at the close of bar k-1 (a trade exited on k-1 and no
    # other was open). From there both runs see the same signals and the same flat account, so the
    # window run equals the tail of the full run, scaled by the capital it started with.
    full = run_backtest(btc, "sma_cross", {"fast": 10, "slow": 30}, PLAN, COSTS, timeframe="1m")
    t = full.trades
    k = int(t["exit_bar"].iloc[len(t) // 2]) + 1
    assert k not in set(t["entry_bar"])  # nothing entered at k's open → flat at the close of k-1
    win = run_backtest(btc, "sma_cross", {"fast": 10, "slow": 30}, PLAN, COSTS, timeframe="1m", start_bar=k)
    assert win.equity.index.equals(btc.index[k:])
    later = t[t["entry_bar"] >= k]
    np.testing.assert_array_equal(win.trades["entry_bar"].to_numpy(), later["entry_bar"].to_numpy() - k)
    np.testing.assert_array_equal(win.trades["entry_time"].to_numpy(), later["entry_time"].to_numpy())
    np.testing.assert_allclose(win.trades["return_pct"], later["return_pct"], rtol=1e-9)
    scale = 10_000.0 / full.equity.iloc[k - 1]
    np.testing.assert_allclose(win.equity.to_numpy(), full.equity.to_numpy()[k:] * scale, rtol=1e-9)
    assert win.metrics["exposure_pct"] == pytest.approx(
        metrics.bars_held(win.trades["entry_bar"], win.trades["exit_bar"]) / (len(btc) - k) * 100)
    tw = win.trades
    _same(metrics.compute_metrics(tw["pnl_quote"], tw["return_pct"], win.equity, initial_cash_quote=10_000.0,
                                  n_bars_held=metrics.bars_held(tw["entry_bar"], tw["exit_bar"]),
                                  periods_per_year=525_600.0), win.metrics)
    with pytest.raises(ConfigError, match=r"start_bar = 4000: expected an integer row in 0 … 3999"):
        run_backtest(btc, "sma_cross", {}, PLAN, COSTS, timeframe="1m", start_bar=4000)


def test_stake_caps_what_each_entry_spends(btc):
    """A fixed stake (freqtrade's stake_amount): every entry spends the stake, fee included, while the
    cash lasts; the trades' times and reasons are those of the all-cash run (sizing changes no signal)."""
    full = run_backtest(btc, "sma_cross", {"fast": 5, "slow": 20}, PLAN, COSTS, timeframe="1m")
    staked = run_backtest(btc, "sma_cross", {"fast": 5, "slow": 20}, PLAN, COSTS, timeframe="1m", stake_quote=100.0)
    t = staked.trades
    assert len(t) == len(full.trades) > 5
    spent = t["qty_base"] * t["entry_price"] * (1 + COSTS.fee_rate)
    assert np.allclose(spent, 100.0, rtol=1e-12)
    assert (t["entry_ms"].to_numpy() == full.trades["entry_ms"].to_numpy()).all()
    assert (t["exit_reasons"].to_numpy() == full.trades["exit_reasons"].to_numpy()).all()
    # the stake bounds the loss: the equity never moves by more than the stakes at risk
    assert abs(staked.equity.iloc[-1] - 10_000.0) < 100.0 * len(t)
    # a stake above the cash spends the cash (the all-cash run)
    big = run_backtest(btc, "sma_cross", {"fast": 5, "slow": 20}, PLAN, COSTS, timeframe="1m", stake_quote=1e9)
    assert np.allclose(big.trades["qty_base"], full.trades["qty_base"], rtol=1e-12)
    for bad in (0, -5.0, float("nan"), True):
        with pytest.raises(ConfigError, match="stake_quote = "):
            run_backtest(btc, "sma_cross", {}, PLAN, COSTS, timeframe="1m", stake_quote=bad)
