"""The forward test of promoted strategies, the go-live gate, the kill-switch test and the metrics."""
from __future__ import annotations

import json

import pytest

from engine.data import resample_candles, write_candles
from engine.data.store import candle_path
from engine.execution import Metrics
from engine.execution.events import Event, EventLog, read_events
from engine.execution.forward import forward_test
from engine.execution.golive import golive_check, killswitch_test, last_killswitch_test, live_reasons
from engine.execution.guards import OrderRequest, decide, live_blockers
from engine.execution.tunables import Tunables
from engine.strategy.promoted import PromotedStrategy

END_MS = 1_620_000_000_000  # 2021-05-03 00:00 UTC, the close of the sample's last candle
DAY_MS = 86_400_000


@pytest.fixture
def dirs(tmp_path):
    from tests.conftest import _read_sample

    data, reports = tmp_path / "data", tmp_path / "reports"
    candles = resample_candles(_read_sample("BTCUSDT"), "5m", source_timeframe="1m")
    write_candles(candle_path(data, "BTCUSDT", "5m"), candles, timeframe="5m", source="test")
    return data, reports


def _strategy(promoted_ms: int, *, expires_ms: int = END_MS + DAY_MS, pair: str = "BTCUSDT") -> PromotedStrategy:
    return PromotedStrategy(pair=pair, timeframe="5m", entry_set="ema_cross", signal="ema_cross",
                            params={"fast": 8, "slow": 21}, risk_mode="aggressive", promoted_at_ms=promoted_ms,
                            expires_at_ms=expires_ms, metrics={"n_trades": 40, "win_rate_pct": 50.0})


def test_forward_test_writes_each_event_once_and_the_report(dirs, tmp_path):
    data, reports = dirs
    tun = Tunables(KILL_SWITCH_FILE=str(tmp_path / "no-switch"))
    report = forward_test([_strategy(END_MS - 3 * DAY_MS)], data_dir=data, reports_dir=reports, now_ms=END_MS - DAY_MS,
                          tunables=tun)
    s = report["strategies"][0]
    assert s["name"] == "BTCUSDT_5m_ema_cross" and s["bars_since_promotion"] == 2 * 288
    assert s["n_paper_trades"] > 3 and s["backtest"]["same_as_paper"] is True
    assert s["research"]["n_trades"] == 40
    first = read_events(data)
    assert len(first) == report["events_written"] and (first["strategy"] == s["name"]).all()
    assert set(first["kind"]) == {"intent", "decision", "order", "fill", "position"}
    # the next cycle, a day later: only the new day's events (and one position snapshot) are added
    report2 = forward_test([_strategy(END_MS - 3 * DAY_MS)], data_dir=data, reports_dir=reports, now_ms=END_MS, tunables=tun,
                           metrics_path=tmp_path / "m" / "execution.prom")
    both = read_events(data)
    assert len(both) == len(first) + report2["events_written"]
    fills = both[both["kind"] == "fill"]
    keys = [(r["ts_ms"], json.dumps(r["data"], sort_keys=True)) for _, r in fills.iterrows()]
    assert len(keys) == len(set(keys))  # no fill written twice
    assert len(fills[fills["ts_ms"] > END_MS - DAY_MS]) > 0
    # ... and a forward test of the whole period in one go writes the same intents, orders and fills
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "ohlcv").symlink_to(data / "ohlcv")
    forward_test([_strategy(END_MS - 3 * DAY_MS)], data_dir=fresh, reports_dir=tmp_path / "r2", now_ms=END_MS, tunables=tun)
    one = read_events(fresh)
    pick = lambda df: df[df["kind"] != "position"][["ts_ms", "kind"]].reset_index(drop=True)  # noqa: E731
    assert pick(one).equals(pick(both))
    paper = json.loads((reports / "paper.json").read_text())
    assert paper["account"] == {"initial_cash_quote": 50.0, "stake_quote": 10.0}
    assert "scalp_paper_pnl_quote" in (tmp_path / "m" / "execution.prom").read_text()
    assert "ENTRY_MAX_NOTIONAL=10" in (reports / "steps" / "STEP-6.1-guards.md").read_text()
    assert "- orders: " in (reports / "steps" / "STEP-6.2-orders.md").read_text()


def test_missing_candles_and_expired_strategies_never_stop_the_others(dirs, tmp_path):
    data, reports = dirs
    report = forward_test([_strategy(END_MS - DAY_MS, pair="ETHUSDT"), _strategy(END_MS - 3 * DAY_MS, expires_ms=END_MS),
                           _strategy(END_MS - DAY_MS)], data_dir=data, reports_dir=reports, now_ms=END_MS,
                          tunables=Tunables(KILL_SWITCH_FILE=str(tmp_path / "none")))
    assert [s["name"] for s in report["strategies"]] == ["BTCUSDT_5m_ema_cross"]
    assert report["skipped"] == [f"ETHUSDT_5m_ema_cross: {data}/ohlcv/ETHUSDT/5m.csv: no such candle file. "
                                 "Run the backfill (or seed from the sample)."]


def test_nothing_promoted_writes_an_empty_report(tmp_path):
    report = forward_test([], data_dir=tmp_path / "d", reports_dir=tmp_path / "r", now_ms=END_MS, tunables=Tunables())
    assert report["strategies"] == [] and report["events_written"] == 0
    assert json.loads((tmp_path / "r" / "paper.json").read_text())["strategies"] == []


def test_kill_switch_test_records_a_pass_and_clears_the_switch(tmp_path):
    tun = Tunables(KILL_SWITCH_FILE=str(tmp_path / "var" / "KILL_SWITCH"))
    result = killswitch_test(tun, reports_dir=tmp_path / "r", now_ms=END_MS, data_dir=tmp_path / "d", env={})
    assert result.passed and result.blocked and result.executor_refused and result.cleared
    assert any("kill switch" in r and "KILL_SWITCH exists" in r for r in result.reasons)
    assert not (tmp_path / "var" / "KILL_SWITCH").exists()
    assert last_killswitch_test(tmp_path / "r") == result
    md = (tmp_path / "r" / "steps" / "STEP-killswitch-test.md").read_text()
    assert "- result: passed" in md and "- order after the switch was set: blocked" in md
    assert list(read_events(tmp_path / "d")["kind"]) == ["killswitch"]


def test_a_switch_already_set_is_left_set_and_the_test_does_not_pass(tmp_path):
    switch = tmp_path / "KILL"
    switch.write_text("set by the operator")
    result = killswitch_test(Tunables(KILL_SWITCH_FILE=str(switch)), reports_dir=tmp_path / "r", now_ms=END_MS, env={})
    assert result.blocked and not result.cleared and not result.passed
    assert switch.read_text() == "set by the operator"


def test_the_go_live_gate_needs_dry_run_hours_and_a_kill_switch_test(tmp_path):
    data, reports = tmp_path / "d", tmp_path / "r"
    tun = Tunables(KILL_SWITCH_FILE=str(tmp_path / "K"))
    name = "BTCUSDT_5m_ema_cross"
    gate = golive_check(name, data_dir=data, reports_dir=reports, tunables=tun, now_ms=END_MS)
    assert not gate.ok and len(gate.reasons) == 2
    assert "0.0 h of dry-run events for BTCUSDT_5m_ema_cross, GOLIVE_MIN_DRYRUN_HOURS is 24" in gate.reasons[0]
    assert "no kill-switch test recorded" in gate.reasons[1]
    blockers = live_blockers(tun.replace(ALLOW_LIVE=True, DRY_RUN=False), exec_enabled=True,
                             secrets={"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}, exchange="binance",
                             golive_ok=gate.ok, golive_reason=gate.reason)
    assert blockers == [f"go-live gate: {gate.reason}"]  # every other live condition holds: the gate alone blocks
    log = EventLog(data, use_env=False)
    log.append(Event(END_MS - 23 * 3_600_000, "intent", name, "BTC/USDT", "5m", "dry-run", {}))
    killswitch_test(tun, reports_dir=reports, now_ms=END_MS, env={})
    gate = golive_check(name, data_dir=data, reports_dir=reports, tunables=tun, now_ms=END_MS)
    assert gate.reasons == ("23.0 h of dry-run events for BTCUSDT_5m_ema_cross, GOLIVE_MIN_DRYRUN_HOURS is 24",)
    log.append(Event(END_MS - 25 * 3_600_000, "intent", name, "BTC/USDT", "5m", "dry-run", {}))
    assert golive_check(name, data_dir=data, reports_dir=reports, tunables=tun, now_ms=END_MS).ok
    # with the gate passed and every live condition set, a decision asking for live gets live
    live = tun.replace(ALLOW_LIVE=True, DRY_RUN=False)
    keys = {"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}
    order = OrderRequest("BTC/USDT", "buy", "entry", "limit", 0.0001, 50_000.0, limit_price=50_000.0)
    reasons = live_reasons(name, tunables=live, exec_enabled=True, secrets=keys, exchange="binance", data_dir=data,
                           reports_dir=reports, now_ms=END_MS)
    assert reasons == [] and decide(order, tunables=live, positions={}, requested="live", live_reasons=reasons,
                                    env={}, root=tmp_path).mode == "live"
    # ... and without the gate's records (another strategy) it falls back to dry-run, saying why
    other = live_reasons("ETHUSDT_5m_ema_cross", tunables=live, exec_enabled=True, secrets=keys, exchange="binance",
                         data_dir=data, reports_dir=reports, now_ms=END_MS)
    d = decide(order, tunables=live, positions={}, requested="live", live_reasons=other, env={}, root=tmp_path)
    assert d.mode == "dry-run" and d.reasons[0].startswith("dry-run: go-live gate: 0.0 h of dry-run events")
    # a live event does not count as dry-run time; another strategy's events neither
    assert not golive_check("ETHUSDT_5m_ema_cross", data_dir=data, reports_dir=reports, tunables=tun, now_ms=END_MS).ok


def test_metrics_count_events_and_guard_blocks():
    m = Metrics()
    m.observe([Event(1, "decision", "s", "BTC/USDT", "5m", "dry-run",
                     {"allowed": False, "reasons": ["ONE_POSITION_ONLY: BTC/USDT already has an open position",
                                                    "kill switch: KILL_SWITCH is set"]}),
               Event(2, "order", "s", "BTC/USDT", "5m", "dry-run", {})])
    m.set_position("s", open_positions=1, realised_quote=-1.5, unrealised_quote=0.25)
    text = m.text()
    assert 'scalp_execution_events_total{kind="decision",mode="dry-run"} 1.0' in text
    assert 'scalp_guard_blocks_total{guard="ONE_POSITION_ONLY"} 1.0' in text
    assert 'scalp_guard_blocks_total{guard="kill switch"} 1.0' in text
    assert 'scalp_paper_pnl_quote{kind="unrealised",strategy="s"} 0.25' in text
