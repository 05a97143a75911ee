"""Simulator kernel: hand-checked exit reasons, intrabar rules, and properties against the reference.

Hand-checked frames use cash 1000 quote, prices near 100, no costs unless stated, so a full
position is 10 base units. ``E`` marks the entry signal bar (bar 0 unless stated): the entry fills
at the open of the next bar.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.backtest import metrics
from engine.backtest.inputs import kernel_account, kernel_plan
from engine.strategy import indicators_nb as indicators
from engine.strategy import signals
from engine.backtest import kernel_nb as sim
from engine.backtest import records_nb as rec
from engine.backtest import run_signals
from engine.errors import ConfigError, DataError
from engine.strategy.exits import Costs, ExitPlan
from tests.engine.backtest.reference_simulator import frame, reference_backtest

REPO = Path(__file__).resolve().parents[3]
NO_COSTS = Costs(0.0, 0.0)


def run(rows, plan, *, entries=(0,), exits=(), costs=NO_COSTS, cash=1000.0, lower=None, freq="1min", tf="1m"):
    candles = frame(rows, freq=freq)
    e = np.zeros(len(rows), bool)
    x = np.zeros(len(rows), bool)
    e[list(entries)] = True
    x[list(exits)] = True
    return run_signals(candles, e, x, plan, costs, timeframe=tf, initial_cash_quote=cash, lower_candles=lower)


def legs(result):
    return [(int(r.bar), round(float(r.price), 10), round(float(r.qty_base), 10), r.reason)
            for r in result.legs.itertuples()]


# ------------------------------------------------------------------ hand-checked exit reasons

def test_tp_ladder_fills_tp1_then_tp2():
    # entry at open of bar 1 = 100 → qty = 1000/100 = 10; TP1 = 100×1.01 = 101 (50 % = 5),
    # TP2 = 100×1.02 = 102 (the rest, 5). Bar 2 high 101.5 ≥ 101 → tp1 at 101; bar 3 high
    # 102.5 ≥ 102 → tp2 at 102. PnL = 5×1 + 5×2 = 15. Equity bar 2 = 505 cash + 5×101 = 1010.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 101.5, 99.8, 101),
            (101, 102.5, 100.5, 102), (102, 102, 102, 102)]
    r = run(rows, ExitPlan.only(tp_ladder="1:50,2:50"))
    assert legs(r) == [(2, 101.0, 5.0, "tp1"), (3, 102.0, 5.0, "tp2")]
    assert r.trades["pnl_quote"].tolist() == pytest.approx([15.0])
    assert r.trades["exit_reasons"].tolist() == ["tp1+tp2"]
    assert r.equity.tolist() == pytest.approx([1000, 1000, 1010, 1015, 1015])
    assert r.trades["exit_price"].tolist() == pytest.approx([101.5])  # (5×101 + 5×102) / 10


def test_stop_loss_fills_at_stop_level():
    # stop = 100 × (1 − 0.01) = 99; bar 2 low 98.5 ≤ 99, open 100 > 99 → sell 10 at 99: PnL −10.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100.2, 98.5, 99), (99, 99, 99, 99)]
    r = run(rows, ExitPlan.only(sl_pct=-1.0))
    assert legs(r) == [(2, 99.0, 10.0, "sl")]
    assert r.trades["pnl_quote"].tolist() == pytest.approx([-10.0])


def test_gap_through_stop_fills_at_open():
    # stop 99, but bar 2 opens at 98 (below the stop) → fill at the open 98: PnL = 10×(98−100) = −20.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (98, 98.5, 97, 98), (98, 98, 98, 98)]
    r = run(rows, ExitPlan.only(sl_pct=-1.0))
    assert legs(r) == [(2, 98.0, 10.0, "sl")]
    assert r.trades["pnl_quote"].tolist() == pytest.approx([-20.0])


def test_gap_through_target_fills_at_open():
    # TP 101; bar 2 opens at 103 → the target sells at the open 103 (better than the level): PnL 30.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (103, 104, 102, 103), (103, 103, 103, 103)]
    r = run(rows, ExitPlan.only(tp_ladder="1:100"))
    assert legs(r) == [(2, 103.0, 10.0, "tp1")]


def test_breakeven_after_tp1_from_next_bar():
    # TP1 101 (50 %), TP2 103; stop 99; breakeven offset 0.1 % → 100.1 once TP1 filled.
    # Bar 2: high 101.2 → tp1 5 @ 101; its low 100.05 is above the stop of bar 2 (still 99).
    # Bar 3: stop now max(99, 100.1) = 100.1; low 100.0 ≤ 100.1 → be 5 @ 100.1.
    # PnL = 5×1 + 5×0.1 = 5.5.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100.5, 101.2, 100.05, 100.9),
            (100.8, 100.9, 100.0, 100.2), (100, 100, 100, 100)]
    r = run(rows, ExitPlan.only(tp_ladder="1:50,3:50", sl_pct=-1.0, breakeven=True, breakeven_offset_pct=0.1))
    assert legs(r) == [(2, 101.0, 5.0, "tp1"), (3, 100.1, 5.0, "be")]
    assert r.trades["pnl_quote"].tolist() == pytest.approx([5.5])
    assert r.trades["exit_reason"].tolist() == ["be"]


def test_trailing_stop_follows_highest_high_of_previous_bars():
    # trail 2 %. Bar 1 (entry 100): trail = 100×0.98 = 98, low 99.5 safe; peak → 101.
    # Bar 2: trail 101×0.98 = 98.98, low 100 safe; peak → 104.
    # Bar 3: trail 104×0.98 = 101.92, low 101.5 ≤ 101.92 → sell 10 @ 101.92: PnL 19.2.
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100.5), (100.5, 104, 100, 103.5),
            (103, 103.5, 101.5, 102), (102, 102, 102, 102)]
    r = run(rows, ExitPlan.only(trail_pct=2.0))
    assert legs(r) == [(3, 101.92, 10.0, "trail")]
    assert r.trades["pnl_quote"].tolist() == pytest.approx([19.2])


def test_exit_signal_fills_at_next_open():
    # exit signal on the close of bar 2 → sell at the open of bar 3 = 103: PnL 30.
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100.5), (100.5, 103, 100, 102.5),
            (103, 104, 102, 103), (103, 103, 103, 103)]
    r = run(rows, ExitPlan.only(), exits=(2,))
    assert legs(r) == [(3, 103.0, 10.0, "signal")]
    assert r.trades["pnl_quote"].tolist() == pytest.approx([30.0])


def test_max_hold_closes_at_open_of_bar_entry_plus_n():
    # entered bar 1, max_hold_bars 2 → sell at the open of bar 3 = 101: PnL 10.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100.6, 99.9, 100.4),
            (101, 101.5, 100.5, 101), (101, 101, 101, 101)]
    r = run(rows, ExitPlan.only(max_hold_bars=2))
    assert legs(r) == [(3, 101.0, 10.0, "time")]
    assert r.trades["pnl_quote"].tolist() == pytest.approx([10.0])


def test_open_position_closes_at_last_close():
    # nothing fires; the last close 102 ends the trade: PnL 20, exposure = bars 1..3 of 4 = 75 %.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 101, 99.9, 101), (101, 102, 100.5, 102)]
    r = run(rows, ExitPlan.only(sl_pct=-5.0))
    assert legs(r) == [(3, 102.0, 10.0, "end")]
    assert r.metrics["exposure_pct"] == pytest.approx(75.0)


def test_bar_touching_stop_and_target_takes_the_stop():
    # TP 101, stop 99; bar 2 has high 101.5 and low 98.5: ambiguous → stop first, 10 @ 99.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 101.5, 98.5, 100), (100, 100, 100, 100)]
    r = run(rows, ExitPlan.only(tp_ladder="1:100", sl_pct=-1.0))
    assert legs(r) == [(2, 99.0, 10.0, "sl")]
    assert r.ambiguity == {"n_ambiguous_bars": 1, "n_resolved_target_first": 0, "n_resolved_stop_first": 0,
                           "n_unresolved_stop_first": 1, "lower_timeframe_used": False}


def _five_minute_case(sub_bar2):
    # 5m bars; bar 2 touches TP 101 and stop 99. Lower 1m candles: 5 per bar, flat copies except bar 2.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 101.5, 98.5, 100), (100, 100, 100, 100)]
    lower_rows = []
    for i, (o, h, lo, c) in enumerate(rows):
        lower_rows += sub_bar2 if i == 2 else [(o, h, lo, c)] * 5
    lower = frame(lower_rows, freq="1min")
    return run(rows, ExitPlan.only(tp_ladder="1:100", sl_pct=-1.0), freq="5min", tf="5m", lower=lower)


def test_lower_candles_resolve_target_first():
    # 1m path: 100 → 101.2 (target 101 reached) → later 98.5 (stop): the target came first, 10 @ 101.
    r = _five_minute_case([(100, 101.2, 99.9, 101), (101, 101.5, 100.5, 100.6), (100.6, 100.7, 98.5, 99),
                           (99, 100, 99, 100), (100, 100, 100, 100)])
    assert legs(r) == [(2, 101.0, 10.0, "tp1")]
    assert r.ambiguity["n_resolved_target_first"] == 1 and r.ambiguity["lower_timeframe_used"]


def test_lower_candles_resolve_stop_first():
    # 1m path: first down to 98.5 (stop 99), then up to 101.5: stop first, 10 @ 99.
    r = _five_minute_case([(100, 100.1, 98.5, 99), (99, 101.5, 99, 101), (101, 101, 100, 100),
                           (100, 100, 100, 100), (100, 100, 100, 100)])
    assert legs(r) == [(2, 99.0, 10.0, "sl")]
    assert r.ambiguity["n_resolved_stop_first"] == 1


def test_fees_and_slippage_hand_checked():
    # fee 10 bps, slippage 10 bps. Entry fill = 100 × 1.001 = 100.1; qty = 1000 / (100.1 × 1.001).
    # TP 1 % → level 101.101; exit fill = 101.101 × 0.999; PnL = qty × fill × 0.999 − 1000.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 101.2, 99.9, 101), (101, 101, 101, 101)]
    r = run(rows, ExitPlan.only(tp_ladder="1:100"), costs=Costs(10, 10))
    qty = 1000 / (100.1 * 1.001)
    fill = 101.101 * 0.999
    assert r.trades["entry_price"].iloc[0] == pytest.approx(100.1)
    assert r.trades["qty_base"].iloc[0] == pytest.approx(qty)
    assert r.legs["price"].iloc[0] == pytest.approx(fill)
    assert r.trades["pnl_quote"].iloc[0] == pytest.approx(qty * fill * 0.999 - 1000)
    assert r.trades["fees_quote"].iloc[0] == pytest.approx(qty * 100.1 * 0.001 + qty * fill * 0.001)


def test_stop_closer_than_slippage_fills_at_open_never_above_the_high():
    # slippage 50 bps: entry fill = 100 × 1.005 = 100.5; stop −0.2 % → 100.5 × 0.998 = 100.299,
    # above bar 1's open 100 (and its high 100.2): the bar opened through the stop, so it sells at
    # once at the open: leg price 100 × (1 − 0.005) = 99.5, inside the bar's low–high.
    rows = [(100, 100, 100, 100), (100, 100.2, 99.8, 100), (100, 100, 100, 100)]
    r = run(rows, ExitPlan.only(sl_pct=-0.2), costs=Costs(0, 50))
    assert legs(r) == [(1, 99.5, round(1000 / 100.5, 10), "sl")]
    assert r.legs["price"].iloc[0] <= rows[1][1]
    # with check_entry_bar=False the entry bar is not checked: bar 2 opens at 100 ≤ stop → gap fill
    r2 = run(rows, ExitPlan.only(sl_pct=-0.2, check_entry_bar=False), costs=Costs(0, 50))
    assert legs(r2) == [(2, 99.5, round(1000 / 100.5, 10), "sl")]


def test_window_entering_at_its_first_open_measures_drawdown_from_the_first_close():
    # A start_bar window (walk-forward test window) can enter at its first open. The drawdown is
    # the peak-to-trough of the bar-close equity curve (DESIGN.md), whose peak starts at the first
    # close; the kernel's streaming figure must equal engine.metrics on the returned curve.
    from engine.backtest import run_backtest
    from engine.data import load_sample

    df = load_sample("BTCUSDT", "5m").iloc[:3000]
    plan = ExitPlan.only(tp_ladder="0.9:50,1.4:30,2.1:20", sl_pct=-0.5, breakeven=True, breakeven_offset_pct=0.05)
    costs = Costs(fee_bps=10, slippage_bps=2)
    full = run_backtest(df, "ema_cross", None, plan, costs, timeframe="5m")
    start = int(full.trades["entry_bar"].iloc[3])
    r = run_backtest(df, "ema_cross", None, plan, costs, timeframe="5m", start_bar=start)
    assert int(r.trades["entry_bar"].iloc[0]) == 0 and r.equity.iloc[0] < 10_000  # entered at the first open
    eq = r.equity.to_numpy()
    assert r.metrics["max_drawdown_pct"] == pytest.approx(metrics.max_drawdown_pct(eq), rel=1e-12)
    assert r.metrics["sharpe"] == pytest.approx(metrics.sharpe(eq, 365 * 288), rel=1e-9)


def test_check_entry_bar_false_skips_the_entry_bar():
    # bar 1 (entry bar) touches the stop 99 (low 98.5): checked by default, skipped with
    # check_entry_bar=False, and the trade then ends on the last close 101.
    rows = [(100, 100, 100, 100), (100, 100.5, 98.5, 100), (100, 100.5, 99.5, 100), (101, 101, 101, 101)]
    assert legs(run(rows, ExitPlan.only(sl_pct=-1.0))) == [(1, 99.0, 10.0, "sl")]
    assert legs(run(rows, ExitPlan.only(sl_pct=-1.0, check_entry_bar=False))) == [(3, 101.0, 10.0, "end")]


def test_lot_size_buys_whole_units_and_rejects_below_one_lot():
    # cash 1050 at 100 → 10 whole units, 50 quote stay in cash; equity after bar 3 = 50 + 10×101.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100), (101, 101, 101, 101)]
    r = run(rows, ExitPlan.only(lot_size_base=1.0), cash=1050.0)
    assert r.trades["qty_base"].tolist() == [10.0]
    assert r.equity.iloc[-1] == pytest.approx(1060.0)
    r = run(rows, ExitPlan.only(lot_size_base=100.0), cash=1050.0)
    assert len(r.trades) == 0 and r.n_rejected == 1 and r.reject_reason == "cash buys less than one lot"


def test_atr_stop_uses_signal_bar_atr():
    # ATR(2) on bars 0..1: TR = 2, 2 → ATR[1] = 2. Signal on bar 1 → entry at open of bar 2 = 100;
    # stop = 100 − 1.5 × 2 = 97. Bar 3 low 96.5 → sell 10 @ 97: PnL −30.
    rows = [(100, 101, 99, 100), (100, 101, 99, 100), (100, 100.5, 99.5, 100), (99, 99.5, 96.5, 97), (97, 97, 97, 97)]
    r = run(rows, ExitPlan.only(sl_atr_mult=1.5, atr_period=2), entries=(1,))
    assert legs(r) == [(3, 97.0, 10.0, "sl")]


def test_entry_signal_while_in_position_is_ignored_and_no_reentry_same_bar():
    # signals on bars 0 and 1; one trade from bar 1; stopped on bar 2 (99); a signal on bar 2's
    # close re-enters at the open of bar 3 = 100, ended at the last close 100.
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100.2, 98.5, 99), (100, 100, 100, 100)]
    r = run(rows, ExitPlan.only(sl_pct=-1.0), entries=(0, 1, 2))
    assert r.trades["entry_bar"].tolist() == [1, 3]


def test_run_signals_rejects_wrong_length():
    rows = [(100, 100, 100, 100)] * 3
    with pytest.raises(DataError, match="expected \\(3,\\)"):
        run_signals(frame(rows), np.zeros(2, bool), np.zeros(3, bool), ExitPlan.only(), NO_COSTS, timeframe="1m")


# ------------------------------------------------------------------ properties vs the reference

@st.composite
def scenarios(draw):
    n = draw(st.integers(8, 45))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, draw(st.sampled_from([0.003, 0.01, 0.03])), n)
    close = 100 * np.exp(np.cumsum(steps))
    op = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.004, n) * draw(st.sampled_from([0, 1, 3])))
    spread = np.abs(rng.normal(0, 0.006, (2, n))) * close
    high = np.maximum(op, close) + spread[0]
    low = np.maximum(np.minimum(op, close) - spread[1], 1e-3)
    entries = rng.random(n) < draw(st.sampled_from([0.1, 0.3, 0.6]))
    exits = rng.random(n) < draw(st.sampled_from([0.0, 0.1, 0.3]))
    n_tp = draw(st.integers(0, 3))
    tps = sorted(rng.uniform(0.2, 3.0, n_tp).round(2).tolist())
    tps = [p for i, p in enumerate(tps) if i == 0 or p > tps[i - 1]]
    allocs = [100.0 / len(tps)] * len(tps) if tps else []
    if len(tps) == 3:
        allocs = [50.0, 30.0, 20.0]
    stop_kind = draw(st.sampled_from(["none", "pct", "atr"]))
    trail_kind = draw(st.sampled_from(["none", "pct", "atr"]))
    plan = ExitPlan.only(
        tp_ladder=tuple(zip(tps, allocs)),
        sl_pct=-float(draw(st.sampled_from([0.3, 1.0, 2.5]))) if stop_kind == "pct" else None,
        sl_atr_mult=float(draw(st.sampled_from([0.5, 2.0]))) if stop_kind == "atr" else None,
        atr_period=draw(st.integers(1, 5)),
        breakeven=bool(tps) and draw(st.booleans()),
        breakeven_offset_pct=float(draw(st.sampled_from([0.0, 0.1, -0.2]))),
        trail_pct=float(draw(st.sampled_from([0.5, 2.0]))) if trail_kind == "pct" else None,
        trail_atr_mult=float(draw(st.sampled_from([1.0, 3.0]))) if trail_kind == "atr" else None,
        use_exit_signal=draw(st.booleans()),
        max_hold_bars=draw(st.sampled_from([None, 1, 3, 10])),
        check_entry_bar=draw(st.booleans()),
        lot_size_base=draw(st.sampled_from([None, None, 0.5, 7.0, 20.0])),
    )
    costs = Costs(float(draw(st.sampled_from([0, 10, 25]))), float(draw(st.sampled_from([0, 2, 20]))))
    use_lower = draw(st.booleans())
    lower = None
    if use_lower:  # 3 random sub-candles per bar spanning the bar's range
        lower = []
        for t in range(n):
            pts = np.r_[op[t], rng.uniform(low[t], high[t], 4), close[t]]
            pts[1 + rng.integers(0, 4)] = high[t]
            pts[1 + (rng.integers(0, 4))] = low[t]
            subs = [(pts[0], max(pts[0], pts[1], pts[2]), min(pts[0], pts[1], pts[2])),
                    (pts[2], max(pts[2], pts[3], pts[4]), min(pts[2], pts[3], pts[4])),
                    (pts[4], max(pts[4], pts[5]), min(pts[4], pts[5]))]
            lower.append(subs)
    return op, high, low, close, entries, exits, plan, costs, lower


def kernel_run(op, high, low, close, entries, exits, plan, costs, lower, cash=1000.0):
    lines, er, xr = signals.arrays_to_lines(entries, exits)
    atr = indicators.atr_nb(high, low, close, plan.atr_period)
    ladder, p = kernel_plan(plan)
    account = kernel_account(costs, cash, lot_size_base=plan.lot_size_base)
    if lower is None:
        lo = None
    else:
        flat = [s for subs in lower for s in subs]
        counts = np.array([len(s) for s in lower])
        end = np.cumsum(counts).astype(np.int64)
        lo = rec.Lower(np.array([s[0] for s in flat]), np.array([s[1] for s in flat]),
                       np.array([s[2] for s in flat]), end - counts, end)
    bars = rec.Bars(op, high, low, close, atr)
    return sim.run_simulation(bars, lines, er, xr, ladder, p, account, lo, 0), atr


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_kernel_matches_reference_and_invariants(case):
    op, high, low, close, entries, exits, plan, costs, lower = case
    f, atr = kernel_run(*case)
    ref = reference_backtest(op, high, low, close, entries, exits, plan, costs, cash=1000.0, atr=atr, lower=lower)
    # trade for trade
    assert len(ref.trades) == len(f.entry_bar)
    for i, tr in enumerate(ref.trades):
        assert (tr.entry_bar, tr.exit_bar) == (f.entry_bar[i], f.exit_bar[i])
        assert tr.entry_price == pytest.approx(f.entry_price[i], rel=1e-12)
        assert tr.qty == pytest.approx(f.qty[i], rel=1e-12)
        assert tr.pnl == pytest.approx(f.pnl[i], rel=1e-9, abs=1e-9)
        k_legs = np.flatnonzero(f.leg_trade == i)
        assert [(g.bar, g.reason) for g in tr.legs] == [
            (int(f.leg_bar[k]), rec.code_name(f.leg_reason[k]))
            for k in k_legs]
        assert [g.price for g in tr.legs] == pytest.approx(f.leg_price[k_legs].tolist(), rel=1e-12)
        assert [g.qty for g in tr.legs] == pytest.approx(f.leg_qty[k_legs].tolist(), rel=1e-12)
        # allocations fully closed
        assert f.leg_qty[k_legs].sum() == pytest.approx(f.qty[i], rel=1e-12)
        # no entry before its signal bar + 1
        assert entries[f.entry_bar[i] - 1] and f.entry_bar[i] >= 1
    np.testing.assert_allclose(f.equity, ref.equity, rtol=1e-9)
    s = f.stats
    assert (s["n_ambiguous"], s["n_target_first"], s["n_stop_first"], s["n_unresolved"]) == (
        ref.ambiguous, ref.target_first, ref.stop_first, ref.unresolved)
    assert s["n_rejected"] == ref.rejected
    # streaming metrics of the kernel == metric definitions applied to the reference's trades/equity
    pnl = np.array([tr.pnl for tr in ref.trades])
    ret = np.array([tr.pnl / (tr.qty * tr.entry_price) * 100 for tr in ref.trades])
    held = sum(tr.exit_bar - tr.entry_bar + 1 for tr in ref.trades)
    want = metrics.compute_metrics(pnl, ret, np.array(ref.equity), initial_cash_quote=1000.0, n_bars_held=held,
                                   periods_per_year=525_600.0)
    got = metrics.metrics_from_stats(s, initial_cash_quote=1000.0, periods_per_year=525_600.0)
    for key in metrics.METRIC_KEYS:
        if isinstance(want[key], float) and math.isnan(want[key]):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(want[key], rel=1e-7, abs=1e-9), key
    # every fill inside the bar's low–high (before slippage; the entry at the open)
    slip = costs.slippage_rate
    for k in range(len(f.leg_bar)):
        level = f.leg_price[k] / (1.0 - slip)
        b = f.leg_bar[k]  # (the generated lower candles lie inside their bar's range too)
        assert low[b] * (1 - 1e-12) <= level <= high[b] * (1 + 1e-12)
    for i in range(len(f.entry_bar)):
        assert f.entry_price[i] / (1.0 + slip) == pytest.approx(op[f.entry_bar[i]], rel=1e-12)
    # equity = cash + position × close at every bar, rebuilt from the fills
    n = len(close)
    cash = np.full(n, 1000.0)
    pos = np.zeros(n)
    for i in range(len(f.entry_bar)):
        cash[f.entry_bar[i]:] -= f.qty[i] * f.entry_price[i] + f.entry_fee[i]
        pos[f.entry_bar[i]:] += f.qty[i]
    for k in range(len(f.leg_bar)):
        cash[f.leg_bar[k]:] += f.leg_qty[k] * f.leg_price[k] - f.leg_fee[k]
        pos[f.leg_bar[k]:] -= f.leg_qty[k]
    np.testing.assert_allclose(f.equity, cash + pos * close, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ref.equity, np.array(ref.cash) + np.array(ref.position) * close, rtol=1e-12)


def test_trade_log_grows_past_its_first_room():
    # simulate_nb starts with room for 1024 + n/32 trades and grows when an entry would not fit:
    # 3,000 bars with an entry signal on most bars and a one-bar hold make ~1,400 trades (room
    # 1,117 at first), each with up to three legs; every trade and leg still matches the reference
    rng = np.random.default_rng(11)
    n = 3000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    op = np.r_[100.0, close[:-1]]
    high = np.maximum(op, close) * 1.002
    low = np.minimum(op, close) * 0.998
    entries = rng.random(n) < 0.9
    plan = ExitPlan.only(tp_ladder="0.1:50,0.15:50", sl_pct=-0.2, max_hold_bars=1)
    f, atr = kernel_run(op, high, low, close, entries, np.zeros(n, bool), plan, Costs(10, 2), None)
    ref = reference_backtest(op, high, low, close, entries, np.zeros(n, bool), plan, Costs(10, 2), cash=1000.0,
                             atr=atr)
    assert len(f.entry_bar) == len(ref.trades) > 1024 + n // 32
    assert f.entry_bar.tolist() == [tr.entry_bar for tr in ref.trades]
    assert f.pnl.tolist() == pytest.approx([tr.pnl for tr in ref.trades], rel=1e-9, abs=1e-9)
    assert f.leg_bar.tolist() == [g.bar for tr in ref.trades for g in tr.legs]
    assert f.leg_trade.tolist() == [g.trade for tr in ref.trades for g in tr.legs]
    np.testing.assert_allclose(f.equity, ref.equity, rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.sampled_from([1.0, 10.0, 50.0]))
def test_costs_never_increase_profit(case, extra_fee_bps):
    op, high, low, close, entries, exits, plan, costs, lower = case
    plan = ExitPlan.from_dict({**plan.to_dict(), "lot_size_base": None}, where="test")
    base, _ = kernel_run(op, high, low, close, entries, exits, plan, costs, lower)
    dearer, _ = kernel_run(op, high, low, close, entries, exits, plan,
                           Costs(costs.fee_bps + extra_fee_bps, costs.slippage_bps), lower)
    # higher fees leave every fill where it was and never raise the final equity
    assert dearer.leg_bar.tolist() == base.leg_bar.tolist()
    assert dearer.stats["final_equity_quote"] <= base.stats["final_equity_quote"] + 1e-9
    if len(base.pnl):
        assert ((dearer.pnl <= base.pnl + 1e-9).all()
                or dearer.stats["final_equity_quote"] < base.stats["final_equity_quote"])
    # slippage only ever worsens a fill against its level: each leg's price ≤ its pre-slippage level
    slip = costs.slippage_rate
    assert (dearer.leg_price <= dearer.leg_price / (1.0 - slip) + 1e-12).all()
    assert (dearer.entry_price >= op[dearer.entry_bar] - 1e-12).all()


def test_no_entries_gives_flat_equity():
    rows = [(100, 101, 99, 100)] * 6
    r = run(rows, ExitPlan.only(sl_pct=-1.0), entries=())
    assert r.equity.tolist() == [1000.0] * 6 and len(r.trades) == 0
    assert math.isnan(r.metrics["sharpe"]) and r.metrics["max_drawdown_pct"] == 0.0


def test_scaling_prices_leaves_returns_unchanged():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    rows = [(c * 0.999, c * 1.004, c * 0.995, c) for c in close]
    e = rng.random(60) < 0.2
    plan = ExitPlan.only(tp_ladder="0.5:50,1:50", sl_pct=-0.7, breakeven=True)
    a = run_signals(frame(rows), e, np.zeros(60, bool), plan, Costs(10, 2), timeframe="1m")
    b = run_signals(frame([tuple(v * 7.0 for v in r) for r in rows]), e, np.zeros(60, bool), plan, Costs(10, 2),
                    timeframe="1m")
    np.testing.assert_allclose(a.trades["return_pct"], b.trades["return_pct"], rtol=1e-9)
    assert a.metrics["total_return_pct"] == pytest.approx(b.metrics["total_return_pct"], rel=1e-9)


def test_kernel_runs_as_plain_python_with_jit_disabled():
    # same scenario with NUMBA_DISABLE_JIT=1 in a subprocess must give identical fills and grid stats
    code = (
        "import json, numpy as np\n"
        "from tests.engine.backtest.test_kernel import kernel_run\n"
        "from engine.strategy.exits import ExitPlan, Costs\n"
        "rng = np.random.default_rng(5); n = 40\n"
        "c = 100*np.exp(np.cumsum(rng.normal(0, 0.01, n))); o = np.r_[100, c[:-1]]\n"
        "h = np.maximum(o, c)*1.004; l = np.minimum(o, c)*0.996\n"
        "e = rng.random(n) < 0.3; x = rng.random(n) < 0.1\n"
        "plan = ExitPlan.only(tp_ladder='0.5:50,1.2:50', sl_pct=-0.8, breakeven=True, trail_pct=1.5, max_hold_bars=6)\n"
        "f, atr = kernel_run(o, h, l, c, e, x, plan, Costs(10, 2), None)\n"
        "from engine.strategy import signals\nfrom engine.backtest import kernel_nb as sim, records_nb as rec\n"
        "lines, er, xr = signals.arrays_to_lines(e, x)\n"
        "from engine.backtest.inputs import kernel_account, kernel_plan\nladder, p = kernel_plan(plan); account = kernel_account(Costs(10, 2), 1000.0)\n"
        "g = sim.run_grid_stats(rec.Bars(o, h, l, c, atr), lines, np.stack([er, er, er]), np.stack([xr, xr, xr]),\n"
        "                       ladder, p, account, n_groups=2, block_bars=7)\n"  # blocks of 7 bars: state carried
        "print(json.dumps({'legs': f.leg_price.tolist(), 'eq': f.equity.tolist(), 'stats': f.stats.tolist(),\n"
        "                  'grid': g.tolist()}))\n"
    )
    outs = []
    for jit_off in ("0", "1"):
        env = {**os.environ, "NUMBA_DISABLE_JIT": jit_off, "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1] and len(outs[0]["legs"]) > 0
    # the cache-blocked parallel grid gives the single run's statistics, combination by combination
    for row in outs[0]["grid"]:
        assert row == pytest.approx(outs[0]["stats"], rel=1e-12)


def test_codes_have_names_in_one_table():
    assert rec.code_name(rec.EXIT_BE) == "be" and rec.code_name(rec.REJECT_NO_CASH) == "no cash left"
    assert rec.code_name(1) == "tp1" and rec.code_name(rec.MAX_TP_STEPS) == f"tp{rec.MAX_TP_STEPS}"
    # exit reasons and rejection statuses never share a code, and no named code is a ladder step
    assert all(code > rec.MAX_TP_STEPS for code in rec.CODE_NAMES)
    with pytest.raises(KeyError):
        rec.code_name(rec.NO_REJECT)


def test_kernel_entry_points_reject_a_plan_of_the_wrong_dtype():
    rows = [(100, 100, 100, 100)] * 3
    o = np.array([r[0] for r in rows], dtype=float)
    lines, er, xr = signals.arrays_to_lines(np.zeros(3, bool), np.zeros(3, bool))
    ladder, plan = kernel_plan(ExitPlan.only())
    account = kernel_account(NO_COSTS, 1000.0)
    with pytest.raises(TypeError, match="plan: expected a plan_dt record array of shape \\(1,\\)"):
        sim.run_simulation(rec.Bars(o, o, o, o, o), lines, er, xr, ladder, account, account)
    with pytest.raises(TypeError, match="account: expected"):
        sim.run_grid_stats(rec.Bars(o, o, o, o, o), lines, er[None], xr[None], ladder, plan, plan[0],
                           n_groups=1, block_bars=8)


def test_bad_costs_are_rejected():
    with pytest.raises(ConfigError, match="fee_bps = -1"):
        Costs(-1, 0)
