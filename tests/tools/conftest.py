"""Fixtures for the dashboard tests: inputs written by the real producers (one offline cycle on
the bundled real candles, see sample_inputs.py), rendered once per session, and private copies."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.tools.sample_inputs import write_sample_inputs


def _runtime(root: Path, promoted: tuple, now_ms: int) -> SimpleNamespace:
    return SimpleNamespace(now_ms=now_ms, data_dir=root / "data", reports_dir=root / "reports", logs_dir=root / "logs",
                           public_dir=root / "public", html_host="127.0.0.1", html_port=0, quote="USDT",
                           tf_list=("1m", "5m", "15m"), strategies_path=root / "strategies.yml",
                           urls_dir=root, root=root, promoted=promoted)


@pytest.fixture(scope="session")
def sample_inputs(tmp_path_factory) -> SimpleNamespace:
    """One pristine set of inputs (never modified: tests copy it); the runtime-like namespace."""
    return write_sample_inputs(tmp_path_factory.mktemp("dashboard_inputs") / "run")


@pytest.fixture(scope="session")
def sample_inputs_dir(sample_inputs) -> Path:
    """The folder of the pristine inputs."""
    return sample_inputs.root


@pytest.fixture
def dashboard_inputs(sample_inputs, tmp_path):
    """A private copy of the inputs; returns the runtime-like namespace (``promoted`` lists the
    (pair, timeframe, entry set) of each promoted strategy, ``now_ms`` is the replay clock).

    Holds: data/ohlcv/<PAIR>/<TF>.csv (last 2 days, real candles; MATICUSDT 15m missing,
    ETCUSDT 1m stale), reports/{summary,status,watchlist,promotion}.json and strategies.yml.next (10 pairs ×
    3 TFs × 5 entry sets = 150 rows, the sample's real gaps), reports/curves/*.json (one per
    candidate), strategies.yml (6 promoted), logs/maintainer.log (401 lines), an empty public/.
    """
    root = tmp_path / "run"
    shutil.copytree(sample_inputs.root, root)
    return _runtime(root, sample_inputs.promoted, sample_inputs.now_ms)


@pytest.fixture(scope="session")
def rendered_session(sample_inputs, tmp_path_factory):
    """Inputs copied and rendered once per session (read-only for tests): the runtime namespace."""
    from tools.render import render

    root = tmp_path_factory.mktemp("dashboard_rendered") / "run"
    shutil.copytree(sample_inputs.root, root)
    rt = _runtime(root, sample_inputs.promoted, sample_inputs.now_ms)
    rt.html_path = render(rt, strategies_path=rt.strategies_path, repo_root=root)
    return rt
