"""The usage store: one JSON file per UTC day, restart-safe, atomic, no lost update under two
processes, retention that deletes old usage files only."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.desk.usage import UsageStore, utc_day
from engine.errors import ConfigError, DataError
from tests.conftest import subprocess_env

DAY_MS = 86_400_000
T0 = 1_733_356_740_000  # 2024-12-04 23:59:00 UTC


def test_files_are_per_utc_day_and_survive_a_restart(tmp_path):
    store = UsageStore(tmp_path / "usage")
    assert store.load(T0).notional_quote == 0 and store.days() == []  # nothing registered: zero, no file
    store.register(12.5, 2, at_ms=T0, record={"profile": "quick_smoke", "symbol": "BTC/USDT"})
    store.register(7.5, 1, at_ms=T0 + 30_000)
    again = UsageStore(tmp_path / "usage")  # a new process reads what the last one wrote
    day = again.load(T0)
    assert (day.day, day.notional_quote, day.n_trades, day.n_runs) == ("2024-12-04", 20.0, 3, 2)
    doc = json.loads((tmp_path / "usage" / "usage_2024-12-04.json").read_text())
    assert doc["runs"][0] == {"profile": "quick_smoke", "symbol": "BTC/USDT", "notional_quote": 12.5, "n_trades": 2,
                              "at": "2024-12-04T23:59:00Z"}
    assert utc_day(T0 + 60_000) == "2024-12-05" and again.load(T0 + 60_000).n_runs == 0
    # atomic writes leave no temporary file behind
    assert sorted(p.name for p in (tmp_path / "usage").iterdir()) == [".usage_2024-12-04.json.lock",
                                                                     "usage_2024-12-04.json"]


@pytest.mark.parametrize("text, match", [
    ("{not json", r"usage_2024-12-04.json: not valid JSON"),
    ('{"notional_quote": -5, "n_trades": 1, "n_runs": 1, "runs": []}', r"notional_quote = -5: expected a number ≥ 0"),
    ('{"notional_quote": 5, "n_trades": "x", "n_runs": 1, "runs": []}', r"n_trades = 'x'"),
    ('[1, 2]', r"expected a JSON object"),
])
def test_a_damaged_file_is_an_error_never_an_empty_day(tmp_path, text, match):
    (tmp_path / "usage_2024-12-04.json").write_text(text)
    store = UsageStore(tmp_path)
    with pytest.raises(DataError, match=match):
        store.load(T0)
    with pytest.raises(DataError, match=match):  # and nothing is added on top of an unknown total
        store.register(1.0, 1, at_ms=T0)
    assert (tmp_path / "usage_2024-12-04.json").read_text() == text


@pytest.mark.parametrize("notional, trades, match", [
    (-1.0, 1, r"notional_quote = -1.0: expected a number ≥ 0"),
    (float("inf"), 1, r"notional_quote = inf"),
    (1.0, -2, r"n_trades = -2: expected a whole number ≥ 0"),
    (1.0, 1.5, r"n_trades = 1.5"),
])
def test_bad_consumption_is_refused(tmp_path, notional, trades, match):
    with pytest.raises(ConfigError, match=match):
        UsageStore(tmp_path).register(notional, trades, at_ms=T0)
    assert UsageStore(tmp_path).days() == []


def test_retention_deletes_old_usage_files_only(tmp_path):
    store = UsageStore(tmp_path, retention_days=30)
    for days_ago in (0, 29, 30, 31, 45, 400):
        store.register(1.0, 1, at_ms=T0 - days_ago * DAY_MS, now_ms=T0 - days_ago * DAY_MS)
    others = ["usage_notes.txt", "usage_2024-13-45.json", "report.json", "usage_2024-01-01.json.bak"]
    for name in others:
        (tmp_path / name).write_text("keep me")
    removed = store.prune(T0)
    # today 2024-12-04: 30 days back is 2024-11-04, kept; 31, 45 and 400 days back are deleted
    assert sorted(p.name for p in removed) == ["usage_2023-10-31.json", "usage_2024-10-20.json",
                                               "usage_2024-11-03.json"]
    assert store.days() == ["2024-11-04", "2024-11-05", "2024-12-04"]
    for name in others:
        assert (tmp_path / name).read_text() == "keep me"
    assert not (tmp_path / ".usage_2024-11-03.json.lock").exists()
    assert store.prune(T0) == []  # idempotent


def test_registering_prunes_by_the_clock(tmp_path):
    store = UsageStore(tmp_path, retention_days=1)
    store.register(1.0, 1, at_ms=T0 - 5 * DAY_MS)
    store.register(1.0, 1, at_ms=T0)  # pruned on this write: five days > one day
    assert store.days() == ["2024-12-04"]


def test_retention_days_must_be_whole_and_positive(tmp_path):
    with pytest.raises(ConfigError, match=r"retention_days = 0: expected a whole number ≥ 1"):
        UsageStore(tmp_path, retention_days=0)


WORKER = """
import sys, time
from pathlib import Path
from engine.desk.usage import UsageStore
folder, n, name = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
(folder / f"ready-{{name}}").touch()
while len(list(folder.glob("ready-*"))) < 2:  # both processes start registering together
    time.sleep(0.001)
store = UsageStore(folder / "usage")
first = time.time()
for i in range(n):
    store.register(0.25, 1, at_ms={t0}, record={{"worker": name, "i": i}})
print(first, time.time())
"""


def test_two_processes_registering_lose_no_update(tmp_path):
    # two sessions finishing at once, each registering many small consumptions into the same day
    n = 150
    env = subprocess_env({})
    procs = [subprocess.Popen([sys.executable, "-c", WORKER.format(t0=T0), str(tmp_path), str(n), name], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
        spans.append([float(x) for x in out.split()])
    day = UsageStore(tmp_path / "usage").load(T0)
    assert (day.n_runs, day.n_trades, day.notional_quote) == (2 * n, 2 * n, 0.25 * 2 * n)
    assert {(r["worker"], r["i"]) for r in day.runs} == {(w, i) for w in "ab" for i in range(n)}
    # the two processes were registering at the same time (the test exercised concurrency)
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1
