"""Indicator kernels: hand-checked small cases, pandas agreement on real candles, causality."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.strategy import indicators_nb as ind
from tests.engine.backtest.reference_simulator import load_sample_slice


@pytest.fixture(scope="module")
def btc():
    return load_sample_slice("BTCUSDT", 0, 3000)


def test_sma_hand_checked():
    # (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+8)/3 = 5
    out = ind.sma_nb(np.array([1.0, 2, 3, 4, 8]), 3)
    assert np.isnan(out[:2]).all() and out[2:].tolist() == [2.0, 3.0, 5.0]


def test_ema_hand_checked():
    # span 3 → alpha 0.5: e0 = 2, e1 = 2 + 0.5 (4 − 2) = 3, e2 = 3 + 0.5 (1 − 3) = 2; warm-up 2 bars
    out = ind.ema_nb(np.array([2.0, 4, 1]), 3)
    assert np.isnan(out[:2]).all() and out[2] == 2.0


def test_rsi_hand_checked():
    # closes 1 2 3 2 3, period 2: changes +1 +1 −1 +1.
    # t=2: gain (1+1)/2 = 1, loss 0 → 100; t=3: gain (1·1+0)/2 = .5, loss (0+1)/2 = .5 → 50;
    # t=4: gain (.5+1)/2 = .75, loss (.5+0)/2 = .25 → RS 3 → 75.
    out = ind.rsi_nb(np.array([1.0, 2, 3, 2, 3]), 2)
    assert np.isnan(out[:2]).all() and out[2:].tolist() == [100.0, 50.0, 75.0]


def test_atr_hand_checked():
    # TR0 = 10−8 = 2; TR1 = max(11−9, |11−9|, |9−9|) = 2 → ATR1 = (2+2)/2 = 2;
    # TR2 = max(14−10, |14−10|, |10−10|) = 4 → ATR2 = (2·1 + 4)/2 = 3.
    h, l, c = np.array([10.0, 11, 14]), np.array([8.0, 9, 10]), np.array([9.0, 10, 13])
    out = ind.atr_nb(h, l, c, 2)
    assert np.isnan(out[0]) and out[1:].tolist() == [2.0, 3.0]


def test_donchian_channels_exclude_the_current_bar():
    x = np.array([1.0, 5, 2, 3, 9])
    assert ind.highest_prev_nb(x, 2).tolist()[2:] == [5.0, 5.0, 3.0]
    assert ind.lowest_prev_nb(x, 2).tolist()[2:] == [1.0, 2.0, 2.0]


def test_agree_with_pandas_on_real_candles(btc):
    c = btc["close"]
    x = c.to_numpy()
    np.testing.assert_allclose(ind.sma_nb(x, 20)[19:], c.rolling(20).mean().to_numpy()[19:], rtol=1e-12)
    e = ind.ema_nb(x, 12)
    np.testing.assert_allclose(e[11:], c.ewm(span=12, adjust=False).mean().to_numpy()[11:], rtol=1e-12)
    np.testing.assert_allclose(ind.rolling_std_nb(x, 20)[19:], c.rolling(20).std(ddof=0).to_numpy()[19:], rtol=1e-8)
    hh = btc["high"].rolling(15).max().shift(1).to_numpy()
    np.testing.assert_array_equal(ind.highest_prev_nb(btc["high"].to_numpy(), 15)[15:], hh[15:])


def test_sma_stays_exact_over_long_series():
    x = np.random.default_rng(0).uniform(50_000, 60_000, 20_000)
    ref = pd.Series(x).rolling(50).mean().to_numpy()
    np.testing.assert_allclose(ind.sma_nb(x, 50)[49:], ref[49:], rtol=1e-12)


@pytest.mark.parametrize("n", [0, 1, 29, 4095, 4096, 4097, 20_011])
@pytest.mark.parametrize("periods", [(1, 1), (10, 30), (30, 10), (5, 4200), (4097, 3)])
def test_sma_pair_equals_two_single_smas_bit_for_bit(n, periods):
    x = np.random.default_rng(n).lognormal(10.0, 0.3, n)
    a, b = np.empty(n), np.empty(n)
    ind.sma_pair_into_nb(x, periods[0], periods[1], a, b)
    assert a.tobytes() == ind.sma_nb(x, periods[0]).tobytes()
    assert b.tobytes() == ind.sma_nb(x, periods[1]).tobytes()


CASES = {
    "sma": lambda b: ind.sma_nb(b["close"], 10),
    "ema": lambda b: ind.ema_nb(b["close"], 10),
    "std": lambda b: ind.rolling_std_nb(b["close"], 10),
    "rsi": lambda b: ind.rsi_nb(b["close"], 14),
    "atr": lambda b: ind.atr_nb(b["high"], b["low"], b["close"], 14),
    "hh": lambda b: ind.highest_prev_nb(b["high"], 20),
    "ll": lambda b: ind.lowest_prev_nb(b["low"], 20),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_truncation_values_never_depend_on_later_bars(btc, name):
    bars = {k: btc[k].to_numpy() for k in ("open", "high", "low", "close")}
    full = CASES[name](bars)
    for t in (30, 257, 1000):
        part = CASES[name]({k: v[:t] for k, v in bars.items()})
        np.testing.assert_array_equal(part, full[:t])


@pytest.mark.parametrize("chunk", [1, 7, 97, 4096, 5000, 8192])
def test_lines_computed_chunk_by_chunk_equal_the_whole_series_bit_for_bit(chunk):
    # the chunked grid's lines (engine.backtest.chunks): each chunk continues the carried state
    # (sma running sum, re-summed at multiples of 4096; ema; rsi gain/loss), windowed kinds read the
    # whole arrays. Chunks of 1 and 7 bars are shorter than most periods; 4096 and 8192 put chunk
    # edges on the sma's re-summing bars, 97 and 5000 do not
    from engine.strategy import signals

    candles = load_sample_slice("BTCUSDT", 0, 13_000)
    bars = signals.to_bar_arrays(candles)
    keys = [signals.CLOSE] + [(kind, p) for kind in ("sma", "ema", "std", "rsi", "hh", "ll") for p in (1, 3, 20, 250)
                              if not (kind in ("std", "rsi") and p == 1)]
    kinds, periods = signals.line_codes(keys)
    n = len(candles)
    out = np.full((1 + len(keys), n), -1.0)
    carry = np.zeros((len(keys), 2))
    for t0 in range(0, n, chunk):
        signals.lines_range(bars.close, bars.high, bars.low, kinds, periods, carry, t0, min(n, t0 + chunk), out, 0)
    # and through a buffer whose column 0 is a later bar, as the grid's windows
    window = np.full((1 + len(keys), n - 6000), -1.0)
    carry[:] = 0.0
    signals.lines_range(bars.close, bars.high, bars.low, kinds, periods, carry, 0, 6000, out[:, :6000].copy(), 0)
    signals.lines_range(bars.close, bars.high, bars.low, kinds, periods, carry, 6000, n, window, 6000)
    assert (out[0] == -1.0).all()  # row 0 is the caller's
    for i, key in enumerate(keys):
        whole = signals.compute_indicator(key, bars)
        np.testing.assert_array_equal(out[1 + i], whole, err_msg=str(key))
        np.testing.assert_array_equal(window[1 + i], whole[6000:], err_msg=str(key))
        assert np.isnan(whole[:max(0, key[1] - 1)]).all() and not np.isnan(whole[key[1]:]).any(), key
