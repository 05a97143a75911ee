"""run_grid_blocks: one grid on contiguous blocks, the per-block return moments CSCV uses."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from engine.backtest import kernel_nb as sim
from engine.backtest import run_grid
from engine.backtest.api import grid_inputs
from engine.backtest.blocks import run_grid_blocks
from engine.backtest.records_nb import Bars
from engine.errors import DataError
from engine.strategy.exits import Costs, ExitPlan

GRID = [{"fast": f, "slow": s} for f in (5, 9) for s in (21, 40)]


def test_one_block_is_the_whole_grid(sample_1m):
    candles = sample_1m(n=6000)
    whole = run_grid(candles, "ema_cross", GRID, ExitPlan(), Costs(), timeframe="1m", details=True)
    one = run_grid_blocks(candles, "ema_cross", GRID, ExitPlan(), Costs(), timeframe="1m", edges=[0, len(candles)])
    assert one.sum.shape == (1, len(GRID))
    np.testing.assert_allclose(one.sum[0], [m["return_sum"] for m in whole], rtol=1e-12)
    np.testing.assert_allclose(one.sumsq[0], [m["return_sumsq"] for m in whole], rtol=1e-12)
    assert list(one.n[0]) == [m["n_returns"] for m in whole]


def test_a_block_is_a_backtest_of_its_bars_with_indicators_warmed_on_the_bars_before(sample_1m):
    candles = sample_1m(n=6000)
    blocks = run_grid_blocks(candles, "ema_cross", GRID, ExitPlan(), Costs(), timeframe="1m", edges=[0, 3000, 6000])
    # the second block = a backtest from bar 3000 of the whole series (indicators see bars 0..2999)
    g = grid_inputs(candles, "ema_cross", GRID, ExitPlan(), Costs(), timeframe="1m")
    k = g.kernel
    bars = Bars(*(np.ascontiguousarray(a[3000:]) for a in k.bars))
    ref = sim.run_grid_stats(bars, np.ascontiguousarray(g.lines[:, 3000:]), g.entry_rules, g.exit_rules, k.ladder,
                             k.plan, k.account, k.lower, n_groups=numba.get_num_threads(), block_bars=256)
    np.testing.assert_allclose(blocks.sum[1], ref["return_sum"], rtol=1e-12)
    assert blocks.n[0].sum() > 0 and not np.allclose(blocks.sum[0], blocks.sum[1])


@pytest.mark.parametrize("edges", [[0], [0, 1], [10, 5], [0, 7000], [-1, 100]])
def test_bad_edges_name_the_edges(sample_1m, edges):
    with pytest.raises(DataError, match=r"block edges .*expected increasing bar positions inside 0\.\.6000"):
        run_grid_blocks(sample_1m(n=6000), "ema_cross", GRID, ExitPlan(), Costs(), timeframe="1m", edges=edges)
