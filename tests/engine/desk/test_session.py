"""Replay sessions: the window, the budget cap (the session stops before the entry that would break
it), the pace, where the candles come from."""
from __future__ import annotations

import dataclasses

import pytest

from engine.config import load_entries, load_runtime
from engine.config.desk import SessionProfile, load_desk_config
from engine.data import load_sample, write_candles
from engine.desk.profiles import resolve_profile
from engine.desk.session import capped_paper, entry_notionals, plan_replay, replay_candles, replay_window, run_replay
from engine.desk.venue import Venue
from engine.errors import DataError
from engine.execution.paper import PaperAccount, paper_trade
from engine.execution.tunables import Tunables

TUNABLES = Tunables()
ENTRIES = load_entries()
PAPER = Venue("paper", "binance", "test")
# 2 trades in the sample's last hour: 23:07 → 23:20 (exit signal), 23:30 → still open at 00:00
PROFILE = SessionProfile("small", "sma_cross", "BTC/USDT", "1m", 60, 50.0, 5, params={"fast": 5, "slow": 20})


@pytest.fixture
def plan(scalp_env, tmp_path):
    return make_plan(PROFILE)


def make_plan(profile, warmup=200):
    rt = load_runtime()
    desk = dataclasses.replace(load_desk_config(env={}), warmup_bars=warmup)
    strategy = resolve_profile(profile, entries=ENTRIES, strategies_file=rt.strategies_file, now_ms=0)
    return plan_replay(profile, strategy, PAPER, runtime=rt, desk=desk, tunables=TUNABLES)


def run(plan, tmp_path, **kw):
    return run_replay(plan, tunables=TUNABLES, env={}, root=tmp_path, clock=lambda: 1_733_356_740_000, **kw)


def test_replay_is_the_paper_run_of_the_last_duration(plan, tmp_path):
    assert plan.window_end_ms == 1_620_000_000_000 and plan.window_start_ms == plan.window_end_ms - 3_600_000
    assert len(plan.candles) == 260  # 200 warm-up + 60 window
    result = run(plan, tmp_path)
    direct = paper_trade(plan.candles, plan.spec, tunables=TUNABLES, account=PaperAccount(50.0, 10.0),
                         start_ms=plan.window_start_ms, env={}, root=tmp_path)
    assert result.paper.trades.equals(direct.trades) and len(direct.trades) == 2
    assert result.stop_note is None and result.n_trades == 2
    assert result.notional_quote == pytest.approx(float(entry_notionals(direct).sum()))
    assert result.notional_quote == pytest.approx(2 * 10 / 1.001)  # a stake of 10 per entry, fee included
    assert (result.paper.trades["entry_ms"] >= plan.window_start_ms).all()
    assert result.paper.open_trade is not None  # the 23:30 entry is marked to market at the window's end


@pytest.mark.parametrize("max_trades, max_notional, n, why", [
    (1, 50.0, 1, "entry 2 would break the session's max_trades 1"),
    (5, 15.0, 1, "entry 2 would break the session's max_notional_quote 15 (19.98 with it)"),
    (0, 50.0, 0, "entry 1 would break the session's max_trades 0"),
    (2, 19.98, 1, "max_notional_quote 19.98"),
])
def test_the_session_stops_before_the_entry_that_breaks_its_budget(scalp_env, tmp_path, max_trades, max_notional, n, why):
    full = run(make_plan(PROFILE), tmp_path)
    capped = run(make_plan(dataclasses.replace(PROFILE, max_trades=max_trades, max_notional_quote=max_notional)),
                 tmp_path)
    assert capped.n_trades == n and why in capped.stop_note
    assert capped.stop_note.startswith("stopped at 2021-05-02 23:")
    if n:  # the trades before the cap are the uncapped session's (the run is causal)
        first = full.paper.trades.iloc[0]
        assert capped.paper.trades.iloc[0]["entry_ms"] == first["entry_ms"]
        assert capped.paper.trades.iloc[0]["entry_price"] == first["entry_price"]
    assert capped.notional_quote <= max_notional + 1e-9


def test_pace_sleeps_the_window_at_speed_and_hands_over_each_event(plan, tmp_path):
    slept, seen = [], []
    result = run(plan, tmp_path, speed=60.0, sleep=slept.append, on_event=seen.append)
    assert sum(slept) == pytest.approx(60.0)  # one hour of 1m candles at 60x real time
    assert [e.ts_ms for e in seen] == sorted(e.ts_ms for e in seen)
    assert {e.kind for e in seen} >= {"intent", "decision", "order", "fill"}
    assert len(seen) == sum(e.ts_ms > plan.window_start_ms for e in result.paper.events)
    slept.clear()
    run(plan, tmp_path, sleep=slept.append)  # speed 0: as fast as possible
    assert slept == []


def test_candle_sources(scalp_env, tmp_path, monkeypatch):
    rt = load_runtime()
    frame, note = replay_candles(rt, "BTC/USDT", "5m")
    assert note == "the bundled sample (month)" and len(frame) == len(load_sample("BTCUSDT", "5m"))
    monkeypatch.setenv("SCALP_DATA_SOURCE", "auto")
    frame, note = replay_candles(load_runtime(), "ETH/USDT", "1m")
    assert note.startswith("the bundled sample (month): no stored candles at")
    stored = load_sample("ETHUSDT", "1m").iloc[:500]
    write_candles(rt.data_dir / "ohlcv" / "ETHUSDT" / "1m.csv", stored, timeframe="1m", source="test")
    frame, note = replay_candles(load_runtime(), "ETH/USDT", "1m")
    assert note.startswith("stored candles") and len(frame) == 500
    monkeypatch.setenv("SCALP_DATA_SOURCE", "local")
    with pytest.raises(DataError, match=r"BNBUSDT/1m.csv: no stored candles for BNB/USDT 1m \(data_source local\)"):
        replay_candles(load_runtime(), "BNB/USDT", "1m")


def test_a_window_longer_than_the_candles_is_refused(sample_1m):
    with pytest.raises(DataError, match=r"BTC/USDT 1m: 30 candles, fewer than the session's 60 and one before it"):
        replay_window(sample_1m("BTCUSDT", 30), PROFILE, 10)


def test_capped_paper_without_a_cap_is_the_paper_run(sample_1m, tmp_path):
    frame = sample_1m("BTCUSDT", 2000)
    spec = make_spec()
    start = int(frame.index[1000].timestamp() * 1000)
    paper, note = capped_paper(frame, spec, tunables=TUNABLES, account=PaperAccount(50.0, 10.0), start_ms=start,
                               max_trades=10_000, max_notional_quote=1e9, env={}, root=tmp_path)
    direct = paper_trade(frame, spec, tunables=TUNABLES, account=PaperAccount(50.0, 10.0), start_ms=start, env={},
                         root=tmp_path)
    assert note is None and paper.trades.equals(direct.trades) and len(paper.trades) > 3


def make_spec():
    return resolve_profile(PROFILE, entries=ENTRIES, strategies_file="none.yml", now_ms=0).spec
