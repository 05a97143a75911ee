"""Search that does not fool you: parameters chosen in-sample, scored out-of-sample.

Every (pair, timeframe, entry set) is searched on walk-forward folds (:mod:`engine.research.folds`).
In each fold the search (grid, or optuna when configured) runs on the **train** window
(in-sample); the best parameter set that meets the constraints is then scored on the following
**test** window (out-of-sample), which the search never saw. The out-of-sample result of an entry
set is the concatenation of its test windows; promotion looks only at that.

Intrabar refinement: for a 5m/15m search, the 1m candles of the same pair (when stored) are
passed to every backtest, so bars where a stop and a target are both touched are resolved by
replaying their 1m candles (:func:`engine.backtest.kernel_nb.simulate_nb`); the out-of-sample
``ambiguity`` counters of a search say how many bars were ambiguous and how they were resolved.

Chance baseline: after the folds, the out-of-sample result is set against random-entry twins on
the same bars with the same exit plan, costs and number of trades
(:func:`engine.research.chance.chance_baseline`, ``backtest_config.json → chance``); the twins'
seed is derived from the configured one and the row's pair, timeframe and entry set
(:func:`engine.research.chance.twins_seed`), so rows differ and re-runs repeat.

Search modes (``backtest_config.json → mode``):

- ``grid``: the whole grid of a fold in one batched kernel call (:func:`engine.backtest.run_grid`).
- ``optuna``: one optuna study per (pair, timeframe, entry set, fold), see
  :func:`engine.research.studies.run_study`. Entry sets without an ``optuna.space`` are searched
  on their grid.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine import backtest
from engine.backtest import metrics
from engine.backtest.results import trade_returns_pct
from engine.backtest.inputs import CheckedCandles, prepare_candles
from engine.config import BacktestConfig, EntrySet, expand_grid
from engine.data.candles import index_ms
from engine.errors import ConfigError, DataError
from engine.markets import periods_per_year
from engine.research.chance import ChanceResult, chance_baseline, twins_seed
from engine.research.folds import _mean_metrics, choose_best, walk_forward_folds
from engine.research.stats import deflated_sharpe, equity_returns
from engine.research import timing
from engine.research.studies import StudyOptions, run_study, study_key
from engine.strategy import signals

FloatArray = npt.NDArray[np.float64]


@dataclass
class SearchResult:
    """The walk-forward search of one (pair, timeframe, entry set).

    Attributes
    ----------
    params : dict
        Parameters chosen in the last (most recent) fold: what would trade next.
    in_sample, out_of_sample : dict
        Metrics (DESIGN.md keys). In-sample: the mean over folds of the chosen parameters' train
        metrics (``n_trades`` summed). Out-of-sample: the concatenated test windows.
    folds : list of dict
        Per fold: bar ranges and times, chosen params, in-sample and out-of-sample metrics,
        configurations tried and (optuna) the study name.
    n_configs_tried : int
        Parameter sets evaluated over all folds (grid size × folds, or trials × folds).
    oos_parts : list of BacktestResult
        The test windows' results, in time order; ``oos_equity`` (pandas Series, quote at each bar
        close, chained across windows) and ``oos_trades`` (DataFrame) are built from them only
        when asked for: a search writes the curve of one row per pair × timeframe.
    oos_equity_values : float64 array, shape (n_oos_bars,)
        The values of ``oos_equity`` (quote), without its index.
    deflated_sharpe : float
        Deflated Sharpe ratio of the out-of-sample returns (:func:`deflate_oos_sharpe`); NaN when
        undefined.
    param_stability : float
        Share of folds that chose the most frequent parameter set (1.0: the same every fold).
    trial_sharpes : list of float
        Per-bar in-sample Sharpe ratio of every configuration tried (NaN when undefined).
    ambiguity : dict
        Out-of-sample bars where a stop and a target were both touched, summed over the test
        windows: ``n_ambiguous_bars``, ``n_resolved_target_first`` / ``n_resolved_stop_first``
        (replayed on 1m candles), ``n_unresolved_stop_first`` (stop assumed first),
        ``lower_timeframe_used``.
    chance : ChanceResult or None
        The row against random-entry twins on the out-of-sample bars (:func:`chance_baseline`:
        same exit plan, costs and number of trades); None when ``bt.chance`` is unset.
    """

    params: dict[str, Any]
    in_sample: dict[str, float]
    out_of_sample: dict[str, float]
    folds: list[dict[str, Any]]
    n_configs_tried: int
    oos_parts: list[Any] = field(default_factory=list, repr=False)
    oos_equity_values: FloatArray = field(default_factory=lambda: np.empty(0), repr=False)
    param_stability: float = float("nan")
    trial_sharpes: list[float] = field(default_factory=list, repr=False)
    ambiguity: dict[str, Any] = field(default_factory=dict)
    chance: ChanceResult | None = None
    initial_cash_quote: float = 10_000.0

    @cached_property
    def deflated_sharpe(self) -> float:
        """Deflated Sharpe ratio of the out-of-sample returns (:func:`deflate_oos_sharpe`) over this
        entry set's trials; NaN when undefined (computed on first use)."""
        return deflate_oos_sharpe(self.oos_equity_values, self.trial_sharpes, self.n_configs_tried)

    @cached_property
    def oos_equity(self) -> pd.Series:
        """Equity (quote) at each bar close of the concatenated test windows, chained (built on first use)."""
        return chained_equity(self.oos_parts, initial_cash_quote=self.initial_cash_quote)

    @cached_property
    def oos_trades(self) -> pd.DataFrame:
        """The trades of the test windows, PnL and fees rescaled as the chained equity (built on first use)."""
        return chained_trades(self.oos_parts, initial_cash_quote=self.initial_cash_quote)


def _grid_evaluator(train: pd.DataFrame | CheckedCandles, entry_set: EntrySet, bt: BacktestConfig, timeframe: str
                    ) -> Callable[[list[dict]], list[dict | None]]:
    """Return ``evaluate(params_list)``: train-window metrics of each parameter set in one batched
    :func:`engine.backtest.run_grid` call; None for a set breaking a relation (fast ≥ slow)."""
    def evaluate(params_list: list[dict]) -> list[dict | None]:
        ok, combos = [], []
        for i, p in enumerate(params_list):
            try:
                combos.append(signals.validate_params(entry_set.signal, {**entry_set.params, **p}))
                ok.append(i)
            except ConfigError:
                pass
        out: list[dict | None] = [None] * len(params_list)
        if combos:
            grid = backtest.run_grid(train, entry_set.signal, combos, entry_set.exit_plan, bt.costs_for(entry_set),
                                     timeframe=timeframe, initial_cash_quote=bt.initial_cash_quote)
            for i, m in zip(ok, grid):
                out[i] = m
        return out

    return evaluate


def grid_configs(entry_set: EntrySet, space: Mapping[str, list] | None) -> list[dict[str, Any]]:
    """The parameter sets of `entry_set` over the grid `space` (``{param: [values]}``), its default
    parameters filled in; just the defaults without a grid."""
    return [{**entry_set.params, **c} for c in (expand_grid(space) if space else [{}])]


def search_entry_set(candles: pd.DataFrame | CheckedCandles, entry_set: EntrySet, bt: BacktestConfig, *, timeframe: str,
                     space: dict[str, list] | None = None, pair: str = "PAIR", cfg_id: str = "cfg",
                     studies: StudyOptions | None = None, lower_candles: pd.DataFrame | None = None) -> SearchResult:
    """Search one entry set on walk-forward folds of `candles`.

    Parameters
    ----------
    candles : DataFrame or CheckedCandles
        Candles (DESIGN.md shape) of one pair and timeframe, or the same checked once with their
        1m map (:func:`engine.backtest.inputs.prepare_candles`, what a research job shares
        between its entry sets).
    entry_set : EntrySet
        Signal, default params and exit rules; costs from :meth:`BacktestConfig.costs_for`.
    bt : BacktestConfig
        Mode, objective, constraints, walk-forward layout, initial cash, optuna settings.
    space : dict, optional
        Grid ``{param: [values]}``; default ``bt.grid[entry_set.name]``, else the entry set's
        default params alone. Ignored for entry sets searched by optuna.
    pair, cfg_id : str
        Name the optuna studies (:func:`study_key`).
    studies : StudyOptions, optional
        Optuna storage and role; default in memory.
    lower_candles : DataFrame, optional
        Candles of a lower timeframe (1m under 5m/15m) for intrabar refinement of every backtest
        (not with checked candles, which carry their map).

    Returns
    -------
    SearchResult
        With ``chance`` (twins over the out-of-sample bars, ``bt.chance.n_twins`` of them) unless
        ``bt.chance`` is None.

    Raises
    ------
    DataError
        If the series is too short for the walk-forward folds.
    """
    studies = studies or StudyOptions()
    use_optuna = bt.mode == "optuna" and entry_set.name in bt.optuna.space
    space = space if space is not None else bt.grid.get(entry_set.name)
    combos = grid_configs(entry_set, space)
    plan, costs = entry_set.exit_plan, bt.costs_for(entry_set)
    candles = prepare_candles(candles, timeframe=timeframe, lower_candles=lower_candles)
    folds = walk_forward_folds(len(candles), bt.walk_forward)
    bars_ms = index_ms(candles.index)
    fold_rows, is_rows, oos_parts, trial_sharpes = [], [], [], []
    ppy = periods_per_year(timeframe)
    n_tried = 0
    with timing.stage("search"):
        for fold in folds:
            train = candles.window(fold.train_start, fold.train_stop)
            first_ms, last_ms = int(bars_ms[fold.train_start]), int(bars_ms[fold.train_stop - 1])
            study_name = None
            if use_optuna:
                key = study_key(pair, timeframe, entry_set.name, fold.index, first_ms, last_ms, cfg_id)
                study_name = f"{studies.prefix}.{key}" if studies.prefix else key
                trials = run_study(studies.storage(), study_name, key, bt.optuna, dict(bt.optuna.space[entry_set.name]),
                                   _grid_evaluator(train, entry_set, bt, timeframe), objective=bt.objective,
                                   constraints=bt.constraints, wait=studies.wait, chunk=studies.chunk)
                if trials is None:  # cannot happen with wait=True
                    raise DataError(f"{study_name}: study not finished")
                fold_params = [{**entry_set.params, **p} for p, _ in trials]
                fold_metrics = [m for _, m in trials]
            else:
                fold_params = combos
                fold_metrics = backtest.run_grid(train, entry_set.signal, combos, plan, costs, timeframe=timeframe,
                                                 initial_cash_quote=bt.initial_cash_quote)
            n_tried += len(fold_params)
            trial_sharpes.extend(float("nan") if m is None or m.get("sharpe") is None else m["sharpe"] / math.sqrt(ppy)
                                 for m in fold_metrics)
            best = choose_best(fold_metrics, bt.objective, bt.constraints.min_trades, bt.constraints.max_drawdown_pct)
            if fold_metrics[best] is None:
                raise ConfigError(f"optuna.space.{entry_set.name}: no trial of fold {fold.index} gave valid parameters "
                                  f"for {entry_set.signal} (e.g. fast < slow); narrow the ranges")
            params = signals.validate_params(entry_set.signal, fold_params[best])
            # out-of-sample: indicators warm up on the train window, trades only inside the test window
            window = candles.window(fold.train_start, fold.test_stop)
            oos = backtest.run_backtest(window, entry_set.signal, params, plan, costs, timeframe=timeframe,
                                        initial_cash_quote=bt.initial_cash_quote,
                                        start_bar=fold.test_start - fold.train_start)
            oos_parts.append(oos)
            is_rows.append(fold_metrics[best])
            fold_rows.append({
                "fold": fold.index, "params": params,
                "train": {"first_ms": first_ms, "last_ms": last_ms, "bars": fold.train_stop - fold.train_start},
                "test": {"first_ms": int(bars_ms[fold.test_start]), "last_ms": int(bars_ms[fold.test_stop - 1]),
                         "bars": fold.test_stop - fold.test_start},
                "in_sample": fold_metrics[best], "out_of_sample": oos.metrics,
                "n_configs_tried": len(fold_params), "search": "optuna" if use_optuna else "grid",
                "ambiguity": oos.ambiguity,
                **({"study": study_name} if study_name else {}),
            })
    equity, oos_metrics = chain_metrics(oos_parts, timeframe=timeframe, initial_cash_quote=bt.initial_cash_quote)
    chosen = [json.dumps(r["params"], sort_keys=True) for r in fold_rows]
    stability = max(chosen.count(c) for c in set(chosen)) / len(chosen)
    chance = None
    if bt.chance is not None:
        # the test windows tile the out-of-sample bars: the twins enter at random anywhere in them
        oos_bars = candles.window(folds[0].test_start, folds[-1].test_stop)
        with timing.stage("chance"):
            chance = chance_baseline(oos_bars, plan, costs, n_entries=int(oos_metrics["n_trades"]),
                                     row_total_return_pct=oos_metrics["total_return_pct"],
                                     n_twins=bt.chance.n_twins,
                                     seed=twins_seed(bt.chance.seed, pair, timeframe, entry_set.name),
                                     timeframe=timeframe, initial_cash_quote=bt.initial_cash_quote)
    return SearchResult(
        params=fold_rows[-1]["params"], in_sample=_mean_metrics(is_rows), out_of_sample=oos_metrics,
        folds=fold_rows, n_configs_tried=n_tried, oos_parts=oos_parts, oos_equity_values=equity,
        param_stability=stability,
        trial_sharpes=trial_sharpes, ambiguity=_sum_ambiguity([p.ambiguity for p in oos_parts]), chance=chance,
        initial_cash_quote=bt.initial_cash_quote)


def _sum_ambiguity(parts: Sequence[dict]) -> dict[str, Any]:
    """Add up the out-of-sample ambiguity counters of the test windows."""
    keys = ("n_ambiguous_bars", "n_resolved_target_first", "n_resolved_stop_first", "n_unresolved_stop_first")
    out: dict[str, Any] = {k: int(sum(int(p.get(k, 0)) for p in parts)) for k in keys}
    out["lower_timeframe_used"] = any(bool(p.get("lower_timeframe_used")) for p in parts)
    return out


def contribute(candles: pd.DataFrame, entry_set: EntrySet, bt: BacktestConfig, *, timeframe: str, pair: str,
               cfg_id: str, studies: StudyOptions) -> int:
    """Work on the optuna studies of one (pair, timeframe, entry set) as a ``--worker``.

    Evaluates queued trials and proposes new batches (see :func:`run_study`) without waiting for
    trials other processes run; no out-of-sample scoring, no reports.

    Returns
    -------
    int
        Studies of this entry set not finished yet (0: nothing left; entry sets without an
        optuna space, or grid mode, have no studies).
    """
    if bt.mode != "optuna" or entry_set.name not in bt.optuna.space:
        return 0
    pending = 0
    bars_ms = index_ms(candles)
    for fold in walk_forward_folds(len(candles), bt.walk_forward):
        train = candles.iloc[fold.train_start:fold.train_stop]
        key = study_key(pair, timeframe, entry_set.name, fold.index, int(bars_ms[fold.train_start]),
                        int(bars_ms[fold.train_stop - 1]), cfg_id)
        name = f"{studies.prefix}.{key}" if studies.prefix else key
        done = run_study(studies.storage(), name, key, bt.optuna, dict(bt.optuna.space[entry_set.name]),
                         _grid_evaluator(train, entry_set, bt, timeframe), objective=bt.objective,
                         constraints=bt.constraints, wait=False, chunk=studies.chunk)
        pending += done is None
    return pending


def deflate_oos_sharpe(equity: pd.Series | FloatArray, trial_sharpes: Sequence[float], n_configs_tried: int) -> float:
    """Return the deflated Sharpe ratio of an out-of-sample equity curve after a search.

    The Sharpe ratio judged is the **per-bar** Sharpe ratio of the out-of-sample returns
    (``equity[t] / equity[t-1] - 1`` over the concatenated test windows, ``T`` = their count;
    the annualised figure in the metrics is this × sqrt(bars per year)). The number of trials
    ``N`` is every configuration tried over all folds (`n_configs_tried`: grid size × folds, or
    optuna trials × folds), an upper bound of the independent trials, so the correction errs on
    the safe side. The variance of the trials' Sharpe ratios is the sample variance of their
    **per-bar in-sample** Sharpe ratios on their train windows (undefined ones left out).
    See :func:`engine.research.stats.deflated_sharpe`.

    References
    ----------
    Bailey, D. H. and López de Prado, M. (2014). The Deflated Sharpe Ratio: Correcting for
    Selection Bias, Backtest Overfitting and Non-Normality. Journal of Portfolio Management 40(5).

    Returns
    -------
    float
        Probability in [0, 1] that the true Sharpe ratio exceeds what the best of ``N`` worthless
        trials would show; NaN when undefined (flat equity, fewer than 3 bars).
    """
    if len(equity) < 4 or n_configs_tried < 1:
        return float("nan")
    return deflated_sharpe(equity_returns(np.asarray(equity, dtype=float)), trial_sharpes, n_configs_tried)


def _scales(parts: Sequence[Any], initial_cash_quote: float) -> list[float]:
    # each window's equity is rescaled to start from the capital the previous window ended with
    capital, out = float(initial_cash_quote), []
    for r in parts:
        scale = capital / float(r.initial_cash_quote)
        out.append(scale)
        eq = r.fills.equity
        if len(eq):
            capital = float(eq[-1] * scale)
    return out


def chain_metrics(parts: Sequence[Any], *, timeframe: str, initial_cash_quote: float) -> tuple[FloatArray, dict]:
    """Chain the results of consecutive test windows into one out-of-sample result: its equity and metrics.

    Each window's equity is rescaled so that it starts from the capital the previous window ended
    with (compounding, as one account trading through every window); trade PnL is rescaled by the
    same factor. The metrics are then computed on the chained curve and the trade list with the
    DESIGN.md definitions (:func:`engine.backtest.metrics.compute_metrics`). Works on the kernel's
    arrays (:attr:`~engine.backtest.BacktestResult.fills`): no frame is built.

    Parameters
    ----------
    parts : sequence of BacktestResult
        In time order, not overlapping.

    Returns
    -------
    (equity, metrics)
        Equity in quote at each bar close of the windows (float64, shape (n_bars,)), the metrics.
    """
    scales = _scales(parts, initial_cash_quote)
    equity = np.concatenate([r.fills.equity * k for r, k in zip(parts, scales)]) if parts else np.empty(0)
    pnl = np.concatenate([r.fills.pnl * k for r, k in zip(parts, scales)]) if parts else np.empty(0)
    ret = np.concatenate([trade_returns_pct(r.fills) for r in parts]) if parts else np.empty(0)
    held = sum(metrics.bars_held(r.fills.entry_bar, r.fills.exit_bar) for r in parts if len(r.fills.entry_bar))
    m = metrics.compute_metrics(pnl, ret, equity, initial_cash_quote=initial_cash_quote,
                                n_bars_held=held, periods_per_year=periods_per_year(timeframe))
    return equity, m


def chained_equity(parts: Sequence[Any], *, initial_cash_quote: float) -> pd.Series:
    """Return the chained equity of :func:`chain_metrics` as a Series (quote) indexed by the bars' open times."""
    if not parts:
        return pd.Series(dtype=float)
    return pd.concat([r.equity * k for r, k in zip(parts, _scales(parts, initial_cash_quote))])


def chained_trades(parts: Sequence[Any], *, initial_cash_quote: float) -> pd.DataFrame:
    """Return the trades of the test windows (:data:`engine.backtest.results.TRADE_COLUMNS`), PnL and
    fees in quote rescaled as :func:`chain_metrics` rescales the equity."""
    frames = []
    for r, k in zip(parts, _scales(parts, initial_cash_quote)):
        t = r.trades.copy()
        for col in ("pnl_quote", "fees_quote"):
            t[col] = t[col] * k
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
