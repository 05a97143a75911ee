"""data_source: local — the files in data_dir are the watchlist and set the clock."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from engine import data as ds
from engine.data import local
from engine.data import universe as u
from engine.errors import ConfigError


@pytest.fixture
def store(tmp_path):
    # two pairs of the user's own (no sidecar, imported) with different ends and volumes
    ds.write_candles(ds.candle_path(tmp_path, "BTCUSDT", "1m"), ds.load_sample("BTCUSDT").iloc[:3000],
                     source="import:btc.csv")
    ds.write_candles(ds.candle_path(tmp_path, "SOLUSDT", "1m"), ds.load_sample("SOLUSDT").iloc[:2000])
    ds.write_candles(ds.candle_path(tmp_path, "SOLUSDT", "15m"), ds.load_sample("SOLUSDT", "15m").iloc[:100])
    return tmp_path


def test_local_files_and_pairs(store):
    files = local.local_files(store)
    assert [(f.pair, f.timeframe, f.source) for f in files] == [
        ("BTCUSDT", "1m", "import:btc.csv"), ("SOLUSDT", "1m", "unknown"), ("SOLUSDT", "15m", "unknown")]
    assert local.local_pairs(store, "USDT") == ["BTCUSDT", "SOLUSDT"]
    with pytest.raises(ConfigError, match=r"quote 'EUR': no pair quoted in EUR in .*ohlcv; found BTCUSDT, SOLUSDT "
                                          r"\(quotes USDT\). Set runtime.quote"):
        local.local_pairs(store, "EUR")


def test_local_clock_is_the_close_of_the_newest_candle(store):
    clock = local.local_clock(store, ["BTCUSDT", "SOLUSDT"], ["1m"])
    btc_last = int(ds.index_ms(ds.load_sample("BTCUSDT").iloc[:3000])[-1])
    assert clock.kind == "replay" and clock.now_ms() == btc_last + 60_000
    assert "last candle of the local data" in clock.label
    with pytest.raises(ConfigError, match="no candles of BTCUSDT in the timeframes 4h"):
        local.local_clock(store, ["BTCUSDT"], ["4h"])


def test_local_watchlist_ranks_by_the_files_own_volume(store, tmp_path):
    volumes = local.local_volumes(store, ["BTCUSDT", "SOLUSDT"], ("1m",))
    btc = ds.load_sample("BTCUSDT").iloc[:3000]
    btc = btc[btc.index > btc.index[-1] + pd.Timedelta("1min") - pd.Timedelta("1D")]  # closed within 24 h
    assert volumes["BTCUSDT"] == pytest.approx(float((btc["close"] * btc["volume"]).sum()))
    watch = u.refresh_watchlist(None, tmp_path / "reports", quote="USDT", top_n=5, local_dir=store, timeframes=("1m",))
    assert watch["source"] == "local data" and {p["pair"] for p in watch["pairs"]} == {"BTCUSDT", "SOLUSDT"}
    ranked = [p["pair"] for p in watch["pairs"]]
    assert ranked == sorted(volumes, key=lambda k: -volumes[k])
    assert json.loads((tmp_path / "reports" / "watchlist.json").read_text())["source"] == "local data"


def test_offline_sample_with_a_quote_it_does_not_have_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"quote 'EUR': the bundled sample has no pair quoted in EUR; its pairs are "
                                          r"ADAUSDT, .* Set runtime.quote"):
        u.refresh_watchlist(None, tmp_path, quote="EUR")
    assert not (tmp_path / "watchlist.json").exists()
