"""The benchmark's bare reference loop does the simulator's work exactly: same trades, same cash."""
from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import run_backtest, run_grid
from engine.backtest.reference_nb import bare_sma_cross_grid_nb, bare_sma_cross_nb
from engine.strategy import indicators_nb as ind
from engine.strategy.exits import Costs, ExitPlan
from tests.engine.backtest.reference_simulator import load_sample_slice

PLANS = [ExitPlan.only(tp_ladder="0.9:50,1.4:30,2.1:20", sl_pct=-0.5, breakeven=True, breakeven_offset_pct=0.05),
         ExitPlan.only(tp_ladder="0.2:50,0.6:50", sl_pct=-0.4, breakeven=False),
         ExitPlan.only(tp_ladder="0.2:40,0.5:60", sl_pct=-0.3, breakeven=True, breakeven_offset_pct=0.0, max_hold_bars=30),
         ExitPlan.only(tp_ladder="0.3:100", sl_pct=-1.0, breakeven=False, use_exit_signal=True, max_hold_bars=None)]


@pytest.mark.parametrize("plan", PLANS, ids=["default", "no-breakeven", "tight-hold", "one-step"])
def test_bare_loop_equals_the_simulator(plan):
    candles = load_sample_slice("ETHUSDT", 0, 20_000)
    costs = Costs(10, 2)
    o, h, lo, c = (candles[k].to_numpy() for k in ("open", "high", "low", "close"))
    lvl = np.array([p / 100 for p, _ in plan.tp_ladder])
    alloc = np.array([a / 100 for _, a in plan.tp_ladder])
    be = plan.breakeven_offset_pct / 100 if plan.breakeven else np.nan  # NaN: no breakeven (never above the stop)
    rule = (lvl, alloc, plan.sl_pct / 100, be, plan.max_hold_bars or 0, costs.fee_rate, costs.slippage_rate, 10_000.0)
    combos = [{"fast": f, "slow": s} for f in (5, 10, 20) for s in (30, 60)]
    for q in combos:
        sim = run_backtest(candles, "sma_cross", q, plan, costs, timeframe="1m")
        trades, cash = bare_sma_cross_nb(o, h, lo, c, ind.sma_nb(c, q["fast"]), ind.sma_nb(c, q["slow"]), *rule)
        assert trades == sim.metrics["n_trades"] > 10
        assert cash == pytest.approx(sim.equity.iloc[-1], rel=1e-12)
    periods = sorted({v for q in combos for v in q.values()})
    lines = np.stack([ind.sma_nb(c, k) for k in periods])
    pairs = np.array([[periods.index(q["fast"]), periods.index(q["slow"])] for q in combos], dtype=np.int64)
    trades, cash = bare_sma_cross_grid_nb(o, h, lo, c, lines, pairs, *rule)
    grid = run_grid(candles, "sma_cross", combos, plan, costs, timeframe="1m")
    assert trades.tolist() == [m["n_trades"] for m in grid]
    assert np.allclose(cash, [10_000.0 * (1 + m["total_return_pct"] / 100) for m in grid], rtol=1e-10)
