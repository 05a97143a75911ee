"""The promoted-strategy record and strategies.yml: one writer, one strict reader."""
from __future__ import annotations

import math

import pytest
import yaml

from engine import promotion
from engine.errors import ConfigError
from engine.strategy.exits import Costs, ExitPlan
from engine.strategy.promoted import (PromotedStrategy, active_keys, drop_expired, load_strategies,
                                      save_strategies)
from tests.conftest import make_candidate

NOW = 1_620_000_000_000  # 2021-05-03 00:00 UTC
MINIMAL = {"pair": "BTCUSDT", "timeframe": "5m", "entry_set": "ema_cross", "signal": "ema_cross", "params": {},
           "promoted_at": "2021-05-03T00:00:00Z", "expires_at": "2021-05-04T00:00:00Z", "risk_mode": "aggressive"}


def _write(path, items) -> None:
    path.write_text(yaml.safe_dump({"strategies": items}))


def test_save_then_load_gives_the_same_records(tmp_path):
    s = promotion.promote(make_candidate("ETHUSDT", "15m", deflated_sharpe=math.nan, sharpe=math.nan),
                          risk_mode="balanced", now_ms=NOW, ttl_hours=24)
    path = save_strategies(tmp_path / "strategies.yml", [s], NOW)
    text = path.read_text()
    assert text.startswith("# Promoted strategies") and "updated_at: '2021-05-03T00:00:00Z'" in text
    assert "sharpe: null" in text and ".nan" not in text.lower()  # undefined → null, never NaN
    [back] = load_strategies(path)
    assert back.to_json() == s.to_json() and back.symbol == "ETH/USDT" and back.key == ("ETHUSDT", "15m")
    assert math.isnan(back.metrics["sharpe"]) and isinstance(back.exit_plan, ExitPlan)


def test_a_hand_written_entry_gets_the_product_defaults(tmp_path):
    _write(tmp_path / "s.yml", [{**MINIMAL, "pair": "BTC/USDT"}])
    [s] = load_strategies(tmp_path / "s.yml")
    assert (s.pair, s.exit_plan, s.costs, s.metrics, s.curve) == ("BTCUSDT", ExitPlan(), Costs(), {}, None)
    assert (s.promoted_at_ms, s.expires_at_ms) == (NOW, NOW + 86_400_000)


def test_missing_and_empty_files_hold_no_strategy(tmp_path):
    assert load_strategies(tmp_path / "none.yml") == []
    (tmp_path / "empty.yml").write_text("")
    assert load_strategies(tmp_path / "empty.yml") == []


@pytest.mark.parametrize("item, match", [
    ({"pair": "BTCUSDT"}, r"s.yml → strategies\[0\]: missing key 'timeframe'"),
    ({**MINIMAL, "risk_mode": "yolo"},
     r"strategies\[0\].risk_mode = 'yolo': expected one of conservative, balanced, aggressive"),
    ({**MINIMAL, "timeframe": "7x"}, r"strategies\[0\].timeframe = '7x': expected one of 1m 5m 15m 1h 4h 1d"),
    ({**MINIMAL, "expires_at": "next tuesday"},
     r"strategies\[0\].expires_at = 'next tuesday': expected an ISO 8601 UTC time like 2021-05-04T00:00:00Z"),
    ({**MINIMAL, "expire_at": "2021-05-04T00:00:00Z"},
     r'strategies\[0\]: unknown key "expire_at". Did you mean "expires_at"\?'),
    ({**MINIMAL, "exit_plan": {"sl_pct": 0.5}},
     r"strategies\[0\].exit_plan.sl_pct = 0.5: expected a negative percentage"),
    ({**MINIMAL, "costs": {"fee_bps": -1, "slippage_bps": 2}},
     r"strategies\[0\].costs.fee_bps = -1: expected a number ≥ 0"),
    ({**MINIMAL, "metrics": {"sharpe": "high"}},
     r"strategies\[0\].metrics.sharpe = 'high': expected a number or null"),
])
def test_bad_entries_name_file_key_value_and_expectation(tmp_path, item, match):
    _write(tmp_path / "s.yml", [item])
    with pytest.raises(ConfigError, match=match):
        load_strategies(tmp_path / "s.yml")


def test_bad_documents(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text("strategy: []\n")
    with pytest.raises(ConfigError, match=r's.yml: unknown key "strategy". Did you mean "strategies"\?'):
        load_strategies(path)
    path.write_text("strategies: [pair: {\n")
    with pytest.raises(ConfigError, match=r"s.yml line \d+: not valid YAML"):
        load_strategies(path)


def test_expiry_follows_the_iso_expires_at(tmp_path):
    """A file written by an earlier release carries *_ms twins; the ISO times rule."""
    path = tmp_path / "s.yml"
    _write(path, [
        {**MINIMAL, "expires_at": "2021-05-10T00:00:00Z"},                                          # no twins
        {**MINIMAL, "pair": "ETHUSDT", "expires_at": "2021-05-10T00:00:00Z", "expires_at_ms": NOW - 1},  # stale twin
        {**MINIMAL, "pair": "XRPUSDT", "expires_at": "2021-05-02T12:00:00Z", "data_source": "offline sample"}])
    loaded = load_strategies(path)
    assert [s.expires_at_ms for s in loaded][:2] == [1620604800000, 1620604800000]
    kept, expired = drop_expired(loaded, NOW)
    assert [s.pair for s in kept] == ["BTCUSDT", "ETHUSDT"] and [s.pair for s in expired] == ["XRPUSDT"]
    assert active_keys(loaded, NOW) == {("BTCUSDT", "5m"), ("ETHUSDT", "5m")}
    assert all(isinstance(s, PromotedStrategy) for s in loaded)
