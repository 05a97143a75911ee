"""Research stage of a cycle: every pair × timeframe × entry set searched, results stored.

Writes, in ``reports_dir`` (DESIGN.md, "Reports"):

- ``summary.json``: one row per pair × timeframe × entry set with params, in-sample and
  out-of-sample metrics, folds, period, bars, data source and config id;
- ``strategies.yml.next``: the best candidate per pair × timeframe, chosen by the in-sample
  objective (the out-of-sample numbers are left for promotion to judge);
- ``curves/<PAIR>_<TF>_<ENTRY SET>.json``: the out-of-sample equity curve, drawdown and trades of
  each candidate, for the dashboard.

Each file is written through :mod:`engine.research.reports`, its one producer and reader
(records :class:`~engine.research.reports.SummaryRow`, :class:`~engine.research.reports.Candidate`,
:class:`~engine.research.reports.Curve`).

One failing pair or timeframe (missing or corrupt CSV, too few candles) is logged and reported in
the result's ``errors`` (:class:`~engine.research.reports.StageError`); the others go on.

The (pair, timeframe) jobs run in this process or in a pool of ``workers`` processes; each job is
deterministic (fixed seeds, no shared state), and results are gathered in job order, so the
reports are identical whatever the number of workers.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from engine.clock import Clock
from engine.config import BacktestConfig, EntriesConfig, config_id
from engine.backtest.inputs import prepare_candles
from engine.data import store
from engine.data.resample import apply_gap_policy
from engine.data.sample import SAMPLE_SOURCE
from engine.errors import ConfigError, DataError, EngineError
from engine.fileio import json_safe
from engine.markets import pair_to_folder
from engine.records import Fields, Period
from engine.research import reports, timing
from engine.research.reports import (CANDIDATES_FILE, CURVES_DIR, SUMMARY_COLUMNS, SUMMARY_FILE, Candidate,
                                     CandidatesReport, ClockReading, Curve, FoldResult, StageError, SummaryReport,
                                     SummaryRow, curve_name)
from engine.research.cluster import map_on_cluster, scheduler_address
from engine.research.gate import first_candles, screen_entry_sets
from engine.research.judge import judge_slot
from engine.research.search import SearchResult, contribute, search_entry_set
from engine.research.studies import StudyOptions, open_storage
from engine.types import DataSource

logger = logging.getLogger(__name__)

__all__ = ["SUMMARY_COLUMNS", "ResearchResult", "best_of_slot", "default_workers", "research_config_id",
           "research_pair", "run_research", "run_worker"]


@dataclass
class ResearchResult:
    """What the research stage produced: the summary rows, the best candidate per pair ×
    timeframe, the per pair × timeframe errors, and the stage's wall time in seconds.
    ``kept_previous`` says why summary.json was left as it was (no row this run), else None;
    ``lookahead`` the gate's checks (:class:`engine.research.gate.GateResult`); ``stages_s`` the
    seconds of the jobs' stages, summed (:mod:`engine.research.timing`)."""

    rows: list[SummaryRow] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    errors: list[StageError] = field(default_factory=list)
    duration_s: float = 0.0
    kept_previous: str | None = None
    lookahead: list[dict[str, Any]] = field(default_factory=list)
    stages_s: dict[str, float] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        """Configurations tried over the whole cycle: every pair × timeframe × entry set × parameter
        set × fold searched (the sum of the rows' ``n_configs_tried``)."""
        return sum(int(r.n_configs_tried) for r in self.rows)


def default_workers(n_cpus: int | None = None, mode: str = "grid") -> int:
    """Return the default number of research processes on this machine for search `mode`.

    Measured on 2 cores (``python tools/bench_cycle.py --workers 1,2``; README, "Benchmarks"):

    - ``grid``: one process is faster (warm cycle 2.7–3.6 s vs 3.7–4.0 s with two), because
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


def _efficiency(is_m: dict, oos_m: dict, objective: str) -> float:
    a, b = is_m.get(objective), oos_m.get(objective)
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b) or a == 0:
        return float("nan")
    return float(b / a)


def research_pair(candles: pd.DataFrame, pair: str, timeframe: str, entries: EntriesConfig, bt: BacktestConfig,
                  *, data_source: DataSource, exchange: str | None = None, gap_policy: str, cfg_id: str,
                  studies: StudyOptions | None = None, lower_candles: pd.DataFrame | None = None
                  ) -> list[tuple[SummaryRow, SearchResult]]:
    """Search every enabled entry set on one pair × timeframe; return (summary row, result) pairs.

    Rows: :class:`~engine.research.reports.SummaryRow` (JSON keys :data:`SUMMARY_COLUMNS`).
    ``n_configs_tried`` counts every configuration evaluated over all folds; ``deflated_sharpe``
    is the deflated Sharpe ratio of the out-of-sample returns given every trial of the pair ×
    timeframe (:func:`engine.research.judge.judge_slot`, :func:`engine.research.search.deflate_oos_sharpe`,
    Bailey & López de Prado 2014);
    ``param_stability`` the share of folds that chose the most frequent parameter set;
    ``search`` is ``"grid"`` or ``"optuna"``; ``costs`` the costs the search used
    (backtest_config.json ``costs`` when set, else the entry set's); ``ambiguity`` the
    out-of-sample bars where stop and target were both touched and how they were resolved
    (replayed on `lower_candles`, the 1m candles, when given; else stop first); `data_source`
    and `exchange` where the candles came from (:meth:`engine.types.DataSource.of_candle_file`).

    Raises
    ------
    EngineError
        If the candles cannot be searched (too short for the walk-forward folds).
    """
    out = []
    holdout = int(bt.walk_forward.final_holdout_bars or 0)
    if holdout and len(candles) - holdout < 100:
        raise DataError(f"walk_forward.final_holdout_bars = {holdout}: leaves {max(len(candles) - holdout, 0)} of "
                        f"{len(candles)} bars to search; expected a holdout well below the series length")
    # checked, converted to arrays and mapped onto the 1m candles once for every fold and entry set
    with timing.stage("prepare"):
        candles = prepare_candles(candles, timeframe=timeframe, lower_candles=lower_candles,
                                  where=f"{pair} {timeframe}")
    searched = candles.window(0, len(candles) - holdout)  # the final window is never searched
    period = Period(int(candles.index[0].value // 1_000_000), int(candles.index[-1].value // 1_000_000))
    enabled = entries.enabled()
    for es in enabled:
        res = search_entry_set(searched, es, bt, timeframe=timeframe, pair=pair, cfg_id=cfg_id, studies=studies)
        folds = tuple(_fold(d) for d in res.folds)
        row = SummaryRow(
            pair=pair_to_folder(pair), timeframe=timeframe, entry_set=es.name, signal=es.signal,
            params=dict(res.params), exit_plan=es.exit_plan, costs=bt.costs_for(es),
            in_sample=dict(res.in_sample), out_of_sample=dict(res.out_of_sample),
            walk_forward_efficiency=_efficiency(res.in_sample, res.out_of_sample, bt.objective),
            folds=folds, n_configs_tried=int(res.n_configs_tried), deflated_sharpe=float("nan"),  # judge_slot sets it
            param_stability=float(res.param_stability), search=folds[0].search, ambiguity=dict(res.ambiguity),
            period=period, bars=len(candles), gap_policy=gap_policy, data_source=data_source, exchange=exchange,
            config_id=cfg_id)
        out.append((row, res))
    with timing.stage("judge"):
        judged = judge_slot(out, candles, enabled, bt, timeframe=timeframe, searched=searched)
    return [(row, res) for row, (_, res) in zip(judged, out)]


def best_of_slot(pair_rows: list[tuple[SummaryRow, SearchResult]], objective: str) -> tuple[SummaryRow, SearchResult]:
    """Return the (row, result) of one pair × timeframe whose **in-sample** `objective` is highest: the
    slot's candidate (its out-of-sample numbers are left for promotion to judge; NaN ranks last)."""
    return max(pair_rows, key=lambda rr: _score(rr[0].in_sample.get(objective)))


def _fold(d: dict[str, Any]) -> FoldResult:
    """The typed form of one fold of :func:`engine.research.search.search_entry_set`."""
    return FoldResult.from_json(Fields(json_safe(d), "search result", f"folds[{d.get('fold')}]"))


def research_config_id(entries: EntriesConfig, bt: BacktestConfig, gap_policy: str) -> str:
    """Return the config id of a research run: entries, search settings and gap policy (not the
    number of workers, which never changes a result)."""
    return config_id(entries.raw, {k: v for k, v in bt.raw.items() if k != "workers"}, gap_policy)


@dataclass(frozen=True)
class _Job:
    data_dir: Path
    pair: str
    timeframe: str
    entries: EntriesConfig
    bt: BacktestConfig
    gap_policy: str
    cfg_id: str
    studies: StudyOptions


@dataclass(frozen=True)
class _Outcome:
    """One (pair, timeframe) job's result: rows, the best candidate and its curve, or an error; and
    the seconds of its stages (:func:`engine.research.timing.take`)."""

    rows: tuple[SummaryRow, ...] = ()
    candidate: Candidate | None = None
    curve: Curve | None = None
    error: StageError | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _run_job(job: _Job) -> _Outcome:
    """Research one (pair, timeframe): rows, the best candidate and its curve, or an error."""
    pair, tf = job.pair, job.timeframe
    path = store.candle_path(job.data_dir, pair, tf)
    timing.take()  # start this job's profile
    try:
        with timing.stage("read"):
            candles = store.read_candles(path, tf)
            candles = apply_gap_policy(candles, tf, job.gap_policy)
            source, exchange = DataSource.of_candle_file(store.read_source(path), sample_source=SAMPLE_SOURCE)
            lower = _lower_candles(job.data_dir, pair, tf)
        pair_rows = research_pair(candles, pair, tf, job.entries, job.bt, data_source=source, exchange=exchange,
                                  gap_policy=job.gap_policy, cfg_id=job.cfg_id, studies=job.studies,
                                  lower_candles=lower)
    except EngineError as e:
        logger.error("%s %s: research skipped: %s", pair, tf, e)
        return _Outcome(error=StageError("research", str(e), pair, tf), seconds=timing.take())
    except Exception as e:  # a bug for one pair must not stop the cycle
        logger.exception("%s %s: research failed", pair, tf)
        return _Outcome(error=StageError("research", f"{type(e).__name__}: {e}", pair, tf), seconds=timing.take())
    best_row, best_res = best_of_slot(pair_rows, job.bt.objective)
    oos = best_row.out_of_sample
    logger.info("%s %s: %d entry sets searched, best %s %s (OOS %s trades, Sharpe %s, deflated %s, %d configs) "
                "[cfg %s]", pair, tf, len(pair_rows), best_row.entry_set, best_row.params, oos.get("n_trades"),
                _fmt(oos.get("sharpe")), _fmt(best_row.deflated_sharpe), best_row.n_configs_tried, job.cfg_id)
    curve = Curve.from_equity(best_res.oos_equity, best_res.oos_trades)  # the one row whose frames are built
    return _Outcome(rows=tuple(row for row, _ in pair_rows), candidate=Candidate.from_row(best_row), curve=curve,
                    seconds=timing.take())


def _lower_candles(data_dir: Path, pair: str, timeframe: str) -> pd.DataFrame | None:
    """The stored 1m candles of `pair` for intrabar refinement of a higher timeframe, or None."""
    if timeframe == "1m":
        return None
    path = store.candle_path(data_dir, pair, "1m")
    if not path.exists():
        return None
    try:
        return store.read_candles(path, "1m")
    except EngineError as e:
        logger.warning("%s %s: 1m candles unusable for intrabar refinement (%s); ambiguous bars take the stop",
                       pair, timeframe, e)
        return None


def _init_pool_worker(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _map_jobs(jobs: list[_Job], workers: int, bar, scheduler: str | None = None) -> list[_Outcome]:
    """Run `jobs` on a Dask cluster (`scheduler`), in this process (workers 1) or a spawn pool;
    results in job order."""
    if scheduler is not None:
        def done(i: int) -> None:
            _describe(bar, jobs[i])
            _advance(bar)

        return map_on_cluster(_run_job, jobs, scheduler, on_done=done)
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for job in jobs:
            _describe(bar, job)
            out.append(_run_job(job))
            _advance(bar)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    results: list[_Outcome | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_pool_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(_run_job, job): i for i, job in enumerate(jobs)}
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            _describe(bar, jobs[i])
            _advance(bar)
    return results  # type: ignore[return-value]


def run_research(data_dir: Path, reports_dir: Path, pairs: Iterable[str], timeframes: Iterable[str],
                 entries: EntriesConfig, bt: BacktestConfig, *, clock: Clock,
                 gap_policy: str = "skip", progress: bool = False, workers: int | None = None,
                 storage: str | None = None, study_prefix: str = "scalp", lookahead_seed: int | None = None,
                 scheduler: str | None = None) -> ResearchResult:
    """Search every pair × timeframe × entry set and write summary.json, strategies.yml.next, curves.

    Every enabled entry set first passes the lookahead gate (:mod:`engine.research.gate`, cached in
    ``lookahead.json``); one that fails is left out, with a ``lookahead`` error naming the bar and cut.

    Parameters
    ----------
    data_dir : Path
        Holds ``ohlcv/<PAIR>/<TF>.csv``.
    reports_dir : Path
        Receives the reports (created if missing); files are replaced atomically.
    pairs, timeframes : iterables of str
        Folder names or symbols; ccxt timeframes.
    clock : Clock
        Stamps ``generated_at_ms``. Each row records its candle file's source (its sidecar:
        :meth:`engine.types.DataSource.of_candle_file`).
    gap_policy : "skip" | "ffill"
        How missing candles are treated (stated in every row).
    progress : bool
        Show a tqdm bar (what is searched, ETA) on a terminal or in a notebook; never when stderr
        is not a terminal outside a notebook.
    workers : int, optional
        Processes for the (pair, timeframe) jobs; default ``bt.workers``, else
        :func:`default_workers`. Results are identical for every count.
    storage : str, optional
        Optuna storage URL shared with other processes (:func:`engine.research.studies.open_storage`);
        default in memory. Only entry sets searched by optuna use it.
    study_prefix : str
        Prefix of the optuna study names (``--study-prefix``).
    lookahead_seed : int, optional
        Seed of the gate's random cuts (default: a new one per run, recorded in lookahead.json).
    scheduler : str, optional
        ``tcp://HOST:8786`` of a Dask scheduler (default ``$SCALP_DASK_SCHEDULER``): the jobs run on
        its workers (:mod:`engine.research.cluster`) instead of the local pool, with identical rows.

    Returns
    -------
    ResearchResult
        Rows, candidates and per pair × timeframe errors (a failing one never stops the others).

    Raises
    ------
    ConfigError
        A scheduler that cannot be reached.
    """
    t0 = time.perf_counter()
    scheduler = scheduler_address(scheduler)
    pairs, timeframes = list(pairs), list(timeframes)
    checked, where = first_candles(Path(data_dir), pairs, timeframes)
    gate = screen_entry_sets(entries, checked, Path(reports_dir), where=where, seed=lookahead_seed)
    entries = gate.entries
    cfg_id = research_config_id(entries, bt, gap_policy)
    result = ResearchResult(errors=list(gate.errors), lookahead=gate.checks)
    curves_dir = Path(reports_dir) / CURVES_DIR
    n_workers = int(workers or bt.workers or default_workers(mode=bt.mode))
    studies = StudyOptions(storage_url=storage, prefix=study_prefix, chunk=1 if storage else None)
    if storage:
        open_storage(storage)  # fails early on a bad URL, and creates a new database's tables once
    jobs = [_Job(Path(data_dir), pair_to_folder(p), tf, entries, bt, gap_policy, cfg_id, studies)
            for p in pairs for tf in timeframes]
    where_run = f"dask {scheduler}" if scheduler else f"{n_workers} worker{'s' if n_workers > 1 else ''}"
    bar = _progress(len(jobs), progress, f"research ({bt.mode}, {where_run})")
    try:
        outcomes = _map_jobs(jobs, n_workers, bar, scheduler)
    finally:
        if bar is not None:
            bar.close()
    for out in outcomes:
        result.stages_s = timing.add(result.stages_s, out.seconds)
        if out.error is not None:
            result.errors.append(out.error)
            continue
        assert out.candidate is not None and out.curve is not None
        result.rows.extend(out.rows)
        result.candidates.append(out.candidate)
        reports.write_curve(curves_dir / curve_name(out.candidate.pair, out.candidate.timeframe,
                                                    out.candidate.entry_set), out.curve)
    reading = ClockReading.of(clock)
    result.duration_s = time.perf_counter() - t0
    summary_path = Path(reports_dir) / SUMMARY_FILE
    if not result.rows and summary_path.exists():
        # never replace results with nothing: keep the previous summary.json and say why
        why = "; ".join(e.message for e in result.errors[:3]) or "no pair × timeframe was searched"
        result.kept_previous = why
        logger.warning("research: no row this cycle (%s); summary.json of the previous run kept", why)
        result.errors.append(StageError("research", f"no row this cycle, the previous summary.json is kept: {why}"))
    else:
        reports.write_summary(summary_path, SummaryReport(
            generated_at_ms=reading.now_ms, config_id=cfg_id, clock=reading, objective=bt.objective, mode=bt.mode,
            workers=n_workers, research_s=result.duration_s, research_stages_s=result.stages_s,
            rows=tuple(result.rows), errors=tuple(result.errors),
            n_trials_cycle=result.n_trials, lookahead=tuple(result.lookahead)))
    reports.write_candidates(Path(reports_dir) / CANDIDATES_FILE, CandidatesReport(
        generated_at_ms=reading.now_ms, config_id=cfg_id, objective=bt.objective,
        candidates=tuple(result.candidates)))
    logger.info("research: %d rows, %d candidates, %d errors in %.1f s (%s, %s; %s) [cfg %s]", len(result.rows),
                len(result.candidates), len(result.errors), result.duration_s, bt.mode, where_run,
                ", ".join(f"{k} {v:.2f} s" for k, v in result.stages_s.items()), cfg_id)
    return result


def run_worker(data_dir: Path, pairs: Iterable[str], timeframes: Iterable[str], entries: EntriesConfig,
               bt: BacktestConfig, *, storage: str, study_prefix: str = "scalp", gap_policy: str = "skip",
               poll_s: float = 0.5, max_idle_s: float = 600.0) -> int:
    """Join the optuna studies of a research run as one more worker, until every trial is done.

    Reads the same candles and walk-forward folds as :func:`run_research` (so both must see the
    same data and configs: the study names hold the config id and each train window's first and
    last candle, and a worker on different data simply works on other studies). Evaluates queued
    trials and proposes new batches; writes no reports. Returns when every study of every
    (pair, timeframe, entry set) holds ``optuna.n_trials`` finished trials, or when no trial
    could be taken for `max_idle_s` seconds (others still running the last ones).

    Returns
    -------
    int
        Studies still unfinished when the worker stopped (0 normally).

    Raises
    ------
    ConfigError
        If ``mode`` is not ``optuna`` or no enabled entry set has an optuna space.
    """
    searched = [es for es in entries.enabled() if es.name in bt.optuna.space]
    if bt.mode != "optuna" or not searched:
        raise ConfigError(f"{bt.path.name} → mode = {bt.mode!r}: a --worker needs mode \"optuna\" and an "
                          "optuna.space for at least one enabled entry set")
    cfg_id = research_config_id(entries, bt, gap_policy)
    studies = StudyOptions(storage_url=storage, prefix=study_prefix, wait=False, chunk=1)
    frames = {}
    for p in pairs:
        for tf in timeframes:
            pair = pair_to_folder(p)
            try:
                c = store.read_candles(store.candle_path(data_dir, pair, tf), tf)
                frames[(pair, tf)] = apply_gap_policy(c, tf, gap_policy)
            except EngineError as e:
                logger.error("%s %s: worker skips it: %s", pair, tf, e)
    idle_since = time.monotonic()
    while True:
        pending = 0
        for (pair, tf), candles in frames.items():
            for es in searched:
                try:
                    pending += contribute(candles, es, bt, timeframe=tf, pair=pair, cfg_id=cfg_id, studies=studies)
                except EngineError as e:
                    logger.error("%s %s %s: worker skips it: %s", pair, tf, es.name, e)
        if pending == 0:
            logger.info("worker: every study finished (%d pair × timeframe, %d entry sets)", len(frames), len(searched))
            return 0
        if time.monotonic() - idle_since > max_idle_s:
            logger.warning("worker: %d studies still running elsewhere after %.0f s; stopping", pending, max_idle_s)
            return pending
        time.sleep(poll_s)


def _score(x: Any) -> float:
    return -np.inf if x is None or not np.isfinite(x) else float(x)


def _fmt(x: Any) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _progress(total: int, enabled: bool, desc: str):
    """A tqdm bar on a terminal (or a notebook widget), else None (quiet when stderr is not a tty)."""
    import sys

    in_notebook = "ipykernel" in sys.modules
    if not enabled or total == 0 or not (sys.stderr.isatty() or in_notebook):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pair×TF", file=sys.stderr)


def _describe(bar, job: _Job) -> None:
    if bar is not None:
        bar.set_postfix_str(f"{job.pair} {job.timeframe}", refresh=False)


def _advance(bar) -> None:
    if bar is not None:
        bar.update(1)
