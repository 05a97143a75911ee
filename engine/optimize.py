"""Search that does not fool you: parameters chosen in-sample, scored out-of-sample.

Every (pair, timeframe, entry set) is searched on walk-forward folds. In each fold the search
(grid, or optuna when configured) runs on the **train** window (in-sample); the best parameter set
that meets the constraints is then scored on the following **test** window (out-of-sample), which
the search never saw. The out-of-sample result of an entry set is the concatenation of its test
windows; promotion looks only at that.

Fold layout (bars of one series, ``T`` test bars, ``R`` train bars, ``E`` embargo bars)::

    rolling : fold j trains on [j·T, j·T + R − E) and tests on [j·T + R, (j+1)·T + R)
    anchored: fold j trains on [0,   j·T + R − E) and tests on the same window as rolling

The embargo is taken from the end of each train window, so the test windows tile the period
after the first train window without holes. With ``train_bars``/``test_bars`` unset,
``R / (R + T) = train_ratio`` and the folds span the whole series: ``n_bars = R + n_splits · T``.

Intrabar refinement: for a 5m/15m search, the 1m candles of the same pair (when stored) are
passed to every backtest, so bars where a stop and a target are both touched are resolved by
replaying their 1m candles (:func:`engine.simulator.simulate_nb`); the out-of-sample
``ambiguity`` counters of a search say how many bars were ambiguous and how they were resolved.

Search modes (``backtest_config.json → mode``):

- ``grid``: the whole grid of a fold in one batched kernel call (:func:`engine.backtest.run_grid`).
- ``optuna``: one optuna study per (pair, timeframe, entry set, fold), see :func:`run_study`.
  Trials are proposed in batches of ``optuna.batch_size`` from the trials finished before the
  batch, with a seed derived from ``optuna.seed``, the study key and the batch number, and are
  queued in the study before anyone evaluates them. Whoever evaluates a trial (this process, a
  pool worker, ``jobs/backtest.py --worker`` on another machine) therefore gets the same
  parameters and the same value: the result does not depend on the number of workers. Entry sets
  without an ``optuna.space`` are searched on their grid.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from engine.config import BacktestConfig, EntrySet, OptunaConfig, WalkForward, expand_grid
from engine.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold as bar positions ``[start, stop)`` of the series."""

    index: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


def walk_forward_folds(n_bars: int, wf: WalkForward) -> list[Fold]:
    """Return the folds of a series of `n_bars` bars (see the module docstring for the layout).

    Raises
    ------
    DataError
        If the series is too short for the folds: fewer than 10 test bars or 20 train bars.
    """
    k = wf.n_splits
    if wf.train_bars is not None and wf.test_bars is not None:
        train, test = int(wf.train_bars), int(wf.test_bars)
        if train + k * test > n_bars:
            raise DataError(f"walk-forward needs {train + k * test} bars (train {train} + {k} × test {test}); "
                            f"the series has {n_bars}. Lower walk_forward.train_bars/test_bars/n_splits.")
        offset = n_bars - (train + k * test)  # use the most recent bars
    else:
        r = wf.train_ratio
        test = int(n_bars / (r / (1.0 - r) + k))
        train = n_bars - k * test
        offset = 0
    if test < 10 or train - wf.embargo_bars < 20:
        raise DataError(f"walk-forward: {n_bars} bars give train windows of {train - wf.embargo_bars} bars after "
                        f"the embargo and test windows of {test}; expected at least 20 and 10. "
                        "Backfill more candles or lower walk_forward.n_splits / embargo_bars.")
    folds = []
    for j in range(k):
        test_start = offset + j * test + train
        train_start = offset if wf.scheme == "anchored" else offset + j * test
        folds.append(Fold(j, train_start, test_start - wf.embargo_bars, test_start, test_start + test))
    return folds


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
    oos_equity : pandas.Series
        Equity (quote) at each bar close of the concatenated test windows, chained.
    oos_trades : pandas.DataFrame
        The trades of the test windows.
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
    """

    params: dict[str, Any]
    in_sample: dict[str, float]
    out_of_sample: dict[str, float]
    folds: list[dict[str, Any]]
    n_configs_tried: int
    oos_equity: pd.Series
    oos_trades: pd.DataFrame = field(repr=False)
    deflated_sharpe: float = float("nan")
    param_stability: float = float("nan")
    trial_sharpes: list[float] = field(default_factory=list, repr=False)
    ambiguity: dict[str, Any] = field(default_factory=dict)


def _objective_value(metrics: dict, objective: str) -> float:
    value = metrics.get(objective)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return -math.inf
    return float(value)


def _meets(m: dict, min_trades: int, max_drawdown_pct: float) -> bool:
    dd = m.get("max_drawdown_pct")
    return int(m.get("n_trades") or 0) >= min_trades and (dd is None or not dd > max_drawdown_pct)


def choose_best(metrics_list: Sequence[dict | None], objective: str, min_trades: int, max_drawdown_pct: float) -> int:
    """Return the index of the best parameter set: highest `objective` among those that meet the
    constraints; when none meets them, highest objective overall (ties: the first). ``None``
    entries (parameter sets that could not be evaluated) are never chosen unless all are None.

    Raises
    ------
    DataError
        If `metrics_list` is empty.
    """
    if not len(metrics_list):
        raise DataError("choose_best: no parameter set was evaluated")
    order = sorted(range(len(metrics_list)), key=lambda i: (
        metrics_list[i] is None,
        metrics_list[i] is None or not _meets(metrics_list[i], min_trades, max_drawdown_pct),
        -_objective_value(metrics_list[i] or {}, objective), i))
    return order[0]


def _mean_metrics(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in rows[0]:
        values = [r[key] for r in rows if r.get(key) is not None and not (isinstance(r[key], float) and math.isnan(r[key]))]
        if key == "n_trades":
            out[key] = int(sum(values))
        else:
            out[key] = float(np.mean(values)) if values else float("nan")
    return out


# ---------------------------------------------------------------------------------------------
# optuna studies
# ---------------------------------------------------------------------------------------------

#: Value given to a trial that cannot be scored (bad parameter relation, objective undefined, or
#: constraints not met), so that samplers rank it last. Its metrics are kept as user attributes.
PENALTY = -1e9
#: A trial RUNNING longer than this (seconds) in a shared study is taken to belong to a crashed
#: worker: a process waiting for it evaluates it itself (same parameters, same value).
STALE_S = 300.0
POLL_S = 0.05


def default_workers(n_cpus: int | None = None, mode: str = "grid") -> int:
    """Return the default number of research processes on this machine for search `mode`.

    Measured on 2 cores (``python tools/bench_cycle.py --workers 1,2``; README, "Benchmarks"):

    - ``grid``: one process is faster (warm cycle 2.7 s vs 3.4 s with two), because
      :func:`engine.backtest.run_grid` already spreads each grid over every core (numba
      ``prange``) and a pool adds start-up and pickling. On more cores: ``cores // 2`` processes.
    - ``optuna``: one process per core (research 37.6 s with one, 19.4 s with two), because the
      samplers' proposals are Python and use one core.

    Results are identical for every count.
    """
    n = n_cpus if n_cpus is not None else (os.cpu_count() or 1)
    if mode == "optuna":
        return max(1, n)
    return 1 if n <= 2 else n // 2


def study_seed(seed: int, key: str, batch: int = 0) -> int:
    """Return the sampler seed of batch `batch` of study `key`: a 32-bit hash of all three, so
    studies are independent yet reproducible, whatever order or process runs them."""
    digest = hashlib.sha256(f"{int(seed)}|{key}|{int(batch)}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def open_storage(url: str | None):
    """Return an optuna storage for `url`.

    ``None``: in memory (this process only). ``sqlite:///path.db`` or ``postgresql://user:pass@host/db``:
    an RDB storage shared by every process that opens it. ``journal:/path/file.log``: optuna's
    journal file storage (one machine, many processes, no database).

    Raises
    ------
    ConfigError
        If the storage cannot be opened (the message names the URL).
    """
    import optuna

    # one INFO line per study created would flood the log (hundreds of studies per cycle)
    if logging.getLogger("optuna").level in (logging.NOTSET, logging.INFO, logging.DEBUG):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url is None:
        return optuna.storages.InMemoryStorage()
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(url[len("journal:"):]))
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        for attempt in range(5):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            except Exception as e:  # two processes creating the schema of a new database at once
                if "already exists" not in str(e) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    except Exception as e:  # sqlalchemy/driver errors of many kinds
        raise ConfigError(f"--storage {url!r}: cannot open the optuna storage ({type(e).__name__}: {e}); "
                          "expected sqlite:///FILE.db, journal:FILE.log or postgresql://USER:PASS@HOST/DB") from e


def _distributions(space: dict[str, dict]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            out[name] = CategoricalDistribution(tuple(spec["choices"]))
        elif spec["type"] == "int":
            out[name] = IntDistribution(int(spec["low"]), int(spec["high"]), log=spec.get("log", False),
                                        step=int(spec.get("step") or 1))
        else:
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=spec.get("log", False),
                                          step=spec.get("step"))
    return out


def _propose(done: list, count: int, space: dict[str, dict], sampler: str, seed: int) -> list[dict[str, Any]]:
    """Return `count` parameter sets proposed by the sampler from the finished trials `done`."""
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import create_trial

    smp = (optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed))
    storage = optuna.storages.InMemoryStorage()
    storage.create_new_study([StudyDirection.MAXIMIZE], "proposal")
    study = optuna.Study("proposal", storage, sampler=smp)
    dists = _distributions(space)
    for t in done:
        if t.state.name == "COMPLETE" and t.value is not None:
            study.add_trial(create_trial(params=t.params, distributions=t.distributions, value=t.value))
    out = []
    for _ in range(count):
        trial = study.ask(dists)
        out.append(dict(trial.params))
    return out


def _study_id(storage, name: str) -> int:
    import optuna
    from optuna.study import StudyDirection

    try:
        return storage.create_new_study([StudyDirection.MAXIMIZE], name)
    except optuna.exceptions.DuplicatedStudyError:
        return storage.get_study_id_from_name(name)


def _claim(storage, name: str) -> bool:
    """Atomically claim `name` (creating a study of that name succeeds for one process only)."""
    import optuna
    from optuna.study import StudyDirection

    try:
        storage.create_new_study([StudyDirection.MAXIMIZE], name)
        return True
    except optuna.exceptions.DuplicatedStudyError:
        return False


def _finish(storage, trial_id: int, params: dict, metrics: dict | None, objective: str, cons) -> None:
    import optuna
    from optuna.trial import TrialState
    from engine.metrics import json_safe

    if metrics is None or not _meets(metrics, cons.min_trades, cons.max_drawdown_pct):
        value = PENALTY
    else:
        v = _objective_value(metrics, objective)
        value = v if math.isfinite(v) else PENALTY
    try:
        storage.set_trial_user_attr(trial_id, "metrics", json_safe(metrics))
        storage.set_trial_user_attr(trial_id, "evaluated_by", _WHO)
        storage.set_trial_state_values(trial_id, state=TrialState.COMPLETE, values=[value])
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # a stale trial finished twice: same parameters, same value


_WHO = f"{__import__('socket').gethostname()}:{os.getpid()}"


def run_study(storage, name: str, key: str, opt: OptunaConfig, space: dict[str, dict],
              evaluate: Callable[[list[dict]], list[dict | None]], *, objective: str, constraints,
              wait: bool = True, chunk: int | None = None) -> list[tuple[dict, dict | None]] | None:
    """Run (or join) one optuna study until it holds ``opt.n_trials`` finished trials.

    Protocol (the same for an in-memory study and one shared by many processes): when the study
    has no queued trial and every trial is finished, one process claims batch ``b`` (by creating
    the marker study ``<name>#batch<b>``, which succeeds for one process only), asks the sampler
    (seeded with :func:`study_seed` of ``opt.seed``, `key` and ``b``) for up to
    ``opt.batch_size`` parameter sets given the finished trials, and queues them (state WAITING).
    Every process pops queued trials one by one (optuna's atomic WAITING → RUNNING change),
    evaluates them in one batched call and finishes them with their objective value and metrics
    (user attribute ``metrics``). Trial ``k`` thus has the same parameters and value whoever
    evaluates it, and every trial runs once.

    Parameters
    ----------
    storage : optuna storage
        From :func:`open_storage`.
    name : str
        Study name (unique per pair, timeframe, entry set, fold, data window and config).
    key : str
        The study's key for seeding (the name without any user prefix).
    opt : OptunaConfig
        ``n_trials``, ``batch_size``, ``sampler``, ``seed``, ``timeout_s``.
    space : dict
        Parameter space of the entry set (validated ``optuna.space`` entry).
    evaluate : callable
        ``evaluate(list of params) -> list of metrics dict (None: not evaluable)``.
    objective : str
        Metric maximised; trials not meeting `constraints` get :data:`PENALTY`.
    wait : bool
        Wait for trials other processes are running (True), or return None when nothing is left
        for this process to do (a ``--worker``).
    chunk : int, optional
        Most trials popped at once (default: the batch size; 1 is fairer between many workers).

    Returns
    -------
    list of (params, metrics) or None
        Every trial in trial-number order, when the study is complete; None (``wait=False``)
        while other processes still run some of its trials.
    """
    from optuna.trial import TrialState

    sid = _study_id(storage, name)
    chunk = chunk or opt.batch_size
    t0 = time.monotonic()
    while True:
        trials = storage.get_all_trials(sid, deepcopy=False)
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        claimed = []
        for t in waiting:
            if len(claimed) >= chunk:
                break
            tid = storage.get_trial_id_from_study_id_trial_number(sid, t.number)
            try:
                if storage.set_trial_state_values(tid, state=TrialState.RUNNING):
                    claimed.append((tid, t.params))
            except Exception:  # UpdateFinishedTrialError: someone finished it meanwhile
                continue
        if claimed:
            _evaluate_and_finish(storage, claimed, evaluate, objective, constraints)
            continue
        if waiting:
            continue  # every queued trial was taken by others between the read and the claim
        running = [t for t in trials if t.state == TrialState.RUNNING]
        timed_out = opt.timeout_s is not None and time.monotonic() - t0 > opt.timeout_s and trials
        if running:
            if not wait:
                return None
            stale = [t for t in running if t.datetime_start is not None
                     and (time.time() - t.datetime_start.timestamp()) > STALE_S]
            if stale:
                logger.warning("%s: trial %d has run for more than %.0f s; evaluating it here", name,
                               stale[0].number, STALE_S)
                tid = storage.get_trial_id_from_study_id_trial_number(sid, stale[0].number)
                _evaluate_and_finish(storage, [(tid, stale[0].params)], evaluate, objective, constraints)
            else:
                time.sleep(POLL_S)
            continue
        if len(trials) >= opt.n_trials or timed_out:
            return [(dict(t.params), _metrics_from_attr(t.user_attrs.get("metrics")))
                    for t in sorted(trials, key=lambda t: t.number) if t.state == TrialState.COMPLETE]
        batch = len(trials) // opt.batch_size
        if _claim(storage, f"{name}#batch{batch}"):
            count = min(opt.batch_size, opt.n_trials - len(trials))
            proposals = _propose(trials, count, space, opt.sampler, study_seed(opt.seed, key, batch))
            _queue(storage, sid, proposals, _distributions(space))
        elif not wait:
            return None
        else:
            time.sleep(POLL_S)


def _queue(storage, sid: int, proposals: list[dict], dists: dict) -> None:
    from optuna.trial import TrialState, create_trial

    for params in proposals:
        template = create_trial(state=TrialState.WAITING, params=params,
                                distributions={k: dists[k] for k in params})
        storage.create_new_trial(sid, template_trial=template)


def _metrics_from_attr(m: dict | None) -> dict | None:
    if m is None:
        return None
    return {k: (float("nan") if v is None and k != "n_trades" else v) for k, v in m.items()}


def _evaluate_and_finish(storage, claimed: list[tuple[int, dict]], evaluate, objective: str, constraints) -> None:
    results = evaluate([p for _, p in claimed])
    for (tid, params), metrics in zip(claimed, results):
        _finish(storage, tid, params, metrics, objective, constraints)


def _grid_evaluator(train: pd.DataFrame, entry_set: EntrySet, bt: BacktestConfig, timeframe: str,
                    lower: pd.DataFrame | None = None) -> Callable[[list[dict]], list[dict | None]]:
    """Return ``evaluate(params_list)``: train-window metrics of each parameter set in one batched
    :func:`engine.backtest.run_grid` call; None for a set breaking a relation (fast ≥ slow)."""
    from engine import backtest, signals

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
                                     timeframe=timeframe, initial_cash_quote=bt.initial_cash_quote,
                                     lower_candles=_lower_slice(lower, train))
            for i, m in zip(ok, grid):
                out[i] = m
        return out

    return evaluate


@dataclass(frozen=True)
class StudyOptions:
    """Where optuna studies live and how this process takes part.

    Attributes
    ----------
    storage_url : str or None
        None: in memory. Else an optuna storage URL (:func:`open_storage`).
    prefix : str
        Prepended to every study name (``--study-prefix``), so several searches share one storage.
    wait : bool
        False for a ``--worker``: contribute trials, never wait for other processes' trials.
    chunk : int or None
        Trials popped at once (None: the batch size; shared storages use 1).
    """

    storage_url: str | None = None
    prefix: str = "scalp"
    wait: bool = True
    chunk: int | None = None


_STORAGES: dict[str | None, Any] = {}


def _storage_for(opts: StudyOptions):
    if opts.storage_url not in _STORAGES or opts.storage_url is None:
        _STORAGES[opts.storage_url] = open_storage(opts.storage_url)
    return _STORAGES[opts.storage_url]


def study_key(pair: str, timeframe: str, entry_set: str, fold: int, first_ms: int, last_ms: int, cfg_id: str) -> str:
    """Return the key of one study: ``<cfg>.<PAIR>.<TF>.<entry set>.fold<j>.<first_ms>-<last_ms>``.

    The train window's first/last candle and the config id are part of it, so a study never mixes
    trials of different data or settings.
    """
    from engine.markets import pair_to_folder

    return f"{cfg_id}.{pair_to_folder(pair)}.{timeframe}.{entry_set}.fold{fold}.{first_ms}-{last_ms}"


def _lower_slice(lower: pd.DataFrame | None, window: pd.DataFrame) -> pd.DataFrame | None:
    """The lower-timeframe candles inside the time span of `window` (None when there are none)."""
    if lower is None or not len(window):
        return None
    lo = lower.index.searchsorted(window.index[0], side="left")
    hi = lower.index.searchsorted(window.index[-1] + (window.index[-1] - window.index[0]) / max(len(window) - 1, 1),
                                  side="left")
    part = lower.iloc[lo:hi]
    return part if len(part) else None


def search_entry_set(candles: pd.DataFrame, entry_set: EntrySet, bt: BacktestConfig, *, timeframe: str,
                     space: dict[str, list] | None = None, pair: str = "PAIR", cfg_id: str = "cfg",
                     studies: StudyOptions | None = None, lower_candles: pd.DataFrame | None = None) -> SearchResult:
    """Search one entry set on walk-forward folds of `candles`.

    Parameters
    ----------
    candles : DataFrame
        Candles (DESIGN.md shape) of one pair and timeframe.
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
        Candles of a lower timeframe (1m under 5m/15m) for intrabar refinement of every backtest.

    Returns
    -------
    SearchResult

    Raises
    ------
    DataError
        If the series is too short for the walk-forward folds.
    """
    from engine import backtest

    studies = studies or StudyOptions()
    use_optuna = bt.mode == "optuna" and entry_set.name in bt.optuna.space
    space = space if space is not None else bt.grid.get(entry_set.name)
    combos = expand_grid(space) if space else [dict(entry_set.params)]
    combos = [{**entry_set.params, **c} for c in combos]
    plan, costs = entry_set.exit_plan, bt.costs_for(entry_set)
    folds = walk_forward_folds(len(candles), bt.walk_forward)
    fold_rows, is_rows, oos_parts, trial_sharpes = [], [], [], []
    ppy = _ppy(timeframe)
    n_tried = 0
    for fold in folds:
        train = candles.iloc[fold.train_start:fold.train_stop]
        first_ms, last_ms = _ms(candles.index[fold.train_start]), _ms(candles.index[fold.train_stop - 1])
        study_name = None
        if use_optuna:
            key = study_key(pair, timeframe, entry_set.name, fold.index, first_ms, last_ms, cfg_id)
            study_name = f"{studies.prefix}.{key}" if studies.prefix else key
            trials = run_study(_storage_for(studies), study_name, key, bt.optuna, dict(bt.optuna.space[entry_set.name]),
                               _grid_evaluator(train, entry_set, bt, timeframe, lower_candles), objective=bt.objective,
                               constraints=bt.constraints, wait=studies.wait, chunk=studies.chunk)
            if trials is None:  # cannot happen with wait=True
                raise DataError(f"{study_name}: study not finished")
            fold_params = [{**entry_set.params, **p} for p, _ in trials]
            fold_metrics = [m for _, m in trials]
        else:
            fold_params = combos
            fold_metrics = backtest.run_grid(train, entry_set.signal, combos, plan, costs, timeframe=timeframe,
                                             initial_cash_quote=bt.initial_cash_quote,
                                             lower_candles=_lower_slice(lower_candles, train))
        n_tried += len(fold_params)
        trial_sharpes.extend(float("nan") if m is None or m.get("sharpe") is None else m["sharpe"] / math.sqrt(ppy)
                             for m in fold_metrics)
        best = choose_best(fold_metrics, bt.objective, bt.constraints.min_trades, bt.constraints.max_drawdown_pct)
        if fold_metrics[best] is None:
            raise ConfigError(f"optuna.space.{entry_set.name}: no trial of fold {fold.index} gave valid parameters "
                              f"for {entry_set.signal} (e.g. fast < slow); narrow the ranges")
        from engine import signals

        params = signals.validate_params(entry_set.signal, fold_params[best])
        # out-of-sample: indicators warm up on the train window, trades only inside the test window
        window = candles.iloc[fold.train_start:fold.test_stop]
        oos = backtest.run_backtest(window, entry_set.signal, params, plan, costs, timeframe=timeframe,
                                    initial_cash_quote=bt.initial_cash_quote,
                                    start_bar=fold.test_start - fold.train_start,
                                    lower_candles=_lower_slice(lower_candles, window))
        oos_parts.append(oos)
        is_rows.append(fold_metrics[best])
        fold_rows.append({
            "fold": fold.index, "params": params,
            "train": {"first_ms": first_ms, "last_ms": last_ms, "bars": fold.train_stop - fold.train_start},
            "test": {"first_ms": _ms(candles.index[fold.test_start]), "last_ms": _ms(candles.index[fold.test_stop - 1]),
                     "bars": fold.test_stop - fold.test_start},
            "in_sample": fold_metrics[best], "out_of_sample": oos.metrics,
            "n_configs_tried": len(fold_params), "search": "optuna" if use_optuna else "grid",
            "ambiguity": oos.ambiguity,
            **({"study": study_name} if study_name else {}),
        })
    equity, trades, oos_metrics = concat_results(oos_parts, timeframe=timeframe,
                                                 initial_cash_quote=bt.initial_cash_quote)
    chosen = [json.dumps(r["params"], sort_keys=True) for r in fold_rows]
    stability = max(chosen.count(c) for c in set(chosen)) / len(chosen)
    return SearchResult(
        params=fold_rows[-1]["params"], in_sample=_mean_metrics(is_rows), out_of_sample=oos_metrics,
        folds=fold_rows, n_configs_tried=n_tried, oos_equity=equity, oos_trades=trades,
        deflated_sharpe=deflate_oos_sharpe(equity, trial_sharpes, n_tried), param_stability=stability,
        trial_sharpes=trial_sharpes, ambiguity=_sum_ambiguity([p.ambiguity for p in oos_parts]))


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
    for fold in walk_forward_folds(len(candles), bt.walk_forward):
        train = candles.iloc[fold.train_start:fold.train_stop]
        key = study_key(pair, timeframe, entry_set.name, fold.index, _ms(candles.index[fold.train_start]),
                        _ms(candles.index[fold.train_stop - 1]), cfg_id)
        name = f"{studies.prefix}.{key}" if studies.prefix else key
        done = run_study(_storage_for(studies), name, key, bt.optuna, dict(bt.optuna.space[entry_set.name]),
                         _grid_evaluator(train, entry_set, bt, timeframe), objective=bt.objective,
                         constraints=bt.constraints, wait=False, chunk=studies.chunk)
        pending += done is None
    return pending


def deflate_oos_sharpe(equity: pd.Series, trial_sharpes: Sequence[float], n_configs_tried: int) -> float:
    """Return the deflated Sharpe ratio of an out-of-sample equity curve after a search.

    The Sharpe ratio judged is the **per-bar** Sharpe ratio of the out-of-sample returns
    (``equity[t] / equity[t-1] - 1`` over the concatenated test windows, ``T`` = their count;
    the annualised figure in the metrics is this × sqrt(bars per year)). The number of trials
    ``N`` is every configuration tried over all folds (`n_configs_tried`: grid size × folds, or
    optuna trials × folds), an upper bound of the independent trials, so the correction errs on
    the safe side. The variance of the trials' Sharpe ratios is the sample variance of their
    **per-bar in-sample** Sharpe ratios on their train windows (undefined ones left out).
    See :func:`engine.stats.deflated_sharpe`.

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
    from engine.stats import deflated_sharpe, equity_returns

    if len(equity) < 4 or n_configs_tried < 1:
        return float("nan")
    return deflated_sharpe(equity_returns(equity.to_numpy(dtype=float)), trial_sharpes, n_configs_tried)


def _ppy(timeframe: str) -> float:
    from engine.markets import periods_per_year

    return periods_per_year(timeframe)


def concat_results(parts: Sequence[Any], *, timeframe: str, initial_cash_quote: float
                   ) -> tuple[pd.Series, pd.DataFrame, dict[str, float]]:
    """Chain the results of consecutive test windows into one out-of-sample result.

    Each window's equity is rescaled so that it starts from the capital the previous window ended
    with (compounding, as one account trading through every window); trade PnL is rescaled by the
    same factor. The metrics are then computed on the chained curve and the trade list with the
    DESIGN.md definitions (:func:`engine.metrics.compute_metrics`).

    Parameters
    ----------
    parts : sequence of BacktestResult
        In time order, not overlapping.

    Returns
    -------
    (equity, trades, metrics)
        Equity in quote at each bar close of the windows, their trades, the metrics.
    """
    from engine import metrics
    from engine.markets import periods_per_year

    capital = float(initial_cash_quote)
    curves, trade_frames, held = [], [], 0
    for r in parts:
        scale = capital / float(r.initial_cash_quote)
        curves.append(r.equity * scale)
        t = r.trades.copy()
        for col in ("pnl_quote", "fees_quote"):
            if col in t:
                t[col] = t[col] * scale
        trade_frames.append(t)
        held += metrics.bars_held(r.trades["entry_bar"], r.trades["exit_bar"]) if len(r.trades) else 0
        if len(r.equity):
            capital = float(r.equity.iloc[-1] * scale)
    equity = pd.concat(curves) if curves else pd.Series(dtype=float)
    trades = pd.concat(trade_frames, ignore_index=True) if trade_frames else pd.DataFrame()
    pnl = trades["pnl_quote"].to_numpy(dtype=float) if len(trades) else np.empty(0)
    ret = trades["return_pct"].to_numpy(dtype=float) if len(trades) else np.empty(0)
    m = metrics.compute_metrics(pnl, ret, equity.to_numpy(dtype=float), initial_cash_quote=initial_cash_quote,
                                n_bars_held=held, periods_per_year=periods_per_year(timeframe))
    return equity, trades, m


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)
