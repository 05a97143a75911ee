"""Promotion rules per risk_mode, merge with TTL, expiry; strategies.yml never half-written."""
from __future__ import annotations

import math

import pytest
import yaml

from engine import promotion
from engine.config import PromotionRules, load_config, load_strategies
from engine.errors import ConfigError

NOW = 1_620_000_000_000  # 2021-05-03 00:00 UTC
RULES = load_config(env={}).promotion

GOOD = {"n_trades": 40, "profit_factor": 1.8, "max_drawdown_pct": 5.0, "sharpe": 2.0, "win_rate_pct": 55.0,
        "total_return_pct": 4.0}


def cand(pair="BTCUSDT", tf="5m", **metrics):
    return {"pair": pair, "timeframe": tf, "entry_set": "ema_cross", "signal": "ema_cross",
            "params": {"fast": 9, "slow": 21}, "metrics": {**GOOD, **metrics}}


@pytest.mark.parametrize("mode, metrics, ok", [
    ("conservative", GOOD, True),
    ("conservative", {**GOOD, "n_trades": 29}, False),
    ("conservative", {**GOOD, "max_drawdown_pct": 10.5}, False),
    ("balanced", {**GOOD, "profit_factor": 1.19}, False),
    ("balanced", {**GOOD, "sharpe": 0.6, "n_trades": 15}, True),
    ("aggressive", {**GOOD, "n_trades": 5, "sharpe": 0.0, "profit_factor": 1.0, "win_rate_pct": 20.0}, True),
    ("aggressive", {**GOOD, "n_trades": 4}, False),
    ("aggressive", {**GOOD, "sharpe": None}, False),
    ("aggressive", {**GOOD, "sharpe": -0.1}, False),
])
def test_rules_per_mode(mode, metrics, ok):
    assert (promotion.check_rules(metrics, RULES[mode]) == []) is ok


def test_reasons_name_every_failed_rule():
    reasons = promotion.check_rules({**GOOD, "n_trades": 2, "max_drawdown_pct": 60.0}, RULES["aggressive"])
    assert reasons == ["trades 2 < 5", "max drawdown 60.00 % > 35 %"]


def test_undefined_profit_factor_with_only_winners_passes_but_with_no_trades_fails():
    rules = PromotionRules(1.0, 50.0, -10.0, 0, 0.0)
    assert promotion.check_rules({**GOOD, "profit_factor": None}, rules) == []
    assert "profit factor undefined" in promotion.check_rules(
        {**GOOD, "n_trades": 0, "profit_factor": math.nan, "total_return_pct": 0.0}, rules)


def test_promote_file_merges_with_ttl_and_drops_expired(tmp_path):
    next_path = tmp_path / "strategies.yml.next"
    next_path.write_text(yaml.safe_dump({"candidates": [cand("BTCUSDT"), cand("ETHUSDT", n_trades=1)]}))
    strat = tmp_path / "strategies.yml"
    old = {**cand("XRPUSDT"), "promoted_at": "2021-05-01T00:00:00Z", "expires_at": "2021-05-02T23:59:59Z",
           "risk_mode": "aggressive"}
    kept = {**cand("ADAUSDT"), "promoted_at": "2021-05-02T00:00:00Z", "expires_at": "2021-05-03T01:00:00Z",
            "risk_mode": "aggressive"}
    strat.write_text(yaml.safe_dump({"strategies": [old, kept]}))
    decisions, active = promotion.promote_file(next_path, strat, RULES["aggressive"], risk_mode="aggressive",
                                               now_ms=NOW, ttl_hours=24)
    assert [d.promoted for d in decisions] == [True, False]
    assert [s["pair"] for s in active] == ["ADAUSDT", "BTCUSDT"]
    stored = load_strategies(strat)
    btc = next(s for s in stored if s["pair"] == "BTCUSDT")
    assert btc["promoted_at"] == "2021-05-03T00:00:00Z" and btc["expires_at"] == "2021-05-04T00:00:00Z"
    assert btc["expires_at_ms"] - btc["promoted_at_ms"] == 24 * 3_600_000
    assert btc["risk_mode"] == "aggressive"
    assert promotion.expire_file(strat, NOW + 3_600_000)[0]["pair"] == "ADAUSDT"
    assert [s["pair"] for s in load_strategies(strat)] == ["BTCUSDT"]


def test_bad_candidates_file_leaves_strategies_untouched(tmp_path):
    strat = tmp_path / "strategies.yml"
    strat.write_text("strategies: []\n")
    bad = tmp_path / "next"
    bad.write_text("candidates: [{pair: BTCUSDT}]\n")
    with pytest.raises(ConfigError, match=r"candidates\[0\]: missing key 'timeframe'"):
        promotion.promote_file(bad, strat, RULES["aggressive"], risk_mode="aggressive", now_ms=NOW, ttl_hours=1)
    with pytest.raises(ConfigError, match="file not found"):
        promotion.promote_file(tmp_path / "nope", strat, RULES["aggressive"], risk_mode="aggressive", now_ms=NOW, ttl_hours=1)
    assert strat.read_text() == "strategies: []\n"


def test_expiry_follows_the_iso_expires_at(tmp_path):
    """strategies.yml documents promoted_at/expires_at (ISO); a hand-edited file without the *_ms
    twins, or with stale ones, must expire by the ISO time."""
    base = {"entry_set": "ema_cross", "signal": "ema_cross", "params": {}, "risk_mode": "aggressive",
            "promoted_at": "2021-05-02T00:00:00Z", "expires_at": "2021-05-10T00:00:00Z"}
    path = tmp_path / "s.yml"
    path.write_text(yaml.safe_dump({"strategies": [
        {**base, "pair": "BTCUSDT", "timeframe": "5m"},                                # no *_ms at all
        {**base, "pair": "ETHUSDT", "timeframe": "5m", "expires_at_ms": NOW - 86_400_000},  # stale twin
        {**base, "pair": "XRPUSDT", "timeframe": "5m", "expires_at": "2021-05-02T12:00:00Z"}]}))
    loaded = load_strategies(path)
    assert [s["expires_at_ms"] for s in loaded][:2] == [1620604800000, 1620604800000]
    kept, expired = promotion.drop_expired(loaded, NOW)
    assert [s["pair"] for s in kept] == ["BTCUSDT", "ETHUSDT"] and [s["pair"] for s in expired] == ["XRPUSDT"]
    from engine.states import active_keys

    assert active_keys(loaded, NOW) == {("BTCUSDT", "5m"), ("ETHUSDT", "5m")}
    path.write_text(yaml.safe_dump({"strategies": [{**base, "pair": "BTCUSDT", "timeframe": "5m",
                                                    "expires_at": "next tuesday"}]}))
    with pytest.raises(ConfigError, match=r"strategies\[0\].expires_at = 'next tuesday': expected an ISO 8601"):
        load_strategies(path)
