"""Judging a pair × timeframe's search: trials counted per slot, PBO, the deployed parameters,
costs in plain view, and the untouched final window.

Every entry set searched for one pair × timeframe competes for the same slot (one candidate per
pair × timeframe is promoted), so the deflated Sharpe ratio of each row counts **every**
configuration of every entry set and fold searched for that slot, with the trial variance pooled
over all of them (Bailey & López de Prado 2014). The probability of backtest overfitting of the
slot comes from combinatorially symmetric cross-validation over the searched bars cut into
:data:`PBO_BLOCKS` blocks (:mod:`engine.research.pbo`), every configuration of every entry set
run on each block. The deployed parameters are the last fold's choice; their own out-of-sample
window is that fold's test window.
"""
from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from engine.backtest import run_backtest
from engine.backtest.blocks import run_grid_blocks
from engine.config import BacktestConfig, EntrySet
from engine.errors import ConfigError, DataError
from engine.research.pbo import pbo_cscv
from engine.research.reports import Judgement, SummaryRow
from engine.research.search import SearchResult, deflate_oos_sharpe, grid_configs

logger = logging.getLogger(__name__)

#: Time blocks of the CSCV (S); C(8, 4) = 70 in-sample / out-of-sample splits.
PBO_BLOCKS = 8


def slot_configs(entry_set: EntrySet, bt: BacktestConfig) -> list[dict[str, Any]]:
    """The configurations of `entry_set` that compete in its slot: its grid (defaults filled in),
    else its default parameters (an optuna-searched set is judged on its grid when it has one)."""
    return grid_configs(entry_set, bt.grid.get(entry_set.name))


def slot_pbo(candles: pd.DataFrame, entry_sets: Sequence[EntrySet], bt: BacktestConfig, *, timeframe: str,
             n_blocks: int = PBO_BLOCKS) -> float:
    """Return the PBO of one pair × timeframe: every configuration of every entry set scored on each
    of `n_blocks` contiguous blocks of `candles` (the searched bars; indicators computed once over
    them, :func:`engine.backtest.blocks.run_grid_blocks`), CSCV over the per-block Sharpe ratios.

    NaN when fewer than 2 configurations or a block is too short to run.
    """
    edges = np.linspace(0, len(candles), n_blocks + 1).astype(int)
    parts = []
    for es in entry_sets:
        try:
            parts.append(run_grid_blocks(candles, es.signal, slot_configs(es, bt), es.exit_plan, bt.costs_for(es),
                                         timeframe=timeframe, edges=edges, initial_cash_quote=bt.initial_cash_quote))
        except (ConfigError, DataError) as e:  # relations like fast ≥ slow in a grid, or a short series
            logger.debug("PBO %s: not computed (%s)", es.name, e)
            return float("nan")
    if not parts:
        return float("nan")
    stack = lambda k: np.concatenate([p[k] for p in parts], axis=1)  # noqa: E731
    return pbo_cscv(stack(0), stack(1), np.maximum(stack(2), 1.0)).pbo


def costs_view(row: SummaryRow) -> dict[str, float]:
    """Cost per trade (round trip, bps), gross and net expectancy (%), and the break-even cost (bps).

    Round trip = 2 × (fee + slippage) of notional; gross expectancy = net + round trip; the
    break-even cost is the round trip at which the expectancy would be zero (gross in bps).
    """
    rt_bps = 2.0 * (row.costs.fee_bps + row.costs.slippage_bps)
    net = row.out_of_sample.get("expectancy_pct", float("nan"))
    net = float("nan") if net is None else float(net)
    gross = net + rt_bps / 100.0 if math.isfinite(net) else float("nan")
    return {"cost_per_trade_bps": rt_bps, "expectancy_net_pct": net, "expectancy_gross_pct": gross,
            "break_even_cost_bps": gross * 100.0 if math.isfinite(gross) else float("nan")}


def holdout_metrics(candles: pd.DataFrame, holdout_bars: int, row: SummaryRow, *, timeframe: str,
                    initial_cash_quote: float, lower_candles: pd.DataFrame | None = None) -> dict[str, float]:
    """Score the deployed parameters once on the last `holdout_bars` of `candles` (never searched);
    indicators warm up on the bars before. Empty without a holdout."""
    if holdout_bars <= 0 or len(candles) <= holdout_bars:
        return {}
    start = len(candles) - holdout_bars
    res = run_backtest(candles, row.signal, row.judgement.deployed_params or row.params, row.exit_plan, row.costs,
                       timeframe=timeframe, initial_cash_quote=initial_cash_quote, start_bar=start,
                       lower_candles=lower_candles)
    return dict(res.metrics)


def judge_slot(rows: list[tuple[SummaryRow, SearchResult]], candles: pd.DataFrame, entry_sets: Sequence[EntrySet],
               bt: BacktestConfig, *, timeframe: str, searched: pd.DataFrame,
               lower_candles: pd.DataFrame | None = None) -> list[SummaryRow]:
    """Return the rows of one pair × timeframe with their :class:`Judgement` filled in and the
    deflated Sharpe recomputed over every trial of the slot.

    Parameters
    ----------
    rows : list of (SummaryRow, SearchResult)
        One per entry set, as :func:`engine.research.pipeline.research_pair` built them.
    candles : DataFrame
        All candles (the holdout included); `searched` the part the search saw.
    """
    n_slot = sum(int(res.n_configs_tried) for _, res in rows)
    pooled = [s for _, res in rows for s in res.trial_sharpes]
    pbo = slot_pbo(searched, entry_sets, bt, timeframe=timeframe)
    holdout_bars = int(getattr(bt.walk_forward, "final_holdout_bars", 0) or 0)
    out = []
    for row, res in rows:
        last = res.folds[-1]
        chance = getattr(res, "chance", None)
        judgement = Judgement(
            n_trials_slot=n_slot, n_folds=len(res.folds), pbo=pbo, deployed_params=dict(last["params"]),
            deployed_oos=dict(last["out_of_sample"]), **costs_view(row),
            **({} if chance is None else {
                "p_value_vs_random": chance.p_value_vs_random, "excess_vs_random_pct": chance.excess_vs_random_pct,
                "twins_median_pct": chance.twins_median_pct, "twins_hist": dict(chance.twins_hist),
                "n_twins": chance.n_twins, "twins_seed": chance.twins_seed}),
        )
        row = replace(row, deflated_sharpe=float(deflate_oos_sharpe(res.oos_equity_values, pooled, n_slot)), judgement=judgement)
        if holdout_bars:
            row = replace(row, judgement=replace(judgement, holdout=holdout_metrics(
                candles, holdout_bars, row, timeframe=timeframe, initial_cash_quote=bt.initial_cash_quote,
                lower_candles=lower_candles)))
        out.append(row)
    return out
