"""Tests for engine.datastore: CSV validation, atomic locked writes, resampling, gaps, the sample."""
from __future__ import annotations

import gzip
import threading

import numpy as np
import pandas as pd
import pytest

from engine import data as ds
from engine.errors import ConfigError, DataError

T0 = 1_617_321_600_000  # 2021-04-02 00:00 UTC, first candle of the bundled sample
MIN = 60_000


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Candle frame from (ms, o, h, l, c, v) tuples."""
    ts, o, h, lo, c, v = zip(*rows) if rows else ([],) * 6
    return ds.candles_from_arrays(ts, o, h, lo, c, v)


def write_text(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


GOOD = (
    "timestamp,open,high,low,close,volume\n"
    f"{T0},10.0,11.0,9.5,10.5,3.0\n"
    f"{T0 + MIN},10.5,10.8,10.1,10.2,0.0\n"
)


# ------------------------------------------------------------------ reading and validation


def test_read_candles_returns_utc_frame(tmp_path):
    path = write_text(tmp_path / "ohlcv" / "BTCUSDT" / "1m.csv", GOOD)
    candles = ds.read_candles(path)
    assert list(candles.columns) == ["open", "high", "low", "close", "volume"]
    assert candles.index.name == "timestamp"
    assert str(candles.index.tz) == "UTC"
    assert candles.index[0] == pd.Timestamp("2021-04-02 00:00", tz="UTC")
    assert candles["volume"].tolist() == [3.0, 0.0]
    assert all(candles.dtypes == np.float64)


def test_a_whole_number_float_timestamp_is_read_as_its_integer(tmp_path):
    """A stamp written as pandas writes a float column (``1617321660000.0``) is the integer it denotes:
    the C parser casts it only when every stamp is whole (a fractional one goes to the error above)."""
    whole, plain = tmp_path / "1m.csv", tmp_path / "b" / "1m.csv"
    whole.write_text(GOOD.replace(f"{T0 + MIN},", f"{T0 + MIN}.0,"))
    plain.parent.mkdir()
    plain.write_text(GOOD)
    pd.testing.assert_frame_equal(ds.read_candles(whole), ds.read_candles(plain))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "file is empty"),
        ("time,open,high,low,close,volume\n", r"row 0 \(header\): found 'time,open"),
        (GOOD + f"{T0 + 2 * MIN},10.2,10.3,10.1,10.2", r"row 3: last line .* no line end \(truncated write\)"),
        (GOOD.replace(f"{T0 + MIN},", f"{T0 + MIN}.5,"), r"row 2: timestamp '1617321660000.5', expected an integer"),
        (GOOD.replace(f"{T0 + MIN},", "2021-04-02 00:01,"), r"row 2: timestamp '2021-04-02 00:01', expected an integer"),
        (GOOD.replace("10.5,10.8", "abc,10.8"), r"row 2: open 'abc', expected a finite number"),
        (GOOD.replace("10.5,10.8", ",10.8"), r"row 2: open '', expected a finite number"),
        (GOOD.replace(",3.0\n", ",-1.0\n"), r"row 1: volume -1.0, expected volume >= 0"),
        (GOOD.replace("10.0,11.0,9.5", "10.0,11.0,10.2"), r"row 1: low 10.2 .* expected low <= min\(open, close\)"),
        (GOOD.replace("10.0,11.0,9.5", "10.0,10.4,9.5"), r"row 1: high 10.4 .* expected high >= max\(open, close\)"),
        (GOOD.replace(f"{T0 + MIN},", f"{T0},"), r"row 2: timestamp 1617321600000, expected a timestamp after the previous"),
        (GOOD.replace(f"{T0 + MIN},", f"{T0 - MIN},"), r"row 2: timestamp 1617321540000, expected a timestamp after"),
        (GOOD.replace(f"{T0 + MIN},", f"{T0 + MIN + 1},"), r"row 2: timestamp 1617321660001, expected a multiple of 60000 ms"),
        (GOOD + f"{T0 + 2 * MIN},1,1,1,1,1,7\n", r"malformed CSV .* expected 6 fields"),
    ],
    ids=[
        "empty", "header", "truncated", "float-ts", "date-ts", "text-price", "missing-price", "neg-volume",
        "low-above-body", "high-below-body", "duplicate", "descending", "off-grid", "extra-field",
    ],
)
def test_read_candles_names_file_row_value_expected_and_fix(tmp_path, text, match):
    path = write_text(tmp_path / "ohlcv" / "BTCUSDT" / "1m.csv", text)
    with pytest.raises(DataError, match=match) as info:
        ds.read_candles(path)
    message = str(info.value)
    assert str(path) in message
    assert "re-run the backfill" in message


def test_read_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match=r"no such candle file. Run the backfill"):
        ds.read_candles(tmp_path / "1m.csv")


def test_grid_taken_from_file_name_or_argument(tmp_path):
    text = "timestamp,open,high,low,close,volume\n" f"{T0 + MIN},1,1,1,1,1\n"
    path = write_text(tmp_path / "5m.csv", text)
    with pytest.raises(DataError, match="multiple of 300000 ms"):
        ds.read_candles(path)
    other = write_text(tmp_path / "candles.csv", text)
    assert len(ds.read_candles(other)) == 1  # no timeframe in the name: grid not checked
    with pytest.raises(DataError, match="multiple of 300000 ms"):
        ds.read_candles(other, "5m")


def test_header_only_file_is_empty_frame(tmp_path):
    path = write_text(tmp_path / "1m.csv", ds.CSV_HEADER + "\n")
    assert len(ds.read_candles(path)) == 0


def test_validate_candles_rejects_bad_frames():
    good = frame([(T0, 1, 2, 0.5, 1.5, 1)])
    ds.validate_candles(good, "1m")
    with pytest.raises(DataError, match=r"columns \['open', 'high'\]"):
        ds.validate_candles(good[["open", "high"]])
    naive = good.copy()
    naive.index = naive.index.tz_localize(None)
    with pytest.raises(DataError, match="tz-naive"):
        ds.validate_candles(naive)
    with pytest.raises(DataError, match=r"row 0: close nan, expected a finite number"):
        ds.validate_candles(frame([(T0, 1, 2, 0.5, float("nan"), 1)]))
    with pytest.raises(DataError, match=r"row 0: low 0.0 .*expected a price > 0|row 0: low 0.0"):
        ds.validate_candles(frame([(T0, 1, 2, 0.0, 1.5, 1)]))


# ------------------------------------------------------------------ writing


def test_write_read_round_trip_is_byte_identical_to_the_sample(tmp_path):
    candles = ds.load_sample("BTCUSDT").iloc[:2000]
    path = ds.candle_path(tmp_path, "BTC/USDT", "1m")
    ds.write_candles(path, candles, source="sample")
    source_text = gzip.open(ds.SAMPLE_DIR / "BTCUSDT" / "1m.csv.gz", "rt").read()
    expected = "".join(source_text.splitlines(keepends=True)[:2001])
    assert path.read_text() == expected
    assert ds.read_candles(path).equals(candles)
    assert ds.read_source(path) == "sample"
    assert ds.last_candle_ms(path) == T0 + 1999 * MIN


def test_write_refuses_invalid_candles_and_keeps_the_old_file(tmp_path):
    path = ds.candle_path(tmp_path, "BTCUSDT", "1m")
    good = frame([(T0, 1, 2, 0.5, 1.5, 1)])
    ds.write_candles(path, good)
    with pytest.raises(DataError, match=r"row 0: high 1.4 .*expected high >= max\(open, close\)"):
        ds.write_candles(path, frame([(T0, 1, 1.4, 0.5, 1.5, 1)]))
    with pytest.raises(DataError, match=r"row 0: high 0.4 \(low 0.5\), expected high >= low"):
        ds.write_candles(path, frame([(T0, 0.45, 0.4, 0.5, 0.45, 1)]))
    assert ds.read_candles(path).equals(good)
    assert [p.name for p in path.parent.iterdir() if ".tmp-" in p.name] == []


def test_stale_temporary_files_are_removed(tmp_path):
    path = ds.candle_path(tmp_path, "BTCUSDT", "1m")
    stale = write_text(path.parent / ".1m.csv.tmp-999-deadbeef", "half a fi")
    ds.write_candles(path, frame([(T0, 1, 2, 0.5, 1.5, 1)]))
    assert not stale.exists()


def test_append_adds_only_new_candles_and_fills_gaps(tmp_path):
    candles = ds.load_sample("ETHUSDT").iloc[:100]
    path = ds.candle_path(tmp_path, "ETHUSDT", "1m")
    assert ds.append_candles(path, candles.iloc[:50], source="binance") == 50
    assert ds.append_candles(path, candles.iloc[40:80], source="binance") == 30
    assert ds.append_candles(path, candles.iloc[40:80], source="binance") == 0
    holes = candles.iloc[80:].drop(candles.index[85:90])
    assert ds.append_candles(path, holes, source="binance") == 15
    assert ds.append_candles(path, candles.iloc[85:90], source="binance") == 5  # gap filled in order
    assert ds.read_candles(path).equals(candles)


def test_append_with_another_source_replaces_instead_of_mixing(tmp_path, caplog):
    candles = ds.load_sample("ETHUSDT").iloc[:100]
    path = ds.candle_path(tmp_path, "ETHUSDT", "1m")
    ds.append_candles(path, candles.iloc[:60], source="sample")
    with caplog.at_level("INFO", logger="engine.data"):
        added = ds.append_candles(path, candles.iloc[50:], source="binance")
    assert added == 50
    assert ds.read_candles(path).equals(candles.iloc[50:])
    assert ds.read_source(path) == "binance"
    assert "candles from binance replace the bundled sample's (never mixed)" in caplog.text


def test_your_own_file_is_never_replaced_without_being_moved_aside(tmp_path, caplog):
    candles = ds.load_sample("ETHUSDT").iloc[:20]
    path = ds.candle_path(tmp_path, "ETHUSDT", "1m")
    ds.write_candles(path, candles.iloc[:10])  # no source given: no sidecar, as a user's own file
    before = path.read_bytes()
    assert ds.read_source(path) is None
    with pytest.raises(DataError, match=r"1m.csv: holds 10 candles from an unknown source \(no 1m.source.json\); "
                                        r"candles from binance are never mixed in. Replace it explicitly"):
        ds.append_candles(path, candles.iloc[10:], source="binance")
    assert path.read_bytes() == before  # refused: nothing changed
    with caplog.at_level("WARNING", logger="engine.data"):
        assert ds.append_candles(path, candles.iloc[10:], source="binance", replace=True) == 10
    aside = list(path.parent.glob("1m.csv.replaced-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == before  # the old file, kept beside it
    assert str(path) in caplog.text and str(aside[0]) in caplog.text  # one WARNING names both paths
    assert len(ds.read_candles(path)) == 10 and ds.read_source(path) == "binance"


def test_an_import_and_an_exchange_are_different_sources_but_imports_merge(tmp_path):
    candles = ds.load_sample("ETHUSDT").iloc[:30]
    path = ds.candle_path(tmp_path, "ETHUSDT", "1m")
    ds.append_candles(path, candles.iloc[:10], source="import:ETHUSDT-1m-2021-04.zip")
    assert ds.append_candles(path, candles.iloc[10:20], source="import:ETHUSDT-1m-2021-05.zip") == 10
    with pytest.raises(DataError, match="candles from import:ETHUSDT-1m-2021-04.zip; candles from binance"):
        ds.append_candles(path, candles.iloc[20:], source="binance")


def test_corrupt_file_is_moved_aside_and_rebuilt(tmp_path, caplog):
    path = ds.candle_path(tmp_path, "BTCUSDT", "1m")
    write_text(path, GOOD.replace("10.5,10.8", "oops,10.8"))
    with caplog.at_level("WARNING", logger="engine.data"):
        assert ds.read_or_quarantine(path) is None
    moved = list(path.parent.glob("1m.csv.corrupt-*"))
    assert len(moved) == 1 and "oops" in moved[0].read_text()
    assert not path.exists()
    assert "failed validation" in caplog.text and moved[0].name in caplog.text
    good = frame([(T0, 1, 2, 0.5, 1.5, 1)])
    write_text(path, "garbage\n")
    assert ds.append_candles(path, good, source="binance") == 1  # rebuilt, never mixed with garbage
    assert len(list(path.parent.glob("1m.csv.corrupt-*"))) == 2
    assert ds.read_candles(path).equals(good)


def test_last_candle_ms_reads_the_tail(tmp_path):
    assert ds.last_candle_ms(tmp_path / "none.csv") is None
    path = write_text(tmp_path / "1m.csv", ds.CSV_HEADER + "\n")
    assert ds.last_candle_ms(path) is None
    write_text(path, GOOD)
    assert ds.last_candle_ms(path) == T0 + MIN
    # the bundled gzip files too: last candle 2021-05-02 23:59 UTC
    assert ds.last_candle_ms(ds.SAMPLE_DIR / "BTCUSDT" / "1m.csv.gz") == 1_619_999_940_000


def test_concurrent_appends_from_threads_lose_nothing(tmp_path):
    candles = ds.load_sample("SOLUSDT").iloc[:400]
    path = ds.candle_path(tmp_path, "SOLUSDT", "1m")
    chunks = [candles.iloc[i::4] for i in range(4)]  # interleaved: every append merges inside

    def worker(chunk):
        for k in range(0, len(chunk), 20):
            ds.append_candles(path, chunk.iloc[k : k + 20], source="binance")

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ds.read_candles(path).equals(candles)


def test_candle_path_layout_and_bad_input(tmp_path):
    assert ds.candle_path(tmp_path, "BTC/USDT", "15m") == tmp_path / "ohlcv" / "BTCUSDT" / "15m.csv"
    with pytest.raises(ConfigError, match="timeframe '7x'"):
        ds.candle_path(tmp_path, "BTCUSDT", "7x")
    assert ds.source_sidecar_path(tmp_path / "1m.csv").name == "1m.source.json"


# ------------------------------------------------------------------ resampling


def test_resample_by_hand_with_a_halt():
    # 1m candles 00:00-00:09 except 00:05-00:07 (a halt); 00:09 is the last.
    rows = [
        (T0 + 0 * MIN, 10, 12, 9, 11, 1),
        (T0 + 1 * MIN, 11, 13, 10, 12, 2),
        (T0 + 2 * MIN, 12, 12, 8, 9, 3),
        (T0 + 3 * MIN, 9, 10, 9, 10, 4),
        (T0 + 4 * MIN, 10, 11, 10, 11, 5),
        (T0 + 8 * MIN, 20, 21, 19, 20, 6),
        (T0 + 9 * MIN, 20, 22, 20, 21, 7),
    ]
    out = ds.resample_candles(frame(rows), "5m")
    # bucket 00:00: open 10 (first), high 13, low 8, close 11 (last), volume 1+2+3+4+5 = 15
    # bucket 00:05: only 00:08 and 00:09 exist (halt inside): open 20, high 22, low 19, close 21, vol 13
    assert out.index.tolist() == [pd.Timestamp(T0, unit="ms", tz="UTC"), pd.Timestamp(T0 + 5 * MIN, unit="ms", tz="UTC")]
    assert out.iloc[0].tolist() == [10, 13, 8, 11, 15]
    assert out.iloc[1].tolist() == [20, 22, 19, 21, 13]


def test_resample_leaves_empty_buckets_absent_and_drops_unfinished_ends():
    rows = [(T0 + k * MIN, 1, 1, 1, 1, 1) for k in list(range(2, 5)) + list(range(15, 20)) + [25, 26]]
    out = ds.resample_candles(frame(rows), "5m")
    # 00:00 bucket starts before the data (00:02): dropped; 00:05 and 00:10 had no candle: absent;
    # 00:15 complete; 00:25 holds only 00:25-00:26: unfinished, dropped.
    assert [int(t.value // 10**6) for t in out.index] == [T0 + 15 * MIN]
    assert ds.find_gaps(out, "5m") == []


def test_resample_matches_pandas_on_the_sample_and_keeps_the_halts():
    one = ds.load_sample("BTCUSDT")
    for tf, rule in (("5m", "5min"), ("15m", "15min")):
        ours = ds.resample_candles(one, tf)
        agg = one.resample(rule, label="left", closed="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        ).dropna(subset=["open"])
        pd.testing.assert_frame_equal(ours, agg, check_freq=False, check_index_type=False)
        ds.validate_candles(ours, tf)
    gaps_15m = ds.find_gaps(ds.resample_candles(one, "15m"), "15m")
    assert [g[2] for g in gaps_15m] == [10, 18]


def test_resample_rejects_a_lower_or_misaligned_target():
    five = ds.load_sample("BTCUSDT", "5m").iloc[:10]
    with pytest.raises(DataError, match="multiple of the source timeframe"):
        ds.resample_candles(five, "1m")
    assert len(ds.resample_candles(ds.empty_candles(), "5m")) == 0


# ------------------------------------------------------------------ gaps


def test_find_gaps_lists_the_two_binance_halts_of_the_sample():
    one = ds.load_sample("BTCUSDT")
    # PROVENANCE.md §1.3: 2021-04-20 02:00-04:29 (150 min) and 2021-04-25 04:01-08:44 (284 min)
    assert ds.find_gaps(one, "1m") == [
        (pd.Timestamp("2021-04-20 02:00", tz="UTC").value // 10**6, pd.Timestamp("2021-04-20 04:29", tz="UTC").value // 10**6, 150),
        (pd.Timestamp("2021-04-25 04:01", tz="UTC").value // 10**6, pd.Timestamp("2021-04-25 08:44", tz="UTC").value // 10**6, 284),
    ]
    assert ds.find_gaps(np.array([T0, T0 + MIN]), "1m") == []
    assert ds.find_gaps(np.array([T0]), "1m") == []


def test_gap_policy_skip_and_ffill_by_hand():
    rows = [(T0, 10, 12, 9, 11, 1), (T0 + 3 * MIN, 11, 14, 10, 13, 2)]
    candles = frame(rows)
    assert ds.apply_gap_policy(candles, "1m", "skip") is candles
    filled = ds.apply_gap_policy(candles, "1m", "ffill")
    # 00:01 and 00:02 missing: flat at the previous close 11, volume 0
    assert filled.to_numpy().tolist() == [
        [10, 12, 9, 11, 1], [11, 11, 11, 11, 0], [11, 11, 11, 11, 0], [11, 14, 10, 13, 2],
    ]
    ds.validate_candles(filled, "1m")
    assert ds.find_gaps(filled, "1m") == []
    with pytest.raises(ConfigError, match=r"gap policy 'bridge': expected one of skip ffill"):
        ds.apply_gap_policy(candles, "1m", "bridge")


def test_ffill_on_the_sample_fills_exactly_the_missing_minutes():
    one = ds.load_sample("XRPUSDT")
    filled = ds.apply_gap_policy(one, "1m", "ffill")
    assert len(filled) == 44_640  # PROVENANCE: 44,207 rows + 433 missing minutes
    assert (filled.loc[one.index] == one).all().all()


# ------------------------------------------------------------------ bundled sample


def test_sample_pairs_and_load_sample():
    pairs = ds.sample_pairs()
    assert len(pairs) == 18 and "BTCUSDT" in pairs and pairs == sorted(pairs)
    five = ds.load_sample("BTC/USDT", "5m")
    assert five.index[0] == pd.Timestamp("2021-04-02", tz="UTC")
    assert five.index[-1] == pd.Timestamp("2021-05-02 23:55", tz="UTC")
    first = ds.load_sample("BTCUSDT").iloc[:5]
    assert five.iloc[0]["volume"] == pytest.approx(first["volume"].sum())
    copy = ds.load_sample("BTCUSDT")
    copy.iloc[0, 0] = -1
    assert ds.load_sample("BTCUSDT").iloc[0, 0] == 58720.45  # callers get copies
    with pytest.raises(DataError, match=r"sample pair 'FOOUSDT': not in the month sample, expected one of ADAUSDT"):
        ds.load_sample("FOOUSDT")


# ------------------------------------------------------------------ properties

import tempfile  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def gappy_minutes(draw, n_buckets_max: int = 8):
    """Random valid 1m candles over whole 5m buckets: first and last minute present, holes inside."""
    n_slots = 5 * draw(st.integers(1, n_buckets_max))
    present = draw(st.lists(st.booleans(), min_size=n_slots, max_size=n_slots))
    present[0] = present[-1] = True
    rows = []
    for k, keep in enumerate(present):
        if not keep:
            continue
        o, c = draw(st.floats(1, 1e6)), draw(st.floats(1, 1e6))
        h = max(o, c) * (1 + draw(st.floats(0, 0.05)))
        lo = min(o, c) * (1 - draw(st.floats(0, 0.05)))
        rows.append((T0 + k * MIN, o, h, lo, c, draw(st.floats(0, 1e9))))
    return frame(rows)


@settings(max_examples=40, deadline=None)
@given(gappy_minutes())
def test_property_resample_equals_pandas_and_never_bridges(candles):
    ours = ds.resample_candles(candles, "5m", source_timeframe="1m")
    agg = candles.resample("5min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    ).dropna(subset=["open"])
    pd.testing.assert_frame_equal(ours, agg, check_freq=False, check_index_type=False)
    ds.validate_candles(ours, "5m")
    # a 5m bucket exists exactly when at least one of its minutes does
    minutes = ds.index_ms(candles)
    assert set(ds.index_ms(ours)) == set(minutes - minutes % 300_000)


@settings(max_examples=40, deadline=None)
@given(gappy_minutes(), st.sampled_from(["skip", "ffill"]))
def test_property_gap_policy(candles, policy):
    out = ds.apply_gap_policy(candles, "1m", policy)
    n_missing = sum(g[2] for g in ds.find_gaps(candles, "1m"))
    if policy == "skip":
        assert out is candles
        return
    assert len(out) == len(candles) + n_missing and ds.find_gaps(out, "1m") == []
    assert out.loc[candles.index].equals(candles)
    inserted = out.drop(candles.index)
    assert (inserted["volume"] == 0).all()
    assert (inserted[["open", "high", "low"]].to_numpy() == inserted[["close"]].to_numpy()).all()
    prev_close = out["close"].shift(1).loc[inserted.index]
    assert (inserted["close"] == prev_close).all()


@settings(max_examples=25, deadline=None)
@given(gappy_minutes(n_buckets_max=4), st.randoms(use_true_random=False))
def test_property_appending_chunks_in_any_order_stores_the_union(candles, rng):
    order = list(range(len(candles)))
    rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, len(order)), k=min(3, len(order) - 1))) if len(order) > 1 else []
    chunks = [sorted(order[a:b]) for a, b in zip([0, *cuts], [*cuts, len(order)])]
    with tempfile.TemporaryDirectory() as tmp:
        path = ds.candle_path(tmp, "BTCUSDT", "1m")
        added = sum(ds.append_candles(path, candles.iloc[chunk], source="binance") for chunk in chunks)
        added += ds.append_candles(path, candles, source="binance")  # everything again: nothing new
        assert added == len(candles)
        assert ds.read_candles(path).equals(candles)  # floats survive the CSV exactly (repr)


def test_the_long_sample_is_real_1h_candles_and_never_merges_with_the_month(tmp_path):
    from engine.data import backfill
    from engine.data.sample import sample_clock, sample_set

    long = sample_set("long")
    assert len(long.pairs()) == 18 and long.timeframes_for(("1m", "5m")) == ("1h", "4h")
    btc = ds.load_sample("BTCUSDT", sample="long")
    assert ds.index_ms(btc)[0] == 1_621_555_200_000 and len(btc) == 42_401  # 2021-05-21 00:00, PROVENANCE.md
    four = ds.load_sample("BTCUSDT", "4h", sample="long")
    assert four["high"].iloc[0] == btc["high"].iloc[:4].max() and four["volume"].iloc[0] == btc["volume"].iloc[:4].sum()
    assert sample_clock("long").now_ms() == 1_774_220_400_000 + 3_600_000  # close of 2026-03-22 23:00
    matic = ds.load_sample("MATICUSDT", sample="long")  # supplement-B ends 2023-01-09: OLD on that clock
    assert ds.index_ms(matic)[-1] < sample_clock("long").now_ms() - 365 * 86_400_000
    with pytest.raises(DataError, match="timeframe 15m is below its 1h candles"):
        ds.load_sample("BTCUSDT", "15m", sample="long")
    with pytest.raises(ConfigError, match="sample 'year': expected one of month, long"):
        ds.load_sample("BTCUSDT", sample="year")
    # a month-sample 1h file is replaced (not merged) when the long sample seeds the same file
    backfill.seed_from_sample(tmp_path, ["BTCUSDT"], ["1h"])
    path = ds.candle_path(tmp_path, "BTCUSDT", "1h")
    assert ds.read_source(path) == "sample"
    [r] = backfill.seed_from_sample(tmp_path, ["BTCUSDT"], ["1h"], sample="long")
    assert ds.read_source(path) == "sample-long" and ds.read_candles(path).equals(btc) and not r.kept
    assert not list(path.parent.glob("*.replaced-*"))  # a sample's file is bundled: nothing to keep aside


def test_tail_reader_reads_the_last_candles_as_the_whole_file_reader(tmp_path):
    from engine.data import backfill
    from engine.data.store import read_tail_candles

    backfill.seed_from_sample(tmp_path, ["BTCUSDT"], ["1m"])
    path = ds.candle_path(tmp_path, "BTCUSDT", "1m")
    whole = ds.read_candles(path, "1m")
    assert read_tail_candles(path, 200).equals(whole.iloc[-200:])
    assert read_tail_candles(path, 10**6).equals(whole)  # more than the file holds: all of it
    gz = ds.SAMPLE_DIR / "BTCUSDT" / "1m.csv.gz"
    assert read_tail_candles(gz, 3).equals(ds.read_candles(gz).iloc[-3:])
    lines = path.read_text().splitlines()
    lines[-2] = lines[-2].split(",")[0] + ",abc,1,1,1,1"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"1m.csv row 199 of the last 200: open 'abc', expected a finite number"):
        read_tail_candles(path, 200)
    path.write_text("\n".join(lines)[:-3])  # a truncated last row
    with pytest.raises(DataError, match="has no line end"):
        read_tail_candles(path, 200)


def test_a_file_is_parsed_once_while_it_stays_the_same(tmp_path):
    """The parsed-candles cache: a second read of an unchanged file is the cached frame; a rewrite, an
    append or a corruption is seen at once; changing a returned frame never changes the next read."""
    from engine.data import csvfile

    path = tmp_path / "ohlcv" / "BTCUSDT" / "1m.csv"
    path.parent.mkdir(parents=True)
    path.write_text(GOOD)
    first = ds.read_candles(path)
    key = next(k for k in csvfile._PARSED if k[1] == path.stat().st_ino)
    assert key[2] == path.stat().st_size
    first.loc[first.index[0], "open"] = -1.0  # copy-on-write: the cache keeps the file's value
    again = ds.read_candles(path)
    assert again["open"].iloc[0] == 10.0 and len(again) == len(first)
    path.write_text(GOOD + f"{T0 + 2 * MIN},10.2,10.3,10.1,10.2,1.0\n")  # same inode, new size
    assert len(ds.read_candles(path)) == len(first) + 1
    path.write_text(GOOD.replace("10.5,10.8", "abc,10.8"))
    with pytest.raises(DataError, match="open 'abc'"):
        ds.read_candles(path)
