"""Shared fixtures: the repo root, slices of the bundled real candles, an isolated runtime."""
from __future__ import annotations

import functools
import os
import sys
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
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    """Return os.environ plus `extra`, with the repo on PYTHONPATH."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
