"""Contract tests of the report files: producer → file → reader gives back what was written.

Each file is produced by the real stage (one offline cycle on the bundled sample: research writes
summary.json, strategies.yml.next and the curves, the cycle writes status.json) and read back
through its one reader (engine.research.reports).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from engine.records import Fields
from engine import cycle
from engine.config import load_settings
from engine.errors import DataError
from engine.research import reports
from engine.research.reports import (SUMMARY_COLUMNS, ClockReading, CycleStatus, StageError, SummaryRow,
                                     describe_source)
from engine.types import DataSource


@pytest.fixture(scope="module")
def produced(tmp_path_factory) -> Path:
    """The reports dir of one offline cycle: 1 pair (BTCUSDT) × 15m × every entry set."""
    root = tmp_path_factory.mktemp("reports_contract")
    env = {"SCALP_DATA_DIR": str(root / "data"), "SCALP_REPORTS_DIR": str(root / "reports"),
           "SCALP_LOGS_DIR": str(root / "logs"), "SCALP_PUBLIC_DIR": str(root / "public"),
           "SCALP_STRATEGIES_FILE": str(root / "strategies.yml"), "SCALP_URLS_DIR": str(root),
           "SCALP_DATA_SOURCE": "sample", "SCALP_TOPN": "1", "SCALP_TF_LIST": "15m"}
    cycle.run_once(load_settings(env=env), workers=1)
    return root / "reports"


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_summary_json_round_trip_and_its_column_list(produced):
    path = produced / reports.SUMMARY_FILE
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    report = reports.read_summary(path)
    assert report.to_json() == _json(path)
    assert len(report.rows) == 5 and all(isinstance(r, SummaryRow) for r in report.rows)
    for row in _json(path)["rows"]:
        assert tuple(row) == SUMMARY_COLUMNS  # the documented column list stays honest
    # ... and in step with the record: its fields, plus symbol after pair
    assert SUMMARY_COLUMNS == ("pair", "symbol", *[f.name for f in dataclasses.fields(SummaryRow)][1:])
    row = report.rows[0]
    assert (row.data_source, row.exchange, row.symbol) == (DataSource.SAMPLE, None, "BTC/USDT")
    assert row.folds and row.folds[-1].params == row.params and row.period.first_ms < row.period.last_ms
    assert report.clock == ClockReading("replay", 1_620_000_000_000, report.clock.label)
    # one row per line after the run's fields (grep-able, written by the C encoder)
    lines = text.splitlines()
    assert len(lines) == len(report.rows) + 2 and lines[0].endswith('"rows": [') and lines[-1] == "]}"
    assert [json.loads(line.rstrip(",")) for line in lines[1:-1]] == _json(path)["rows"]
    # where the research time went: every stage of the jobs, the kernels inside them
    stages = _json(path)["research_stages_s"]
    assert set(stages) == {"read", "prepare", "search", "chance", "judge", "kernel", "lines"}
    assert all(v >= 0 for v in stages.values()) and stages["kernel"] > 0 and stages["search"] > 0
    assert stages["kernel"] + stages["lines"] <= sum(stages[k] for k in ("search", "chance", "judge")) + 1e-3
    assert sum(v for k, v in stages.items() if k not in ("kernel", "lines")) <= _json(path)["research_s"] + 1e-3


def test_candidates_round_trip(produced):
    path = produced / reports.CANDIDATES_FILE
    report = reports.read_candidates(path)
    assert report.to_json() == yaml.safe_load(path.read_text())
    [cand] = report.candidates
    best = next(r for r in reports.read_summary(produced / reports.SUMMARY_FILE).rows if r.entry_set == cand.entry_set)
    assert cand == reports.Candidate.from_row(best)
    assert cand.curve == f"curves/BTCUSDT_15m_{cand.entry_set}.json" and (produced / cand.curve).is_file()


def test_curve_round_trip_with_positive_drawdown_in_ms(produced):
    [cand] = reports.read_candidates(produced / reports.CANDIDATES_FILE).candidates
    path = produced / cand.curve
    curve = reports.read_curve(path)
    assert curve.to_json() == _json(path)
    assert 0 < len(curve.timestamps_ms) <= reports.CURVE_POINTS
    assert cand.period.first_ms < curve.timestamps_ms[0] and curve.timestamps_ms[-1] == cand.period.last_ms
    # DESIGN "Metrics": drawdown is a positive percent below the running peak, as max_drawdown_pct
    assert min(curve.drawdown_pct) == 0.0 and max(curve.drawdown_pct) <= cand.metrics["max_drawdown_pct"] + 1e-9
    assert all(t.reason for t in curve.trades) and len(curve.trades) == cand.metrics["n_trades"]


def test_status_round_trip(produced):
    path = produced / reports.STATUS_FILE
    status = reports.read_status(path)
    assert status.to_json() == _json(path)
    assert (status.data_source, status.exchanges, status.source_text) == (DataSource.SAMPLE, (), "offline sample")
    assert [(s.pair, s.timeframe) for s in status.states] == [("BTCUSDT", "15m")] and status.n_rows == 5
    assert status.gaps and status.gaps[0].n_missing > 0  # the sample's Binance halts


def _break(doc: dict, keys: list, value) -> dict:
    inner = doc
    for k in keys[:-1]:
        inner = inner[k]
    inner[keys[-1]] = value
    return doc


@pytest.mark.parametrize("name, keys, value, message", [
    ("summary.json", ["rows", 0, "bars"], "x", r"summary.json → rows\[0\].bars = 'x': expected an integer ≥ 0"),
    ("summary.json", ["rows", 1, "data_source"], "offline sample",
     r"rows\[1\].data_source = 'offline sample': expected one of exchange, sample, stored, local, unknown"),
    ("summary.json", ["rows", 0, "out_of_sample", "sharpe"], "NaN",
     r"rows\[0\].out_of_sample.sharpe = 'NaN': expected a number or null"),
    ("summary.json", ["rows", 0, "exit_plan", "tp"], "1:50",
     r"summary.json → rows\[0\].exit_plan.tp: allocations sum to 50 %: expected 100"),
    ("summary.json", ["errors"], [{"stage": "backtest", "message": "x"}],
     r"errors\[0\].stage = 'backtest': expected one of setup, housekeeping, watchlist, backfill, lookahead, research, promotion, paper, status, config"),
    ("status.json", ["cycle", "started_at_ms"], None, r"status.json → cycle.started_at_ms = None: expected an integer"),
    ("status.json", ["states", 0, "state"], "GOOD", r"states\[0\].state = 'GOOD': expected one of MIS, OLD, DAT, OK"),
    ("curve", ["drawdown_pct", 2], -1.5, r"→ drawdown_pct\[2\] = -1.5: expected a number ≥ 0"),
    ("curve", ["timestamps_ms", 0], 1.6e12 + 0.5, r"→ timestamps_ms\[0\] = 1600000000000.5: expected an integer"),
])
def test_readers_name_file_key_value_and_expectation(produced, tmp_path, name, keys, value, message):
    if name == "curve":
        name = reports.read_candidates(produced / reports.CANDIDATES_FILE).candidates[0].curve
    path = tmp_path / Path(name).name
    path.write_text(json.dumps(_break(_json(produced / name), keys, value)))
    reader = {"summary.json": reports.read_summary, "status.json": reports.read_status}.get(Path(name).name,
                                                                                            reports.read_curve)
    with pytest.raises(DataError, match=message):
        reader(path)


def test_curve_lengths_must_agree(produced, tmp_path):
    name = reports.read_candidates(produced / reports.CANDIDATES_FILE).candidates[0].curve
    doc = _json(produced / name)
    doc["equity_quote"].pop()
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"c.json → equity_quote = '\d+ values': expected one per timestamp"):
        reports.read_curve(tmp_path / "c.json")


def test_candidates_file_messages(tmp_path):
    with pytest.raises(DataError, match="next.yml: file not found; run the research first"):
        reports.read_candidates(tmp_path / "next.yml")
    (tmp_path / "next.yml").write_text("candidates: [\n")
    with pytest.raises(DataError, match=r"next.yml line \d+: not valid YAML"):
        reports.read_candidates(tmp_path / "next.yml")


def test_stage_error_and_status_records():
    e = StageError("backfill", "BTCUSDT 1m: timeout", "BTCUSDT", "1m")
    assert e.to_json() == {"pair": "BTCUSDT", "timeframe": "1m", "stage": "backfill", "message": "BTCUSDT 1m: timeout"}
    status = CycleStatus(started_at_ms=1, finished_at_ms=2_501, clock=ClockReading("wall", 5, "wall clock"),
                         data_source=DataSource.STORED, exchanges=("binance",), risk_mode="aggressive",
                         timeframes=("15m",), pairs=("BTCUSDT",), errors=(e, StageError("watchlist", "offline")))
    doc = status.to_json()
    assert doc["data_source"] == "stored" and doc["exchanges"] == ["binance"] and doc["cycle"]["duration_s"] == 2.5
    assert doc["errors"][1] == {"pair": None, "timeframe": None, "stage": "watchlist", "message": "offline"}
    assert CycleStatus.from_json(Fields(doc, "status.json")) == status


@pytest.mark.parametrize("source, exchanges, words, live", [
    (DataSource.EXCHANGE, ("binance",), "binance", True),
    (DataSource.SAMPLE, (), "offline sample", False),
    (DataSource.STORED, ("binance",), "offline: stored binance candles kept, sample for the rest", False),
    (DataSource.UNKNOWN, (), "unknown", False),
])
def test_data_source_words(source, exchanges, words, live):
    assert describe_source(source, exchanges) == words and source.is_live is live


def test_data_source_of_a_candle_file():
    assert DataSource.of_candle_file("sample") == (DataSource.SAMPLE, None)
    assert DataSource.of_candle_file("binance") == (DataSource.EXCHANGE, "binance")
    assert DataSource.of_candle_file(None) == (DataSource.UNKNOWN, None)
    assert math.isnan(Fields({"x": None}, "f").float("x"))  # null is NaN, undefined
