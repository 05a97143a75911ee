"""The bundled sample: real Binance spot 1m candles of April 2021, and its replay clock.

``engine/sample/ohlcv/<PAIR>/1m.csv.gz``; provenance in ``engine/sample/PROVENANCE.md``. It has
two exchange halts (gaps) per pair: resampling keeps them as absent buckets.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from engine.clock import Clock
from engine.data.candles import index_ms
from engine.data.resample import resample_candles
from engine.data.store import SAMPLE_KIND, last_candle_ms, read_candles
from engine.errors import DataError
from engine.markets import pair_to_folder

#: Folder of the bundled real 1m candles.
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample" / "ohlcv"
#: Source name recorded for candles seeded from the bundled sample.
SAMPLE_SOURCE = SAMPLE_KIND


def sample_pairs() -> list[str]:
    """Return the folder names of the bundled sample's pairs, sorted (``["ADAUSDT", ...]``)."""
    return sorted(p.name for p in SAMPLE_DIR.iterdir() if (p / "1m.csv.gz").is_file())


@functools.lru_cache(maxsize=32)
def _sample_1m(folder: str) -> pd.DataFrame:
    return read_candles(SAMPLE_DIR / folder / "1m.csv.gz", "1m")


def load_sample(pair: str, timeframe: str = "1m") -> pd.DataFrame:
    """Return the bundled real Binance candles of `pair`, resampled from 1m when needed.

    Parameters
    ----------
    pair : str
        ``"BTC/USDT"`` or ``"BTCUSDT"``; one of :func:`sample_pairs`.
    timeframe : str
        ``"1m"`` (as shipped) or a higher timeframe built by :func:`resample_candles`.

    Returns
    -------
    DataFrame
        Candle frame, 2021-04-02 00:00 → 2021-05-02 23:59 UTC (1m), with the two exchange halts
        as gaps. A fresh copy each call.

    Raises
    ------
    DataError
        If the pair is not bundled.

    References
    ----------
    engine/sample/PROVENANCE.md and MANIFEST.json (source repository, commit, checks).
    """
    folder = pair_to_folder(pair)
    if not (SAMPLE_DIR / folder / "1m.csv.gz").is_file():
        raise DataError(
            f"sample pair {folder!r}: not bundled, expected one of {', '.join(sample_pairs())}."
        )
    one_minute = _sample_1m(folder)
    if timeframe == "1m":
        return one_minute.copy()
    return resample_candles(one_minute, timeframe, source_timeframe="1m")


def sample_volumes(now_ms: int | None = None) -> dict[str, float]:
    """Return the 24 h quote volume of each bundled pair: sum of close × volume of its 1m candles.

    Parameters
    ----------
    now_ms : int, optional
        Clock (epoch ms): the 1440 closed 1m candles before it count (open time in
        ``[m - 24 h, m)`` with ``m`` = `now_ms` floored to the minute).
        Default: the last 24 h of each pair's data (the replay clock of the sample).

    Returns
    -------
    dict
        Folder name → quote volume (quote currency, USDT).
    """
    out: dict[str, float] = {}
    for folder in sample_pairs():
        candles = _sample_1m(folder)  # cached, read-only use
        ts = index_ms(candles)
        end = (int(ts[-1]) + 60_000) if now_ms is None else int(now_ms) // 60_000 * 60_000
        window = (ts >= end - 86_400_000) & (ts < end)
        close = np.asarray(candles["close"], dtype=np.float64)[window]
        volume = np.asarray(candles["volume"], dtype=np.float64)[window]
        out[folder] = float(np.sum(close * volume))
    return out


def sample_clock() -> Clock:
    """Return the replay clock of the bundled sample: the close of its last 1m candle."""
    last = max(last_candle_ms(SAMPLE_DIR / p / "1m.csv.gz") or 0 for p in sample_pairs())
    return Clock.replay(last + 60_000)
