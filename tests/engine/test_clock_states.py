"""Clock and MIS / OLD / DAT / OK states."""
from __future__ import annotations

import pytest

from engine.clock import Clock, format_ms, iso_ms, parse_iso_ms
from engine.states import classify

T0 = 1_619_999_940_000  # 2021-05-02 23:59 UTC, last candle of the bundled sample


def test_replay_clock_is_frozen_and_labelled():
    clock = Clock.replay(T0 + 60_000)
    assert clock.now_ms() == T0 + 60_000
    assert clock.as_dict()["kind"] == "replay"
    assert "2021-05-03 00:00 UTC" in clock.label


def test_wall_clock_reads_its_time_source():
    assert Clock.wall(lambda: 1_700_000_000.25).now_ms() == 1_700_000_000_250  # injected time source


def test_iso_roundtrip():
    assert iso_ms(T0) == "2021-05-02T23:59:00Z"
    assert parse_iso_ms("2021-05-02T23:59:00Z") == T0
    assert format_ms(T0) == "2021-05-02 23:59 UTC" and format_ms(None) == "—"


@pytest.mark.parametrize("last, now, has, expected", [
    (None, T0, False, "MIS"),
    (None, T0, True, "MIS"),
    # 1m candle opened at T0 closes at T0+60 s; age_mult 5 → OLD once now - close > 300 s
    (T0, T0 + 60_000 + 300_000, False, "DAT"),
    (T0, T0 + 60_000 + 300_001, False, "OLD"),
    (T0, T0 + 60_000 + 300_001, True, "OLD"),
    (T0, T0 + 60_000, True, "OK"),
])
def test_classify_1m(last, now, has, expected):
    assert classify(last, "1m", now, 5, has) == expected


def test_classify_scales_with_timeframe():
    # 15m: close at T0+15 min; 5 × 15 min later is still fresh
    assert classify(T0, "15m", T0 + 15 * 60_000 + 75 * 60_000, 5, False) == "DAT"
    assert classify(T0, "15m", T0 + 15 * 60_000 + 75 * 60_000 + 1, 5, False) == "OLD"


def test_clock_for_run_is_the_last_cycles_clock(tmp_path):
    import json

    from engine.clock import clock_for_run

    assert clock_for_run(tmp_path).kind == "wall"  # no cycle yet
    (tmp_path / "status.json").write_text(json.dumps({"clock": {"kind": "replay", "now_ms": T0}}))
    assert clock_for_run(tmp_path) == Clock.replay(T0)
    (tmp_path / "status.json").write_text(json.dumps({"clock": {"kind": "wall", "now_ms": T0}}))
    assert clock_for_run(tmp_path).kind == "wall"
    (tmp_path / "status.json").write_text("{half a file")
    assert clock_for_run(tmp_path).kind == "wall"


def test_states_of_a_store_with_promoted_strategy_records(tmp_path):
    from engine import promotion
    from engine.data import backfill
    from engine.records import Fields
    from engine.states import PairState, compute_states
    from tests.conftest import make_candidate

    backfill.seed_from_sample(tmp_path, ["BTCUSDT"], ["15m"])
    now = 1_620_000_000_000  # the replay clock: the close of the sample's last candle
    live = promotion.promote(make_candidate("BTCUSDT", "15m"), risk_mode="aggressive", now_ms=now - 1, ttl_hours=1)
    gone = promotion.promote(make_candidate("BTCUSDT", "5m"), risk_mode="aggressive", now_ms=now - 7_200_000,
                             ttl_hours=1)
    states = compute_states(tmp_path, ["BTCUSDT", "ETHUSDT"], ["5m", "15m"], [live, gone], now, 5)
    assert [(s.pair, s.timeframe, s.state) for s in states] == [
        ("BTCUSDT", "5m", "MIS"), ("BTCUSDT", "15m", "OK"), ("ETHUSDT", "5m", "MIS"), ("ETHUSDT", "15m", "MIS")]
    ok = states[1]
    assert ok.last_candle_ms == now - 900_000 and ok.rows == 2948
    assert PairState.from_json(Fields(ok.to_json(), "status.json", "states[1]")) == ok
