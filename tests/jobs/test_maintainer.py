"""jobs/maintainer.py and engine.cycle: one cycle, failures isolated per pair, expiry."""
from __future__ import annotations

import json
import os

import pytest

import yaml

from engine import cycle
from engine import data as datastore
from engine.data import backfill, universe
from engine.config import load_settings
from jobs import maintainer


def test_once_with_a_corrupt_csv_reports_it_and_completes(scalp_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCALP_TOPN", "2")
    monkeypatch.setenv("SCALP_TF_LIST", "5m,15m")
    top2 = universe.sample_watchlist(2)  # BTCUSDT, DOGEUSDT by 24 h quote volume
    backfill.seed_from_sample(tmp_path / "data", top2, ["5m"])
    path = datastore.candle_path(tmp_path / "data", "BTCUSDT", "5m")
    lines = path.read_text().splitlines()
    lines[50] = lines[50].replace(lines[50].split(",")[2], "-5", 1)  # high < low on row 50
    path.write_text("\n".join(lines) + "\n")
    assert maintainer.main(["--once", "--no-render", "-q"]) == 0
    corrupt = list(path.parent.glob("5m.csv.corrupt-*"))
    assert len(corrupt) == 1  # moved aside, then rebuilt from the source
    assert datastore.read_candles(path, "5m").shape[0] > 1000
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert {(r["pair"], r["timeframe"]) for r in summary["rows"]} == {(p, tf) for p in top2 for tf in ("5m", "15m")}
    status = json.loads((tmp_path / "reports" / "status.json").read_text())
    assert any("moved aside" in e["message"] and e["pair"] == "BTCUSDT" for e in status["errors"])
    log = (tmp_path / "logs" / "maintainer.log").read_text()
    assert "corrupt" in log and "BTCUSDT" in log


def test_cycle_drops_expired_and_records_states(scalp_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALP_TOPN", "1")
    monkeypatch.setenv("SCALP_TF_LIST", "15m")
    expired = {"pair": "XRPUSDT", "timeframe": "15m", "entry_set": "ema_cross", "signal": "ema_cross", "params": {},
               "promoted_at": "2021-04-01T00:00:00Z", "expires_at": "2021-04-02T00:00:00Z", "risk_mode": "aggressive"}
    (tmp_path / "strategies.yml").write_text(yaml.safe_dump({"strategies": [expired]}))  # as a person writes it
    summary = cycle.run_once(load_settings())
    stored = yaml.safe_load((tmp_path / "strategies.yml").read_text())["strategies"]
    assert all(s["pair"] != "XRPUSDT" for s in stored)
    status = json.loads((tmp_path / "reports" / "status.json").read_text())
    assert status["pairs"] == summary.pairs and len(status["states"]) == 1
    assert status["states"][0]["state"] in ("DAT", "OK") and status["states"][0]["rows"] > 1000
    assert status["clock"]["now_ms"] == 1620000000000  # replay clock: close of the sample's last candle
    # the wall seconds of every stage, in the order they ran, adding up to the cycle
    assert list(summary.stages_s) == ["setup", "watchlist", "backfill", "research", "promotion", "paper", "status",
                                      "dashboard"]
    assert all(v >= 0 for v in summary.stages_s.values()) and summary.stages_s["research"] > 0
    assert sum(summary.stages_s.values()) >= summary.duration_s - 0.05  # the status is stamped before the last stages
    assert summary.to_json()["stages_s"] == {k: round(v, 3) for k, v in summary.stages_s.items()}


def test_bad_config_stops_with_exit_2(scalp_env, monkeypatch, capsys):
    monkeypatch.setenv("SCALP_TF_LIST", "1m,7x")
    assert maintainer.main(["--once"]) == 2
    assert "SCALP_TF_LIST[1] = '7x'" in capsys.readouterr().err


def test_offline_cycle_never_replaces_stored_exchange_candles(scalp_env, tmp_path, monkeypatch):
    """A network blip must not swap a user's real exchange candles for the 2021 sample."""
    monkeypatch.setenv("SCALP_TOPN", "1")
    monkeypatch.setenv("SCALP_TF_LIST", "15m")
    top = universe.sample_watchlist(1)[0]
    path = datastore.candle_path(tmp_path / "data", top, "15m")
    real = datastore.load_sample(top, "15m").iloc[-600:]  # stands in for candles fetched from binance
    datastore.write_candles(path, real, timeframe="15m", source="binance")
    before = path.read_bytes()
    summary = cycle.run_once(load_settings())
    assert path.read_bytes() == before and datastore.read_source(path) == "binance"
    assert summary.clock.kind == "wall"  # the kept candles age on the wall clock: OLD, honestly
    status = json.loads((tmp_path / "reports" / "status.json").read_text())
    assert status["states"][0]["state"] == "OLD"
    assert (status["data_source"], status["exchanges"]) == ("stored", ["binance"])  # offline, not live
    rows = json.loads((tmp_path / "reports" / "summary.json").read_text())["rows"]
    assert rows and {(r["data_source"], r["exchange"]) for r in rows} == {("exchange", "binance")}


def test_rank_flag_is_an_override_every_reload_keeps(scalp_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCALP_WATCHLIST_RANK", "volume")
    monkeypatch.setenv("SCALP_TOPN", "1")
    monkeypatch.setenv("SCALP_TF_LIST", "15m")
    assert maintainer.main(["--once", "--rank", "spread", "--no-render", "-q"]) == 0
    watch = json.loads((tmp_path / "reports" / "watchlist.json").read_text())
    assert len(watch["pairs"]) == 1 and watch["rank_by"] == "volume"  # offline: no quotes, ranked by volume
    log = (tmp_path / "logs" / "maintainer.log").read_text()
    assert "the offline sample has no bid/ask quotes; ranking by 24 h volume instead" in log  # spread was asked for
    assert os.environ["SCALP_WATCHLIST_RANK"] == "volume"  # the flag is not passed through the environment
    settings = load_settings(overrides={"watchlist_rank": "spread"})
    assert settings.runtime.watchlist_rank == "spread" and settings.reload().runtime.watchlist_rank == "spread"
    with pytest.raises(SystemExit) as e:
        maintainer.main(["--once", "--rank", "depth"])
    assert e.value.code == 2 and "invalid choice: 'depth'" in capsys.readouterr().err


def test_cycle_marks_health_running_at_its_start_and_finished_before_the_render(scalp_env, tmp_path, monkeypatch):
    """The dashboard says "running now" from the cycle's start until its status is written."""
    monkeypatch.setenv("SCALP_TOPN", "1")
    monkeypatch.setenv("SCALP_TF_LIST", "15m")
    seen = {}
    real_plan = cycle.plan_data

    def plan_spy(rt):
        seen["start"] = json.loads((rt.public_dir / "health.json").read_text())
        return real_plan(rt)

    def render_spy(rt, **_):
        seen["render"] = json.loads((rt.public_dir / "health.json").read_text())

    monkeypatch.setattr(cycle, "plan_data", plan_spy)
    summary = cycle.run_once(load_settings(), render=render_spy, next_run_ms=4_102_444_800_000)
    start, end = seen["start"], seen["render"]
    assert start["running"] is True and start["started_at_ms"] == summary.started_at_ms
    assert start["finished_at_ms"] is None and start["next_run_ms"] == 4_102_444_800_000
    assert end["running"] is False and end["finished_at_ms"] == summary.finished_at_ms
    assert end["last_duration_s"] == pytest.approx(summary.duration_s) and end["interval_s"] == 60
