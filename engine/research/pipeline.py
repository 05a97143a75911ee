"""Research stage of a cycle: every pair × timeframe × entry set searched, results stored.

Writes, in ``reports_dir`` (DESIGN.md, "Reports"):

- ``summary.json``: one row per pair × timeframe × entry set with params, in-sample and
  out-of-sample metrics, folds, period, bars, data source and config id;
- ``strategies.yml.next``: the best candidate per pair × timeframe, chosen by the in-sample
  objective (the out-of-sample numbers are left for promotion to judge);
- ``curves/<PAIR>_<TF>_<ENTRY SET>.json``: the out-of-sample equity curve, drawdown and trades of
  each candidate, for the dashboard.

One failing pair or timeframe (missing or corrupt CSV, too few candles) is logged and reported in
the result's ``errors``; the others go on.

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

from engine.clock import Clock, iso_ms
from engine.config import BacktestConfig, EntriesConfig, config_id
from engine.data import store
from engine.data.resample import apply_gap_policy
from engine.data.sample import SAMPLE_SOURCE
from engine.errors import ConfigError, EngineError
from engine.fileio import write_json, write_yaml
from engine.markets import folder_to_pair, pair_to_folder
from engine.research.search import SearchResult, contribute, search_entry_set
from engine.research.studies import StudyOptions, open_storage

logger = logging.getLogger(__name__)

#: Columns of a summary.json row, in order (a test keeps this list honest).
SUMMARY_COLUMNS = (
    "pair", "symbol", "timeframe", "entry_set", "signal", "params", "exit_plan", "costs", "in_sample",
    "out_of_sample", "walk_forward_efficiency", "folds", "n_configs_tried", "deflated_sharpe", "param_stability",
    "search", "ambiguity", "period", "bars", "gap_policy", "data_source", "config_id",
)
CURVE_POINTS = 600  # equity points kept per curve file (the dashboard needs no more)


@dataclass
class ResearchResult:
    """What the research stage produced."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0


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


def curve_name(pair: str, timeframe: str, entry_set: str) -> str:
    """File name of a candidate's curve: ``BTCUSDT_5m_ema_cross.json``."""
    return f"{pair_to_folder(pair)}_{timeframe}_{entry_set}.json"


def _efficiency(is_m: dict, oos_m: dict, objective: str) -> float:
    a, b = is_m.get(objective), oos_m.get(objective)
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b) or a == 0:
        return float("nan")
    return float(b / a)


def research_pair(candles: pd.DataFrame, pair: str, timeframe: str, entries: EntriesConfig, bt: BacktestConfig,
                  *, data_source: str, gap_policy: str, cfg_id: str, studies: StudyOptions | None = None,
                  lower_candles: pd.DataFrame | None = None) -> list[tuple[dict, SearchResult]]:
    """Search every enabled entry set on one pair × timeframe; return (summary row, result) pairs.

    Row keys: :data:`SUMMARY_COLUMNS`. ``n_configs_tried`` counts every configuration evaluated
    over all folds; ``deflated_sharpe`` is the deflated Sharpe ratio of the out-of-sample returns
    given those trials (:func:`engine.research.search.deflate_oos_sharpe`, Bailey & López de Prado 2014);
    ``param_stability`` the share of folds that chose the most frequent parameter set;
    ``search`` is ``"grid"`` or ``"optuna"``; ``costs`` the costs the search used
    (backtest_config.json ``costs`` when set, else the entry set's); ``ambiguity`` the
    out-of-sample bars where stop and target were both touched and how they were resolved
    (replayed on `lower_candles`, the 1m candles, when given; else stop first).

    Raises
    ------
    EngineError
        If the candles cannot be searched (too short for the walk-forward folds).
    """
    out = []
    period = {"first_ms": int(candles.index[0].value // 1_000_000), "last_ms": int(candles.index[-1].value // 1_000_000)}
    for es in entries.enabled():
        res = search_entry_set(candles, es, bt, timeframe=timeframe, pair=pair, cfg_id=cfg_id, studies=studies,
                               lower_candles=lower_candles)
        costs = bt.costs_for(es)
        row = {
            "pair": pair_to_folder(pair), "symbol": folder_to_pair(pair), "timeframe": timeframe,
            "entry_set": es.name, "signal": es.signal, "params": res.params, "exit_plan": es.exit_plan.to_dict(),
            "costs": {"fee_bps": costs.fee_bps, "slippage_bps": costs.slippage_bps},
            "in_sample": res.in_sample, "out_of_sample": res.out_of_sample,
            "walk_forward_efficiency": _efficiency(res.in_sample, res.out_of_sample, bt.objective),
            "folds": res.folds, "n_configs_tried": res.n_configs_tried, "deflated_sharpe": res.deflated_sharpe,
            "param_stability": res.param_stability, "search": res.folds[0]["search"],
            "ambiguity": res.ambiguity,
            "period": period, "bars": len(candles),
            "gap_policy": gap_policy, "data_source": data_source, "config_id": cfg_id,
        }
        out.append((row, res))
    return out


def _curve(res: SearchResult) -> dict[str, Any]:
    eq = res.oos_equity
    step = max(1, int(np.ceil(len(eq) / CURVE_POINTS)))
    idx = np.unique(np.r_[np.arange(0, len(eq), step), len(eq) - 1]) if len(eq) else np.array([], dtype=int)
    values = eq.to_numpy(dtype=float)
    peak = np.maximum.accumulate(values) if len(values) else values
    dd = (values / peak - 1.0) * 100.0 if len(values) else values
    trades = []
    for t in res.oos_trades.itertuples(index=False):
        d = t._asdict()
        trades.append({"entry_ms": d["entry_ms"], "entry_price": d["entry_price"], "exit_ms": d["exit_ms"],
                       "exit_price": d["exit_price"], "reason": d["exit_reasons"], "pnl_quote": d["pnl_quote"]})
    return {"timestamps_ms": [int(eq.index[i].value // 1_000_000) for i in idx],
            "equity_quote": [float(values[i]) for i in idx], "drawdown_pct": [float(dd[i]) for i in idx],
            "trades": trades}


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
    data_source: str | None
    gap_policy: str
    cfg_id: str
    studies: StudyOptions


def _run_job(job: _Job) -> dict[str, Any]:
    """Research one (pair, timeframe): rows, the best candidate and its curve, or an error."""
    pair, tf = job.pair, job.timeframe
    path = store.candle_path(job.data_dir, pair, tf)
    try:
        candles = store.read_candles(path, tf)
        candles = apply_gap_policy(candles, tf, job.gap_policy)
        source = job.data_source or _source_label(store.read_source(path))
        pair_rows = research_pair(candles, pair, tf, job.entries, job.bt, data_source=source,
                                  gap_policy=job.gap_policy, cfg_id=job.cfg_id, studies=job.studies,
                                  lower_candles=_lower_candles(job.data_dir, pair, tf))
    except EngineError as e:
        logger.error("%s %s: research skipped: %s", pair, tf, e)
        return {"error": {"pair": pair, "timeframe": tf, "stage": "backtest", "message": str(e)}}
    except Exception as e:  # a bug for one pair must not stop the cycle
        logger.exception("%s %s: research failed", pair, tf)
        return {"error": {"pair": pair, "timeframe": tf, "stage": "backtest", "message": f"{type(e).__name__}: {e}"}}
    objective = job.bt.objective
    best_row, best_res = max(pair_rows, key=lambda rr: (_score(rr[0]["in_sample"].get(objective))))
    name = curve_name(pair, tf, best_row["entry_set"])
    candidate = {
        "pair": best_row["pair"], "symbol": best_row["symbol"], "timeframe": tf,
        "entry_set": best_row["entry_set"], "signal": best_row["signal"], "params": best_row["params"],
        "exit_plan": best_row["exit_plan"], "costs": best_row["costs"], "metrics": best_row["out_of_sample"],
        "in_sample": best_row["in_sample"], "period": best_row["period"], "bars": best_row["bars"],
        "data_source": best_row["data_source"], "config_id": job.cfg_id, "curve": f"curves/{name}",
        "n_configs_tried": best_row["n_configs_tried"], "deflated_sharpe": best_row["deflated_sharpe"],
        "ambiguity": best_row["ambiguity"],
    }
    oos = best_row["out_of_sample"]
    logger.info("%s %s: %d entry sets searched, best %s %s (OOS %s trades, Sharpe %s, deflated %s, %d configs) "
                "[cfg %s]", pair, tf, len(pair_rows), best_row["entry_set"], best_row["params"], oos.get("n_trades"),
                _fmt(oos.get("sharpe")), _fmt(best_row["deflated_sharpe"]), best_row["n_configs_tried"], job.cfg_id)
    return {"rows": [row for row, _ in pair_rows], "candidate": candidate, "curve_name": name,
            "curve": _curve(best_res)}


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


def _map_jobs(jobs: list[_Job], workers: int, bar) -> list[dict[str, Any]]:
    """Run `jobs` in this process (workers 1) or a spawn pool; results in job order."""
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
    results: list[dict[str, Any] | None] = [None] * len(jobs)
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
                 entries: EntriesConfig, bt: BacktestConfig, *, clock: Clock, data_source: str | None = None,
                 gap_policy: str = "skip", progress: bool = False, workers: int | None = None,
                 storage: str | None = None, study_prefix: str = "scalp") -> ResearchResult:
    """Search every pair × timeframe × entry set and write summary.json, strategies.yml.next, curves.

    Parameters
    ----------
    data_dir : Path
        Holds ``ohlcv/<PAIR>/<TF>.csv``.
    reports_dir : Path
        Receives the reports (created if missing); files are replaced atomically.
    pairs, timeframes : iterables of str
        Folder names or symbols; ccxt timeframes.
    clock : Clock
        Stamps ``generated_at_ms``.
    data_source : str, optional
        ``"offline sample"`` or the exchange id, recorded in every row; default: each file's
        recorded source (its sidecar).
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

    Returns
    -------
    ResearchResult
        Rows, candidates and per pair × timeframe errors (a failing one never stops the others).
    """
    t0 = time.perf_counter()
    cfg_id = research_config_id(entries, bt, gap_policy)
    result = ResearchResult()
    curves_dir = Path(reports_dir) / "curves"
    n_workers = int(workers or bt.workers or default_workers(mode=bt.mode))
    studies = StudyOptions(storage_url=storage, prefix=study_prefix, chunk=1 if storage else None)
    if storage:
        open_storage(storage)  # fails early on a bad URL, and creates a new database's tables once
    jobs = [_Job(Path(data_dir), pair_to_folder(p), tf, entries, bt, data_source, gap_policy, cfg_id, studies)
            for p in pairs for tf in timeframes]
    bar = _progress(len(jobs), progress, f"research ({bt.mode}, {n_workers} worker{'s' if n_workers > 1 else ''})")
    try:
        outcomes = _map_jobs(jobs, n_workers, bar)
    finally:
        if bar is not None:
            bar.close()
    curves: dict[str, dict] = {}
    for out in outcomes:
        if "error" in out:
            result.errors.append(out["error"])
            continue
        result.rows.extend(out["rows"])
        result.candidates.append(out["candidate"])
        curves[out["curve_name"]] = out["curve"]
    now_ms = clock.now_ms()
    for name, curve in curves.items():
        write_json(curves_dir / name, curve, indent=None)
    result.duration_s = time.perf_counter() - t0
    write_json(Path(reports_dir) / "summary.json", {
        "generated_at_ms": now_ms, "generated_at": iso_ms(now_ms), "config_id": cfg_id,
        "data_source": data_source or ", ".join(sorted({r["data_source"] for r in result.rows})) or None,
        "clock": clock.as_dict(), "objective": bt.objective, "mode": bt.mode, "workers": n_workers,
        "research_s": round(result.duration_s, 3), "rows": result.rows, "errors": result.errors})
    write_yaml(Path(reports_dir) / "strategies.yml.next", {
        "generated_at": iso_ms(now_ms), "config_id": cfg_id, "objective": bt.objective,
        "candidates": result.candidates},
        header="# Best candidate per pair × timeframe (chosen in-sample); promotion judges out_of_sample metrics.\n")
    logger.info("research: %d rows, %d candidates, %d errors in %.1f s (%s, %d worker%s) [cfg %s]", len(result.rows),
                len(result.candidates), len(result.errors), result.duration_s, bt.mode, n_workers,
                "s" if n_workers > 1 else "", cfg_id)
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


def _source_label(source: str | None) -> str:
    if source in (None, SAMPLE_SOURCE):
        return "offline sample" if source else "unknown"
    return source


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
