"""ExitPlan and Costs: parsing, validation messages, round trips."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine import exits
from engine.errors import ConfigError
from engine.exits import Costs, ExitPlan, parse_tp_ladder


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
    ({"breakeven": True}, "breakeven = true needs a take-profit ladder"),
    ({"breakeven": "yes", "tp": "1:100"}, r"risk.breakeven = 'yes': expected true or false"),
    ({"atr_period": 0}, r"risk.atr_period = 0"),
    ({"lot_size_base": -1}, r"risk.lot_size_base = -1: expected a number > 0"),
    ({"tp": 5}, r"risk.tp = 5: expected"),
    ({"trail_pct": float("nan")}, "expected a finite number"),
])
def test_bad_plans_name_where_and_key(d, message):
    with pytest.raises(ConfigError, match=message):
        ExitPlan.from_dict(d, where="risk")


def test_kernel_args_layout():
    plan = ExitPlan(tp_ladder="1:60,2:40", sl_pct=-0.5, breakeven=True, breakeven_offset_pct=0.1, max_hold_bars=5)
    lv, al, p = plan.as_kernel_args(Costs(10, 2), 1000.0)
    assert lv.tolist() == [0.01, 0.02] and al.tolist() == [0.6, 0.4]
    assert p[exits.P_SL_PCT] == -0.005 and math.isnan(p[exits.P_TRAIL_PCT])
    assert p[exits.P_FEE] == 0.001 and p[exits.P_SLIP] == 0.0002 and p[exits.P_MAX_HOLD] == 5
    assert p[exits.P_CASH] == 1000.0 and p.dtype == np.float64


def test_costs():
    assert Costs(10, 2).fee_rate == 0.001 and Costs(10, 2).slippage_rate == 0.0002
    with pytest.raises(ConfigError, match=r"costs.slippage_bps = inf"):
        Costs(0, float("inf"))
