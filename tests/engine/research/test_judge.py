"""Judging a slot: trials counted by hand on a small search, the pooled deflated Sharpe, the
deployed parameters (the last fold's), costs in plain view, and the untouched final window."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from engine.config import load_settings
from engine.data.sample import load_sample
from engine.errors import DataError
from engine.research import pipeline
from engine.research.search import deflate_oos_sharpe
from engine.types import DataSource


@pytest.fixture(scope="module")
def small():
    """Two entry sets with grids of 4 and 3 combinations, 3 rolling folds, 20 twins: 21 trials a slot."""
    s = load_settings()
    keep = {"ema_cross", "sma_cross"}
    entries = replace(s.entries, entry_sets={n: replace(e, enabled=n in keep) for n, e in s.entries.entry_sets.items()})
    grid = {"ema_cross": {"fast": [5, 9], "slow": [21, 40]}, "sma_cross": {"fast": [5, 10, 20], "slow": [50]}}
    bt = replace(s.backtest, grid=grid, chance=replace(s.backtest.chance, n_twins=20),
                 walk_forward=replace(s.backtest.walk_forward, n_splits=3))
    return entries, bt, load_sample("ETHUSDT", "15m")


def _research(small, bt=None):
    entries, bt0, candles = small
    return pipeline.research_pair(candles, "ETHUSDT", "15m", entries, bt or bt0, data_source=DataSource.SAMPLE,
                                  gap_policy="skip", cfg_id="test")


def test_trials_are_every_entry_set_parameter_set_and_fold_of_the_slot(small):
    out = _research(small)
    assert sorted(r.entry_set for r, _ in out) == ["ema_cross", "sma_cross"]
    by_set = {r.entry_set: (r, res) for r, res in out}
    assert by_set["ema_cross"][0].n_configs_tried == 4 * 3 and by_set["sma_cross"][0].n_configs_tried == 3 * 3
    pooled = [s for _, res in out for s in res.trial_sharpes]
    assert len(pooled) == 21
    for row, res in out:
        j = row.judgement
        assert j.n_trials_slot == 21 and j.n_folds == 3
        # the row's deflated Sharpe counts the slot's 21 trials with their pooled variance
        assert row.deflated_sharpe == pytest.approx(deflate_oos_sharpe(res.oos_equity, pooled, 21), abs=1e-12)
        assert j.deployed_params == res.folds[-1]["params"] and j.deployed_oos == res.folds[-1]["out_of_sample"]
        assert j.n_twins == 20 and 0.0 <= j.p_value_vs_random <= 1.0
        assert 0.0 <= j.pbo <= 1.0
        rt = 2 * (row.costs.fee_bps + row.costs.slippage_bps)
        assert j.cost_per_trade_bps == rt
        assert j.expectancy_gross_pct == pytest.approx(j.expectancy_net_pct + rt / 100)
        assert j.break_even_cost_bps == pytest.approx(j.expectancy_gross_pct * 100)
        assert j.holdout == {}


def test_an_entry_set_alone_in_its_slot_counts_only_its_own_trials(small):
    entries, bt, candles = small
    one = replace(entries, entry_sets={n: replace(e, enabled=n == "ema_cross") for n, e in entries.entry_sets.items()})
    ((row, res),) = pipeline.research_pair(candles, "ETHUSDT", "15m", one, bt, data_source=DataSource.SAMPLE,
                                          gap_policy="skip", cfg_id="t")
    assert row.judgement.n_trials_slot == 12 == len(res.trial_sharpes)
    assert row.deflated_sharpe == pytest.approx(deflate_oos_sharpe(res.oos_equity, res.trial_sharpes, 12), abs=1e-12)


def test_the_final_window_is_never_searched_and_scores_the_deployed_parameters(small):
    entries, bt, candles = small
    held = replace(bt, walk_forward=replace(bt.walk_forward, final_holdout_bars=500))
    out = _research(small, held)
    first_held_ms = int(candles.index[-500].value // 1_000_000)
    for row, res in out:
        assert max(f["test"]["last_ms"] for f in res.folds) < first_held_ms  # never searched
        assert set(row.judgement.holdout) >= {"n_trades", "sharpe", "total_return_pct"}
        assert row.bars == len(candles)


def test_a_holdout_that_leaves_too_little_to_search_is_refused(small):
    entries, bt, candles = small
    with pytest.raises(DataError, match="final_holdout_bars"):
        _research(small, replace(bt, walk_forward=replace(bt.walk_forward, final_holdout_bars=len(candles) - 50)))


def test_the_judgement_is_reproducible(small):
    a = [r.judgement for r, _ in _research(small)]
    b = [r.judgement for r, _ in _research(small)]
    assert [(j.p_value_vs_random, j.pbo, j.twins_seed) for j in a] == [(j.p_value_vs_random, j.pbo, j.twins_seed) for j in b]
    assert not np.isnan([j.pbo for j in a]).any()
