"""Guards: each blocks with its reason; the kill switch blocks an order created after it is set;
live needs every condition; tunables load with clear errors."""
from __future__ import annotations

import pytest

from engine.errors import ConfigError
from engine.execution.guards import OpenPosition, OrderRequest, decide, kill_switch_reason, live_blockers
from engine.execution.tunables import Tunables, has_keys, load_secrets, load_tunables

T = Tunables()  # ENTRY_MAX_NOTIONAL 10, per asset 25, 3 positions, exposure 50
ENTRY = OrderRequest("BTC/USDT", "buy", "entry", "limit", qty_base=0.0001, price_quote=60_000, limit_price=60_000)  # 6 quote


def test_an_entry_within_every_limit_is_allowed_in_dry_run(tmp_path):
    d = decide(ENTRY, tunables=T, positions={}, root=tmp_path)
    assert d.allowed and d.mode == "dry-run" and d.reasons == ()
    assert d.checked == ("kill_switch", "ABS_LIMIT_REQUIRED", "ENTRY_MAX_NOTIONAL", "ONE_POSITION_ONLY",
                         "MAX_NOTIONAL_PER_ASSET", "MAX_CONCURRENT_POSITIONS", "MAX_GLOBAL_EXPOSURE", "mode")


@pytest.mark.parametrize("order, positions, reason", [
    (OrderRequest("BTC/USDT", "buy", "entry", "limit", 0.0001, 60_000, None), {},
     "ABS_LIMIT_REQUIRED: limit order without an absolute limit price"),
    (OrderRequest("BTC/USDT", "buy", "entry", "market", 0.001, 60_000), {},
     "ENTRY_MAX_NOTIONAL: entry notional 60.00 > 10 (quote)"),
    (ENTRY, {"BTC/USDT": OpenPosition("BTC/USDT", 0.0001, 50_000)}, "ONE_POSITION_ONLY: BTC/USDT already has an open position"),
    (ENTRY, {"BTC/EUR": OpenPosition("BTC/EUR", 0.0004, 50_000)}, "MAX_NOTIONAL_PER_ASSET: BTC open 20.00 + 6.00 > 25 (quote)"),
    (ENTRY, {p: OpenPosition(p, 1, 1) for p in ("ETH/USDT", "SOL/USDT", "ADA/USDT")},
     "MAX_CONCURRENT_POSITIONS: 3 open ≥ 3"),
    (ENTRY, {"ETH/USDT": OpenPosition("ETH/USDT", 0.02, 2_300)}, "MAX_GLOBAL_EXPOSURE: open 46.00 + 6.00 > 50 (quote)"),
])
def test_each_guard_blocks_with_its_reason(order, positions, reason, tmp_path):
    d = decide(order, tunables=T, positions=positions, root=tmp_path)
    assert not d.allowed and reason in d.reasons


def test_every_blocking_guard_is_listed_not_only_the_first(tmp_path):
    big = OrderRequest("BTC/USDT", "buy", "entry", "limit", 0.01, 60_000, None)
    d = decide(big, tunables=T, positions={"BTC/USDT": OpenPosition("BTC/USDT", 0.0001, 60_000)}, root=tmp_path)
    assert [r.split(":")[0] for r in d.reasons] == ["ABS_LIMIT_REQUIRED", "ENTRY_MAX_NOTIONAL", "ONE_POSITION_ONLY",
                                                   "MAX_NOTIONAL_PER_ASSET", "MAX_GLOBAL_EXPOSURE"]


def test_exits_are_never_blocked_by_size_guards(tmp_path):
    close = OrderRequest("BTC/USDT", "sell", "exit", "stop-loss", 1.0, 60_000)
    d = decide(close, tunables=T, positions={"BTC/USDT": OpenPosition("BTC/USDT", 1.0, 60_000)}, root=tmp_path)
    assert d.allowed


def test_the_kill_switch_blocks_an_order_created_after_it_is_set(tmp_path):
    tun = T.replace(KILL_SWITCH_FILE=str(tmp_path / "KILL"))
    planned = ENTRY  # the order exists before the switch
    assert decide(planned, tunables=tun, positions={}, env={}).allowed
    (tmp_path / "KILL").write_text("stop")
    d = decide(planned, tunables=tun, positions={}, env={})
    assert not d.allowed and d.reasons[0] == f"kill switch: {tmp_path / 'KILL'} exists"
    exit_order = OrderRequest("BTC/USDT", "sell", "exit", "market", 0.0001, 60_000)
    assert not decide(exit_order, tunables=tun, positions={}, env={}).allowed  # it stops everything
    (tmp_path / "KILL").unlink()
    assert decide(planned, tunables=tun, positions={}, env={}).allowed
    assert kill_switch_reason(tun, env={"KILL_SWITCH": "1"}) == "kill switch: KILL_SWITCH is set"


def test_live_needs_every_condition_else_dry_run_says_why(tmp_path):
    reasons = live_blockers(T, exec_enabled=False, secrets={}, exchange="kraken", golive_ok=False)
    assert reasons == ["ALLOW_LIVE is 0", "DRY_RUN is 1", "runtime.exec_enabled is false",
                       "no KRAKEN_API_KEY / _API_SECRET in .env or the environment", "go-live gate: no go-live record"]
    d = decide(ENTRY, tunables=T, positions={}, requested="live", live_reasons=reasons, root=tmp_path)
    assert d.allowed and d.mode == "dry-run" and "dry-run: ALLOW_LIVE is 0" in d.reasons
    live = T.replace(ALLOW_LIVE=True, DRY_RUN=False)
    keys = {"KRAKEN_API_KEY": "k", "KRAKEN_API_SECRET": "s"}
    assert live_blockers(live, exec_enabled=True, secrets=keys, exchange="kraken", golive_ok=True) == []
    assert decide(ENTRY, tunables=live, positions={}, requested="live", live_reasons=[], root=tmp_path).mode == "live"
    assert decide(ENTRY, tunables=T, positions={}, requested="validate-only", root=tmp_path).mode == "validate-only"


def test_tunables_file_env_overrides_and_errors(tmp_path):
    f = tmp_path / "execution.env"
    f.write_text("# comment\nENTRY_MAX_NOTIONAL=20\nexport DEFAULT_TIF=ioc\n\nONE_POSITION_ONLY=0\n")
    t = load_tunables(f, env={"DEADLINE_MS": "2000"})
    assert (t.ENTRY_MAX_NOTIONAL, t.DEFAULT_TIF, t.ONE_POSITION_ONLY, t.DEADLINE_MS) == (20.0, "ioc", False, 2000)
    assert load_tunables(tmp_path / "missing.env", env={}) == Tunables()  # the shipped defaults
    for text, match in [("ENTRY_MAX_NOTIONL=5\n", r'line 1: unknown key .ENTRY_MAX_NOTIONL.. Did you mean "ENTRY_MAX_NOTIONAL"'),
                        ("ENTRY_MAX_NOTIONAL=ten\n", r"line 1: ENTRY_MAX_NOTIONAL = 'ten': expected a number"),
                        ("ALLOW_LIVE=maybe\n", r"ALLOW_LIVE = 'maybe': expected 1/0 or true/false"),
                        ("DEADLINE_MS=100\n", r"DEADLINE_MS = 100: expected 500 … 60000 ms"),
                        ("DEFAULT_STP=cancel-newest\n", "DEFAULT_STP = 'cancel-newest': expected cancel_newest"),
                        ("just text\n", r"line 1: 'just text': expected KEY=VALUE")]:
        f.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_tunables(f, env={})
    from engine.execution.tunables import TUNABLES_FILE

    assert load_tunables(TUNABLES_FILE, env={}) == Tunables()  # the shipped file states the defaults


def test_secrets_stay_apart(tmp_path):
    env = tmp_path / ".env"
    env.write_text("KRAKEN_API_KEY=abc\nKRAKEN_API_SECRET='s3cr3t'\nOTHER=1\n")
    s = load_secrets(env, env={"BINANCE_TESTNET_API_KEY": "t", "BINANCE_TESTNET_API_SECRET": "u"})
    assert s == {"KRAKEN_API_KEY": "abc", "KRAKEN_API_SECRET": "s3cr3t", "BINANCE_TESTNET_API_KEY": "t",
                 "BINANCE_TESTNET_API_SECRET": "u"}
    assert has_keys(s, "kraken") and not has_keys(s, "binance") and has_keys(s, "binance", testnet=True)
