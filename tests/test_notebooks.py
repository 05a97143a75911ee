"""The notebooks: stored clean, the same first cells everywhere, headless runs with other parameters, and
HTML exports that show every figure.

nbval runs every notebook top to bottom as part of the suite (pytest.ini, notebooks/conftest.py); the
tests here run them through papermill (``tools/bench_notebooks.py``, a fresh kernel each, in a
temporary data folder) and nbconvert.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.bench_notebooks import NOTEBOOKS_DIR, execute_notebook, export_html, notebook_paths, plotly_figures

NOTEBOOKS = notebook_paths()
#: Notebook-level metadata a stored notebook may keep (nbstripout keeps the same).
KEPT_METADATA = {"kernelspec", "language_info"}


def stored_problems(nb: dict) -> list[str]:
    """What makes a notebook not "stored without outputs": outputs, execution counts, run metadata."""
    out = [f"notebook metadata {k!r} (left by a run)" for k in nb.get("metadata", {}) if k not in KEPT_METADATA]
    for i, cell in enumerate(nb["cells"]):
        if cell.get("outputs"):
            out.append(f"cell {i}: {len(cell['outputs'])} outputs")
        if cell.get("execution_count") is not None:
            out.append(f"cell {i}: execution_count {cell['execution_count']}")
        extra = set(cell.get("metadata", {})) - {"tags"}
        if extra:
            out.append(f"cell {i}: metadata {sorted(extra)} (left by a run or an editor)")
    return out


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_the_three_workbench_notebooks_and_the_quickstart():
    assert [p.name for p in NOTEBOOKS] == ["01_research.ipynb", "02_backtest_search.ipynb",
                                           "03_execution_dryrun.ipynb", "quickstart.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    problems = stored_problems(_load(path))
    assert not problems, f"{path.name} is stored with outputs; clear them (nbstripout {path}):\n" + "\n".join(problems)


def test_the_check_sees_a_notebook_committed_with_outputs():
    nb = _load(NOTEBOOKS[0])
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    nb["cells"][1]["execution_count"] = 3
    nb["metadata"]["papermill"] = {}
    assert stored_problems(nb) == ["notebook metadata 'papermill' (left by a run)", "cell 1: 1 outputs",
                                   "cell 1: execution_count 3"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cells_are_the_parameters_then_the_same_setup(path):
    nb = _load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"].get("tags") == ["parameters"], "papermill injects after the cell tagged 'parameters'"
    assert sum("parameters" in c["metadata"].get("tags", []) for c in nb["cells"]) == 1
    params = "".join(code[0]["source"])
    names = {line.split("=")[0].strip() for line in params.splitlines() if "=" in line and not line.startswith("#")}
    assert {"pair", "timeframe", "repo_url", "data_root"} <= names
    reference = "".join(_load(NOTEBOOKS_DIR / "01_research.ipynb")["cells"][2]["source"])
    setup = "".join(code[1]["source"])
    dry = path.name.startswith("03")
    assert setup == (reference.replace("setup(data_root)", "setup(data_root, dry_run=True)") if dry else reference)


def test_the_execution_notebook_says_first_that_it_forces_dry_run():
    nb = _load(NOTEBOOKS_DIR / "03_execution_dryrun.ipynb")
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert "Nothing in this notebook can place a real order" in "".join(nb["cells"][0]["source"])
    assert "setup(data_root, dry_run=True)" in _code(nb)[1]
    assert not any(w in "".join(_code(nb)) for w in ("validate=False", "requested=\"live\", live_reasons=[]",
                                                     "ALLOW_LIVE=1", "CcxtExecutor"))


def _run_setup_cell(cwd: Path, repo_url: str, data_root: Path) -> subprocess.CompletedProcess:
    setup = "".join(_load(NOTEBOOKS_DIR / "01_research.ipynb")["cells"][2]["source"])
    code = f"repo_url = {repo_url!r}\ndata_root = {str(data_root)!r}\n" + setup
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("SCALP_", "PYTHONPATH"))}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**env, "SCALP_NO_AUTOINSTALL": "1"},
                          capture_output=True, text=True, timeout=120, check=False)


def test_setup_cell_finds_the_repo_from_the_notebooks_folder(tmp_path):
    out = _run_setup_cell(NOTEBOOKS_DIR, "", tmp_path / "data")
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"SCALP repo:     {NOTEBOOKS_DIR.parent}" in out.stdout
    assert f"data folder:    {tmp_path / 'data'} (the data_root parameter)" in out.stdout
    assert (tmp_path / "data" / "reports").is_dir()


def test_setup_cell_clones_the_repo_when_the_notebook_runs_alone(tmp_path):
    origin = tmp_path / "origin"
    (origin / "engine" / "notebook").mkdir(parents=True)
    (origin / "engine" / "__init__.py").write_text("")
    (origin / "engine" / "notebook" / "__init__.py").write_text(textwrap.dedent("""
        def setup(data_root, **kw):
            print("setup of the clone", __file__, data_root)
        """))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(origin)], check=True)
    subprocess.run([*git, "-C", str(origin), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(origin), "commit", "-qm", "x"], check=True)
    alone = tmp_path / "content"  # Colab's working folder, holding just the notebook
    alone.mkdir()
    missing = _run_setup_cell(alone, "", tmp_path / "d")
    assert missing.returncode != 0 and "set repo_url in the parameters cell to clone one" in missing.stderr
    out = _run_setup_cell(alone, origin.as_uri(), tmp_path / "d")
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"setup of the clone {alone / 'scalp' / 'engine' / 'notebook' / '__init__.py'}" in out.stdout
    again = _run_setup_cell(alone, origin.as_uri(), tmp_path / "d")  # a second run uses the clone
    assert again.returncode == 0 and "setup of the clone" in again.stdout and "Cloning" not in again.stderr


@pytest.mark.slow
def test_papermill_runs_a_notebook_headless_with_other_parameters(tmp_path):
    params = {"pair": "ETH/USDT", "timeframe": "15m", "start": "2021-04-08", "end": "2021-04-28", "n_trials": 10,
              "optuna_entry_sets": ["sma_cross"], "data_root": str(tmp_path / "data")}
    nb, _ = execute_notebook(NOTEBOOKS_DIR / "02_backtest_search.ipynb", data_root=tmp_path / "unused",
                                   output=tmp_path / "out.ipynb", parameters=params)
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and 'pair = "ETH/USDT"' in "".join(injected[0]["source"])
    text = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in nb["cells"] for o in c.get("outputs", []))
    assert f"data folder:    {tmp_path / 'data'} (the data_root parameter)" in text
    assert "ETH/USDT 15m (sample): 1988 candles, 2021-04-08 00:00:00+00:00 → 2021-04-28 23:45:00+00:00" in text
    assert ".ETHUSDT.15m.sma_cross.fold2." in text and ": 10 trials, best" in text
    assert "BTC" not in text
    assert (tmp_path / "data" / "reports").is_dir() and not (tmp_path / "unused").exists()
    assert nb["metadata"]["papermill"]["parameters"]["pair"] == "ETH/USDT"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_html_export_shows_every_plotly_figure(path, tmp_path):
    nb, _ = execute_notebook(path, data_root=tmp_path)
    figures = plotly_figures(nb)
    assert figures, f"{path.name}: no plotly figure"
    assert all(f["json"] and f["div_id"] for f in figures), \
        f"{path.name}: every figure stored as plotly JSON (JupyterLab, VS Code) and as HTML (classic, Colab, export)"
    html = export_html(nb)
    assert html.count('class="plotly-graph-div"') == len(figures)
    for f in figures:
        tag = re.search(rf'<div [^>]*id="{f["div_id"]}"[^>]*>', html)
        assert tag and 'class="plotly-graph-div"' in tag.group(0), f"figure of cell {f['cell']} missing from the HTML"
        assert f'document.getElementById("{f["div_id"]}")' in html and "Plotly.newPlot(" in html
    assert "cdn.plot.ly/plotly-" in html  # plotly.js for the viewer (notebook_connected)
