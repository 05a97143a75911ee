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
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from engine import datastore
from engine.clock import Clock, iso_ms
from engine.config import BacktestConfig, EntriesConfig, config_id
from engine.errors import EngineError
from engine.fileio import write_json, write_yaml
from engine.markets import folder_to_pair, pair_to_folder
from engine.optimize import SearchResult, search_entry_set

logger = logging.getLogger(__name__)

#: Columns of a summary.json row, in order (a test keeps this list honest).
SUMMARY_COLUMNS = (
    "pair", "symbol", "timeframe", "entry_set", "signal", "params", "exit_plan", "costs", "in_sample",
    "out_of_sample", "walk_forward_efficiency", "folds", "n_configs_tried", "period", "bars", "gap_policy",
    "data_source", "config_id",
)
CURVE_POINTS = 600  # equity points kept per curve file (the dashboard needs no more)


@dataclass
class ResearchResult:
    """What the research stage produced."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0


def curve_name(pair: str, timeframe: str, entry_set: str) -> str:
    """File name of a candidate's curve: ``BTCUSDT_5m_ema_cross.json``."""
    return f"{pair_to_folder(pair)}_{timeframe}_{entry_set}.json"


def _efficiency(is_m: dict, oos_m: dict, objective: str) -> float:
    a, b = is_m.get(objective), oos_m.get(objective)
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b) or a == 0:
        return float("nan")
    return float(b / a)


def research_pair(candles: pd.DataFrame, pair: str, timeframe: str, entries: EntriesConfig, bt: BacktestConfig,
                  *, data_source: str, gap_policy: str, cfg_id: str) -> list[tuple[dict, SearchResult]]:
    """Search every enabled entry set on one pair × timeframe; return (summary row, result) pairs.

    Raises
    ------
    EngineError
        If the candles cannot be searched (too short for the walk-forward folds).
    """
    out = []
    period = {"first_ms": int(candles.index[0].value // 1_000_000), "last_ms": int(candles.index[-1].value // 1_000_000)}
    for es in entries.enabled():
        res = search_entry_set(candles, es, bt, timeframe=timeframe)
        row = {
            "pair": pair_to_folder(pair), "symbol": folder_to_pair(pair), "timeframe": timeframe,
            "entry_set": es.name, "signal": es.signal, "params": res.params, "exit_plan": es.exit_plan.to_dict(),
            "costs": {"fee_bps": es.costs.fee_bps, "slippage_bps": es.costs.slippage_bps},
            "in_sample": res.in_sample, "out_of_sample": res.out_of_sample,
            "walk_forward_efficiency": _efficiency(res.in_sample, res.out_of_sample, bt.objective),
            "folds": res.folds, "n_configs_tried": res.n_configs_tried, "period": period, "bars": len(candles),
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
        trades.append({k: d.get(k) for k in ("entry_ms", "entry_price", "exit_ms", "exit_price", "reason", "pnl_quote")})
    return {"timestamps_ms": [int(eq.index[i].value // 1_000_000) for i in idx],
            "equity_quote": [float(values[i]) for i in idx], "drawdown_pct": [float(dd[i]) for i in idx],
            "trades": trades}


def run_research(data_dir: Path, reports_dir: Path, pairs: Iterable[str], timeframes: Iterable[str],
                 entries: EntriesConfig, bt: BacktestConfig, *, clock: Clock, data_source: str | None = None,
                 gap_policy: str = "skip", progress: bool = False) -> ResearchResult:
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
        Show a tqdm bar on a terminal.

    Returns
    -------
    ResearchResult
        Rows, candidates and per pair × timeframe errors (a failing one never stops the others).
    """
    t0 = time.perf_counter()
    cfg_id = config_id(entries.raw, bt.raw, gap_policy)
    result = ResearchResult()
    curves_dir = Path(reports_dir) / "curves"
    jobs = [(pair_to_folder(p), tf) for p in pairs for tf in timeframes]
    bar = _progress(jobs, progress)
    curves: dict[str, dict] = {}
    for pair, tf in bar:
        path = datastore.candle_path(data_dir, pair, tf)
        try:
            candles = datastore.read_candles(path, tf)
            candles = datastore.apply_gap_policy(candles, tf, gap_policy)
            source = data_source or _source_label(datastore.read_source(path))
            pair_rows = research_pair(candles, pair, tf, entries, bt, data_source=source,
                                      gap_policy=gap_policy, cfg_id=cfg_id)
        except EngineError as e:
            logger.error("%s %s: research skipped: %s", pair, tf, e)
            result.errors.append({"pair": pair, "timeframe": tf, "stage": "backtest", "message": str(e)})
            continue
        except Exception as e:  # a bug for one pair must not stop the cycle
            logger.exception("%s %s: research failed", pair, tf)
            result.errors.append({"pair": pair, "timeframe": tf, "stage": "backtest", "message": f"{type(e).__name__}: {e}"})
            continue
        result.rows.extend(row for row, _ in pair_rows)
        best_row, best_res = max(pair_rows, key=lambda rr: (_score(rr[0]["in_sample"].get(bt.objective))))
        name = curve_name(pair, tf, best_row["entry_set"])
        curves[name] = _curve(best_res)
        result.candidates.append({
            "pair": best_row["pair"], "symbol": best_row["symbol"], "timeframe": tf,
            "entry_set": best_row["entry_set"], "signal": best_row["signal"], "params": best_row["params"],
            "exit_plan": best_row["exit_plan"], "costs": best_row["costs"], "metrics": best_row["out_of_sample"],
            "in_sample": best_row["in_sample"], "period": best_row["period"], "bars": best_row["bars"],
            "data_source": best_row["data_source"], "config_id": cfg_id, "curve": f"curves/{name}",
        })
        oos = best_row["out_of_sample"]
        logger.info("%s %s: %d entry sets searched, best %s %s (OOS %s trades, Sharpe %s) [cfg %s]", pair, tf,
                    len(pair_rows), best_row["entry_set"], best_row["params"], oos.get("n_trades"),
                    _fmt(oos.get("sharpe")), cfg_id)
    now_ms = clock.now_ms()
    for name, curve in curves.items():
        write_json(curves_dir / name, curve, indent=None)
    write_json(Path(reports_dir) / "summary.json", {
        "generated_at_ms": now_ms, "generated_at": iso_ms(now_ms), "config_id": cfg_id,
        "data_source": data_source or ", ".join(sorted({r["data_source"] for r in result.rows})) or None,
        "clock": clock.as_dict(), "objective": bt.objective, "rows": result.rows, "errors": result.errors})
    write_yaml(Path(reports_dir) / "strategies.yml.next", {
        "generated_at": iso_ms(now_ms), "config_id": cfg_id, "objective": bt.objective,
        "candidates": result.candidates},
        header="# Best candidate per pair × timeframe (chosen in-sample); promotion judges out_of_sample metrics.\n")
    result.duration_s = time.perf_counter() - t0
    logger.info("research: %d rows, %d candidates, %d errors in %.1f s", len(result.rows), len(result.candidates),
                len(result.errors), result.duration_s)
    return result


def _source_label(source: str | None) -> str:
    if source in (None, datastore.SAMPLE_SOURCE):
        return "offline sample" if source else "unknown"
    return source


def _score(x: Any) -> float:
    return -np.inf if x is None or not np.isfinite(x) else float(x)


def _fmt(x: Any) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _progress(jobs: list, enabled: bool):
    import sys

    if not enabled or not sys.stderr.isatty():
        return jobs
    from tqdm import tqdm

    return tqdm(jobs, desc="research", unit="pair×TF", file=sys.stderr)
