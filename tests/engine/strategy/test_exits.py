"""ExitPlan and Costs: parsing, validation messages, round trips."""
from __future__ import annotations

import math

import pytest

from engine.strategy import exits
from engine.errors import ConfigError
from engine.backtest.records_nb import account_dt, plan_dt
from engine.strategy.exits import Costs, ExitPlan, parse_tp_ladder


def test_parse_tp_ladder():
    assert parse_tp_ladder("0.9:50,1.4:30,2.1:20") == ((0.9, 50.0), (1.4, 30.0), (2.1, 20.0))
    assert parse_tp_ladder("") == ()
    assert exits.format_tp_ladder(((0.9, 50.0), (1.4, 50.0))) == "0.9:50,1.4:50"


@pytest.mark.parametrize("text, message", [
    ("0.9:50,1.4:30", "allocations sum to 80 %: expected 100"),
    ("0.9-50", "step '0.9-50' is not 'pct:alloc'"),
    ("1.4:50,0.9:50", "take-profit 0.9 %: expected a finite percentage > 0 and above the previous step"),
    ("-1:100", "take-profit -1 %"),
    ("1:0,2:100", "allocation 0 %"),
])
def test_bad_ladders_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_tp_ladder(text, where="--tp")


def test_from_dict_accepts_the_entries_config_risk_block_and_round_trips():
    risk = {"tp": "0.9:50,1.4:30,2.1:20", "sl_pct": -0.5, "sl_atr_mult": None, "atr_period": 14, "breakeven": True,
            "breakeven_offset_pct": 0.05, "trail_pct": None, "trail_atr_mult": None, "use_exit_signal": True,
            "max_hold_bars": 240, "fee_bps": 10, "slippage_bps": 2}
    plan = ExitPlan.from_dict(risk, where="entries_config.json → risk")
    assert plan.tp_ladder[0] == (0.9, 50.0) and plan.sl_pct == -0.5 and plan.max_hold_bars == 240
    assert ExitPlan.from_dict(plan.to_dict(), where="x") == plan


@pytest.mark.parametrize("d, message", [
    ({"tp": "1:100", "sl_pct": 0.5}, r"risk.sl_pct = 0.5: expected a negative percentage"),
    ({"alloc_pc": 1}, r'risk: unknown key "alloc_pc"'),
    ({"sl_pc": -1}, r'Did you mean "sl_pct"\?'),
    ({"sl_pct": -1, "sl_atr_mult": 2}, "expected at most one stop-loss"),
    ({"trail_pct": 1, "trail_atr_mult": 2}, "expected at most one trailing stop"),
    ({"max_hold_bars": 0}, r"risk.max_hold_bars = 0: expected an integer ≥ 1"),
    ({"breakeven": True, "tp": None}, "breakeven = true needs a take-profit ladder"),
    ({"breakeven": "yes", "tp": "1:100"}, r"risk.breakeven = 'yes': expected true or false"),
    ({"atr_period": 0}, r"risk.atr_period = 0"),
    ({"lot_size_base": -1}, r"risk.lot_size_base = -1: expected a number > 0"),
    ({"tp": 5}, r"risk.tp = 5: expected"),
    ({"trail_pct": float("nan")}, "expected a finite number"),
])
def test_bad_plans_name_where_and_key(d, message):
    with pytest.raises(ConfigError, match=message):
        ExitPlan.from_dict(d, where="risk")


def test_costs():
    assert Costs(10, 2).fee_rate == 0.001 and Costs(10, 2).slippage_rate == 0.0002
    with pytest.raises(ConfigError, match=r"costs.slippage_bps = inf"):
        Costs(0, float("inf"))


def test_one_declaration_of_the_exit_rules_and_costs():
    # the config schema's risk block is derived from the ExitPlan and Costs fields: same keys, same defaults
    from engine.config import schema

    plan, costs = ExitPlan(), Costs()
    risk = {k: key.default for k, key in schema.RISK.keys.items()}
    assert ExitPlan.from_dict(risk, where="schema") == plan
    assert Costs(fee_bps=risk["fee_bps"], slippage_bps=risk["slippage_bps"]) == costs
    assert risk["tp"] == "0.9:50,1.4:30,2.1:20" and risk["breakeven"] is True and risk["max_hold_bars"] == 240
    assert (costs.fee_bps, costs.slippage_bps) == (10.0, 2.0)
    assert set(schema.RISK.keys) == {"tp", "sl_pct", "sl_atr_mult", "atr_period", "breakeven", "breakeven_offset_pct",
                                     "trail_pct", "trail_atr_mult", "use_exit_signal", "max_hold_bars", "fee_bps",
                                     "slippage_bps"}


def test_only_switches_every_other_rule_off():
    plan = ExitPlan.only(tp_ladder="1:100")
    assert plan.tp_ladder == ((1.0, 100.0),) and plan.sl_pct is None and not plan.breakeven
    assert plan.max_hold_bars is None and plan.trail_pct is None


def test_levels_give_the_prices_the_kernel_checks():
    # entry 200: TP 200 × 1.009 = 201.8 (50 %), × 1.014 = 202.8 (30 %), × 1.021 = 204.2 (20 %);
    # stop 200 × 0.995 = 199; breakeven 200 × 1.0005 = 200.1
    lv = ExitPlan().levels(200.0)
    assert lv.take_profit == pytest.approx((201.8, 202.8, 204.2))
    assert lv.allocation_pct == (50.0, 30.0, 20.0)
    assert lv.stop_loss == pytest.approx(199.0) and lv.breakeven_stop == pytest.approx(200.1)
    atr = ExitPlan.only(sl_atr_mult=2.0).levels(100.0, atr=1.5)
    assert atr.stop_loss == pytest.approx(97.0) and atr.take_profit == () and atr.breakeven_stop is None
    assert ExitPlan.only(sl_atr_mult=2.0).levels(100.0, atr=float("nan")).stop_loss is None  # ATR warm-up
    with pytest.raises(ConfigError, match="entry_price = 0: expected a finite price > 0"):
        ExitPlan().levels(0)
