"""Promotion rules per risk_mode, merge with TTL, expiry; strategies.yml never half-written."""
from __future__ import annotations

import math

import pytest

from engine import promotion
from engine.config import PromotionRules, load_config
from engine.errors import DataError
from engine.strategy.promoted import PromotedStrategy, drop_expired, load_strategies, save_strategies
from tests.conftest import make_candidate, write_candidates

NOW = 1_620_000_000_000  # 2021-05-03 00:00 UTC
RULES = load_config(env={}).promotion

GOOD = {"n_trades": 40, "profit_factor": 1.8, "max_drawdown_pct": 5.0, "sharpe": 2.0, "win_rate_pct": 55.0,
        "total_return_pct": 4.0}


@pytest.mark.parametrize("mode, metrics, ok", [
    ("conservative", GOOD, True),
    ("conservative", {**GOOD, "n_trades": 29}, False),
    ("conservative", {**GOOD, "max_drawdown_pct": 10.5}, False),
    ("balanced", {**GOOD, "profit_factor": 1.19}, False),
    ("balanced", {**GOOD, "sharpe": 0.6, "n_trades": 15}, True),
    ("aggressive", {**GOOD, "n_trades": 5, "sharpe": 0.0, "profit_factor": 1.0, "win_rate_pct": 20.0}, True),
    ("aggressive", {**GOOD, "n_trades": 4}, False),
    ("aggressive", {**GOOD, "sharpe": math.nan}, False),
    ("aggressive", {**GOOD, "sharpe": -0.1}, False),
])
def test_rules_per_mode(mode, metrics, ok):
    assert (promotion.check_rules(metrics, RULES[mode]) == []) is ok


def test_reasons_name_every_failed_rule():
    reasons = promotion.check_rules({**GOOD, "n_trades": 2, "max_drawdown_pct": 60.0}, RULES["aggressive"])
    assert reasons == ["trades 2 < 5", "max drawdown 60.00 % > 35 %"]


def test_undefined_profit_factor_with_only_winners_passes_but_with_no_trades_fails():
    rules = PromotionRules(1.0, 50.0, -10.0, 0, 0.0, 0.0, 1.0, 1.0, False)
    assert promotion.check_rules({**GOOD, "profit_factor": math.nan}, rules) == []
    assert "profit factor undefined" in promotion.check_rules(
        {**GOOD, "n_trades": 0, "profit_factor": math.nan, "total_return_pct": 0.0}, rules)


@pytest.mark.parametrize("mode, dsr, judgement, reason", [
    ("aggressive", 0.49, {}, "deflated Sharpe 0.49 < 0.5 (27 trials)"),
    ("aggressive", math.nan, {}, "deflated Sharpe nan < 0.5 (27 trials)"),
    ("aggressive", 0.97, {"p_value_vs_random": 0.11}, "p-value vs random 0.11 > 0.1 (200 twins)"),
    ("aggressive", 0.97, {"p_value_vs_random": math.nan}, "p-value vs random not computed (no trade or "
                                                          "backtest.chance.n_twins 0)"),
    ("balanced", 0.97, {"p_value_vs_random": 0.06}, "p-value vs random 0.06 > 0.05 (200 twins)"),
    ("conservative", 0.94, {}, "deflated Sharpe 0.94 < 0.95 (27 trials)"),
    ("conservative", 0.97, {"p_value_vs_random": 0.02}, "p-value vs random 0.02 > 0.01 (200 twins)"),
    ("conservative", 0.97, {"pbo": 0.21}, "PBO 0.21 > 0.2"),
    ("conservative", 0.97, {"pbo": math.nan}, "PBO undefined"),
    ("conservative", 0.97, {"holdout": {}}, "holdout: required but walk_forward.final_holdout_bars is 0"),
    ("conservative", 0.97, {"holdout": {**GOOD, "n_trades": 14, "sharpe": -0.3}}, "holdout: Sharpe -0.30 < 1.5"),
    # the deployed parameters on their own (one-fold) window: 30 trades over 3 folds → at least 10
    ("conservative", 0.97, {"deployed_oos": {**GOOD, "n_trades": 9}}, "deployed: trades 9 < 10"),
    ("aggressive", 0.97, {"deployed_oos": {**GOOD, "total_return_pct": -2.0, "profit_factor": 0.7}},
     "deployed: profit factor 0.70 < 1"),
    ("aggressive", 0.97, {"deployed_oos": {}}, "deployed: no out-of-sample metrics of the deployed parameters"),
])
def test_judged_rules_fail_with_the_number_and_the_threshold(mode, dsr, judgement, reason):
    good = make_candidate()
    assert promotion.check_judgement(good, RULES[mode]) == []
    bad = make_candidate(deflated_sharpe=dsr, judgement=judgement)
    assert reason in promotion.check_judgement(bad, RULES[mode])
    (decision,) = promotion.decide([bad], RULES[mode])
    assert not decision.promoted and reason in decision.reasons


def test_aggressive_accepts_an_undefined_pbo_and_no_holdout_but_never_skips_chance():
    loose = make_candidate(judgement={"pbo": math.nan, "holdout": {}})
    assert promotion.check_judgement(loose, RULES["aggressive"]) == []
    assert RULES["aggressive"].max_p_value_vs_random <= 0.10 and RULES["aggressive"].min_deflated_sharpe >= 0.5
    assert RULES["conservative"].max_p_value_vs_random <= 0.01 and RULES["conservative"].max_pbo <= 0.2


def test_the_pooled_walk_forward_metrics_still_count():
    (decision,) = promotion.decide([make_candidate(n_trades=4)], RULES["aggressive"])
    assert decision.reasons == ("trades 4 < 5",)


def _held(pair: str, promoted_at: int, expires_at: int) -> PromotedStrategy:
    return promotion.promote(make_candidate(pair), risk_mode="aggressive", now_ms=promoted_at,
                             ttl_hours=(expires_at - promoted_at) / 3_600_000)


def test_promote_file_merges_with_ttl_and_drops_expired(tmp_path):
    next_path = write_candidates(tmp_path / "strategies.yml.next",
                                 [make_candidate("BTCUSDT"), make_candidate("ETHUSDT", n_trades=1)])
    strat = tmp_path / "strategies.yml"
    old = _held("XRPUSDT", NOW - 2 * 86_400_000, NOW - 1_000)   # expired a second ago
    kept = _held("ADAUSDT", NOW - 86_400_000, NOW + 3_600_000)  # expires in an hour
    save_strategies(strat, [old, kept], NOW - 86_400_000)
    decisions, active = promotion.promote_file(next_path, strat, RULES["aggressive"], risk_mode="aggressive",
                                               now_ms=NOW, ttl_hours=24)
    assert [type(d) for d in decisions] == [promotion.PromotionDecision] * 2
    assert [d.promoted for d in decisions] == [True, False]
    assert [s.pair for s in active] == ["ADAUSDT", "BTCUSDT"]
    stored = load_strategies(strat)
    assert stored == active
    btc = next(s for s in stored if s.pair == "BTCUSDT")
    assert (btc.promoted_at_ms, btc.expires_at_ms, btc.risk_mode) == (NOW, NOW + 24 * 3_600_000, "aggressive")
    # the promoted record carries what the candidate was scored with and where it came from
    cand = make_candidate("BTCUSDT")
    assert (btc.exit_plan, btc.costs, btc.params, btc.metrics) == (cand.exit_plan, cand.costs, cand.params, cand.metrics)
    assert (btc.config_id, btc.period, btc.bars, btc.curve) == (cand.config_id, cand.period, cand.bars, cand.curve)
    text = strat.read_text()
    assert "promoted_at: '2021-05-03T00:00:00Z'" in text and "expires_at: '2021-05-04T00:00:00Z'" in text
    assert "_ms" not in text.split("strategies:")[1].split("period:")[0]  # ISO in the file, ms in memory
    assert [s.pair for s in promotion.expire_file(strat, NOW + 3_600_000)] == ["ADAUSDT"]
    assert [s.pair for s in load_strategies(strat)] == ["BTCUSDT"]


def test_bad_candidates_file_leaves_strategies_untouched(tmp_path):
    strat = tmp_path / "strategies.yml"
    strat.write_text("strategies: []\n")
    bad = tmp_path / "next"
    bad.write_text("generated_at: '2021-05-03T00:00:00Z'\nconfig_id: x\nobjective: sharpe\n"
                   "candidates: [{pair: BTCUSDT}]\n")
    with pytest.raises(DataError, match=r"next → candidates\[0\]: missing key 'timeframe'"):
        promotion.promote_file(bad, strat, RULES["aggressive"], risk_mode="aggressive", now_ms=NOW, ttl_hours=1)
    with pytest.raises(DataError, match="nope: file not found; run the research first"):
        promotion.promote_file(tmp_path / "nope", strat, RULES["aggressive"], risk_mode="aggressive", now_ms=NOW,
                               ttl_hours=1)
    assert strat.read_text() == "strategies: []\n"


def test_expiry_is_on_the_cycle_clock():
    s = _held("BTCUSDT", NOW - 3_600_000, NOW)
    assert not s.is_expired(NOW - 1) and s.is_expired(NOW)
    kept, expired = drop_expired([s, _held("ETHUSDT", NOW, NOW + 60_000)], NOW)
    assert [x.pair for x in kept] == ["ETHUSDT"] and [x.pair for x in expired] == ["BTCUSDT"]


def test_a_candidate_on_old_data_is_not_promoted_and_expiry_counts_from_its_last_candle(tmp_path):
    """Offline with stored exchange candles the clock is the wall clock: five-year-old research must
    not be promoted with a fresh 24 h expiry."""
    import dataclasses

    from engine.records import Period
    from engine.strategy.promoted import load_strategies
    from tests.conftest import make_candidate, write_candidates

    last_open = 1_619_999_700_000  # 5m candle opening 2021-05-02 23:55 UTC, closing 2021-05-03 00:00
    fresh = make_candidate("BTCUSDT", "5m")
    stale = dataclasses.replace(make_candidate("ETHUSDT", "5m"), period=Period(1_617_321_600_000, last_open - 3_600_000))
    rules = PromotionRules(1.0, 35.0, 0.0, 5, 0.0, 0.0, 1.0, 1.0, False)
    now = last_open + 300_000 + 5 * 300_000  # exactly age_mult 5 × 5 m after the close: still fresh
    decisions = promotion.decide([fresh, stale], rules, now_ms=now, age_mult=5)
    assert decisions[0].promoted
    assert not decisions[1].promoted
    assert decisions[1].reasons == ("data 1.4 h old on the run's clock (last candle 2021-05-02 22:55 UTC; at most 5 × 5m)",)
    # promoted on a later clock than the data (a replay clock equals the close; here 10 min later):
    # the expiry counts from the close of the last candle, not from now
    cands = tmp_path / "next.yml"
    write_candidates(cands, [fresh])
    promotion.promote_file(cands, tmp_path / "strategies.yml", rules, risk_mode="aggressive", now_ms=now,
                           ttl_hours=24, age_mult=5)
    [s] = load_strategies(tmp_path / "strategies.yml")
    assert s.promoted_at_ms == now and s.expires_at_ms == last_open + 300_000 + 24 * 3_600_000
