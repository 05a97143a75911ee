"""Bring your own candles: one small file of each supported format, made here from the bundled sample."""
from __future__ import annotations

import gzip
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from engine import data as ds
from engine.data.importer import format_table, import_candles
from engine.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def btc():
    return ds.load_sample("BTCUSDT").iloc[:600]  # 10 hours of real 1m candles


def _rows(candles, scale=1, iso=False):
    ts = ds.index_ms(candles)
    stamps = (pd.to_datetime(ts, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ") if iso
              else (ts * scale // 1000 if scale < 1000 else ts * (scale // 1000)))
    return [[stamp, *row] for stamp, row in zip(stamps, candles[list(ds.CANDLE_COLUMNS)].to_numpy().tolist())]


def _csv(rows, header=None) -> str:
    lines = [",".join(header)] if header else []
    lines += [",".join(str(v) for v in r) for r in rows]
    return "\n".join(lines) + "\n"


def _stored(tmp_path, pair, tf):
    return ds.read_candles(ds.candle_path(tmp_path / "data", pair, tf), tf)


def test_csv_with_header_in_ms(tmp_path, btc):
    f = tmp_path / "mine.csv"
    f.write_text(_csv(_rows(btc, 1000), ["timestamp", "open", "high", "low", "close", "volume"]))
    [r] = import_candles([f], tmp_path / "data", pair="BTC/USDT")
    assert (r.pair, r.timeframe, r.rows, r.rows_added, r.timestamp_unit) == ("BTCUSDT", "1m", 600, 600, "ms")
    assert r.source == "import:mine.csv" and ds.read_source(r.path) == "import:mine.csv"
    assert _stored(tmp_path, "BTCUSDT", "1m").equals(btc)


def test_csv_without_header_in_seconds_gzipped_resampled(tmp_path, btc):
    f = tmp_path / "eth.csv.gz"
    f.write_bytes(gzip.compress(_csv(_rows(btc, 1)).encode()))
    results = import_candles([f], tmp_path / "data", pair="ETHUSDT", timeframes=("1m", "5m", "15m"))
    assert [(r.timeframe, r.resampled_from, r.timestamp_unit) for r in results] == [
        ("1m", None, "s"), ("5m", "1m", "s"), ("15m", "1m", "s")]
    assert _stored(tmp_path, "ETHUSDT", "1m").equals(btc)
    assert _stored(tmp_path, "ETHUSDT", "15m").equals(ds.resample_candles(btc, "15m", source_timeframe="1m"))
    assert "ETHUSDT      15m" in format_table(results)


def test_iso_timestamps_with_a_date_column_and_extra_columns(tmp_path, btc):
    rows = [[r[0], *r[1:], 123] for r in _rows(btc.iloc[:50], iso=True)]
    f = tmp_path / "iso.csv"
    f.write_text(_csv(rows, ["Date", "Open", "High", "Low", "Close", "Volume", "Trades"]))
    [r] = import_candles([f], tmp_path / "data", pair="BTC/USDT", timeframe="1m")
    assert r.timestamp_unit == "ISO 8601" and _stored(tmp_path, "BTCUSDT", "1m").equals(btc.iloc[:50])


@pytest.mark.parametrize("unit, scale", [("ms", 1000), ("us", 1_000_000)])
def test_binance_public_data_zips_merge_month_by_month(tmp_path, btc, unit, scale):
    files = []
    for k, part in enumerate((btc.iloc[:300], btc.iloc[300:])):
        rows = [[r[0], *r[1:], r[0] + 59_999, 1.0, 10, 0.5, 0.5, 0] for r in _rows(part, scale)]
        buf = io.BytesIO()
        name = f"BTCUSDT-1m-2021-0{4 + k}"
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"{name}.csv", _csv(rows))
        files.append(tmp_path / f"{name}.zip")
        files[-1].write_bytes(buf.getvalue())
    [r] = import_candles(files, tmp_path / "data")  # pair and timeframe from the names
    assert (r.pair, r.timeframe, r.rows, r.timestamp_unit) == ("BTCUSDT", "1m", 600, unit)
    assert r.files == ("BTCUSDT-1m-2021-04.zip", "BTCUSDT-1m-2021-05.zip")
    assert r.source == "import:BTCUSDT-1m-2021-04.zip+1"
    assert _stored(tmp_path, "BTCUSDT", "1m").equals(btc)
    again = import_candles(files[1:], tmp_path / "data")  # a later import of the same kind merges
    assert again[0].rows == 600 and again[0].rows_added == 0


def test_freqtrade_feather_and_json(tmp_path, btc):
    five = ds.resample_candles(btc, "5m", source_timeframe="1m")
    feather = tmp_path / "BTC_USDT-5m.feather"
    frame = five.reset_index().rename(columns={"timestamp": "date"})
    frame.to_feather(feather)
    js = tmp_path / "ETH_USDT-1m.json"
    js.write_text(json.dumps([[int(r[0]), *r[1:]] for r in _rows(btc.iloc[:100], 1000)]))
    results = import_candles([feather, js], tmp_path / "data")
    assert [(r.pair, r.timeframe, r.timestamp_unit) for r in results] == [("BTCUSDT", "5m", "datetime"),
                                                                          ("ETHUSDT", "1m", "ms")]
    assert _stored(tmp_path, "BTCUSDT", "5m").equals(five)
    assert _stored(tmp_path, "ETHUSDT", "1m").equals(btc.iloc[:100])


def test_timeframe_from_the_spacing_of_the_candles(tmp_path, btc):
    f = tmp_path / "x.csv"
    f.write_text(_csv(_rows(ds.resample_candles(btc, "15m", source_timeframe="1m"), 1000)))
    [r] = import_candles([f], tmp_path / "data", pair="BTCUSDT")
    assert r.timeframe == "15m"


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows.__setitem__(3, [rows[3][0], "abc", *rows[3][2:]]), r"bad.csv line 4: open 'abc', expected a finite number"),
    (lambda rows: rows.__setitem__(5, [rows[4][0], *rows[5][1:]]), r"bad.csv line 6: timestamp \d+, expected a timestamp after"),
    (lambda rows: rows.__setitem__(2, [rows[2][0], 10.0, 1.0, 5.0, 10.0, 1.0]), r"bad.csv line 3: high 1.0 \(low 5.0\), expected high >= low"),
    (lambda rows: rows.__setitem__(1, ["yesterday", *rows[1][1:]]), r"bad.csv line 2: timestamp 'yesterday', expected epoch"),
])
def test_a_bad_row_names_file_line_and_value_and_writes_nothing(tmp_path, btc, edit, message):
    rows = _rows(btc.iloc[:20], 1000)
    edit(rows)
    f = tmp_path / "bad.csv"
    f.write_text(_csv(rows))
    with pytest.raises(DataError, match=message):
        import_candles([f], tmp_path / "data", pair="BTCUSDT", timeframe="1m")
    assert not (tmp_path / "data").exists()


def test_bad_inputs(tmp_path, btc):
    f = tmp_path / "noname.csv"
    f.write_text(_csv(_rows(btc.iloc[:20], 1000)))
    with pytest.raises(ConfigError, match="noname.csv: the pair is not in the file name; pass --pair"):
        import_candles([f], tmp_path / "data")
    odd = tmp_path / "odd.csv"
    odd.write_text(_csv(_rows(btc.iloc[::7].iloc[:20], 1000)))
    with pytest.raises(ConfigError, match=r"odd.csv: candles 420000 ms apart, which is not a timeframe"):
        import_candles([odd], tmp_path / "data", pair="BTCUSDT")
    with pytest.raises(DataError, match="missing.csv: no such file"):
        import_candles([tmp_path / "missing.csv"], tmp_path / "data", pair="BTCUSDT")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv: file is empty"):
        import_candles([empty], tmp_path / "data", pair="BTCUSDT")
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"narrow.csv: 3 columns .* expected timestamp, open, high, low, close, volume"):
        import_candles([narrow], tmp_path / "data", pair="BTCUSDT")


def test_an_import_never_mixes_into_another_source_unless_replace(tmp_path, btc):
    path = ds.candle_path(tmp_path / "data", "BTCUSDT", "1m")
    ds.write_candles(path, btc.iloc[:100], source="binance")
    before = path.read_bytes()
    f = tmp_path / "mine.csv"
    f.write_text(_csv(_rows(btc, 1000)))
    with pytest.raises(DataError, match="holds 100 candles from binance; candles from import:mine.csv are never mixed"):
        import_candles([f], tmp_path / "data", pair="BTCUSDT")
    assert path.read_bytes() == before
    [r] = import_candles([f], tmp_path / "data", pair="BTCUSDT", replace=True)
    assert r.rows == 600 and [p.read_bytes() for p in path.parent.glob("1m.csv.replaced-*")] == [before]
    assert np.array_equal(ds.index_ms(_stored(tmp_path, "BTCUSDT", "1m")), ds.index_ms(btc))
