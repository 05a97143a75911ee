"""Signal engine: a promoted strategy on its last closed candle gives the intent research would have
acted on, never from a candle that has not closed."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data.sample import load_sample
from engine.errors import DataError
from engine.execution.intents import MeanReversionIntent, MomentumIntent, intent_for, intents_for
from engine.markets import timeframe_to_ms
from engine.strategy import signals
from engine.strategy.exits import ExitPlan
from engine.strategy.promoted import PromotedStrategy

TF_MS = timeframe_to_ms("5m")


@pytest.fixture(scope="module")
def candles():
    return load_sample("BTCUSDT", "5m").iloc[:3000]


def _strategy(signal="ema_cross", params=None, expires_at_ms=2_000_000_000_000, **plan):
    return PromotedStrategy(pair="BTCUSDT", timeframe="5m", entry_set=signal, signal=signal,
                            params=params or {"fast": 9, "slow": 21}, risk_mode="aggressive",
                            promoted_at_ms=0, expires_at_ms=expires_at_ms, exit_plan=ExitPlan(**plan))


def _open_ms(candles, i):
    return int(candles.index[i].value // 1_000_000)


def test_an_entry_on_the_last_closed_candle_is_a_momentum_buy(candles):
    entries, _ = signals.evaluate("ema_cross", candles, {"fast": 9, "slow": 21})
    t = int(np.flatnonzero(entries)[5])
    intent = intent_for(_strategy(), candles, now_ms=_open_ms(candles, t) + TF_MS)  # bar t just closed
    assert isinstance(intent, MomentumIntent) and intent.family == "momentum"
    assert (intent.side, intent.signal_bar_ms, intent.reference_price) == ("buy", _open_ms(candles, t),
                                                                          float(candles["close"].iloc[t]))
    assert intent.exit_plan == ExitPlan() and "ema_cross entry signal on the close of the 5m bar" in intent.reason
    assert intent.to_json()["exit_plan"]["tp_ladder"] == [[0.9, 50.0], [1.4, 30.0], [2.1, 20.0]]
    # one ms earlier bar t is still open: it is left out, whatever the candles already hold
    early = intent_for(_strategy(), candles, now_ms=_open_ms(candles, t) + TF_MS - 1)
    assert early is None or early.signal_bar_ms < _open_ms(candles, t)


def test_the_exit_signal_is_a_sell_only_when_the_plan_uses_it(candles):
    entries, exits = signals.evaluate("ema_cross", candles, {"fast": 9, "slow": 21})
    t = int(np.flatnonzero(exits & ~entries)[3])
    now = _open_ms(candles, t) + TF_MS
    assert intent_for(_strategy(), candles, now_ms=now).side == "sell"
    assert intent_for(_strategy(use_exit_signal=False), candles, now_ms=now) is None


def test_rsi_revert_is_mean_reversion(candles):
    params = {"period": 14, "oversold": 30.0, "exit_level": 55.0}
    entries, _ = signals.evaluate("rsi_revert", candles, params)
    t = int(np.flatnonzero(entries)[0])
    intent = intent_for(_strategy("rsi_revert", params), candles, now_ms=_open_ms(candles, t) + TF_MS)
    assert isinstance(intent, MeanReversionIntent) and intent.family == "mean_reversion" and intent.side == "buy"


def test_an_expired_strategy_wants_nothing(candles):
    entries, _ = signals.evaluate("ema_cross", candles, {"fast": 9, "slow": 21})
    now = _open_ms(candles, int(np.flatnonzero(entries)[5])) + TF_MS
    assert intent_for(_strategy(expires_at_ms=now), candles, now_ms=now) is None


def test_no_closed_candle_and_bad_candles_are_named(candles):
    with pytest.raises(DataError, match=r"BTCUSDT 5m: no closed candle at 2021-"):
        intent_for(_strategy(), candles, now_ms=_open_ms(candles, 0) + TF_MS - 1)
    broken = candles.copy()
    broken.iloc[10, broken.columns.get_loc("high")] = -1.0
    with pytest.raises(DataError, match=r"BTCUSDT 5m candles row 10"):
        intent_for(_strategy(), broken, now_ms=_open_ms(candles, 2999) + TF_MS)


def test_one_bad_strategy_never_stops_the_others(candles):
    entries, _ = signals.evaluate("ema_cross", candles, {"fast": 9, "slow": 21})
    now = _open_ms(candles, int(np.flatnonzero(entries)[5])) + TF_MS
    other = PromotedStrategy(pair="ETHUSDT", timeframe="5m", entry_set="ema_cross", signal="ema_cross", params={},
                             risk_mode="aggressive", promoted_at_ms=0, expires_at_ms=2_000_000_000_000)
    intents, skipped = intents_for([other, _strategy()], {("BTCUSDT", "5m"): candles}, now_ms=now)
    assert [i.pair for i in intents] == ["BTCUSDT"] and skipped == ["ETHUSDT 5m ema_cross: no candles"]
