"""engine/optimize.py: walk-forward folds, choice of the best set, optuna studies (deterministic,
every trial once across processes), costs override, and the search config's bad inputs."""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import WalkForward, load_backtest, load_entries
from engine.errors import ConfigError, DataError
from engine.research import choose_best, default_workers, search_entry_set, walk_forward_folds
from engine.research.studies import PENALTY, StudyOptions, open_storage, study_seed
from tests.conftest import REPO_ROOT, _read_sample, subprocess_env

ENTRIES = load_entries()


def _bt(**optuna):
    bt = load_backtest(entries=ENTRIES)
    opt = dataclasses.replace(bt.optuna, **{"n_trials": 12, "batch_size": 4, **optuna})
    return dataclasses.replace(bt, mode="optuna", optuna=opt)


@pytest.fixture(scope="module")
def candles():
    return _read_sample("BTCUSDT").iloc[:4000].copy()


def test_rolling_folds_by_hand():
    # 100 bars, 3 splits, ratio 0.7: test = int(100 / (0.7/0.3 + 3)) = 18, train = 100 - 54 = 46;
    # the embargo (2) comes off the end of each train window, so the test windows tile 46 → 100
    folds = walk_forward_folds(100, WalkForward(3, "rolling", 0.7, None, None, 2))
    assert [(f.train_start, f.train_stop, f.test_start, f.test_stop) for f in folds] == [
        (0, 44, 46, 64), (18, 62, 64, 82), (36, 80, 82, 100)]
    assert all(a.test_stop == b.test_start for a, b in zip(folds, folds[1:]))
    anchored = walk_forward_folds(100, WalkForward(3, "anchored", 0.7, None, None, 0))
    assert [f.train_start for f in anchored] == [0, 0, 0]


def test_folds_too_short_raise():
    with pytest.raises(DataError, match="expected at least 20 and 10"):
        walk_forward_folds(40, WalkForward(3, "rolling", 0.7, None, None, 0))


def test_choose_best_prefers_constraints_then_objective_and_never_none():
    ms = [None, {"sharpe": 5.0, "n_trades": 1, "max_drawdown_pct": 1.0},
          {"sharpe": 1.0, "n_trades": 9, "max_drawdown_pct": 1.0}, {"sharpe": float("nan"), "n_trades": 9}]
    assert choose_best(ms, "sharpe", 3, 50.0) == 2
    assert choose_best(ms, "sharpe", 0, 50.0) == 1
    with pytest.raises(DataError, match="no parameter set"):
        choose_best([], "sharpe", 0, 50.0)


def test_study_seed_depends_on_seed_key_and_batch_only():
    assert study_seed(42, "k", 0) == study_seed(42, "k", 0)
    assert len({study_seed(42, "k", 0), study_seed(43, "k", 0), study_seed(42, "j", 0), study_seed(42, "k", 1)}) == 4


def test_default_workers_measured_rule():
    assert default_workers(1) == 1 and default_workers(2) == 1 and default_workers(8) == 4
    assert default_workers(2, mode="optuna") == 2 and default_workers(1, mode="optuna") == 1


def test_optuna_search_is_deterministic_and_counts_trials(candles):
    bt = _bt()
    es = ENTRIES.entry_sets["ema_cross"]
    a = search_entry_set(candles, es, bt, timeframe="1m", pair="BTCUSDT")
    b = search_entry_set(candles, es, bt, timeframe="1m", pair="BTCUSDT")
    assert a.folds == b.folds and a.params == b.params
    assert a.n_configs_tried == 12 * len(a.folds) and len(a.trial_sharpes) == a.n_configs_tried
    assert all(f["search"] == "optuna" and f["n_configs_tried"] == 12 and f["study"].startswith("scalp.") for f in a.folds)
    assert a.deflated_sharpe is not None and (math.isnan(a.deflated_sharpe) or 0.0 <= a.deflated_sharpe <= 1.0)
    other_seed = search_entry_set(candles, es, _bt(seed=7), timeframe="1m", pair="BTCUSDT")
    assert [f["params"] for f in other_seed.folds] != [f["params"] for f in a.folds]


def test_entry_sets_without_space_use_their_grid(candles):
    bt = _bt(space={"ema_cross": _bt().optuna.space["ema_cross"]})
    res = search_entry_set(candles, ENTRIES.entry_sets["donchian_breakout"], bt, timeframe="1m")
    assert res.folds[0]["search"] == "grid" and res.n_configs_tried == len(bt.grid["donchian_breakout"]["period"]) * 3


def test_grid_row_records_configs_stability_and_deflated_sharpe(candles):
    bt = dataclasses.replace(_bt(), mode="grid")
    res = search_entry_set(candles, ENTRIES.entry_sets["sma_cross"], bt, timeframe="1m")
    assert res.n_configs_tried == 9 * 3
    assert res.param_stability in (1 / 3, 2 / 3, 1.0)
    assert 0.0 <= res.deflated_sharpe <= 1.0


def test_costs_block_overrides_entry_set_costs(candles, tmp_path):
    doc = json.loads((REPO_ROOT / "backtest_config.json").read_text())
    doc["costs"] = {"fee_bps": 0, "slippage_bps": 0}
    path = tmp_path / "backtest_config.json"
    path.write_text(json.dumps(doc))
    free = load_backtest(path, entries=ENTRIES)
    es = ENTRIES.entry_sets["sma_cross"]
    assert free.costs_for(es).fee_bps == 0 and load_backtest(entries=ENTRIES).costs_for(es).fee_bps == es.costs.fee_bps
    paid = search_entry_set(candles, es, load_backtest(entries=ENTRIES), timeframe="1m")
    zero = search_entry_set(candles, es, free, timeframe="1m")
    assert zero.out_of_sample["total_return_pct"] > paid.out_of_sample["total_return_pct"]


def test_invalid_relations_get_the_penalty_not_an_error(candles):
    # fast may exceed slow in this space: such trials are kept with the penalty value
    bt = _bt(space={"sma_cross": {"fast": {"type": "int", "low": 5, "high": 60},
                                  "slow": {"type": "int", "low": 10, "high": 70}}}, n_trials=16)
    studies = StudyOptions()
    res = search_entry_set(candles, ENTRIES.entry_sets["sma_cross"], bt, timeframe="1m", studies=studies)
    assert all(f["params"]["fast"] < f["params"]["slow"] for f in res.folds)
    storage = studies.storage()  # the storage this search used, held by its StudyOptions
    trials = [t for st in storage.get_all_studies() if "#batch" not in st.study_name
              for t in storage.get_all_trials(st._study_id)]
    assert len(trials) == 16 * len(res.folds)
    invalid = [t for t in trials if t.params["fast"] >= t.params["slow"]]
    assert invalid, "the space admits fast >= slow; the seeded sampler proposes some"
    assert all(t.value == PENALTY and t.user_attrs["metrics"] is None for t in invalid)
    assert all(t.value != PENALTY for t in trials if t.params["fast"] < t.params["slow"]
               and t.user_attrs["metrics"] and t.user_attrs["metrics"]["n_trades"] >= bt.constraints.min_trades)


# --------------------------------------------------------------------------------------------
# config: optuna space, costs, workers
# --------------------------------------------------------------------------------------------

def _write(tmp_path: Path, **changes) -> Path:
    doc = json.loads((REPO_ROOT / "backtest_config.json").read_text())
    for dotted, value in changes.items():
        node = doc
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    path = tmp_path / "backtest_config.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("changes, match", [
    ({"optuna__space__ema_cross__fast": {"type": "int", "lo": 3, "high": 30}}, 'unknown key "lo". Did you mean "low"?'),
    ({"optuna__space__ema_cross__fast": {"type": "integer", "low": 3, "high": 30}}, "fast.type = 'integer': expected one of int, float, categorical"),
    ({"optuna__space__ema_cross__fast": {"type": "int", "low": 30, "high": 3}}, "fast.high = 3: expected a number above low = 30"),
    ({"optuna__space__ema_cross__fast": {"type": "int", "low": 3.5, "high": 30}}, "fast.low = 3.5: expected a whole number"),
    ({"optuna__space__ema_cross__fast": {"type": "int", "low": 3}}, "fast.high: missing"),
    ({"optuna__space__rsi_revert__oversold": {"type": "float", "low": 0, "high": 40, "log": True}}, "oversold.low = 0: expected a number > 0 (log scale)"),
    ({"optuna__space__rsi_revert__oversold": {"type": "float", "low": 1, "high": 40, "log": True, "step": 1.0}}, '"step" and "log" cannot be combined'),
    ({"optuna__space__ema_cross__fast": {"type": "categorical", "choices": []}}, "fast.choices = []: expected a non-empty list"),
    ({"optuna__space__ema_cross__fast": {"type": "categorical", "choices": [5], "low": 1}}, '"low" does not apply to type categorical'),
    ({"optuna__space__ema_cross__fastt": {"type": "int", "low": 3, "high": 30}}, 'optuna.space.ema_cross: unknown key "fastt". Did you mean "fast"?'),
    ({"optuna__space__ema_cros": {"fast": {"type": "int", "low": 3, "high": 30}}}, 'unknown key "ema_cros". Did you mean "ema_cross"?'),
    ({"optuna__space__ema_cross__fast": {"type": "float", "low": 3, "high": 30}}, "fast.type = 'float': expected int or categorical"),
    ({"optuna__space__rsi_revert__oversold": {"type": "float", "low": 10, "high": 140}}, "oversold = 140.0: expected 0 ≤ oversold ≤ 100"),
    ({"optuna__batch_size": 0}, "optuna.batch_size = 0: expected a number ≥ 1"),
    ({"optuna__n_trials": 0}, "optuna.n_trials = 0: expected a number ≥ 1"),
    ({"costs": {"fee_bps": -1, "slippage_bps": 0}}, "costs.fee_bps = -1.0: expected a number ≥ 0"),
    ({"costs": {"fee_bps": 10}}, "costs.slippage_bps: missing"),
    ({"costs": {"fees_bps": 10, "slippage_bps": 0}}, 'unknown key "fees_bps". Did you mean "fee_bps"?'),
    ({"workers": 0}, "workers = 0: expected a number ≥ 1"),
])
def test_bad_search_config(tmp_path, changes, match):
    with pytest.raises(ConfigError) as e:
        load_backtest(_write(tmp_path, **changes), entries=ENTRIES)
    assert match in str(e.value) and "backtest_config.json" in str(e.value)


def test_shipped_config_loads_with_every_optuna_space():
    bt = load_backtest(entries=ENTRIES)
    assert set(bt.optuna.space) == {es.name for es in ENTRIES.enabled()} and bt.costs is None and bt.workers is None


# --------------------------------------------------------------------------------------------
# two worker processes on one shared study
# --------------------------------------------------------------------------------------------

WORKER = """
import sys, dataclasses
from tests.conftest import _read_sample
from engine.config import load_backtest, load_entries
from engine.research import StudyOptions, contribute
import time
entries = load_entries()
bt = load_backtest(entries=entries)
bt = dataclasses.replace(bt, mode="optuna", optuna=dataclasses.replace(bt.optuna, n_trials=24, batch_size=4))
candles = _read_sample("BTCUSDT").iloc[:4000]
opts = StudyOptions(storage_url=sys.argv[1], prefix="t", wait=False, chunk=1)
while contribute(candles, entries.entry_sets["ema_cross"], bt, timeframe="1m", pair="BTCUSDT", cfg_id="c", studies=opts):
    time.sleep(0.02)
"""


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
@pytest.mark.slow
def test_two_worker_processes_run_every_trial_once_with_the_single_worker_result(tmp_path, candles, kind):
    import optuna
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 'studies.db'}" if kind == "sqlite" else f"journal:{tmp_path / 'studies.log'}"
    open_storage(url)  # create the schema once, before two processes race for it
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = subprocess_env({"NUMBA_NUM_THREADS": "1"})
    procs = [subprocess.Popen([sys.executable, str(script), url], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    bt = _bt(n_trials=24, batch_size=4)
    es = ENTRIES.entry_sets["ema_cross"]
    single = search_entry_set(candles, es, bt, timeframe="1m", pair="BTCUSDT", cfg_id="c")
    storage = open_storage(url)
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage) if "#batch" not in s.study_name)
    assert names == sorted(f["study"].replace("scalp.", "t.", 1) for f in single.folds)
    for name in names:
        trials = storage.get_all_trials(storage.get_study_id_from_name(name))
        assert [t.number for t in trials] == list(range(24))  # each trial number once
        assert all(t.state == TrialState.COMPLETE for t in trials)
        assert len({json.dumps(t.params, sort_keys=True) for t in trials}) >= 20  # no trial re-run under another number
    # the leader reads the finished studies and gets the single-worker result
    shared = search_entry_set(candles, es, bt, timeframe="1m", pair="BTCUSDT", cfg_id="c",
                              studies=StudyOptions(storage_url=url, prefix="t", chunk=1))
    assert [f["params"] for f in shared.folds] == [f["params"] for f in single.folds]
    assert shared.out_of_sample == single.out_of_sample and shared.in_sample == single.in_sample
    who = {t.user_attrs["evaluated_by"] for n in names for t in storage.get_all_trials(storage.get_study_id_from_name(n))}
    print(f"trials evaluated by {len(who)} processes")  # usually 2; timing decides, so not asserted
    n_after = sum(len(storage.get_all_trials(storage.get_study_id_from_name(n))) for n in names)
    assert n_after == 24 * len(names)  # the leader added no trial


def test_out_of_sample_chain_from_the_kernel_arrays_equals_the_frames(candles):
    # the metrics are computed from the kernel's arrays (no frame); the frames built on demand
    # give the same equity, trades and metrics, chained across the test windows
    import numpy as np

    from engine.backtest import metrics
    from engine.markets import periods_per_year

    bt = dataclasses.replace(_bt(), mode="grid")
    res = search_entry_set(candles, ENTRIES.entry_sets["sma_cross"], bt, timeframe="1m")
    assert len(res.oos_parts) == 3 and all("trades" not in p.__dict__ for p in res.oos_parts)
    equity, trades = res.oos_equity, res.oos_trades
    assert equity.to_numpy().tolist() == res.oos_equity_values.tolist()
    assert equity.index.is_monotonic_increasing and len(trades) == res.out_of_sample["n_trades"] > 0
    # the second window starts from the capital the first ended with
    first = res.oos_parts[0]
    assert equity.iloc[len(first.equity)] == pytest.approx(
        first.equity.iloc[-1] * res.oos_parts[1].equity.iloc[0] / res.oos_parts[1].initial_cash_quote, rel=1e-12)
    again = metrics.compute_metrics(trades["pnl_quote"].to_numpy(), trades["return_pct"].to_numpy(), equity.to_numpy(),
                                    initial_cash_quote=bt.initial_cash_quote,
                                    n_bars_held=metrics.bars_held(trades["entry_bar"], trades["exit_bar"]),
                                    periods_per_year=periods_per_year("1m"))
    for k, v in res.out_of_sample.items():
        assert v == again[k] or (math.isnan(v) and math.isnan(again[k])), k
    assert 0.0 <= res.deflated_sharpe <= 1.0  # computed on first use, from the chained values
    assert np.isfinite(res.oos_equity_values).all()
