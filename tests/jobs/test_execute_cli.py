"""jobs/execute.py: the replay writes the backtest's trades file exactly; the kill-switch test and the
go-live gate record what they found; bad input exits 2 naming it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from engine.data import resample_candles, write_candles
from jobs import backtest as backtest_cli
from jobs import execute as cli
from tests.conftest import REPO_ROOT, subprocess_env

FLAGS = [
    ["--entry", "sma_cross", "--params", '{"fast":10,"slow":40}', "--tp", "0.9:50,1.4:30,2.1:20", "--sl", "-0.5"],
    ["--entry", "rsi_revert", "--tp", "0.6:50,1.2:50", "--trail", "0.7", "--breakeven-offset", "0.1"],
    ["--entry", "donchian_breakout", "--params", '{"period":30}', "--sl-atr", "2", "--no-exit-signal",
     "--max-hold", "60", "--fee-bps", "7.5", "--slippage-bps", "3"],
]


@pytest.fixture(scope="module")
def eth_csv(tmp_path_factory):
    from tests.conftest import _read_sample

    path = tmp_path_factory.mktemp("csv") / "ETHUSDT" / "5m.csv"
    write_candles(path, resample_candles(_read_sample("ETHUSDT"), "5m", source_timeframe="1m"), timeframe="5m",
                  source="test")
    return path


@pytest.mark.parametrize("flags", FLAGS, ids=["sma-ladder", "rsi-trail-breakeven", "donchian-atr-time"])
def test_replay_trades_file_equals_the_backtests(eth_csv, tmp_path, flags, capsys, monkeypatch):
    monkeypatch.setenv("KILL_SWITCH_FILE", str(tmp_path / "no-switch"))
    common = ["--csv", str(eth_csv), "--tf", "5m", *flags, "-q"]
    assert cli.main(["replay", *common, "--trades-out", str(tmp_path / "paper.csv"), "--events-dir", str(tmp_path)]) == 0
    assert backtest_cli.main(["single", *common, "--stake", "10", "--trades-out", str(tmp_path / "bt.csv")]) == 0
    paper, bt = (tmp_path / "paper.csv").read_text(), (tmp_path / "bt.csv").read_text()
    assert paper == bt and paper.count("\n") > 20
    out = capsys.readouterr().out
    assert "intents " in out and "stake 10 of 10000" in out
    assert list((tmp_path / "trading").glob("*/events.jsonl"))


def test_replay_with_the_kill_switch_set_trades_nothing(eth_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KILL_SWITCH", "1")
    assert cli.main(["replay", "--csv", str(eth_csv), "--tf", "5m", "--entry", "sma_cross", "--json", "-q",
                     "--trades-out", str(tmp_path / "t.csv")]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["trades"] == 0 and out["blocked"] == out["intents"] > 0 and out["blocked_by"] == {"kill switch": out["intents"]}
    assert out["events"].get("order", 0) == 0


def test_replay_bad_input_exits_2_naming_it(tmp_path):
    env = subprocess_env({})
    for args, expect in (
        (["--csv", str(tmp_path / "none.csv"), "--tf", "5m", "--entry", "sma_cross"], "none.csv: no such candle file"),
        (["--csv", str(tmp_path / "none.csv"), "--tf", "5m", "--entry", "sma_cross", "--params", "{fast"], "--params"),
        (["--csv", str(tmp_path / "none.csv"), "--tf", "5m", "--entry", "nope"], "nope"),
    ):
        out = subprocess.run([sys.executable, str(REPO_ROOT / "jobs" / "execute.py"), "replay", *args], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and expect in out.stderr, (args, out.stderr)


def test_killswitch_test_and_golive_commands(scalp_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KILL_SWITCH_FILE", str(tmp_path / "var" / "KILL_SWITCH"))
    monkeypatch.delenv("KILL_SWITCH", raising=False)
    assert cli.main(["golive", "--strategy", "BTCUSDT_5m_ema_cross", "-q"]) == 1
    out = capsys.readouterr().out
    assert "not ready" in out and "no kill-switch test recorded" in out
    assert cli.main(["killswitch-test", "-q"]) == 0
    assert "→ passed" in capsys.readouterr().out
    steps = tmp_path / "reports" / "steps"
    assert "- result: passed" in (steps / "STEP-killswitch-test.md").read_text()
    assert cli.main(["golive", "--strategy", "BTCUSDT_5m_ema_cross", "-q"]) == 1  # still no dry-run hours
    text = (steps / "STEP-6.3-golive.md").read_text()
    assert "- kill-switch: tested" in text and "BTCUSDT_5m_ema_cross: not ready: 0.0 h of dry-run events" in text
