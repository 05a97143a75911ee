"""Fixtures for the dashboard tests: realistic input files (contract shapes) written from the
bundled real candles, rendered once per session, and a server serving them."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tools.sample_inputs import write_sample_inputs


@pytest.fixture(scope="session")
def sample_inputs_dir(tmp_path_factory) -> Path:
    """A folder holding one pristine set of inputs (never modified: tests copy it)."""
    root = tmp_path_factory.mktemp("dashboard_inputs")
    write_sample_inputs(root)
    return root


@pytest.fixture
def dashboard_inputs(sample_inputs_dir, tmp_path):
    """A private copy of the realistic inputs; returns the runtime-like namespace.

    Holds: data/ohlcv/<PAIR>/<TF>.csv (last 2 days, real candles; LINKUSDT 15m missing),
    reports/{summary,status,watchlist}.json (10 pairs × 3 TFs × 5 entry sets = 150 rows, real
    gaps), reports/curves/*.json (6 promoted strategies on real prices), strategies.yml,
    logs/maintainer.log (401 lines), an empty public/.
    """
    from types import SimpleNamespace

    root = tmp_path / "run"
    shutil.copytree(sample_inputs_dir, root)
    return SimpleNamespace(data_dir=root / "data", reports_dir=root / "reports", logs_dir=root / "logs",
                           public_dir=root / "public", html_host="127.0.0.1", html_port=0, quote="USDT",
                           tf_list=("1m", "5m", "15m"), strategies_path=root / "strategies.yml",
                           urls_dir=root, root=root)


@pytest.fixture(scope="session")
def rendered_session(sample_inputs_dir, tmp_path_factory):
    """Inputs copied and rendered once per session (read-only for tests): the runtime namespace."""
    from types import SimpleNamespace

    from tools.render_report import render

    root = tmp_path_factory.mktemp("dashboard_rendered") / "run"
    shutil.copytree(sample_inputs_dir, root)
    rt = SimpleNamespace(data_dir=root / "data", reports_dir=root / "reports", logs_dir=root / "logs",
                         public_dir=root / "public", html_host="127.0.0.1", html_port=0, quote="USDT",
                         tf_list=("1m", "5m", "15m"), strategies_path=root / "strategies.yml",
                         urls_dir=root, root=root)
    rt.html_path = render(rt, strategies_path=rt.strategies_path, repo_root=root)
    return rt
