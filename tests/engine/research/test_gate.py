"""The lookahead gate before research: shipped entry sets pass, results are cached by code and data,
a peeking entry set is excluded with one ERROR line and a lookahead error in summary.json."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from engine.config import load_entries
from engine.data import backfill
from engine.data.sample import load_sample
from engine.research import gate
from engine.strategy import signals
from jobs import backtest as cli


@pytest.fixture(scope="module")
def candles():
    return load_sample("BTCUSDT", "5m")


@pytest.fixture
def centred_ema(monkeypatch):
    """Signal code edited to peek: the EMA line replaced by a centred moving average (uses the next
    bars), as a user's change to the indicator code would."""
    real = signals.compute_indicator

    def peeking(key, bars, out=None):
        if key[0] != "ema":
            return real(key, bars, out)
        line = pd.Series(bars.close).rolling(int(key[1]), center=True, min_periods=1).mean().to_numpy()
        if out is not None:
            out[:] = line
            return out
        return line

    monkeypatch.setattr(signals, "compute_indicator", peeking)


def test_shipped_entry_sets_pass_and_the_check_is_cached_by_code_and_data(candles, tmp_path):
    entries = load_entries()
    first = gate.screen_entry_sets(entries, candles, tmp_path, where="BTCUSDT 5m")
    assert first.errors == [] and first.entries is entries
    assert [c["entry_set"] for c in first.checks] == [e.name for e in entries.enabled()]
    assert all(c["passed"] and not c["cached"] and c["n_cuts"] > 50 for c in first.checks)
    assert len({c["seed"] for c in first.checks}) > 1  # a new seed per check, recorded
    stored = json.loads((tmp_path / gate.LOOKAHEAD_FILE).read_text())["checks"]
    assert stored["ema_cross"]["seed"] == first.checks[0]["seed"]

    again = gate.screen_entry_sets(entries, candles, tmp_path)
    assert all(c["cached"] for c in again.checks)
    new_data = gate.screen_entry_sets(entries, candles.iloc[:-1], tmp_path)
    assert not any(c["cached"] for c in new_data.checks)


def test_new_parameters_are_checked_again(candles, tmp_path):
    from dataclasses import replace

    entries = load_entries()
    gate.screen_entry_sets(entries, candles, tmp_path)
    es = entries.entry_sets["ema_cross"]
    changed = replace(entries, entry_sets={**entries.entry_sets, "ema_cross": replace(es, params={"fast": 5, "slow": 40})})
    checks = {c["entry_set"]: c for c in gate.screen_entry_sets(changed, candles, tmp_path).checks}
    assert not checks["ema_cross"]["cached"] and checks["sma_cross"]["cached"]


def test_a_peeking_entry_set_is_excluded_with_one_error_line(candles, tmp_path, centred_ema, caplog):
    entries = load_entries()
    with caplog.at_level(logging.ERROR):
        res = gate.screen_entry_sets(entries, candles, tmp_path, where="BTCUSDT 5m", seed=3)
    assert not res.entries.entry_sets["ema_cross"].enabled
    assert [e.name for e in res.entries.enabled()] == [e.name for e in entries.enabled() if e.name != "ema_cross"]
    (err,) = res.errors
    assert err.stage == "lookahead" and err.message.startswith("ema_cross excluded from research: ")
    assert "signal at bar" in err.message and "cut after bar" in err.message and "(seed 3)" in err.message
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0].getMessage()
    # the failure is cached too: the next cycle on the same code and data excludes it again
    assert not gate.screen_entry_sets(entries, candles, tmp_path).entries.entry_sets["ema_cross"].enabled


def test_research_leaves_out_the_peeking_entry_set_and_says_so(scalp_env, tmp_path, centred_ema, capsys):
    backfill.seed_from_sample(tmp_path / "data", ["BTCUSDT"], ["15m"])
    assert cli.main(["research", "--pairs", "BTCUSDT", "--tfs", "15m", "-q"]) == 0
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["rows"] and "ema_cross" not in {r["entry_set"] for r in summary["rows"]}
    assert [e["stage"] for e in summary["errors"]] == ["lookahead"]
    looked = {c["entry_set"]: c["passed"] for c in summary["lookahead"]}
    assert looked["ema_cross"] is False and looked["sma_cross"] is True
    assert summary["n_trials_cycle"] == sum(r["n_configs_tried"] for r in summary["rows"])


def test_no_candles_yet_checks_nothing(tmp_path):
    entries = load_entries()
    res = gate.screen_entry_sets(entries, None, tmp_path)
    assert res.entries is entries and res.checks == [] and res.errors == []
    assert gate.first_candles(tmp_path, ["BTCUSDT"], ["5m"]) == (None, "")


def test_an_unreadable_cache_is_checked_again(candles, tmp_path):
    (tmp_path / gate.LOOKAHEAD_FILE).write_text("{not json")
    res = gate.screen_entry_sets(load_entries(), candles, tmp_path)
    assert res.errors == [] and not any(c["cached"] for c in res.checks)
    assert np.isfinite(json.loads((tmp_path / gate.LOOKAHEAD_FILE).read_text())["checks"]["ema_cross"]["seed"])
