"""Every CLI starts from any working directory as `python path/to/cli.py` (no install step)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import engine
from tests.conftest import REPO_ROOT, subprocess_env

CLIS = ["bot.py", "jobs/maintainer.py", "jobs/backtest.py", "jobs/promote.py", "jobs/import_candles.py", "jobs/execute.py",
        "jobs/orchestrate_testnet_runs.py",
        "jobs/e2e_sim_dryrun.py",
        "tools/render_report.py",
        "tools/start_ngrok.py", "tools/bench_dashboard.py"]
#: What a CLI must not import before it has parsed its flags (each costs 0.2-1 s at start-up).
HEAVY = ("pandas", "numba", "ccxt", "optuna", "plotly", "scipy")
HELP_PROBE = """
import runpy, sys
path = sys.argv[1]
sys.argv = [path, "--help"]
try:
    runpy.run_path(path, run_name="__main__")
except SystemExit:
    pass
print("HEAVY:" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("cli", CLIS)
def test_help_from_another_folder(cli, tmp_path):
    env = subprocess_env({"SCALP_NO_AUTOINSTALL": "1"})
    env.pop("PYTHONPATH")  # as a user runs it: nothing on the path but the script's folder
    out = subprocess.run([sys.executable, str(REPO_ROOT / cli), "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout


@pytest.mark.parametrize("cli", CLIS)
def test_help_imports_no_heavy_package(cli, tmp_path):
    # --help answers before the engine loads: no pandas/numba import, so it takes well under a second
    env = subprocess_env({"SCALP_NO_AUTOINSTALL": "1"})
    out = subprocess.run([sys.executable, "-c", HELP_PROBE.format(heavy=HEAVY), str(REPO_ROOT / cli)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "usage:" in out.stdout, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "HEAVY:", f"{cli} --help imported {out.stdout.splitlines()[-1]}"


@pytest.mark.parametrize("name", engine.__all__)
def test_public_surface_resolves(name):
    # a smoke test of the lazy re-exports: each name loads and is a function or a class
    value = getattr(engine, name)
    assert callable(value) and getattr(value, "__name__", name) == name


def test_all_lists_exactly_the_exports():
    assert sorted(engine.__all__) == sorted(engine._EXPORTS)


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018
