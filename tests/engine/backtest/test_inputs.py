"""The kernels' inputs built from the one exit model."""
from __future__ import annotations

import math

from engine.backtest.inputs import kernel_account, kernel_plan
from engine.backtest.records_nb import account_dt, plan_dt
from engine.strategy.exits import Costs, ExitPlan


def test_kernel_inputs_by_name():
    plan = ExitPlan(tp_ladder="1:60,2:40", sl_pct=-0.5, breakeven=True, breakeven_offset_pct=0.1, max_hold_bars=5,
                    lot_size_base=0.5)
    ladder, p = kernel_plan(plan)
    assert ladder.level_frac.tolist() == [0.01, 0.02] and ladder.alloc_frac.tolist() == [0.6, 0.4]
    assert p.dtype == plan_dt and p.shape == (1,)
    assert p["stop_loss_frac"][0] == -0.005 and math.isnan(p["trail_frac"][0]) and math.isnan(p["stop_loss_atr_mult"][0])
    assert p["breakeven"][0] and p["breakeven_offset_frac"][0] == 0.001 and p["max_hold_bars"][0] == 5
    assert kernel_plan(ExitPlan.only())[1]["max_hold_bars"][0] == -1
    # costs, cash and lot size are the account's, not exit rules
    a = kernel_account(Costs(10, 2), 1000.0, lot_size_base=plan.lot_size_base)
    assert a.dtype == account_dt and a.shape == (1,)
    assert (a["fee_rate"][0], a["slippage_rate"][0], a["initial_cash_quote"][0], a["lot_size_base"][0]) == (
        0.001, 0.0002, 1000.0, 0.5)
    assert kernel_account(Costs(10, 2), 1000.0)["lot_size_base"][0] == 0.0
    assert not set(plan_dt.names) & set(account_dt.names)
