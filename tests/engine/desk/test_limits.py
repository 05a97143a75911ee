"""Testnet limits: every limit alone and together, every reason reported, the UTC day boundary."""
from __future__ import annotations

import pytest

from engine.config.desk import DayLimits, DeskLimits, RunLimits
from engine.desk.limits import LimitsController, check_limits
from engine.desk.usage import DayUsage, UsageStore
from engine.errors import ConfigError

LIMITS = DeskLimits(RunLimits(max_notional_quote=100.0, max_trades=10, max_duration_minutes=60),
                    DayLimits(max_notional_quote=250.0, max_trades=25), ("BTC/USDT", "ETH/USDT"))
EMPTY = DayUsage("2024-12-04")
# 2024-12-04 23:59:00 UTC and 2024-12-05 00:01:00 UTC
T_2359 = 1_733_356_740_000
T_0001 = T_2359 + 2 * 60_000


def reasons(usage=EMPTY, symbol="BTC/USDT", notional=50.0, trades=5, minutes=30, limits=LIMITS):
    check = check_limits(limits, usage, symbol, notional, trades, minutes)
    assert check.allowed == (not check.reasons)
    return check.reasons


def test_within_every_limit_is_allowed():
    assert reasons() == ()
    assert reasons(notional=100.0, trades=10, minutes=60) == ()  # each limit is inclusive
    assert reasons(usage=DayUsage("2024-12-04", 200.0, 20, 2), notional=50.0, trades=5) == ()  # day: 250 and 25


@pytest.mark.parametrize("kw, prefix", [
    ({"notional": 100.01}, "run notional: planned 100.01 > limits.run.max_notional_quote 100"),
    ({"trades": 11}, "run trades: planned 11 > limits.run.max_trades 10"),
    ({"minutes": 61}, "run duration: planned 61 min > limits.run.max_duration_minutes 60"),
    ({"usage": DayUsage("2024-12-04", 200.0, 3, 2), "notional": 50.01},
     "day notional: used 200.00 + planned 50.01 = 250.01 > limits.day.max_notional_quote 250"),
    ({"usage": DayUsage("2024-12-04", 0.0, 21, 4)}, "day trades: used 21 + planned 5 = 26 > limits.day.max_trades 25"),
    ({"symbol": "DOGE/USDT"}, "symbol: DOGE/USDT is not in limits.symbols.allowed (BTC/USDT, ETH/USDT)"),
], ids=["run-notional", "run-trades", "run-duration", "day-notional", "day-trades", "symbol"])
def test_each_limit_alone_blocks_with_its_own_reason(kw, prefix):
    got = reasons(**kw)
    assert len(got) == 1 and got[0].startswith(prefix), got


def test_day_notional_reason_names_used_planned_and_day():
    got = reasons(usage=DayUsage("2024-12-04", 200.0, 3, 2), notional=60.0)
    assert got == ("day notional: used 200.00 + planned 60.00 = 260.00 > limits.day.max_notional_quote 250 "
                   "(quote, UTC day 2024-12-04)",)


def test_every_limit_together_gives_every_reason():
    usage = DayUsage("2024-12-04", 240.0, 24, 6)
    got = reasons(usage=usage, symbol="XRPUSDT", notional=500.0, trades=30, minutes=600)
    assert [r.split(":")[0] for r in got] == ["run notional", "run trades", "run duration", "day notional",
                                             "day trades", "symbol"]


def test_symbol_forms_and_open_allow_list():
    assert reasons(symbol="ETHUSDT") == ()  # folder name and symbol are the same pair
    open_list = DeskLimits(LIMITS.run, LIMITS.day, None)
    assert reasons(symbol="DOGE/USDT", limits=open_list) == ()


@pytest.mark.parametrize("kw, match", [
    ({"notional": -1.0}, r"planned_notional = -1.0: expected a number ≥ 0"),
    ({"notional": float("nan")}, r"planned_notional = nan"),
    ({"trades": 2.5}, r"planned_trades = 2.5: expected a whole number ≥ 0"),
    ({"minutes": "60"}, r"planned_duration_minutes = '60'"),
    ({"symbol": "not a pair"}, r"pair 'not a pair'"),
])
def test_bad_planned_values_are_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        reasons(**kw)


def test_controller_checks_against_the_stored_day_and_registers(tmp_path):
    now = [T_2359]
    c = LimitsController(LIMITS, UsageStore(tmp_path), clock=lambda: now[0])
    assert c.check_run_allowed("BTC/USDT", 100, 10, 60).allowed
    c.register_run_consumption(100.0, 10, record={"profile": "a"})
    c.register_run_consumption(100.0, 10, record={"profile": "b"})
    check = c.check_run_allowed("BTC/USDT", 100, 5, 60)  # 200 + 100 > 250
    assert not check.allowed and check.reasons[0].startswith("day notional: used 200.00 + planned 100.00")
    assert c.check_run_allowed("BTC/USDT", 50, 5, 60).allowed  # exactly the day's 250 and 25
    b = c.budget()
    assert (b.day, b.left_notional_quote, b.left_trades, b.usage.n_runs) == ("2024-12-04", 50.0, 5, 2)
    assert [r["profile"] for r in b.to_json()["runs"]] == ["a", "b"]


def test_utc_day_boundary_a_new_day_has_a_new_budget(tmp_path):
    # a run registered at 23:59 counts for 2024-12-04; at 00:01 the check sees an empty 2024-12-05
    now = [T_2359]
    store = UsageStore(tmp_path)
    c = LimitsController(LIMITS, store, clock=lambda: now[0])
    c.register_run_consumption(250.0, 25)
    assert not c.check_run_allowed("BTC/USDT", 1, 1, 1).allowed
    now[0] = T_0001
    assert c.check_run_allowed("BTC/USDT", 100, 10, 60).allowed
    c.register_run_consumption(10.0, 1)
    assert store.days() == ["2024-12-04", "2024-12-05"]
    assert store.load(T_2359).notional_quote == 250.0 and store.load(T_0001).notional_quote == 10.0
    assert c.budget().day == "2024-12-05" and c.budget(T_2359).left_trades == 0


def test_a_session_is_booked_on_the_day_it_started(tmp_path):
    # started 23:59, registered 00:01: the consumption goes to the day whose budget admitted it
    now = [T_0001]
    store = UsageStore(tmp_path)
    LimitsController(LIMITS, store, clock=lambda: now[0]).register_run_consumption(30.0, 3, at_ms=T_2359)
    assert store.load(T_2359).n_trades == 3 and store.load(T_0001).n_trades == 0
