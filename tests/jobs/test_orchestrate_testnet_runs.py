"""jobs/orchestrate_testnet_runs.py: --list, --budget, --dry-run, a blocked run (exit 3, every reason),
a full paper session (exit 0, report, usage registered, budget file), bad input (exit 2 naming it).
No testnet keys anywhere, so nothing can leave: the runs are what a fresh clone does offline."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine.config.desk import DESK_YAML_PATH
from engine.desk.usage import UsageStore
from jobs import orchestrate_testnet_runs as cli
from tests.conftest import REPO_ROOT, subprocess_env

KEY_NAMES = [f"{ex}_{k}" for ex in ("BINANCE", "KRAKEN", "BITVAVO")
             for k in ("API_KEY", "API_SECRET", "TESTNET_API_KEY", "TESTNET_API_SECRET")]


@pytest.fixture
def desk_env(scalp_env, tmp_path, monkeypatch):
    """An isolated runtime (scalp_env), no API keys (no .env either), the kill switch file off."""
    import engine.execution.tunables as tunables

    for name in KEY_NAMES + ["KILL_SWITCH", "SCALP_DESK_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tunables, "SECRETS_FILE", tmp_path / "no.env")
    monkeypatch.setenv("KILL_SWITCH_FILE", str(tmp_path / "no-kill-switch"))
    return {**scalp_env, "KILL_SWITCH_FILE": str(tmp_path / "no-kill-switch")}


def run(capsys, *argv):
    code = cli.main([*argv, "-q"])
    out, err = capsys.readouterr()
    return code, out, err


def usage_dir(env):
    return Path(env["SCALP_DATA_DIR"]) / "desk" / "usage"


def reports(env):
    return Path(env["SCALP_REPORTS_DIR"])


def test_list(desk_env, capsys):
    code, out, _ = run(capsys, "--list")
    assert code == 0
    for name in ("ma_crossover_small", "btc_momentum", "quick_smoke", "eth_swing"):
        assert f"[{name}]" in out
    assert "strategy:      sma_cross {'fast': 5, 'slow': 20}" in out and "duration:      60 minutes" in out
    code, out, _ = run(capsys, "--list", "--json")
    assert code == 0 and json.loads(out)["quick_smoke"]["max_trades"] == 3


def test_budget_prints_and_writes_the_dashboard_file(desk_env, capsys):
    code, out, _ = run(capsys, "--budget")
    assert code == 0 and "Used today:" in out and "Left today:" in out and "per day:   1000 quote, 100 trades" in out
    doc = json.loads((reports(desk_env) / "testnet_budget.json").read_text())
    assert doc["used"] == {"notional_quote": 0.0, "n_trades": 0, "n_runs": 0}
    assert doc["left"] == {"notional_quote": 1000.0, "n_trades": 100}
    assert doc["limits"]["day"] == {"max_notional_quote": 1000.0, "max_trades": 100}
    code, out, _ = run(capsys, "--budget", "--json")
    assert code == 0 and json.loads(out)["left"]["n_trades"] == 100


def test_dry_run_checks_and_plans_but_runs_and_registers_nothing(desk_env, capsys):
    code, out, _ = run(capsys, "--profile", "eth_swing", "--dry-run")
    assert code == 0
    assert "Plan (dry run: no session is started" in out and "venue:     paper: paper session: no BINANCE_TESTNET" in out
    assert "candles:   replay: the bundled sample (month)" in out and "Limits: allowed" in out
    assert not usage_dir(desk_env).exists() and not (reports(desk_env) / "desk").exists()


def test_blocked_run_prints_every_reason_and_exits_3(desk_env, capsys, tmp_path):
    doc = yaml.safe_load(DESK_YAML_PATH.read_text())
    doc["profiles"]["doge"] = {**doc["profiles"]["quick_smoke"], "symbol": "DOGE/USDT", "max_trades": 30}
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump(doc))
    UsageStore(usage_dir(desk_env)).register(990.0, 95, at_ms=_now_ms())  # today is nearly spent
    code, out, _ = run(capsys, "--desk-config", str(path), "--profile", "doge", "--override-duration", "300",
                       "--override-max-notional", "500")
    assert code == 3
    assert "BLOCKED by the testnet limits (6 reasons):" in out
    for reason in ("run notional: planned 500.00 > limits.run.max_notional_quote 200",
                   "run trades: planned 30 > limits.run.max_trades 20",
                   "run duration: planned 300 min > limits.run.max_duration_minutes 240 min",
                   "day notional: used 990.00 + planned 500.00 = 1490.00 > limits.day.max_notional_quote 1000",
                   "day trades: used 95 + planned 30 = 125 > limits.day.max_trades 100",
                   "symbol: DOGE/USDT is not in limits.symbols.allowed (BTC/USDT, ETH/USDT, BNB/USDT)"):
        assert f"  - {reason}" in out
    assert UsageStore(usage_dir(desk_env)).load(_now_ms()).n_runs == 1  # nothing registered by the blocked run
    assert not (reports(desk_env) / "desk").exists()
    code, out, _ = run(capsys, "--desk-config", str(path), "--profile", "doge", "--dry-run")  # dry-run: same verdict
    assert code == 3 and "BLOCKED" in out and "Plan (dry run" in out


def _now_ms():
    return int(time.time() * 1000)


def test_full_paper_session_reports_and_registers(desk_env, capsys):
    code, out, _ = run(capsys, "--profile", "ma_crossover_small")
    assert code == 0, out
    assert "Session done: 2 trades, 19.98 quote of entries" in out
    day = UsageStore(usage_dir(desk_env)).load(_now_ms())
    assert (day.n_runs, day.n_trades) == (1, 2) and day.notional_quote == pytest.approx(19.98, abs=0.01)
    run_record = day.runs[0]
    assert (run_record["profile"], run_record["venue"], run_record["candles"]) == ("ma_crossover_small", "paper",
                                                                                   "replay")
    sessions = reports(desk_env) / "desk" / "sessions"
    md = sorted(sessions.glob("*_ma_crossover_small.md"))
    assert len(md) == 1 and md[0].name == f"{run_record['session']}.md"
    text = md[0].read_text()
    for heading in ("# Testnet session `ma_crossover_small`", "## Plan", "## Limits check", "## Result",
                    "## Orders sent to the exchange", "## Trades (paper book)", "## Budget after the session"):
        assert heading in text
    assert "consumption registered: 19.98 quote of entries, 2 trades" in text and "marked to market" in text
    trades = (sessions / f"{run_record['session']}_trades.csv").read_text().splitlines()
    assert len(trades) == 3  # header + 2 trades
    budget = json.loads((reports(desk_env) / "testnet_budget.json").read_text())
    assert budget["used"]["n_trades"] == 2 and budget["left"]["n_trades"] == 98 and budget["runs"][0]["venue"] == "paper"
    events = list((usage_dir(desk_env).parent / "sessions" / run_record["session"]).rglob("events.jsonl"))
    assert len(events) == 1 and '"kind":"fill"' in events[0].read_text()
    # the second session sees the first one's usage
    code, out, _ = run(capsys, "--profile", "quick_smoke", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["day_trades"] == 2 + summary["n_trades"]


def test_overrides_shape_the_session(desk_env, capsys):
    # 35 minutes: the window 23:25 → 00:00 holds only the 23:30 entry of the hour's two
    code, out, _ = run(capsys, "--profile", "ma_crossover_small", "--override-duration", "35", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["n_trades"] == 1 and summary["stop_note"] is None
    assert "window:    2021-05-02 23:25 UTC → 2021-05-03 00:00 UTC (candle clock)" in summary["plan"]
    # a budget of 5 quote cannot hold one 10-quote entry: the session stops before it
    code, out, _ = run(capsys, "--profile", "ma_crossover_small", "--override-max-notional", "5", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["n_trades"] == 0 and "max_notional_quote 5" in summary["stop_note"]


@pytest.mark.parametrize("argv, message", [
    (["--profile", "quick_smok"], r'profile \'quick_smok\': not in engine/config/desk.yaml → profiles. Did you mean "quick_smoke"\?'),
    (["--profile", "quick_smoke", "--override-duration", "0"], r"--override-duration = 0.0: expected whole minutes ≥ 1"),
    (["--profile", "quick_smoke", "--override-max-notional", "-5"], r"--override-max-notional = -5.0: expected a number ≥ 0"),
    (["--dry-run", "--list"], r"--dry-run: goes with --profile NAME"),
    (["--profile", "quick_smoke", "--speed", "-1"], r"--speed = -1.0: expected a number ≥ 0"),
])
def test_bad_input_exits_2_naming_it(desk_env, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not usage_dir(desk_env).exists()


def test_bad_desk_config_exits_2_naming_file_and_key(desk_env, capsys, tmp_path):
    doc = yaml.safe_load(DESK_YAML_PATH.read_text())
    doc["limits"]["run"]["max_trade"] = 3
    (tmp_path / "desk.yaml").write_text(yaml.safe_dump(doc))
    code, _, err = run(capsys, "--desk-config", str(tmp_path / "desk.yaml"), "--budget")
    assert code == 2 and 'desk.yaml → limits.run: unknown key "max_trade". Did you mean "max_trades"?' in err


@pytest.mark.parametrize("argv", [["--profile"], ["--list", "--budget"], [], ["--profile", "x", "--override-duration", "ten"]])
def test_bad_flags_exit_2(desk_env, argv):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2


def test_a_fresh_clone_runs_a_session_from_the_command_line(desk_env, tmp_path):
    # as a user runs it, in a new process: python -m jobs.orchestrate_testnet_runs from the repo root
    env = subprocess_env({**desk_env, "SCALP_NO_AUTOINSTALL": "1"})
    for name in KEY_NAMES:
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-m", "jobs.orchestrate_testnet_runs", "--profile", "quick_smoke"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "venue:     paper" in out.stdout and "report →" in out.stdout
    assert "Session done: 2 trades, 19.98 quote of entries" in out.stdout  # quick_smoke trades in its 15 minutes
    out = subprocess.run([sys.executable, str(REPO_ROOT / "jobs" / "orchestrate_testnet_runs.py"), "--budget"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and "runs:      1" in out.stdout
