"""Where a session's orders go: the testnet (ccxt sandbox mode), validate-only where there is no spot
sandbox, else paper — and a sandbox client never points at the real exchange. No network: the
sandbox path is tested up to the point where it would connect."""
from __future__ import annotations

import pytest

from engine.desk.venue import SandboxExecutor, Venue, choose_venue, make_venue_executor, sandbox_blockers
from engine.errors import ConfigError, GuardError
from engine.exchange.client import has_sandbox, make_exchange
from engine.execution.ccxt_executor import CcxtExecutor

KEYS = {f"{ex}_TESTNET_API_{k}": f"{ex.lower()}-testnet-{k.lower()}" for ex in ("BINANCE", "KRAKEN", "BITVAVO")
        for k in ("KEY", "SECRET")}


def test_no_testnet_keys_means_paper_saying_which_keys():
    v = choose_venue("binance", {"BINANCE_API_KEY": "real", "BINANCE_API_SECRET": "real"})  # real keys never count
    assert v.kind == "paper" and not v.sends_orders and v.executor_mode == "dry-run"
    assert "no BINANCE_TESTNET_API_KEY / BINANCE_TESTNET_API_SECRET" in v.reason


def test_binance_with_testnet_keys_goes_to_its_sandbox():
    v = choose_venue("binance", KEYS)
    assert (v.kind, v.executor_mode) == ("sandbox", "live") and "binance testnet (ccxt sandbox mode)" in v.reason
    assert sandbox_blockers(v, KEYS) == []
    assert sandbox_blockers(v, {}) == ["no BINANCE_TESTNET_API_KEY / _API_SECRET in .env or the environment"]


def test_kraken_has_no_spot_sandbox_and_says_so_then_validates_only():
    assert not has_sandbox("kraken")
    v = choose_venue("kraken", KEYS)
    assert (v.kind, v.executor_mode) == ("validate-only", "validate-only")
    assert "kraken has no spot sandbox" in v.reason and "never placed" in v.reason
    ex = make_venue_executor(v, KEYS)
    assert type(ex) is CcxtExecutor and ex.mode == "validate-only"
    assert ex._secrets["KRAKEN_API_KEY"] == "kraken-testnet-key"  # signed with the testnet entry, never KRAKEN_API_KEY


def test_bitvavo_has_neither_and_stays_paper():
    v = choose_venue("bitvavo", KEYS)
    assert v.kind == "paper" and "no spot sandbox and no validate-only path" in v.reason
    assert make_venue_executor(v, KEYS) is None


def test_venue_paper_is_forced_even_with_keys():
    v = choose_venue("binance", KEYS, want="paper")
    assert v.kind == "paper" and "--venue paper" in v.reason
    with pytest.raises(ConfigError, match="venue 'live': expected auto or paper"):
        choose_venue("binance", KEYS, want="live")
    with pytest.raises(ConfigError, match=r'not an exchange ccxt knows.*Did you mean "binance"\?'):
        choose_venue("binanse", KEYS)


def test_make_exchange_in_sandbox_mode_switches_every_url_to_the_testnet():
    real, sandbox = make_exchange("binance"), make_exchange("binance", sandbox=True)
    assert real.urls["api"]["public"] == "https://api.binance.com/api/v3"
    assert sandbox.urls["api"]["public"] == "https://testnet.binance.vision/api/v3"
    assert sandbox.urls["api"]["private"] == "https://testnet.binance.vision/api/v3"
    assert sandbox.isSandboxModeEnabled and not getattr(real, "isSandboxModeEnabled", False)
    assert not any("api.binance.com" in url for url in sandbox.urls["api"].values() if isinstance(url, str))
    local = make_exchange("binance", sandbox=True, urls="http://127.0.0.1:9")  # a test server stands in
    assert local.urls["api"]["public"] == "http://127.0.0.1:9/api/v3" and local.isSandboxModeEnabled
    assert local.options["fetchMarkets"] == {"types": ["spot"]}  # the spot settings stay


@pytest.mark.parametrize("exchange_id", ["kraken", "bitvavo"])
def test_no_sandbox_client_for_an_exchange_without_one(exchange_id):
    with pytest.raises(ConfigError, match=f"{exchange_id}: ccxt knows no sandbox"):
        make_exchange(exchange_id, sandbox=True)
    with pytest.raises(ConfigError, match="a SandboxExecutor cannot be made"):
        SandboxExecutor(exchange_id, secrets=KEYS)


def test_sandbox_executor_signs_with_testnet_keys_on_a_sandbox_client():
    ex = make_venue_executor(Venue("sandbox", "binance", "test"), KEYS)
    assert isinstance(ex, SandboxExecutor) and ex.mode == "live"
    client = ex.client()  # made, not connected
    assert client.isSandboxModeEnabled and client.urls["api"]["private"].startswith("https://testnet.binance.vision")
    assert (client.apiKey, client.secret) == ("binance-testnet-key", "binance-testnet-secret")
    assert "testnet-key" not in repr(ex)


def test_sandbox_executor_refuses_without_keys_or_off_the_sandbox():
    with pytest.raises(GuardError, match="binance testnet: no BINANCE_TESTNET_API_KEY / BINANCE_TESTNET_API_SECRET"):
        SandboxExecutor("binance", secrets={"BINANCE_API_KEY": "real", "BINANCE_API_SECRET": "real"}).client()
    ex = SandboxExecutor("binance", secrets=KEYS)
    ex.client().set_sandbox_mode(False)  # whatever switched it back: nothing may leave
    with pytest.raises(GuardError, match="not in sandbox mode"):
        ex.client()
