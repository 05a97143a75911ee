"""One grid scored on contiguous blocks of bars: the per-block return moments CSCV needs.

The indicator lines are computed once on the whole series (each bar sees only bars before it, so a
block's lines equal what they would be with the earlier bars as warm-up), then every block runs the
whole grid in one kernel call on its slice of the bars and lines. Each block starts flat: a position
open at a block's end is closed at its last bar, as at the end of any backtest.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.backtest import kernel_nb as sim
from engine.backtest.api import GRID_BLOCK_BARS, grid_inputs
from engine.backtest.records_nb import Bars
from engine.errors import DataError
from engine.strategy.exits import Costs, ExitPlan

FloatArray = npt.NDArray[np.float64]


class BlockMoments(NamedTuple):
    """Per-bar return moments of every combination on every block, float64 arrays of shape
    (n_blocks, n_combos): ``sum`` and ``sumsq`` of the per-bar returns (fractions) and their count
    ``n`` (as float). Sharpe of combination j on block b: mean / std of those returns."""

    sum: FloatArray
    sumsq: FloatArray
    n: FloatArray


def run_grid_blocks(candles: pd.DataFrame, signal: str, param_grid: list[dict], exit_plan: ExitPlan, costs: Costs, *,
                    timeframe: str, edges: Sequence[int], initial_cash_quote: float = 10_000.0) -> BlockMoments:
    """Score every combination of `param_grid` on each block ``[edges[i], edges[i+1])`` of `candles`.

    Parameters
    ----------
    edges : sequence of int
        Increasing bar positions, first ≥ 0 and last ≤ len(candles); at least one block.
    Other parameters as :func:`engine.backtest.api.run_grid` (no lower-timeframe candles: a stop
    and a target touched in one bar resolve stop first).

    Returns
    -------
    BlockMoments

    Raises
    ------
    ConfigError, DataError
        As :func:`run_grid`; DataError also for edges that are not increasing inside the series.
    """
    e = np.asarray(edges, dtype=np.int64)
    if e.ndim != 1 or e.size < 2 or e[0] < 0 or e[-1] > len(candles) or np.any(np.diff(e) < 2):
        raise DataError(f"block edges {list(map(int, e))}: expected increasing bar positions inside 0..{len(candles)}, "
                        "each block at least 2 bars")
    g = grid_inputs(candles, signal, param_grid, exit_plan, costs, timeframe=timeframe,
                    initial_cash_quote=initial_cash_quote)
    k = g.kernel
    out = np.zeros((3, e.size - 1, len(g.combos)))
    for b, (lo, hi) in enumerate(zip(e[:-1], e[1:])):
        bars = Bars(*(np.ascontiguousarray(a[lo:hi]) for a in k.bars))
        stats = sim.run_grid_stats(bars, np.ascontiguousarray(g.lines[:, lo:hi]), g.entry_rules, g.exit_rules,
                                   k.ladder, k.plan, k.account, None, n_groups=numba.get_num_threads(),
                                   block_bars=GRID_BLOCK_BARS)
        out[0, b], out[1, b], out[2, b] = stats["return_sum"], stats["return_sumsq"], stats["n_returns"]
    return BlockMoments(*out)
