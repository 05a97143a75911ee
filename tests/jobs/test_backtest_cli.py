"""jobs/backtest.py: research over pairs, the single-run CSV mode, and its bad inputs."""
from __future__ import annotations

import json

import pytest

from engine import data as datastore
from engine.data import backfill
from engine.research.pipeline import SUMMARY_COLUMNS
from jobs import backtest as cli

PAIRS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def seeded(scalp_env, tmp_path):
    backfill.seed_from_sample(tmp_path / "data", PAIRS, ["5m", "15m"])
    return tmp_path


def test_research_writes_one_row_per_pair_tf_entry_set(seeded, capsys):
    assert cli.main(["--pairs", ",".join(PAIRS), "--tfs", "5m,15m", "-q"]) == 0
    summary = json.loads((seeded / "reports" / "summary.json").read_text())
    from engine.config import load_entries

    n_sets = len(load_entries().enabled())
    assert len(summary["rows"]) == len(PAIRS) * 2 * n_sets
    keys = {(r["pair"], r["timeframe"], r["entry_set"]) for r in summary["rows"]}
    assert len(keys) == len(summary["rows"])
    for row in summary["rows"]:
        assert tuple(row) == SUMMARY_COLUMNS  # the documented column list stays honest
        assert (row["data_source"], row["exchange"]) == ("sample", None)
        assert set(row["out_of_sample"]) >= {"n_trades", "win_rate_pct", "profit_factor", "max_drawdown_pct",
                                             "sharpe", "total_return_pct", "expectancy_pct", "exposure_pct"}
        assert row["bars"] > 1000 and row["period"]["first_ms"] < row["period"]["last_ms"]
    text = (seeded / "reports" / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    import yaml

    nxt = yaml.safe_load((seeded / "reports" / "strategies.yml.next").read_text())
    assert len(nxt["candidates"]) == len(PAIRS) * 2
    for c in nxt["candidates"]:
        assert (seeded / "reports" / c["curve"]).is_file()


def test_corrupt_row_is_reported_and_the_rest_completes(seeded, capsys):
    path = datastore.candle_path(seeded / "data", "BTCUSDT", "5m")
    lines = path.read_text().splitlines()
    lines[100] = lines[100].split(",")[0] + ",abc,1,1,1,1"
    path.write_text("\n".join(lines) + "\n")
    assert cli.main(["--pairs", ",".join(PAIRS), "--tfs", "5m", "-q"]) == 0
    err = capsys.readouterr().err
    assert "BTCUSDT 5m" in err and "row 100" in err and "abc" in err
    summary = json.loads((seeded / "reports" / "summary.json").read_text())
    assert {r["pair"] for r in summary["rows"]} == {"ETHUSDT"}
    assert summary["errors"][0]["pair"] == "BTCUSDT"


@pytest.mark.parametrize("argv, match", [
    (["--tfs", "5m,7x", "--pairs", "BTCUSDT"], "--tfs '5m,7x': expected a comma-separated list"),
    (["--pairs", "btc-usdt"], "pair 'btc-usdt'"),
    ([], "give --from-watchlist or --pairs P1,P2"),
])
def test_bad_flags_one_line_exit_2(scalp_env, capsys, argv, match):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_unknown_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--frm-watchlist"])
    assert e.value.code == 2
    assert "unrecognized arguments: --frm-watchlist" in capsys.readouterr().err


def test_bad_config_value_exits_2(scalp_env, monkeypatch, capsys):
    monkeypatch.setenv("SCALP_RISK_MODE", "yolo")
    assert cli.main(["--pairs", "BTCUSDT"]) == 2
    err = capsys.readouterr().err
    assert "SCALP_RISK_MODE = 'yolo': expected one of conservative, balanced, aggressive" in err


def test_higher_timeframes_replay_ambiguous_bars_on_stored_1m_candles(scalp_env, tmp_path):
    backfill.seed_from_sample(tmp_path / "data", ["DOGEUSDT"], ["1m", "15m"])
    assert cli.main(["--pairs", "DOGEUSDT", "--tfs", "15m", "-q"]) == 0
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    amb = [r["ambiguity"] for r in summary["rows"]]
    assert all(a["lower_timeframe_used"] for a in amb)
    assert sum(a["n_ambiguous_bars"] for a in amb) > 0  # DOGE in April 2021: wide 15m bars
    for a in amb:
        assert a["n_ambiguous_bars"] == (a["n_resolved_target_first"] + a["n_resolved_stop_first"]
                                         + a["n_unresolved_stop_first"])
    assert sum(a["n_resolved_target_first"] + a["n_resolved_stop_first"] for a in amb) > 0
    import yaml

    cand = yaml.safe_load((tmp_path / "reports" / "strategies.yml.next").read_text())["candidates"][0]
    curve = json.loads((tmp_path / "reports" / cand["curve"]).read_text())
    reasons = {t["reason"] for t in curve["trades"]}
    assert reasons and None not in reasons  # the dashboard marks each exit with its reason


def test_single_csv_and_research_score_the_same_exit_plan(seeded, tmp_path, capsys):
    """The same rules give the same plan everywhere: `backtest.py --csv --tp … --sl …` takes every other
    rule (breakeven after TP1, 240-bar max hold, 2 bps slippage, 10 bps fees) from the one declaration
    the research run takes them from, and scores the same trades."""
    from engine.backtest import run_backtest
    from engine.config import load_entries
    from engine.strategy.exits import Costs, ExitPlan

    assert cli.main(["research", "--pairs", "BTCUSDT", "--tfs", "15m", "-q"]) == 0
    row = next(r for r in json.loads((seeded / "reports" / "summary.json").read_text())["rows"]
               if r["entry_set"] == "sma_cross")
    es = load_entries().entry_sets["sma_cross"]
    candles = datastore.load_sample("BTCUSDT", "1m").iloc[:6000]
    csv = tmp_path / "btc.csv"
    datastore.write_candles(csv, candles, timeframe="1m")
    capsys.readouterr()
    trades_cli = tmp_path / "cli_trades.csv"
    assert cli.main(["--csv", str(csv), "--tf", "1m", "--entry", "sma_cross", "--params", json.dumps(es.params),
                     "--tp", "0.9:50,1.4:30,2.1:20", "--sl", "-0.5", "--trades-out", str(trades_cli), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    plan = ExitPlan.from_dict(out["exit_plan"], where="single")
    assert plan == es.exit_plan == ExitPlan.from_dict(row["exit_plan"], where="summary.json")
    assert plan.breakeven and plan.max_hold_bars == 240 and plan.breakeven_offset_pct == 0.05
    assert Costs(**out["costs"]) == es.costs == Costs(**row["costs"]) == Costs(fee_bps=10, slippage_bps=2)
    research = run_backtest(candles, es.signal, es.params, es.exit_plan, es.costs, timeframe="1m")
    trades_research = tmp_path / "research_trades.csv"
    research.write_trades_csv(trades_research)
    assert len(research.trades) > 10
    assert trades_cli.read_text() == trades_research.read_text()
    assert out["metrics"]["n_trades"] == research.metrics["n_trades"]


def test_single_flags_switch_default_rules_off(tmp_path, capsys):
    from engine.strategy.exits import ExitPlan

    csv = tmp_path / "btc.csv"
    datastore.write_candles(csv, datastore.load_sample("BTCUSDT", "1m").iloc[:2000], timeframe="1m")
    assert cli.main(["single", "--csv", str(csv), "--tf", "1m", "--entry", "sma_cross", "--tp", "1:100",
                     "--sl", "none", "--no-breakeven", "--max-hold", "none", "--slippage-bps", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert ExitPlan.from_dict(out["exit_plan"], where="x") == ExitPlan.only(tp_ladder="1:100")
    assert out["costs"] == {"fee_bps": 10.0, "slippage_bps": 0.0}
