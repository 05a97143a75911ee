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


def test_imported_files_of_every_format_round_trip_through_a_local_cycle(scalp_env, tmp_path, monkeypatch, capsys):
    """One file of each supported format, imported by the CLI, then a full cycle with data_source local:
    research rows from exactly those files, the replay clock at their newest candle, the header says so."""
    import gzip
    import io
    import zipfile

    from jobs import maintainer

    monkeypatch.setenv("SCALP_TF_LIST", "15m")
    src = tmp_path / "downloads"
    src.mkdir()
    frames = {p: ds.load_sample(p).iloc[:7000] for p in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "ADAUSDT", "DOTUSDT")}

    def rows(candles, scale=1):
        return "\n".join(f"{t * scale // 1000 if scale < 1000 else t},{o},{h},{lo},{c},{v}" for t, (o, h, lo, c, v) in
                         zip(ds.index_ms(candles), candles[list(ds.CANDLE_COLUMNS)].to_numpy().tolist())) + "\n"

    (src / "BTCUSDT-1m-2021-04.csv").write_text("timestamp,open,high,low,close,volume\n" + rows(frames["BTCUSDT"], 1000))
    (src / "ETHUSDT-1m-2021-04.csv.gz").write_bytes(gzip.compress(rows(frames["ETHUSDT"], 1).encode()))  # seconds
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SOLUSDT-1m-2021-04.csv", rows(frames["SOLUSDT"], 1000))
    (src / "SOLUSDT-1m-2021-04.zip").write_bytes(buf.getvalue())
    frames["ADAUSDT"].reset_index().rename(columns={"timestamp": "date"}).to_feather(src / "ADA_USDT-1m.feather")
    (src / "DOT_USDT-1m.json").write_text(json.dumps(
        [[int(t), *r] for t, r in zip(ds.index_ms(frames["DOTUSDT"]),
                                      frames["DOTUSDT"][list(ds.CANDLE_COLUMNS)].to_numpy().tolist())]))
    assert cli.main([str(p) for p in sorted(src.iterdir())] + ["-q"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SCALP_DATA_SOURCE", "local")
    assert maintainer.main(["--once", "-q"]) == 0
    status = json.loads((tmp_path / "reports" / "status.json").read_text())
    assert status["data_source"] == "local" and set(status["pairs"]) == set(frames)
    newest = max(int(ds.index_ms(ds.resample_candles(f, "15m", source_timeframe="1m"))[-1]) for f in frames.values())
    assert status["clock"]["kind"] == "replay" and status["clock"]["now_ms"] == newest + 900_000  # newest 15m close
    assert {s["source"].split(":")[0] for s in status["states"]} == {"import"}
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert {r["pair"] for r in summary["rows"]} == set(frames) and {r["data_source"] for r in summary["rows"]} == {"local"}
    html = (tmp_path / "public" / "dashboard.html").read_text()
    assert "local data" in html and "source import:" in html
