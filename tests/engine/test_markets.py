"""Pair ⇄ folder mapping and timeframe arithmetic."""
from __future__ import annotations

import pytest

from engine.errors import ConfigError
from engine.markets import floor_to_timeframe, folder_to_pair, pair_to_folder, periods_per_year, timeframe_to_ms


@pytest.mark.parametrize("symbol, folder", [("BTC/USDT", "BTCUSDT"), ("1INCH/USDT", "1INCHUSDT"),
                                            ("ETH/BTC", "ETHBTC"), ("BTC/FDUSD", "BTCFDUSD")])
def test_pair_folder_roundtrip(symbol, folder):
    assert pair_to_folder(symbol) == folder
    assert folder_to_pair(folder) == symbol
    assert pair_to_folder(folder) == folder and folder_to_pair(symbol) == symbol


@pytest.mark.parametrize("bad", ["btc/usdt", "BTC-USDT", "", "../etc", None])
def test_bad_pair(bad):
    with pytest.raises(ConfigError, match="expected a symbol like 'BTC/USDT'"):
        pair_to_folder(bad)


def test_unknown_quote():
    with pytest.raises(ConfigError, match="pair folder 'BTCXYZ'"):
        folder_to_pair("BTCXYZ")


def test_timeframes():
    assert timeframe_to_ms("15m") == 900_000
    assert periods_per_year("1m") == 525_600.0 and periods_per_year("1d") == 365.0
    assert floor_to_timeframe(1_620_000_123_456, "1h") == 1_620_000_000_000  # 2021-05-03 00:00 UTC
    with pytest.raises(ConfigError, match="timeframe '7x': expected one of 1m 5m 15m 1h 4h 1d"):
        timeframe_to_ms("7x")
