"""A full offline cycle on each bundled sample writes the judgement of every row, and promotes only
what passes the judged rules (on the shipped samples: nothing, and the states say DAT)."""
from __future__ import annotations

import json
import math
from collections import defaultdict

import pytest
import yaml

from engine import cycle
from engine.config import load_settings
from jobs import maintainer


def _check_judged(reports, strategies_file, timeframes):
    summary = json.loads((reports / "summary.json").read_text())
    rows = summary["rows"]
    assert rows and {r["timeframe"] for r in rows} == set(timeframes)
    per_slot = defaultdict(int)
    for r in rows:
        per_slot[(r["pair"], r["timeframe"])] += r["n_configs_tried"]
    for r in rows:
        j = r["judgement"]
        assert j["n_twins"] == 200 and j["twins_hist"]["counts"] and sum(j["twins_hist"]["counts"]) == 200
        if r["out_of_sample"]["n_trades"]:
            assert 0.0 <= j["p_value_vs_random"] <= 1.0 and math.isfinite(j["excess_vs_random_pct"])
        assert j["n_trials_slot"] == per_slot[(r["pair"], r["timeframe"])] and j["n_folds"] == len(r["folds"])
        assert j["pbo"] is None or 0.0 <= j["pbo"] <= 1.0
        assert j["deployed_params"] == r["folds"][-1]["params"] and j["deployed_oos"]["n_trades"] >= 0
        assert j["cost_per_trade_bps"] == 2 * (r["costs"]["fee_bps"] + r["costs"]["slippage_bps"])
    assert summary["n_trials_cycle"] == sum(r["n_configs_tried"] for r in rows)
    assert summary["lookahead"] and all(c["passed"] for c in summary["lookahead"])  # the shipped sets pass

    decisions = json.loads((reports / "promotion.json").read_text())["decisions"]
    promoted = {(d["pair"], d["timeframe"]) for d in decisions if d["promoted"]}
    for d in decisions:
        assert d["promoted"] == (d["reasons"] == ["passes every rule"])
    stored = yaml.safe_load(strategies_file.read_text())["strategies"] if strategies_file.exists() else []
    assert {(s["pair"], s["timeframe"]) for s in stored or []} == promoted
    return decisions, json.loads((reports / "status.json").read_text())


def test_a_month_cycle_judges_every_row_and_promotes_only_what_beats_chance(scalp_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALP_TOPN", "3")
    monkeypatch.setenv("SCALP_TF_LIST", "5m,15m")
    assert maintainer.main(["--once", "-q"]) == 0  # with the dashboard
    decisions, status = _check_judged(tmp_path / "reports", tmp_path / "strategies.yml", ["5m", "15m"])
    assert len(decisions) == 6
    if not any(d["promoted"] for d in decisions):  # the truth on the shipped sample
        assert {s["state"] for s in status["states"]} == {"DAT"}
    html = (tmp_path / "public" / "dashboard.html").read_text()
    assert ("No strategy beat chance this cycle" in html) == (not any(d["promoted"] for d in decisions))


@pytest.mark.slow
def test_a_long_sample_cycle_writes_the_same_judgement(scalp_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALP_TOPN", "2")
    monkeypatch.setenv("SCALP_SAMPLE", "long")
    monkeypatch.delenv("SCALP_TF_LIST", raising=False)
    cycle.run_once(load_settings())
    _check_judged(tmp_path / "reports", tmp_path / "strategies.yml", ["1h", "4h"])
