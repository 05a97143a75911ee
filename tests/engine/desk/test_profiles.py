"""desk.yaml (schema, messages naming file, key, value and expectation) and the session profiles
(entry set or promoted strategy, overrides)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from engine.config import load_entries
from engine.config.desk import DESK_YAML_PATH, load_desk_config
from engine.desk.profiles import format_profiles, get_profile, resolve_profile, with_overrides
from engine.errors import ConfigError
from tests.conftest import REPO_ROOT

ENTRIES = load_entries()
# a promoted BNBUSDT 15m sma_cross that expires 2021-05-04 (engine/config/strategies.yml is made at run time)
STRATEGIES = Path(__file__).parent / "data" / "strategies_bnb.yml"
BEFORE_EXPIRY = 1_620_000_000_000  # 2021-05-03 00:00 UTC
AFTER_EXPIRY = 1_620_200_000_000


def write(tmp_path, doc) -> str:
    path = tmp_path / "desk.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def base() -> dict:
    return yaml.safe_load(DESK_YAML_PATH.read_text())


def test_the_shipped_file_has_the_issues_profiles():
    cfg = load_desk_config(env={})
    assert {"ma_crossover_small", "btc_momentum", "quick_smoke", "eth_swing"} <= set(cfg.profiles)
    assert any(p.is_promoted for p in cfg.profiles.values())
    assert cfg.usage_dir is None and cfg.usage_retention_days == 30 and cfg.auto_report
    for p in cfg.profiles.values():  # each shipped profile resolves (the promoted one on its clock)
        resolved = resolve_profile(p, entries=ENTRIES, strategies_file=STRATEGIES, now_ms=BEFORE_EXPIRY)
        assert resolved.spec.symbol == p.symbol and resolved.spec.timeframe == p.timeframe
    text = format_profiles(cfg)
    assert "[quick_smoke]" in text and "max notional:  30.00 (quote)" in text


def test_defaults_fill_missing_blocks(tmp_path):
    cfg = load_desk_config(write(tmp_path, {"profiles": {"p": {
        "strategy": "ema_cross", "symbol": "BTCUSDT", "timeframe": "5m", "duration_minutes": 30,
        "max_notional_quote": 20, "max_trades": 2}}}), env={})
    assert cfg.limits.run.max_notional_quote == 200.0 and cfg.limits.day.max_trades == 100
    assert cfg.limits.allowed_symbols is None and cfg.warmup_bars == 500
    assert cfg.profiles["p"].symbol == "BTC/USDT" and cfg.profiles["p"].exchange is None


def test_environment_names_another_file(tmp_path):
    doc = base()
    doc["profiles"] = {"only": doc["profiles"]["quick_smoke"]}
    cfg = load_desk_config(env={"SCALP_DESK_CONFIG": write(tmp_path, doc)})
    assert list(cfg.profiles) == ["only"]


@pytest.mark.parametrize("change, match", [
    (lambda d: d["limits"]["run"].update(max_notional=5),
     r'desk.yaml → limits.run: unknown key "max_notional". Did you mean "max_notional_quote"\?'),
    (lambda d: d["limits"]["day"].update(max_trades="ten"), r"desk.yaml → limits.day.max_trades = 'ten': expected a number"),
    (lambda d: d["limits"]["run"].update(max_duration_minutes=0),
     r"limits.run.max_duration_minutes = 0: expected a number ≥ 1"),
    (lambda d: d["limits"]["symbols"].update(allowed=[]), r"limits.symbols.allowed = \[\]: expected at least one pair"),
    (lambda d: d["limits"]["symbols"].update(allowed=["BTC/USDT", "bitcoin"]),
     r"limits.symbols.allowed\[1\] = 'bitcoin': expected a pair like BTC/USDT"),
    (lambda d: d["usage"].update(retention_days=-1), r"usage.retention_days = -1: expected a number ≥ 1"),
    (lambda d: d["profiles"]["quick_smoke"].pop("symbol"), r"profiles.quick_smoke.symbol: missing; expected pair traded"),
    (lambda d: d["profiles"]["quick_smoke"].update(timeframe="2m"), r"profiles.quick_smoke.timeframe = '2m': expected one of"),
    (lambda d: d["profiles"]["eth_swing"].update(duration_minutes=10),
     r"profiles.eth_swing.duration_minutes = 10: expected at least one 15m candle \(15 minutes\)"),
    (lambda d: d["profiles"]["bnb_promoted"].update(params={"fast": 3}),
     r"profiles.bnb_promoted.params: a promoted strategy trades its own parameters"),
    (lambda d: d["profiles"]["quick_smoke"].update(max_trade=3),
     r'profiles.quick_smoke: unknown key "max_trade". Did you mean "max_trades"\?'),
    (lambda d: d.update(profiles={}), r"profiles: empty; expected at least one session profile"),
    (lambda d: d.pop("profiles"), r"profiles: missing"),
], ids=["unknown-key", "type", "range", "empty-allow-list", "bad-symbol", "retention", "missing", "timeframe",
        "shorter-than-a-candle", "promoted-with-params", "profile-key", "no-profiles", "no-profiles-block"])
def test_bad_desk_yaml_names_file_key_value_and_expectation(tmp_path, change, match):
    doc = base()
    change(doc)
    with pytest.raises(ConfigError, match=match):
        load_desk_config(write(tmp_path, doc), env={})


@pytest.mark.parametrize("text, match", [
    ("limits:\n  run: [unclosed\n", r"desk.yaml line \d+: not valid YAML"),
    ("", r"desk.yaml: the file is empty"),
    ("- a list\n", r"desk.yaml → \(top level\) = \['a list'\]: expected a mapping"),
])
def test_unreadable_desk_yaml(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_desk_config(write(tmp_path, text), env={})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: file not found"):
        load_desk_config(tmp_path / "nope.yaml", env={})


def test_unknown_profile_with_did_you_mean():
    cfg = load_desk_config(env={})
    assert get_profile(cfg, "quick_smoke").name == "quick_smoke"
    with pytest.raises(ConfigError, match=r"profile 'quick_smok': not in engine/config/desk.yaml → profiles. "
                                          r'Did you mean "quick_smoke"\?'):
        get_profile(cfg, "quick_smok")
    with pytest.raises(ConfigError, match=r"Profiles: quick_smoke, ma_crossover_small"):
        get_profile(cfg, "zzz")


def test_entry_set_profile_takes_the_sets_rules_and_its_own_params():
    p = load_desk_config(env={}).profiles["ma_crossover_small"]
    r = resolve_profile(p, entries=ENTRIES, strategies_file=STRATEGIES, now_ms=0)
    es = ENTRIES.entry_sets["sma_cross"]
    assert r.spec.params == {"fast": 5, "slow": 20} and r.spec.exit_plan == es.exit_plan and r.spec.costs == es.costs
    assert r.source.startswith("entry set sma_cross {'fast': 5, 'slow': 20}")


def test_bad_strategy_or_params_name_the_profile():
    p = load_desk_config(env={}).profiles["quick_smoke"]
    with pytest.raises(ConfigError, match=r"desk profile quick_smoke: strategy 'sma_crosss': expected 'promoted' or "
                                          r"an entry set of entries_config.json .*Did you mean \"sma_cross\"\?"):
        resolve_profile(with_strategy(p, "sma_crosss"), entries=ENTRIES, strategies_file=STRATEGIES, now_ms=0)
    with pytest.raises(ConfigError, match=r"desk profile quick_smoke → params: unknown key 'period'"):
        resolve_profile(with_strategy(p, "sma_cross", {"period": 3}), entries=ENTRIES, strategies_file=STRATEGIES,
                        now_ms=0)


def with_strategy(p, strategy, params=None):
    return dataclasses.replace(p, strategy=strategy, params=params or {})


def test_promoted_profile_trades_the_promoted_strategy(tmp_path):
    p = load_desk_config(env={}).profiles["bnb_promoted"]
    r = resolve_profile(p, entries=ENTRIES, strategies_file=STRATEGIES, now_ms=BEFORE_EXPIRY)
    assert (r.spec.pair, r.spec.entry_set, dict(r.spec.params)) == ("BNBUSDT", "sma_cross", {"fast": 20, "slow": 100})
    assert "promoted sma_cross" in r.source and "risk_mode aggressive" in r.source
    with pytest.raises(ConfigError, match=r"the promoted strategy BNBUSDT 15m sma_cross in .* expired at "
                                          r"2021-05-04 00:00 UTC"):
        resolve_profile(p, entries=ENTRIES, strategies_file=STRATEGIES, now_ms=AFTER_EXPIRY)
    other = dataclasses.replace(p, symbol="ETH/USDT")
    with pytest.raises(ConfigError, match=r"promotes nothing for ETH/USDT 15m; promote one first"):
        resolve_profile(other, entries=ENTRIES, strategies_file=STRATEGIES, now_ms=BEFORE_EXPIRY)
    with pytest.raises(ConfigError, match=r"promotes nothing"):  # no strategies file at all
        resolve_profile(p, entries=ENTRIES, strategies_file=tmp_path / "none.yml", now_ms=BEFORE_EXPIRY)


def test_overrides():
    p = load_desk_config(env={}).profiles["quick_smoke"]
    q = with_overrides(p, duration_minutes=30.0, max_notional_quote=12)
    assert (q.duration_minutes, q.max_notional_quote, q.max_trades) == (30, 12.0, p.max_trades)
    assert with_overrides(p) is p


@pytest.mark.parametrize("kw, match", [
    ({"duration_minutes": 0}, r"--override-duration = 0: expected whole minutes ≥ 1"),
    ({"duration_minutes": 2.5}, r"--override-duration = 2.5"),
    ({"max_notional_quote": -3}, r"--override-max-notional = -3: expected a number ≥ 0"),
    ({"max_notional_quote": float("nan")}, r"--override-max-notional = nan"),
])
def test_bad_overrides(kw, match):
    p = load_desk_config(env={}).profiles["quick_smoke"]
    with pytest.raises(ConfigError, match=match):
        with_overrides(p, **kw)


def test_override_shorter_than_a_candle():
    p = load_desk_config(env={}).profiles["eth_swing"]
    with pytest.raises(ConfigError, match=r"at least one 15m candle \(15 minutes\) for profile eth_swing"):
        with_overrides(p, duration_minutes=5)
