"""Paper trading: the flow over closed candles gives the simulator's trades exactly; guards change them
only where they block, and say so."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.backtest import run_backtest
from engine.data import resample_candles
from engine.data.candles import index_ms
from engine.errors import ConfigError
from engine.execution.paper import PaperAccount, PaperSpec, paper_trade
from engine.execution.tunables import Tunables
from engine.strategy.exits import Costs, ExitPlan

# every entry set, with ladders, breakeven, trailing stops (percent and ATR), ATR stops, time exits
CASES = [
    ("sma_cross", {"fast": 10, "slow": 40}, ExitPlan.only(tp_ladder="0.9:50,1.4:30,2.1:20", sl_pct=-0.5, breakeven=True,
                                                          breakeven_offset_pct=0.05)),
    ("ema_cross", {"fast": 8, "slow": 21}, ExitPlan.only(tp_ladder="0.6:50,1.2:50", sl_pct=-0.7, breakeven=True,
                                                         trail_pct=0.6)),
    ("rsi_revert", {"period": 14, "oversold": 30, "exit_level": 55}, ExitPlan()),
    ("bollinger_breakout", {"period": 20, "n_std": 2.0}, ExitPlan.only(tp_ladder="1.0:100", sl_atr_mult=2.0,
                                                                       trail_atr_mult=3.0)),
    ("donchian_breakout", {"period": 20}, ExitPlan.only(tp_ladder="0.5:30,1.0:30,2.0:40", sl_pct=-0.4,
                                                        use_exit_signal=False, max_hold_bars=48)),
]
WIDE = Tunables(ENTRY_MAX_NOTIONAL=1e12, MAX_NOTIONAL_PER_ASSET=1e12, MAX_GLOBAL_EXPOSURE=1e12)


@pytest.fixture(scope="module")
def btc_5m(request):
    from tests.conftest import _read_sample

    return resample_candles(_read_sample("BTCUSDT"), "5m", source_timeframe="1m")


def _no_switch(tmp_path):
    return {"env": {}, "root": tmp_path}


@pytest.mark.parametrize("signal,params,plan", CASES, ids=[c[0] for c in CASES])
def test_paper_trades_equal_the_simulators(btc_5m, signal, params, plan, tmp_path):
    """Parity: entry and exit times, prices, quantities, reasons and PnL of every trade, all-cash and staked."""
    spec = PaperSpec("BTCUSDT", "5m", signal, signal, params, plan, Costs(10, 2))
    for account, tunables in ((PaperAccount(10_000.0, None), WIDE), (PaperAccount(50.0, 10.0), Tunables())):
        paper = paper_trade(btc_5m, spec, tunables=tunables, account=account, **_no_switch(tmp_path))
        sim = run_backtest(btc_5m, signal, params, plan, Costs(10, 2), timeframe="5m",
                           initial_cash_quote=account.initial_cash_quote, stake_quote=account.stake_quote)
        assert len(sim.trades) > 20
        pd.testing.assert_frame_equal(paper.trades, sim.trades)
        pd.testing.assert_frame_equal(paper.result.legs, sim.legs)
        # every fill of the kernel is a fill event, the open position excepted
        fills = [e for e in paper.events if e.kind == "fill"]
        n_end = int((sim.legs["reason"] == "end").sum())
        assert len(fills) == len(sim.trades) + len(sim.legs) - n_end
        # what the guards blocked is only what the simulator ignores (a signal while in a position)
        assert set(paper.blocked) <= {"ONE_POSITION_ONLY"}


def test_events_are_in_time_order_and_never_before_the_candle_closed(btc_5m, tmp_path):
    spec = PaperSpec("BTCUSDT", "5m", "ema_cross", "ema_cross", {"fast": 8, "slow": 21}, CASES[1][2], Costs())
    paper = paper_trade(btc_5m, spec, tunables=Tunables(), **_no_switch(tmp_path))
    ts = [e.ts_ms for e in paper.events]
    assert ts == sorted(ts)
    opens = set(index_ms(btc_5m.index).tolist())
    assert all(t - 300_000 in opens for t in ts)  # each is the close of a 5m candle
    first_order = next(e for e in paper.events if e.kind == "order")
    first_fill = next(e for e in paper.events if e.kind == "fill")
    assert first_order.data["role"] == "entry" and first_order.ts_ms < first_fill.ts_ms
    # an intent, its decision and its order share the signal bar's close; the fill comes at the next close
    intents = [e for e in paper.events if e.kind == "intent"]
    i = intents[0]
    assert i.ts_ms == i.data["signal_bar_ms"] + 300_000 and i.data["family"] == "momentum"
    entry_fill = next(e for e in paper.events if e.kind == "fill" and e.data["role"] == "entry")
    assert entry_fill.data["time_ms"] == i.ts_ms  # filled at the next open
    protective = [e for e in paper.events if e.kind == "order" and e.ts_ms == entry_fill.ts_ms
                  and e.data["role"] in ("take_profit", "stop_loss", "trailing_stop")]
    assert {p.data["role"] for p in protective} == {"take_profit", "stop_loss", "trailing_stop"}
    assert all(e.mode == "dry-run" for e in paper.events)
    assert any(e.kind == "order" and e.data.get("amend") == "stop_loss" for e in paper.events)  # breakeven after TP1


def test_the_kill_switch_blocks_every_entry_and_no_trade_happens(btc_5m, tmp_path):
    spec = PaperSpec("BTCUSDT", "5m", "sma_cross", "sma_cross", {"fast": 10, "slow": 40})
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "KILL_SWITCH").write_text("stop")
    paper = paper_trade(btc_5m, spec, tunables=Tunables(), env={}, root=tmp_path)
    assert paper.trades.empty and paper.n_blocked == paper.n_intents > 10
    assert set(paper.blocked) == {"kill switch"}
    assert not [e for e in paper.events if e.kind in ("order", "fill")]


def test_a_notional_limit_below_the_stake_blocks_entries_naming_it(btc_5m, tmp_path):
    spec = PaperSpec("BTCUSDT", "5m", "sma_cross", "sma_cross", {"fast": 10, "slow": 40})
    paper = paper_trade(btc_5m, spec, tunables=Tunables(ENTRY_MAX_NOTIONAL=5.0), account=PaperAccount(50.0, 10.0),
                        **_no_switch(tmp_path))
    assert paper.trades.empty and paper.blocked.get("ENTRY_MAX_NOTIONAL") == paper.n_intents
    d = next(e for e in paper.events if e.kind == "decision")
    assert not d.data["allowed"] and "ENTRY_MAX_NOTIONAL: entry notional 10.00 > 5" in d.data["reasons"][0]


def test_forward_window_trades_only_after_the_start_and_marks_the_open_position(btc_5m, tmp_path):
    spec = PaperSpec("BTCUSDT", "5m", "ema_cross", "ema_cross", {"fast": 8, "slow": 21})
    opens = index_ms(btc_5m.index)
    start = int(opens[-600])
    paper = paper_trade(btc_5m, spec, tunables=Tunables(), start_ms=start, now_ms=int(opens[-1]) + 300_000,
                        **_no_switch(tmp_path))
    assert len(paper.trades) and (paper.trades["entry_ms"] > start).all()
    assert paper.first_bar == len(btc_5m) - 600  # the first bar to close after `start` opens at `start`
    assert paper.realised_pnl_quote == pytest.approx(paper.closed_trades["pnl_quote"].sum())
    if paper.open_trade is not None:
        assert paper.unrealised_pnl_quote == pytest.approx(paper.open_trade["pnl_quote"])
    # a candle that has not closed at now_ms is left out
    cut = paper_trade(btc_5m, spec, tunables=Tunables(), start_ms=start, now_ms=int(opens[-1]) + 299_999,
                      **_no_switch(tmp_path))
    assert len(cut.result.equity) == len(btc_5m) - 1


def test_bad_inputs_are_named(btc_5m, tmp_path):
    with pytest.raises(ConfigError, match="period"):
        paper_trade(btc_5m, PaperSpec("BTCUSDT", "5m", "x", "rsi_revert", {"period": -3}), tunables=Tunables(),
                    **_no_switch(tmp_path))
    bad = btc_5m.iloc[:300].copy()
    bad.iloc[5, bad.columns.get_loc("low")] = bad["high"].iloc[5] * 2
    with pytest.raises(Exception, match="row 5"):
        paper_trade(bad, PaperSpec("BTCUSDT", "5m", "x", "sma_cross"), tunables=Tunables(), **_no_switch(tmp_path))
    assert np.isfinite(btc_5m["close"]).all()
