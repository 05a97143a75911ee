"""Every CLI starts from any working directory as `python path/to/cli.py` (no install step)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import engine
from tests.conftest import REPO_ROOT, subprocess_env

CLIS = ["bot.py", "jobs/maintainer.py", "jobs/backtest.py", "jobs/promote.py", "tools/render_report.py",
        "tools/start_ngrok.py"]


@pytest.mark.parametrize("cli", CLIS)
def test_help_from_another_folder(cli, tmp_path):
    env = subprocess_env({"SCALP_NO_AUTOINSTALL": "1"})
    env.pop("PYTHONPATH")  # as a user runs it: nothing on the path but the script's folder
    out = subprocess.run([sys.executable, str(REPO_ROOT / cli), "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout


@pytest.mark.parametrize("name", sorted(engine._EXPORTS))
def test_public_surface_resolves(name):
    assert getattr(engine, name) is not None


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018
