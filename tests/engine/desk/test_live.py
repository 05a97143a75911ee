"""Real-time sessions against the local exchange server (tests/exchange_private.py) with an injected
clock: the testnet session mirrors the paper book's fills as orders and ends flat; validate-only
places nothing; paper on live candles sends nothing; an exchange error stops the session but keeps
what it did."""
from __future__ import annotations

import dataclasses

import pytest

from engine.config import load_entries
from engine.config.desk import SessionProfile
from engine.desk.live import OrderMirror, live_store, plan_live, run_live
from engine.desk.profiles import resolve_profile
from engine.desk.venue import Venue, choose_venue, make_venue_executor
from engine.execution.tunables import Tunables
from tests.exchange_private import OrderExchangeServer

KEYS = {"BINANCE_TESTNET_API_KEY": "k", "BINANCE_TESTNET_API_SECRET": "s",
        "KRAKEN_TESTNET_API_KEY": "k", "KRAKEN_TESTNET_API_SECRET": "c2VjcmV0"}
PROFILE = SessionProfile("small", "sma_cross", "BTC/USDT", "1m", 60, 50.0, 5, params={"fast": 5, "slow": 20})
START_MS = 1_619_996_405_000  # 2021-05-02 23:00:05 UTC: the sample's last hour
TUNABLES = Tunables()


def session(server, venue, tmp_path, profile=PROFILE, **kw):
    def sleep(seconds):
        server.now_ms += int(seconds * 1000)

    strategy = resolve_profile(profile, entries=load_entries(), strategies_file="none.yml", now_ms=0)
    plan = plan_live(profile, strategy, venue, tunables=TUNABLES, note="test server")
    return run_live(plan, data_dir=tmp_path, tunables=TUNABLES, secrets=KEYS, warmup_bars=100, urls=server.url,
                    clock=lambda: server.now_ms, sleep=sleep, env={}, root=tmp_path, timeout_ms=3000, **kw)


def test_testnet_session_mirrors_the_paper_fills_and_ends_flat(tmp_path):
    with OrderExchangeServer("binance", ["BTCUSDT"], now_ms=START_MS) as server:
        result = session(server, choose_venue("binance", KEYS), tmp_path)
        placed = [(o.side, o.kind) for o in server.orders.values()]
    assert result.error is None and result.n_trades == 2 and result.stop_note is None
    # the paper book: 23:07 entry, exit signal at 23:20; 23:30 entry still open at the end
    assert len(result.paper.trades) == 2 and result.paper.open_trade is not None
    # each paper fill became one market order on the testnet; the open position was closed at the end
    assert placed == [("buy", "market"), ("sell", "market"), ("buy", "market"), ("sell", "market")]
    assert [o.role for o in result.orders] == ["entry", "exit", "entry", "exit"]
    assert all(o.mode == "live" and o.status == "filled" for o in result.orders)
    bought = sum(o.filled for o in server.orders.values() if o.side == "buy")
    sold = sum(o.filled for o in server.orders.values() if o.side == "sell")
    assert bought == pytest.approx(sold) and bought > 0
    assert result.ended_ms >= START_MS + 3_600_000
    assert (live_store(tmp_path, choose_venue("binance", KEYS)) / "ohlcv" / "BTCUSDT" / "1m.csv").is_file()


def test_paper_on_live_candles_sends_nothing(tmp_path):
    with OrderExchangeServer("binance", ["BTCUSDT"], now_ms=START_MS) as server:
        result = session(server, choose_venue("binance", {}), tmp_path)
        assert server.orders == {} and not any(r.endpoint.startswith("POST") for r in server.requests)
    assert result.orders == () and result.n_trades == 2 and result.error is None


def test_the_live_session_keeps_its_budget(tmp_path):
    capped = dataclasses.replace(PROFILE, max_trades=1)
    with OrderExchangeServer("binance", ["BTCUSDT"], now_ms=START_MS) as server:
        result = session(server, choose_venue("binance", KEYS), tmp_path, profile=capped)
        sides = [o.side for o in server.orders.values()]
    assert result.n_trades == 1 and "entry 2 would break the session's max_trades 1" in result.stop_note
    assert sides == ["buy", "sell"] and result.ended_ms < START_MS + 3_600_000  # stopped early, flat


def test_an_exchange_refusal_stops_the_session_and_keeps_what_happened(tmp_path):
    with OrderExchangeServer("binance", ["BTCUSDT"], now_ms=START_MS) as server:
        server.refuse_next("POST /api/v3/order")  # the first entry: insufficient balance
        result = session(server, choose_venue("binance", KEYS), tmp_path)
    assert result.error.startswith("ExchangeError") and "insufficient balance" in result.error
    assert result.orders == () and result.paper is not None and result.n_trades == 1


def test_validate_only_mirror_places_nothing(tmp_path):
    venue = choose_venue("kraken", KEYS)
    strategy = resolve_profile(PROFILE, entries=load_entries(), strategies_file="none.yml", now_ms=0)
    plan = plan_live(PROFILE, strategy, venue, tunables=TUNABLES, note="test")
    with OrderExchangeServer("kraken", ["BTCUSDT"], now_ms=START_MS) as server:
        ex = make_venue_executor(venue, KEYS, urls=server.url, timeout_ms=3000)
        mirror = OrderMirror(ex, venue, plan, tunables=TUNABLES, secrets=KEYS, clock=lambda: server.now_ms, env={},
                             root=tmp_path)
        record = mirror.send("buy", 0.0001, 56_000.0, "test entry")
        mirror.close(56_000.0)  # validated orders hold nothing: no closing order
        assert server.orders == {} and server.count("POST /0/private/AddOrder", validate="true") == 1
    assert record.status == "validated" and record.mode == "validate-only" and len(mirror.orders) == 1


def test_the_guards_still_decide_each_mirrored_order(tmp_path):
    venue = choose_venue("binance", KEYS)
    strategy = resolve_profile(PROFILE, entries=load_entries(), strategies_file="none.yml", now_ms=0)
    plan = plan_live(PROFILE, strategy, venue, tunables=TUNABLES, note="test")
    with OrderExchangeServer("binance", ["BTCUSDT"], now_ms=START_MS) as server:
        ex = make_venue_executor(venue, KEYS, urls=server.url, timeout_ms=3000)
        mirror = OrderMirror(ex, venue, plan, tunables=TUNABLES, secrets=KEYS, clock=lambda: server.now_ms,
                             env={"KILL_SWITCH": "1"}, root=tmp_path)
        assert mirror.send("buy", 0.0001, 56_000.0, "entry") is None  # the kill switch blocks it
        big = OrderMirror(ex, venue, plan, tunables=TUNABLES, secrets=KEYS, clock=lambda: server.now_ms, env={},
                          root=tmp_path)
        assert big.send("buy", 0.01, 56_000.0, "entry") is None  # 560 quote > ENTRY_MAX_NOTIONAL 10
        no_keys = OrderMirror(ex, venue, plan, tunables=TUNABLES, secrets={}, clock=lambda: server.now_ms, env={},
                              root=tmp_path)
        assert no_keys.send("buy", 0.0001, 56_000.0, "entry") is None  # testnet blockers: not sent as live
        assert server.requests == [] or not any(r.endpoint.startswith("POST") for r in server.requests)
    assert "kill switch: KILL_SWITCH is set" in mirror.notes[0]
    assert "ENTRY_MAX_NOTIONAL: entry notional 560.00 > 10" in big.notes[0]
    assert "dry-run: no BINANCE_TESTNET_API_KEY" in no_keys.notes[0]


def test_ctrl_c_still_closes_the_testnet_position_and_returns_what_happened(tmp_path):
    with OrderExchangeServer("binance", ["BTCUSDT"], now_ms=START_MS) as server:
        def sleep(seconds):
            server.now_ms += int(seconds * 1000)
            if server.now_ms > START_MS + 45 * 60_000:  # 23:45: the 23:30 position is open
                raise KeyboardInterrupt

        strategy = resolve_profile(PROFILE, entries=load_entries(), strategies_file="none.yml", now_ms=0)
        plan = plan_live(PROFILE, strategy, choose_venue("binance", KEYS), tunables=TUNABLES, note="test server")
        result = run_live(plan, data_dir=tmp_path, tunables=TUNABLES, secrets=KEYS, warmup_bars=100, urls=server.url,
                          clock=lambda: server.now_ms, sleep=sleep, env={}, root=tmp_path, timeout_ms=3000)
        sides = [o.side for o in server.orders.values()]
    assert result.error == "interrupted (Ctrl-C)" and result.n_trades == 2
    assert sides == ["buy", "sell", "buy", "sell"]  # flat again
