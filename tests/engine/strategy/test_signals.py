"""Entry sets: rule semantics, hand-checked crossovers, causality, parameter validation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.strategy import signals
from engine.errors import ConfigError, DataError
from tests.engine.backtest.reference_simulator import frame, load_sample_slice


@pytest.fixture(scope="module")
def eth():
    return load_sample_slice("ETHUSDT", 0, 3000)


def test_sma_cross_hand_checked():
    # closes 5 4 3 4 5 6 5 4 3: SMA(1) = close, SMA(3) = NaN NaN 4 3.67 4 5 5.33 5 4.
    # close − SMA3: t3 +0.33 (t2 was −1) → cross above at t3; t6 −0.33 (t5 +1) → cross below at t6.
    closes = [5, 4, 3, 4, 5, 6, 5, 4, 3]
    entries, exits = signals.evaluate("sma_cross", frame([(c, c, c, c) for c in closes]), {"fast": 1, "slow": 3})
    assert np.flatnonzero(entries).tolist() == [3]
    assert np.flatnonzero(exits).tolist() == [6]


def test_cross_needs_strictly_below_then_strictly_above():
    # as backtesting.py crossover(): a touch (equal on t−1) is not a cross
    lines = np.array([[0.0, 0, 0, 0], [0, 0, 0, 0], [1, 2, 3, 2], [2, 2, 2, 2]])
    r = signals.rule(signals.CROSS_ABOVE, (2, 0, 0.0, 0.0), (3, 0, 0.0, 0.0))
    from engine.strategy.rules_nb import rule_mask_nb

    assert rule_mask_nb(lines, r).tolist() == [False, False, False, False]
    lines[2] = [1, 1.5, 3, 2]
    assert rule_mask_nb(lines, r).tolist() == [False, False, True, False]


def test_sma_cross_matches_a_pandas_crossover(eth):
    fast = eth["close"].rolling(10).mean()
    slow = eth["close"].rolling(30).mean()
    diff = (fast - slow).to_numpy()
    # pandas and the kernel SMA differ by ~1e-12; compare where the sign is unambiguous
    want = (np.r_[np.nan, diff[:-1]] < 0) & (diff > 0)
    got, _ = signals.evaluate("sma_cross", eth, {"fast": 10, "slow": 30})
    clear = np.abs(diff) > 1e-6
    clear[1:] &= np.abs(diff[:-1]) > 1e-6
    assert (got[clear] == want[clear]).all() and got.sum() > 20


@pytest.mark.parametrize("name", sorted(signals.SIGNALS))
def test_every_entry_set_is_causal_and_fires(eth, name):
    e_full, x_full = signals.evaluate(name, eth)
    assert e_full.dtype == bool and e_full.shape == (len(eth),)
    assert e_full.any() and x_full.any()
    for t in (100, 1234, 2500):
        e, x = signals.evaluate(name, eth.iloc[:t])
        np.testing.assert_array_equal(e, e_full[:t])
        np.testing.assert_array_equal(x, x_full[:t])


def test_every_entry_set_has_documented_params():
    for name, spec in signals.SIGNALS.items():
        assert spec.description and all(p.description for p in spec.params)
        assert signals.validate_params(name, {}) == spec.defaults


@pytest.mark.parametrize("name, params, message", [
    ("sma_cross", {"fast": 30, "slow": 10}, "fast = 30 must be below slow = 10"),
    ("sma_cross", {"fast": 2.5}, r"params.fast = 2.5: expected an integer"),
    ("sma_cross", {"fats": 2}, r"unknown key 'fats' for sma_cross"),
    ("rsi_revert", {"oversold": 60, "exit_level": 50}, "oversold = 60.0 must be below exit_level = 50.0"),
    ("bollinger_breakout", {"n_std": "2"}, r"params.n_std = '2': expected a number"),
    ("donchian_breakout", {"period": 0}, r"expected 1 ≤ period"),
    ("macd", {}, r"entry set 'macd': expected one of sma_cross"),
])
def test_bad_params_are_named(name, params, message):
    with pytest.raises(ConfigError, match=message):
        signals.validate_params(name, params)


def test_bad_candles():
    with pytest.raises(DataError, match="missing column"):
        signals.to_bar_arrays(pd.DataFrame({"open": [1.0]}))
