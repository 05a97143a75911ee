"""Shared fixtures: the repo root, slices of the bundled real candles, an isolated runtime."""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "engine" / "sample" / "ohlcv"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@functools.lru_cache(maxsize=32)
def _read_sample(pair: str) -> pd.DataFrame:
    df = pd.read_csv(SAMPLE_DIR / pair / "1m.csv.gz")
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("timestamp"), unit="ms", utc=True), name="timestamp")
    return df.astype("float64")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_1m():
    """Return a function ``(pair="BTCUSDT", n=None) -> DataFrame`` of bundled real 1m candles
    (the first `n` rows; a copy, so tests may change it)."""

    def get(pair: str = "BTCUSDT", n: int | None = None) -> pd.DataFrame:
        df = _read_sample(pair)
        return (df if n is None else df.iloc[:n]).copy()

    return get


@pytest.fixture
def scalp_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Point every runtime folder into `tmp_path` through SCALP_* variables, offline sample data,
    and a free port; returns the variables (also set in os.environ for in-process calls)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "SCALP_DATA_DIR": str(tmp_path / "data"),
        "SCALP_REPORTS_DIR": str(tmp_path / "reports"),
        "SCALP_LOGS_DIR": str(tmp_path / "logs"),
        "SCALP_PUBLIC_DIR": str(tmp_path / "public"),
        "SCALP_DATA_SOURCE": "sample",
        "SCALP_HTML_PORT": str(port),
        "SCALP_STRATEGIES_FILE": str(tmp_path / "strategies.yml"),
        "SCALP_URLS_DIR": str(tmp_path),
        "SCALP_METRICS_DIR": str(tmp_path / "metrics"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    """Return os.environ plus `extra`, with the repo on PYTHONPATH."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def make_candidate(pair: str = "BTCUSDT", timeframe: str = "5m", entry_set: str = "ema_cross", *,
                   deflated_sharpe: float = 0.97, judgement: dict | None = None, **metrics):
    """Return a :class:`engine.research.reports.Candidate` as the research stage writes it, with
    out-of-sample `metrics` over a good default (40 trades, PF 1.8, DD 5 %, Sharpe 2, win 55 %) and a
    judgement that passes every risk_mode (p 0.005 vs 200 twins, PBO 0.1, deployed parameters and
    holdout good over 3 folds), fields replaced by `judgement`."""
    from engine.records import Period
    from engine.research.reports import Candidate, Judgement, curve_name
    from engine.strategy.exits import Costs, ExitPlan
    from engine.types import DataSource

    good = {"n_trades": 40, "profit_factor": 1.8, "max_drawdown_pct": 5.0, "sharpe": 2.0, "win_rate_pct": 55.0,
            "total_return_pct": 4.0}
    one_fold = {**good, "n_trades": 14}
    judged = Judgement(p_value_vs_random=0.005, excess_vs_random_pct=3.0, twins_median_pct=-1.0, n_twins=200,
                       twins_seed=7, n_trials_slot=27, n_folds=3, pbo=0.1, deployed_params={"fast": 9, "slow": 21},
                       deployed_oos=one_fold, holdout=dict(one_fold))
    return Candidate(
        pair=pair, timeframe=timeframe, entry_set=entry_set, signal="ema_cross", params={"fast": 9, "slow": 21},
        exit_plan=ExitPlan(), costs=Costs(), metrics={**good, **metrics}, in_sample=dict(good),
        period=Period(1_617_321_600_000, 1_619_999_700_000), bars=8928, data_source=DataSource.SAMPLE, exchange=None,
        config_id="0a88753b", curve=f"curves/{curve_name(pair, timeframe, entry_set)}", n_configs_tried=9,
        deflated_sharpe=deflated_sharpe, judgement=replace(judged, **(judgement or {})))


def write_candidates(path: Path, candidates) -> Path:
    """Write a strategies.yml.next of `candidates` through the research stage's producer."""
    from engine.research.reports import CandidatesReport
    from engine.research.reports import write_candidates as write

    return write(path, CandidatesReport(1_620_000_000_000, "0a88753b", "sharpe", tuple(candidates)))
