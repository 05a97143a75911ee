"""The bundled samples: real Binance spot candles that ship with SCALP, and their replay clocks.

Two sample sets (:data:`SAMPLES`), chosen with ``runtime.sample`` (``SCALP_SAMPLE``, ``bot.py --sample``):

- ``month`` (the default): 18 USDT pairs, 1m candles, 2021-04-02 → 2021-05-02,
  ``engine/sample/ohlcv/<PAIR>/1m.csv.gz``; provenance in ``engine/sample/PROVENANCE.md``.
- ``long``: the same 18 pairs, 1h candles from 2021-05-21 over 1.6 to 4.8 years (12 pairs to
  2026-03-22), ``engine/sample/long/ohlcv/<PAIR>/1h.csv.gz``; provenance in
  ``engine/sample/long/PROVENANCE.md``. Pairs whose history ends earlier are OLD on its clock.

Both keep the exchange's own halts as gaps: resampling leaves them as absent buckets. A sample's
candles are stored with the source ``sample`` (month) or ``sample-long``: two kinds, so the two are
never merged into one file (:func:`engine.data.store.source_kind`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.clock import Clock
from engine.data.candles import index_ms
from engine.data.resample import resample_candles
from engine.data.store import SAMPLE_KIND, last_candle_ms, read_candles
from engine.errors import ConfigError, DataError
from engine.markets import pair_to_folder, timeframe_to_ms

_ROOT = Path(__file__).resolve().parents[1] / "sample"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class SampleSet:
    """One bundled sample set.

    Attributes
    ----------
    name : str
        ``month`` or ``long``.
    folder : Path
        Holds ``<PAIR>/<timeframe>.csv.gz``.
    timeframe : str
        Timeframe of the shipped files; higher ones are resampled from it.
    source : str
        Source recorded for candles seeded from it (``sample``, ``sample-long``).
    timeframes : tuple of str
        Timeframes a cycle on this sample researches when the configured ones are below `timeframe`.
    description : str
        One line for the dashboard and the log.
    """

    name: str
    folder: Path
    timeframe: str
    source: str
    timeframes: tuple[str, ...]
    description: str

    def pairs(self) -> list[str]:
        """Return the folder names of the set's pairs, sorted (``["ADAUSDT", ...]``)."""
        return sorted(p.name for p in self.folder.iterdir() if (p / f"{self.timeframe}.csv.gz").is_file())

    def timeframes_for(self, wanted: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """Return the timeframes of `wanted` this sample can give (its own and multiples of it),
        or its default :attr:`timeframes` when none of `wanted` can be built from it."""
        base = timeframe_to_ms(self.timeframe)
        usable = tuple(tf for tf in wanted if timeframe_to_ms(tf) >= base and timeframe_to_ms(tf) % base == 0)
        return usable or self.timeframes


#: The bundled sample sets by name (constants: the shipped files never change).
SAMPLES: dict[str, SampleSet] = {
    "month": SampleSet("month", _ROOT / "ohlcv", "1m", SAMPLE_KIND, ("1m", "5m", "15m"),
                       "bundled sample: Binance spot 1m candles, April 2021"),
    "long": SampleSet("long", _ROOT / "long" / "ohlcv", "1h", f"{SAMPLE_KIND}-long", ("1h", "4h"),
                      "bundled long sample: Binance spot 1h candles, May 2021 to March 2026"),
}
#: Folder of the default (month) sample's 1m candles.
SAMPLE_DIR = SAMPLES["month"].folder
#: Source name recorded for candles seeded from the default sample.
SAMPLE_SOURCE = SAMPLE_KIND


def sample_set(name: str = "month") -> SampleSet:
    """Return the bundled sample set `name`.

    Raises
    ------
    ConfigError
        If there is no such set (the message lists them).
    """
    try:
        return SAMPLES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"sample {name!r}: expected one of {', '.join(SAMPLES)}") from None


def sample_pairs(sample: str = "month") -> list[str]:
    """Return the folder names of a bundled sample's pairs, sorted (``["ADAUSDT", ...]``)."""
    return sample_set(sample).pairs()


@functools.lru_cache(maxsize=64)
def _shipped(sample: str, folder: str) -> pd.DataFrame:
    # the bundled files never change, so reading each once per process changes no result
    s = SAMPLES[sample]
    return read_candles(s.folder / folder / f"{s.timeframe}.csv.gz", s.timeframe)


def load_sample(pair: str, timeframe: str | None = None, *, sample: str = "month") -> pd.DataFrame:
    """Return the bundled real Binance candles of `pair`, resampled from the shipped timeframe when needed.

    Parameters
    ----------
    pair : str
        ``"BTC/USDT"`` or ``"BTCUSDT"``; one of :func:`sample_pairs`.
    timeframe : str, optional
        The shipped timeframe (``1m`` for ``month``, ``1h`` for ``long``; the default) or a multiple
        of it, built by :func:`engine.data.resample.resample_candles`.
    sample : {"month", "long"}
        Which bundled set.

    Returns
    -------
    DataFrame
        Candle frame with the exchange halts as gaps; a fresh copy each call.

    Raises
    ------
    DataError
        If the pair is not bundled, or `timeframe` is below the shipped one.
    ConfigError
        If `sample` is not a bundled set.

    References
    ----------
    engine/sample/PROVENANCE.md, engine/sample/long/PROVENANCE.md and their MANIFEST.json (source
    repositories, commits, checks).
    """
    s = sample_set(sample)
    folder = pair_to_folder(pair)
    if not (s.folder / folder / f"{s.timeframe}.csv.gz").is_file():
        raise DataError(f"sample pair {folder!r}: not in the {s.name} sample, expected one of {', '.join(s.pairs())}.")
    timeframe = timeframe or s.timeframe
    shipped = _shipped(s.name, folder)
    if timeframe == s.timeframe:
        return shipped.copy()
    if timeframe_to_ms(timeframe) < timeframe_to_ms(s.timeframe):
        raise DataError(f"sample {s.name}: timeframe {timeframe} is below its {s.timeframe} candles; "
                        f"expected {s.timeframe} or a multiple of it")
    return resample_candles(shipped, timeframe, source_timeframe=s.timeframe)


def sample_volumes(now_ms: int | None = None, *, sample: str = "month") -> dict[str, float]:
    """Return the 24 h quote volume of each bundled pair: sum of close × volume of its candles.

    Parameters
    ----------
    now_ms : int, optional
        Clock (epoch ms): the candles that closed in the 24 h before it count (floored to the
        sample's timeframe). Default: the last 24 h of each pair's own data.
    sample : {"month", "long"}
        Which bundled set.

    Returns
    -------
    dict
        Folder name → quote volume (quote currency, USDT).
    """
    s = sample_set(sample)
    step = timeframe_to_ms(s.timeframe)
    out: dict[str, float] = {}
    for folder in s.pairs():
        candles = _shipped(s.name, folder)  # cached, read-only use
        ts = index_ms(candles)
        end = (int(ts[-1]) + step) if now_ms is None else int(now_ms) // step * step
        window = (ts >= end - DAY_MS) & (ts < end)
        close = np.asarray(candles["close"], dtype=np.float64)[window]
        volume = np.asarray(candles["volume"], dtype=np.float64)[window]
        out[folder] = float(np.sum(close * volume))
    return out


def sample_clock(sample: str = "month") -> Clock:
    """Return the replay clock of a bundled sample: the close of its newest candle."""
    s = sample_set(sample)
    last = max(last_candle_ms(s.folder / p / f"{s.timeframe}.csv.gz") or 0 for p in s.pairs())
    note = "last candle of the sample" if s.name == "month" else f"last candle of the {s.name} sample"
    return Clock.replay(last + timeframe_to_ms(s.timeframe), note=note)
