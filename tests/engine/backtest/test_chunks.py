"""The chunked grid (engine.backtest.chunks): the same statistics as the whole-series grid, field by field."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.backtest import chunks
from engine.backtest import kernel_nb as sim
from engine.backtest import run_backtest, run_grid
from engine.backtest.api import grid_inputs, grid_setup
from engine.strategy import signals
from engine.strategy.exits import Costs, ExitPlan
from tests.engine.backtest.reference_simulator import load_sample_slice

COSTS = Costs(10, 2)
GRIDS = {
    "sma_cross": [{"fast": f, "slow": s} for f in (3, 8) for s in (12, 40)],
    "ema_cross": [{"fast": f, "slow": s} for f in (5, 12) for s in (20, 50)],
    "rsi_revert": [{"period": 7, "oversold": 30, "exit_level": 55}, {"period": 14, "oversold": 25, "exit_level": 60}],
    "bollinger_breakout": [{"period": p, "n_std": k} for p in (20, 50) for k in (1.0, 2.0)],
    "donchian_breakout": [{"period": p} for p in (10, 30, 120)],
}
PLANS = {
    # a ladder with breakeven and a maximum hold: many short trades, `time` exits at chunk edges
    "ladder": ExitPlan.only(tp_ladder="0.3:50,0.6:30,0.9:20", sl_pct=-0.4, breakeven=True, breakeven_offset_pct=0.02,
                            max_hold_bars=120),
    # ATR stop and trail (the ATR of the bar before a chunk's first bar), long holds
    "atr": ExitPlan.only(tp_ladder="2:100", sl_atr_mult=2.0, trail_atr_mult=3.0, max_hold_bars=400),
    # wide levels, no exit signal: most trades end at the maximum hold, counted across chunk edges
    "hold": ExitPlan.only(tp_ladder="5:100", sl_pct=-5.0, max_hold_bars=45, use_exit_signal=False),
    # percent trail, no exit signal, no maximum hold, entry bar not checked: trades span many chunks
    "trail": ExitPlan.only(tp_ladder="3:100", sl_pct=-2.0, trail_pct=0.8, use_exit_signal=False, max_hold_bars=None,
                           check_entry_bar=False),
}


@pytest.fixture(scope="module")
def candles():
    one = load_sample_slice("BTCUSDT", 0, 30_000)
    five = one.resample("5min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).dropna()
    return {"1m": (one.iloc[:9000], None), "5m+1m": (five, one)}


def _assert_same_stats(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    for name in want.dtype.names:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{what}: {name}")


@pytest.mark.parametrize("data", ["1m", "5m+1m"])
@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("signal", sorted(signals.SIGNALS))
def test_chunked_grid_equals_the_whole_series_grid(candles, data, plan_name, signal):
    bars, lower = candles[data]
    timeframe = "5m" if lower is not None else "1m"
    plan = PLANS[plan_name]
    whole = grid_inputs(bars, signal, GRIDS[signal], plan, COSTS, timeframe=timeframe, lower_candles=lower)
    k = whole.kernel
    want = sim.run_grid_stats(k.bars, whole.lines, whole.entry_rules, whole.exit_rules, k.ladder, k.plan, k.account,
                              k.lower, n_groups=2, block_bars=2048)
    assert want["n_trades"].sum() > 0
    if lower is not None and plan_name == "ladder":  # tight levels: 5m bars that touch both, replayed on 1m
        assert want["n_ambiguous"].sum() > 0 and (want["n_target_first"] + want["n_stop_first"]).sum() > 0
    g = grid_setup(bars, signal, GRIDS[signal], plan, COSTS, timeframe=timeframe, lower_candles=lower)
    for chunk in (97, 4096, 5000):
        got = chunks.run_grid_chunked(k.bars, k.lower, g.keys, g.entry_rules, g.exit_rules, k.ladder, k.plan,
                                      k.account, n_groups=2, block_bars=64, chunk_bars=chunk)
        _assert_same_stats(got, want, f"{signal} {plan_name} {data} chunks of {chunk}")


@pytest.mark.parametrize("plan_name", sorted(PLANS))
def test_trades_cross_chunk_edges(candles, plan_name):
    # the cases above put chunk edges inside open positions (97-bar chunks), for every plan
    bars, _ = candles["1m"]
    r = run_backtest(bars, "sma_cross", GRIDS["sma_cross"][0], PLANS[plan_name], COSTS, timeframe="1m")
    entry, exit_ = r.trades["entry_bar"].to_numpy(), r.trades["exit_bar"].to_numpy()
    assert ((entry // 97) != (exit_ // 97)).sum() >= 10


def _same_metrics(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert list(x) == list(y)
        for key in x:
            same = (isinstance(x[key], float) and math.isnan(x[key]) and math.isnan(y[key])) or x[key] == y[key]
            assert same, (key, x[key], y[key])


def test_run_grid_in_many_chunks_equals_one_chunk_and_single_runs(candles, monkeypatch):
    bars, _ = candles["1m"]
    plan = PLANS["ladder"]
    one = run_grid(bars, "sma_cross", GRIDS["sma_cross"], plan, COSTS, timeframe="1m", details=True)
    monkeypatch.setattr(chunks, "CHUNK_BARS", 700)
    monkeypatch.setattr(chunks, "MIN_CHUNK_BARS", 500)
    assert chunks.chunk_bars_for(4) == 700
    many = run_grid(bars, "sma_cross", GRIDS["sma_cross"], plan, COSTS, timeframe="1m", details=True)
    _same_metrics(many, one)
    for params, m in zip(GRIDS["sma_cross"], many):
        r = run_backtest(bars, "sma_cross", params, plan, COSTS, timeframe="1m")
        assert m["n_trades"] == r.metrics["n_trades"]
        assert m["total_return_pct"] == pytest.approx(r.metrics["total_return_pct"], rel=1e-12)


def test_chunk_size_follows_the_number_of_lines():
    # as long as the line buffer (8 × (1 + n_lines) × bars) fits CHUNK_LINE_BYTES, within the bounds
    assert chunks.chunk_bars_for(1) == chunks.CHUNK_BARS
    assert chunks.chunk_bars_for(20) == 399_457 and chunks.chunk_bars_for(200) == 41_734
    for n_lines in (20, 200, 2000):
        assert 8 * (1 + n_lines) * chunks.chunk_bars_for(n_lines) <= chunks.CHUNK_LINE_BYTES
    assert chunks.chunk_bars_for(100_000) == chunks.MIN_CHUNK_BARS


def test_bad_chunk_size_and_records_are_refused(candles):
    bars, _ = candles["1m"]
    g = grid_setup(bars.iloc[:500], "sma_cross", GRIDS["sma_cross"], PLANS["ladder"], COSTS, timeframe="1m")
    k = g.kernel
    with pytest.raises(ValueError, match="chunk_bars = 2: expected at least 3 bars"):
        chunks.run_grid_chunked(k.bars, k.lower, g.keys, g.entry_rules, g.exit_rules, k.ladder, k.plan, k.account,
                                n_groups=1, block_bars=64, chunk_bars=2)
    states, stats = sim.new_grid_records(k.account, 3)  # 3 records for 4 combinations
    lines, _ = signals.build_lines(signals.BarArrays(*k.bars[:4]), g.keys)
    with pytest.raises(TypeError, match=r"states: expected a writable state_dt record array of shape \(4,\)"):
        sim.run_grid_range(k.bars, lines, g.entry_rules, g.exit_rules, k.ladder, k.plan, k.account, None, states,
                           stats, j0=0, j1=500, first_bar=0, n_groups=1, block_bars=64)
