"""Research past one machine, on real services: a Dask cluster (a scheduler and two worker processes
on loopback) and optuna workers sharing a real PostgreSQL server give the rows of one process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from engine.data import backfill
from engine.errors import ConfigError
from engine.research.cluster import scheduler_address
from jobs import backtest as cli
from tests.conftest import REPO_ROOT, subprocess_env
from tests.jobs.test_backtest_workers import _optuna_config, _rows
from tests.services import DaskCluster, PostgresServer

PAIRS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def seeded(scalp_env, tmp_path):
    backfill.seed_from_sample(tmp_path / "data", PAIRS, ["5m", "15m"])
    return tmp_path


@pytest.fixture
def cluster(tmp_path):
    c = DaskCluster(tmp_path, n_workers=2)
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.slow
def test_a_dask_cluster_gives_the_rows_of_one_process(seeded, cluster):
    argv = ["--pairs", ",".join(PAIRS), "--tfs", "15m", "-q"]
    assert cli.main(argv + ["--workers", "1"]) == 0
    local, _ = _rows(seeded)
    assert cli.main(argv + ["--scheduler", cluster.address]) == 0
    remote, doc = _rows(seeded)
    assert json.dumps(remote, sort_keys=True) == json.dumps(local, sort_keys=True) and len(local) >= 10
    from distributed import Client

    with Client(cluster.address) as client:  # the work was done by the cluster's workers
        assert sum(len(w.get("metrics", {})) > 0 for w in client.scheduler_info()["workers"].values()) == 2


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_retried_and_the_rows_still_match(seeded, cluster):
    argv = ["--pairs", ",".join(PAIRS), "--tfs", "5m,15m", "-q"]
    assert cli.main(argv + ["--workers", "1"]) == 0
    local, _ = _rows(seeded)
    from distributed import Client

    killed: dict[str, object] = {}

    def kill_when_busy() -> None:  # SIGKILL worker w0 while it is processing a research job
        with Client(cluster.address) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and "at" not in killed:
                for addr, tasks in client.processing().items():
                    name = client.scheduler_info()["workers"].get(addr, {}).get("name")
                    if name == "w0" and tasks:
                        os.kill(cluster.worker_pids()["w0"], signal.SIGKILL)
                        killed.update(at=time.monotonic(), task=tasks[0])
                        return
                time.sleep(0.01)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    assert cli.main(argv + ["--scheduler", cluster.address]) == 0
    killer.join()
    assert "at" in killed, "worker w0 never ran a job"
    assert cluster.workers[0].wait(10) == -signal.SIGKILL
    remote, _ = _rows(seeded)
    assert json.dumps(remote, sort_keys=True) == json.dumps(local, sort_keys=True)


def test_scheduler_address_and_an_unreachable_scheduler(seeded, monkeypatch, capsys):
    monkeypatch.setenv("SCALP_DASK_SCHEDULER", "tcp://127.0.0.1:9")
    assert scheduler_address(None) == "tcp://127.0.0.1:9" and scheduler_address("tcp://h:1") == "tcp://h:1"
    with pytest.raises(ConfigError, match="expected an address like tcp://HOST:8786"):
        scheduler_address("localhost:8786")
    assert cli.main(["--pairs", "BTCUSDT", "--tfs", "15m", "-q"]) == 2
    err = capsys.readouterr().err
    assert "dask scheduler tcp://127.0.0.1:9: cannot connect" in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def postgres(tmp_path):
    server = PostgresServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_two_optuna_workers_on_a_real_postgresql_give_the_rows_of_one_process(seeded, postgres):
    cfg = str(_optuna_config(seeded, n_trials=8, batch_size=4))
    base = ["--pairs", ",".join(PAIRS), "--tfs", "15m", "--backtest-config", cfg, "-q"]
    assert cli.main(base + ["--workers", "1"]) == 0
    one, _ = _rows(seeded)
    shared = [*base, "--storage", postgres.url, "--study-prefix", "pg"]  # ends with the prefix: no -q at the end
    env = subprocess_env({k: v for k, v in os.environ.items() if k.startswith("SCALP_")})
    workers = [subprocess.Popen([sys.executable, str(REPO_ROOT / "jobs" / "backtest.py"), "worker", *shared],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1][-2000:] for o in outs]
    assert all("worker done: 0 studies left unfinished" in o[0] for o in outs)
    assert cli.main(["research", *shared]) == 0  # the leader finds every study finished and writes the reports
    pg, _ = _rows(seeded)

    def key(rows):  # study names carry the prefix; everything else must match
        return json.dumps([{**r, "folds": [{k: v for k, v in f.items() if k != "study"} for f in r["folds"]]}
                           for r in rows], sort_keys=True)

    assert key(pg) == key(one)
    import optuna

    names = [s.study_name for s in optuna.get_all_study_summaries(optuna.storages.RDBStorage(postgres.url))]
    assert any(n.startswith("pg.") for n in names)
