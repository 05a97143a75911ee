"""jobs/backtest.py research with several workers, optuna storage and --worker: identical results."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.data import backfill
from jobs import backtest as cli
from tests.conftest import REPO_ROOT, subprocess_env

PAIRS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def seeded(scalp_env, tmp_path):
    backfill.seed_from_sample(tmp_path / "data", PAIRS, ["15m"])
    return tmp_path


def _optuna_config(tmp_path, n_trials=8, batch_size=4):
    doc = json.loads((REPO_ROOT / "backtest_config.json").read_text())
    doc["mode"] = "optuna"
    doc["optuna"].update(n_trials=n_trials, batch_size=batch_size)
    path = tmp_path / "backtest_config.json"
    path.write_text(json.dumps(doc))
    return path


def _rows(tmp_path):
    doc = json.loads((tmp_path / "reports" / "summary.json").read_text())
    return doc["rows"], doc


@pytest.mark.slow
def test_results_identical_for_1_and_2_workers(seeded):
    assert cli.main(["--pairs", ",".join(PAIRS), "--tfs", "15m", "--workers", "1", "-q"]) == 0
    one, doc1 = _rows(seeded)
    nxt1 = (seeded / "reports" / "strategies.yml.next").read_text()
    assert cli.main(["--pairs", ",".join(PAIRS), "--tfs", "15m", "--workers", "2", "-q"]) == 0
    two, doc2 = _rows(seeded)
    assert doc1["workers"] == 1 and doc2["workers"] == 2
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    nxt2 = (seeded / "reports" / "strategies.yml.next").read_text()
    assert nxt1.split("\n", 2)[2] == nxt2.split("\n", 2)[2]  # same candidates (after the header and timestamp)
    for row in one:
        assert row["n_configs_tried"] >= 3 and row["search"] == "grid"
        assert row["deflated_sharpe"] is None or 0.0 <= row["deflated_sharpe"] <= 1.0
        assert 0.0 < row["param_stability"] <= 1.0


@pytest.mark.slow
def test_optuna_results_identical_for_1_and_2_workers_and_a_shared_storage(seeded):
    cfg = str(_optuna_config(seeded))
    argv = ["--pairs", ",".join(PAIRS), "--tfs", "15m", "--backtest-config", cfg, "-q"]
    assert cli.main(argv + ["--workers", "1"]) == 0
    one, _ = _rows(seeded)
    assert cli.main(argv + ["--workers", "2"]) == 0
    two, _ = _rows(seeded)
    url = f"sqlite:///{seeded / 'studies.db'}"
    assert cli.main(argv + ["--workers", "2", "--storage", url, "--study-prefix", "ci"]) == 0
    shared, _ = _rows(seeded)

    def key(rows):  # study names carry the prefix; everything else must match
        return json.dumps([{**r, "folds": [{k: v for k, v in f.items() if k != "study"} for f in r["folds"]]}
                           for r in rows], sort_keys=True)

    assert key(one) == key(two) == key(shared)
    ema = [r for r in one if r["entry_set"] == "ema_cross"]
    assert ema and all(r["search"] == "optuna" and r["n_configs_tried"] == 8 * 3 for r in ema)


@pytest.mark.slow
def test_worker_process_then_leader(seeded):
    cfg = str(_optuna_config(seeded, n_trials=12))
    url = f"sqlite:///{seeded / 'w.db'}"
    common = ["--pairs", "BTCUSDT", "--tfs", "15m", "--backtest-config", cfg, "--storage", url, "--study-prefix", "w"]
    env = subprocess_env({k: v for k, v in __import__("os").environ.items() if k.startswith("SCALP_")})
    out = subprocess.run([sys.executable, str(REPO_ROOT / "jobs" / "backtest.py"), "--worker", *common, "-q"],
                         env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "worker done: 0 studies left unfinished" in out.stdout
    assert cli.main([*common, "-q"]) == 0  # the leader finds every study finished
    assert cli.main(["--pairs", "BTCUSDT", "--tfs", "15m", "--backtest-config", cfg, "-q"]) == 0
    rows, _ = _rows(seeded)
    import optuna

    storage = optuna.storages.RDBStorage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)
             if "#" not in s.study_name and ".ema_cross." in s.study_name]
    assert len(names) == 3 and all(len(storage.get_all_trials(storage.get_study_id_from_name(n))) == 12 for n in names)
    assert {f["study"].replace("scalp.", "w.", 1) for r in rows if r["entry_set"] == "ema_cross" for f in r["folds"]} == set(names)


@pytest.mark.parametrize("argv, match", [
    (["--pairs", "BTCUSDT", "--workers", "0"], "--workers 0: expected an integer ≥ 1"),
    (["--pairs", "BTCUSDT", "--worker"], "--worker needs --storage URL"),
    (["--pairs", "BTCUSDT", "--worker", "--storage", "sqlite:///x.db"], 'a --worker needs mode "optuna"'),
    (["--pairs", "BTCUSDT", "--storage", "nosuchdb://x"], "--storage 'nosuchdb://x': cannot open the optuna storage"),
])
def test_bad_flags_exit_2_one_line(seeded, capsys, monkeypatch, argv, match):
    monkeypatch.chdir(seeded)
    cfg = ["--backtest-config", str(_optuna_config(seeded))] if "nosuchdb" in " ".join(argv) else []
    assert cli.main(argv + cfg + ["--tfs", "15m", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err
