"""jobs/import_candles.py: the table it prints, --json, and one line with exit 2 on a bad file."""
from __future__ import annotations

import json

from engine import data as ds
from jobs import import_candles as cli


def _write(path, candles):
    rows = [f"{t},{o},{h},{lo},{c},{v}" for t, (o, h, lo, c, v) in
            zip(ds.index_ms(candles), candles[list(ds.CANDLE_COLUMNS)].to_numpy().tolist())]
    path.write_text("\n".join(rows) + "\n")


def test_imports_and_prints_the_table(scalp_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCALP_TF_LIST", "1m,15m")
    f = tmp_path / "SOLUSDT-1m-2021-04.csv"
    _write(f, ds.load_sample("SOLUSDT").iloc[:900])
    assert cli.main([str(f), "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["pair", "tf", "first", "(UTC)", "last", "(UTC)"]
    assert out[1].split()[:2] == ["SOLUSDT", "1m"] and " 900 " in out[1] and "import:SOLUSDT-1m-2021-04.csv" in out[1]
    assert out[2].split()[:2] == ["SOLUSDT", "15m"] and "(resampled from 1m)" in out[2]
    assert ds.read_source(ds.candle_path(tmp_path / "data", "SOLUSDT", "15m")) == "import:SOLUSDT-1m-2021-04.csv"
    assert cli.main([str(f), "--json", "-q"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["timeframe"], r["rows_added"]) for r in rows] == [("1m", 0), ("15m", 0)]


def test_bad_file_one_line_exit_2(scalp_env, tmp_path, capsys):
    f = tmp_path / "BTCUSDT-1m-2021-04.csv"
    f.write_text("1617235200000,1,2,0.5,1.5,10\n1617235260000,1,2,0.5,oops,10\n")
    assert cli.main([str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "BTCUSDT-1m-2021-04.csv line 2: close 'oops', expected a finite number" in err
    assert not (tmp_path / "data" / "ohlcv").exists()
