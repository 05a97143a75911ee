"""engine/research/chance.py: the random-entry baseline of a row.

Under its null hypothesis (entries without information) the p-value is uniform; an oracle that peeks
at the future beats every twin; and the pieces can be checked by hand: a twin is a plain backtest of
its signal bars, it makes the row's number of trades, the same seed gives the same twins.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from engine.backtest import run_signals
from engine.backtest.inputs import check_candles, kernel_inputs
from engine.config import load_backtest, load_entries
from engine.data import load_sample
from engine.errors import ConfigError
from engine.research import chance, search_entry_set
from engine.research.chance import ChanceResult, chance_baseline, twins_seed
from engine.strategy.exits import ExitPlan

ENTRIES = load_entries()
RISK = ENTRIES.entry_sets["ema_cross"]           # the default risk block: TP ladder, stop, breakeven, max hold
PLAN, COSTS = RISK.exit_plan, RISK.costs
CASH = 10_000.0


@pytest.fixture(scope="module")
def btc_1m():
    return load_sample("BTCUSDT", "1m")


def _baseline(candles, n_entries, row_pct, *, n_twins=99, seed=1, plan=PLAN):
    return chance_baseline(candles, plan, COSTS, n_entries=n_entries, row_total_return_pct=row_pct, n_twins=n_twins,
                           seed=seed, timeframe="1m", initial_cash_quote=CASH)


def _row(candles, entries, plan=PLAN):
    """Backtest entry signals with the plan (no exit signal), as a strategy row would be scored."""
    res = run_signals(candles, entries, np.zeros(len(candles), bool), plan, COSTS, timeframe="1m",
                      initial_cash_quote=CASH)
    return int(res.metrics["n_trades"]), float(res.metrics["total_return_pct"])


def test_random_strategy_gives_uniform_p_values(btc_1m):
    # a strategy random by construction: k signal bars drawn uniformly (k itself random, so its
    # positions overlap and it makes fewer trades than signals), scored like any row; against
    # twins of the same number of trades its p-value is uniform on [0, 1] (up to 1/n_twins steps)
    candles = btc_1m.iloc[5_000:7_000]
    n = len(candles)
    ps = []
    for s in range(120):
        rng = np.random.default_rng(1_000 + s)
        entries = np.zeros(n, bool)
        entries[rng.choice(n - 1, size=int(rng.integers(5, 40)), replace=False)] = True
        n_trades, ret = _row(candles, entries)
        ps.append(_baseline(candles, n_trades, ret, n_twins=49, seed=s).p_value_vs_random)
    # Kolmogorov-Smirnov statistic against U(0, 1) below its 1 % critical value 1.63/√n (the
    # p-values' steps of 1/49 add at most 1/50 to it under the null)
    ps = np.sort(ps)
    i = np.arange(1, ps.size + 1)
    ks = max((i / ps.size - ps).max(), (ps - (i - 1) / ps.size).max())
    assert ks < 1.63 / math.sqrt(ps.size), ps
    assert 0.3 < ps.mean() < 0.7


def test_oracle_that_peeks_beats_the_twins(btc_1m):
    # in each block of 100 bars, signals on the bar whose fill (next open) is lowest against the
    # close 10 bars later: it peeks at the future, on purpose
    candles = btc_1m.iloc[10_000:14_000]
    close, opens = candles["close"].to_numpy(), candles["open"].to_numpy()
    gain = np.full(len(candles), -np.inf)
    gain[:-11] = close[11:] / opens[1:-10] - 1.0   # signal on t: fill at the open of t+1, close of t+11
    entries = np.zeros(len(candles), bool)
    for b0 in range(0, len(candles), 100):
        entries[b0 + int(np.argmax(gain[b0:b0 + 100]))] = True
    n_trades, ret = _row(candles, entries)
    res = _baseline(candles, n_trades, ret, n_twins=200)
    assert n_trades >= 15
    assert res.p_value_vs_random <= 0.01
    assert res.excess_vs_random_pct > 0.0 and ret > res.twins_hist["edges"][-1]  # above every twin


def test_same_seed_same_twins_other_seed_other_twins(btc_1m):
    candles = btc_1m.iloc[:1_500]
    a, b = _baseline(candles, 12, 0.0, seed=5), _baseline(candles, 12, 0.0, seed=5)
    assert a == b and a.to_json() == b.to_json()
    assert _baseline(candles, 12, 0.0, seed=6).twins_hist != a.twins_hist


def test_no_entries_gives_nan_p_value_and_flat_twins(btc_1m):
    res = _baseline(btc_1m.iloc[:500], 0, 0.0, n_twins=20, seed=3)
    assert math.isnan(res.p_value_vs_random)
    assert res.twins_median_pct == 0.0 and res.excess_vs_random_pct == 0.0 and res.twins_median_n_trades == 0
    doc = res.to_json()
    assert doc["p_value_vs_random"] is None and sum(doc["twins_hist"]["counts"]) == 20
    json.dumps(doc, allow_nan=False)


def test_twin_is_a_backtest_of_its_signal_bars_with_the_rows_trades(btc_1m):
    # redraw the twins' keys from the same seed: each twin's signals are the bars whose key is
    # below its threshold, and run_signals on them gives the twin's trades (exactly the 7 asked
    # for: below 20 trades the match is exact) and its total return
    candles = btc_1m.iloc[2_000:2_600]
    k = kernel_inputs(candles, check_candles(candles), PLAN, COSTS, timeframe="1m", initial_cash_quote=CASH)
    returns, trades, thresholds, _ = chance._simulate_twins(k, 7, 30, 11, CASH)
    assert (trades == 7).all()
    keys = chance._twin_keys(11, 0, 30, len(candles)).copy()
    for j in range(30):
        entries = keys[j + 1] < thresholds[j]
        assert not entries[-1]
        n_trades, ret = _row(candles, entries)
        assert n_trades == 7 and ret == pytest.approx(returns[j], abs=1e-9)
    assert len(np.unique(returns)) > 20   # different twins, different bars


def test_twins_fewer_trades_when_the_plan_cannot_fit_them(btc_1m):
    # 40 bars and a position held exactly 10 bars (no target, no stop): entries at the opens of
    # bars 1, 12, 23, 34 (each exit at the open 10 bars on, the next signal on that bar's close),
    # so at most 4 trades fit; the twins make those 4 (every bar signals) instead of the 30 asked
    plan = ExitPlan.only(max_hold_bars=10)
    res = _baseline(btc_1m.iloc[:40], 30, 0.0, n_twins=10, plan=plan)
    assert res.n_entries == 30 and res.twins_median_n_trades == 4


def test_histogram_and_summary_fields(btc_1m):
    res = _baseline(btc_1m.iloc[3_000:4_500], 8, 1.0, n_twins=57, seed=2)
    hist = res.twins_hist
    assert len(hist["edges"]) == 11 and len(hist["counts"]) == 10 and sum(hist["counts"]) == 57
    assert hist["edges"] == sorted(hist["edges"])
    assert hist["edges"][0] <= res.twins_median_pct <= hist["edges"][-1]
    assert res.excess_vs_random_pct == pytest.approx(1.0 - res.twins_median_pct)
    assert res.n_twins == 57 and res.twins_seed == 2 and res.n_entries == 8 and res.twins_median_n_trades == 8
    assert 0.0 <= res.p_value_vs_random <= 1.0
    # a row far above every twin: p 0; far below: p 1
    assert _baseline(btc_1m.iloc[3_000:4_500], 8, 1e6, n_twins=57, seed=2).p_value_vs_random == 0.0
    assert _baseline(btc_1m.iloc[3_000:4_500], 8, -1e6, n_twins=57, seed=2).p_value_vs_random == 1.0


def test_judgement_names_and_json():
    # the first six fields are the Judgement's names (engine/research/reports/rows.py)
    from engine.research.reports.rows import Judgement

    names = [f.name for f in dataclasses.fields(ChanceResult)]
    judged = {f.name for f in dataclasses.fields(Judgement)}
    assert set(names[:6]) <= judged


def test_twins_seed_differs_per_row_and_is_stable():
    a = twins_seed(7, "BTCUSDT", "5m", "ema_cross")
    assert a == twins_seed(7, "BTCUSDT", "5m", "ema_cross")
    others = {twins_seed(8, "BTCUSDT", "5m", "ema_cross"), twins_seed(7, "ETHUSDT", "5m", "ema_cross"),
              twins_seed(7, "BTCUSDT", "15m", "ema_cross"), twins_seed(7, "BTCUSDT", "5m", "sma_cross")}
    assert a not in others and len(others) == 4 and 0 <= a < 2**32


@pytest.mark.parametrize("kwargs, match", [
    ({"n_entries": -1}, "n_entries = -1"),
    ({"n_twins": 0}, "n_twins = 0"),
    ({"timeframe": "7m"}, "7m"),
])
def test_bad_inputs_raise(btc_1m, kwargs, match):
    args = dict(n_entries=3, row_total_return_pct=0.0, n_twins=10, seed=1, timeframe="1m", initial_cash_quote=CASH)
    with pytest.raises(ConfigError, match=match):
        chance_baseline(btc_1m.iloc[:100], PLAN, COSTS, **{**args, **kwargs})


def test_search_attaches_the_chance_of_its_out_of_sample_bars(btc_1m):
    bt = load_backtest(entries=ENTRIES)
    bt = dataclasses.replace(bt, chance=dataclasses.replace(bt.chance, n_twins=20))
    es = ENTRIES.entry_sets["ema_cross"]
    res = search_entry_set(btc_1m.iloc[:3_000], es, bt, timeframe="1m", space={"fast": [5], "slow": [21]},
                           pair="BTCUSDT")
    c = res.chance
    assert isinstance(c, ChanceResult) and c.n_twins == 20
    assert c.n_entries == res.out_of_sample["n_trades"]
    assert c.twins_seed == twins_seed(bt.chance.seed, "BTCUSDT", "1m", "ema_cross")
    assert c.excess_vs_random_pct == pytest.approx(res.out_of_sample["total_return_pct"] - c.twins_median_pct)
    assert search_entry_set(btc_1m.iloc[:3_000], es, dataclasses.replace(bt, chance=None), timeframe="1m",
                            space={"fast": [5], "slow": [21]}).chance is None


def test_twin_keys_are_uniform_and_the_same_whatever_the_batches():
    # one batch of 40 twins or batches of 25 + 15: the same keys, a function of (seed, twin, bar)
    whole = chance._twin_keys(7, 0, 40, 3_000).copy()   # a view of a reused buffer
    parts = np.vstack([chance._twin_keys(7, 0, 25, 3_000)[1:].copy(), chance._twin_keys(7, 25, 15, 3_000)[1:]])
    assert np.array_equal(whole[1:], parts)
    assert (whole[0] == 0.0).all() and (whole[1:, -1] == 2.0).all()
    keys = whole[1:, :-1].ravel()
    assert 0.0 <= keys.min() and keys.max() < 1.0
    counts = np.histogram(keys, bins=20, range=(0.0, 1.0))[0]   # each bin within 5 sigma of n / 20
    expected = keys.size / 20
    assert np.abs(counts - expected).max() < 5 * math.sqrt(expected)
    # other seeds, other keys; neighbouring twins and bars uncorrelated
    assert not np.array_equal(chance._twin_keys(8, 0, 40, 3_000), whole)
    assert abs(np.corrcoef(whole[1, :-1], whole[2, :-1])[0, 1]) < 0.1
    assert abs(np.corrcoef(whole[1, :-2], whole[1, 1:-1])[0, 1]) < 0.1
