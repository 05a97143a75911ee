"""Your data, never lost; a loop that survives every mistake (real files, real processes, no mocks).

Full and read-only folders are small tmpfs mounts made by the test (root can mount them: this
project's machines and CI run as root); where mounting is not permitted the tests skip, saying so.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine import data as ds
from engine.data.backfill import seed_from_sample
from jobs import maintainer
from tests.conftest import REPO_ROOT, subprocess_env

FAST = {"SCALP_TOPN": "2", "SCALP_TF_LIST": "15m"}


def _env(monkeypatch, extra):
    for k, v in extra.items():
        monkeypatch.setenv(k, v)


def _status(tmp_path):
    return json.loads((tmp_path / "reports" / "status.json").read_text())


def test_your_own_csv_survives_an_offline_cycle(scalp_env, tmp_path, monkeypatch):
    _env(monkeypatch, {"SCALP_TOPN": "1", "SCALP_TF_LIST": "1m"})
    top = ds.sample_pairs()[0]
    from engine.data.universe import sample_watchlist

    top = sample_watchlist(1)[0]
    mine = ds.candle_path(tmp_path / "data", top, "1m")
    ds.write_candles(mine, ds.load_sample(top).iloc[-3000:])  # the user's own file: no sidecar
    before = mine.read_bytes()
    assert maintainer.main(["--once", "--no-render", "-q"]) == 0
    assert mine.read_bytes() == before and not list(mine.parent.glob("*.replaced-*"))
    state = _status(tmp_path)["states"][0]
    assert state["pair"] == top and state["source"] is None and state["rows"] == 3000
    (mine.parent / "1m.source.json").write_text("{corrupt")  # a corrupt sidecar: still the user's file
    assert maintainer.main(["--once", "--no-render", "-q"]) == 0
    assert mine.read_bytes() == before


def test_a_typo_in_the_exchange_id_is_one_line_and_exit_2(scalp_env, monkeypatch, capsys):
    _env(monkeypatch, {"SCALP_DATA_SOURCE": "auto", "SCALP_EXCHANGE": "binancee"})
    assert maintainer.main(["--once", "--no-render"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "exchange 'binancee': not an exchange ccxt knows" in err and 'Did you mean "binance"?' in err


@pytest.mark.parametrize("env, match", [
    ({"SCALP_QUOTE": "EUR"}, "quote 'EUR': the bundled sample has no pair quoted in EUR; its pairs are ADAUSDT"),
    ({"SCALP_DATA_SOURCE": "local"}, "no pair quoted in USDT in"),
])
def test_settings_that_cannot_work_are_errors_that_name_what_is_there(scalp_env, monkeypatch, capsys, env, match):
    _env(monkeypatch, env)
    assert maintainer.main(["--once", "--no-render"]) == 2
    assert match in capsys.readouterr().err


def test_paths_of_the_wrong_kind_are_one_line(scalp_env, tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("SCALP_DATA_DIR", str(afile))
    assert maintainer.main(["--once", "--no-render"]) == 2
    assert f"environment SCALP_DATA_DIR = '{afile}': is a file, expected a folder" in capsys.readouterr().err
    monkeypatch.delenv("SCALP_DATA_DIR")
    monkeypatch.setenv("SCALP_CONFIG", str(tmp_path))
    assert maintainer.main(["--once", "--no-render"]) == 2
    assert "is a folder, expected the config.yaml file (SCALP_CONFIG)" in capsys.readouterr().err


def test_every_entry_set_disabled_is_an_error(scalp_env, tmp_path, monkeypatch, capsys):
    doc = json.loads((REPO_ROOT / "entries_config.json").read_text())
    for spec in doc["entry_sets"].values():
        spec["enabled"] = False
    (tmp_path / "entries.json").write_text(json.dumps(doc))
    monkeypatch.setenv("SCALP_ENTRIES_CONFIG", str(tmp_path / "entries.json"))
    assert maintainer.main(["--once", "--no-render"]) == 2
    assert "every entry set has enabled = false" in capsys.readouterr().err


def test_a_walk_forward_that_cannot_fit_keeps_the_previous_summary(scalp_env, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, FAST)
    assert maintainer.main(["--once", "--no-render", "-q"]) == 0
    summary = tmp_path / "reports" / "summary.json"
    before = summary.read_bytes()
    assert json.loads(before)["rows"]
    doc = json.loads((REPO_ROOT / "backtest_config.json").read_text())
    doc["walk_forward"].update(train_bars=50_000, test_bars=10_000)
    (tmp_path / "bt.json").write_text(json.dumps(doc))
    monkeypatch.setenv("SCALP_BACKTEST_CONFIG", str(tmp_path / "bt.json"))
    assert maintainer.main(["--once", "--no-render", "-q"]) == 0
    assert summary.read_bytes() == before  # never replaced by an empty one
    messages = [e["message"] for e in _status(tmp_path)["errors"]]
    assert any("the previous summary.json is kept" in m and "walk-forward needs 80000 bars" in m for m in messages)
    assert any("the series has 2948" in m for m in messages)  # what is available


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if out.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip()}); the full/read-only folder tests need one")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def make(name: str, size: str = "64m") -> Path:
        path = tmp_path / name
        _mount_tmpfs(path, size)
        mounts.append(path)
        return path

    yield make
    for m in mounts:
        _umount(m)


def test_a_read_only_data_folder_is_read_and_every_write_is_one_line(scalp_env, tmp_path, monkeypatch, tmpfs):
    _env(monkeypatch, FAST)
    data = tmpfs("ro-data")
    from engine.data.universe import sample_watchlist

    pairs = sample_watchlist(2)
    seed_from_sample(data, pairs, ["15m"])
    subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
    monkeypatch.setenv("SCALP_DATA_DIR", str(data))
    assert maintainer.main(["--once", "--no-render", "-q"]) == 0
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert {r["pair"] for r in summary["rows"]} == set(pairs)  # reads work: the research ran on them
    errors = _status(tmp_path)["errors"]
    backfill = [e for e in errors if e["stage"] == "backfill"]
    assert len(backfill) == len(pairs) and all("Read-only file system" in e["message"] for e in backfill)
    assert all(len(e["message"].splitlines()) == 1 for e in errors)


def test_a_full_reports_folder_skips_the_stage_not_the_cycle(scalp_env, tmp_path, monkeypatch, tmpfs):
    _env(monkeypatch, FAST)
    reports = tmpfs("full-reports", size="24k")
    monkeypatch.setenv("SCALP_REPORTS_DIR", str(reports))
    assert maintainer.main(["--once", "--no-render", "-q"]) == 0
    errors = [line for line in (tmp_path / "logs" / "maintainer.log").read_text().splitlines() if " ERROR " in line]
    assert any("No space left on device" in line and str(reports) in line for line in errors), errors
    assert not [p for p in reports.rglob("*") if ".tmp-" in p.name]  # no leftover of a failed write
    assert not (reports / "summary.json").exists() or json.loads((reports / "summary.json").read_text())


def _dashboard(urls_file: Path) -> str:
    url = urls_file.read_text().splitlines()[0].split(": ", 1)[1]
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


@pytest.mark.slow
def test_a_broken_config_while_running_keeps_serving_then_sigterm(scalp_env, tmp_path):
    entries = tmp_path / "entries.json"
    entries.write_text((REPO_ROOT / "entries_config.json").read_text())
    env = subprocess_env({**scalp_env, **FAST, "SCALP_LOOP_INTERVAL_S": "2", "SCALP_ENTRIES_CONFIG": str(entries),
                          "SCALP_NO_AUTOINSTALL": "1"})
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "bot.py"), "--no-tunnel", "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    status = tmp_path / "reports" / "status.json"

    def wait_for(pred, what, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"bot.py exited while waiting for {what}: {proc.communicate()[1][-3000:]}"
            try:
                if pred():
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

    try:
        wait_for(lambda: status.exists() and json.loads(status.read_text())["n_rows"] > 0, "the first cycle")
        entries.write_text('{"entry_sets": {oops')  # a save with a syntax error
        wait_for(lambda: json.loads(status.read_text()).get("config_problem"), "the problem in status.json")
        problem = json.loads(status.read_text())["config_problem"]
        assert "entries.json line 1" in problem and "not valid JSON" in problem
        wait_for(lambda: "Config problem" in _dashboard(tmp_path / "dashboard_url.txt"), "the page with it")
        assert "not valid JSON" in _dashboard(tmp_path / "dashboard_url.txt")  # the server still answers
        entries.write_text((REPO_ROOT / "entries_config.json").read_text())
        wait_for(lambda: json.loads(status.read_text()).get("config_problem") is None, "the fix")
        wait_for(lambda: "Config problem" not in _dashboard(tmp_path / "dashboard_url.txt"), "the page without it")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "SIGTERM" in err
    log = (tmp_path / "logs" / "maintainer.log").read_text()
    assert "a config file is invalid, keeping the last good settings" in log


KILLED_CYCLE = """
import sys
from jobs import maintainer
sys.exit(maintainer.main(["--once", "-q"]))
"""


@pytest.mark.slow
def test_sigkill_at_20_random_moments_then_one_cycle_leaves_no_corrupt_file(scalp_env, tmp_path):
    env = subprocess_env({**scalp_env, **FAST, "SCALP_NO_AUTOINSTALL": "1"})
    rng = random.Random(20)
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", KILLED_CYCLE], cwd=REPO_ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 6.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
    out = subprocess.run([sys.executable, "-c", KILLED_CYCLE], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if ".tmp-" in p.name], "temporary files left behind"
    for p in files:
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".csv":
            ds.read_candles(p)
        elif p.name.endswith((".yml", ".next")):
            import yaml

            yaml.safe_load(p.read_text())
    assert not [p for p in files if ".corrupt-" in p.name]


@pytest.mark.slow
def test_the_quickstart_leaves_the_checkout_clean(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    if subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain"], capture_output=True, text=True).stdout:
        pytest.skip("the working tree has uncommitted changes: the clone would not be this code")
    from tests.services import free_port

    env = subprocess_env({"SCALP_DATA_SOURCE": "sample", "SCALP_HTML_PORT": str(free_port()), "SCALP_NO_AUTOINSTALL": "1",
                          "SCALP_TOPN": "2", "SCALP_TF_LIST": "15m"})
    env["PYTHONPATH"] = str(clone)
    for key in ("SCALP_DATA_DIR", "SCALP_REPORTS_DIR", "SCALP_LOGS_DIR", "SCALP_PUBLIC_DIR", "SCALP_STRATEGIES_FILE",
                "SCALP_URLS_DIR"):
        env.pop(key, None)
    out = subprocess.run([sys.executable, "bot.py", "--once", "--no-tunnel", "-q"], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--once: the server stopped with this command" in out.stdout and "file://" in out.stdout
    assert "compiling simulation kernels once, about half a minute" in out.stderr  # a fresh clone says why it is quiet
    assert (clone / "engine" / "config" / "strategies.yml").exists()
    assert subprocess.run(["git", "-C", str(clone), "status", "--porcelain"], capture_output=True,
                          text=True).stdout == ""
