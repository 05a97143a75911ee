"""A data set defines the run: the candle files already in ``data_dir`` (``data_source: local``).

With ``data_source: local`` nothing is fetched and nothing is seeded: the watchlist is the pairs that
have candle files in ``<data_dir>/ohlcv/`` (ranked by the quote volume of their own candles), the
clock is a replay clock at the close of their newest candle, and the dashboard lists the files it
ran on (:func:`local_files`).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.clock import Clock
from engine.data import store
from engine.data.candles import index_ms
from engine.errors import ConfigError, DataError
from engine.markets import TIMEFRAME_MS, folder_to_pair, timeframe_to_ms

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000


@dataclass(frozen=True)
class LocalFile:
    """One candle file of a local data set, as the dashboard lists it.

    Attributes
    ----------
    pair, timeframe : str
        ``BTCUSDT``, ``1m``.
    source : str
        Its recorded source (``import:BTCUSDT-1m-2021-04.zip``, ``binance`` …) or ``unknown``.
    last_ms : int or None
        Open time of its last candle (epoch ms UTC); None for a file without candles.
    """

    pair: str
    timeframe: str
    source: str
    last_ms: int | None

    def to_json(self) -> dict:
        """Return ``{"pair", "timeframe", "source", "last_ms"}``."""
        return asdict(self)


def local_files(data_dir: Path | str) -> list[LocalFile]:
    """Return every candle file under ``<data_dir>/ohlcv/<PAIR>/<TF>.csv``, by pair then timeframe."""
    root = Path(data_dir) / "ohlcv"
    out = []
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for tf in TIMEFRAME_MS:
            path = folder / f"{tf}.csv"
            if path.is_file():
                out.append(LocalFile(folder.name, tf, store.read_source(path) or "unknown",
                                     store.last_candle_ms(path)))
    return out


def _quote_of(folder: str) -> str | None:
    try:
        return folder_to_pair(folder).split("/")[1]
    except ConfigError:
        return None


def local_pairs(data_dir: Path | str, quote: str) -> list[str]:
    """Return the pair folders of ``data_dir`` quoted in `quote` that hold at least one candle.

    Raises
    ------
    ConfigError
        If none does: the message names the folder and the pairs and quotes that are there.
    """
    files = [f for f in local_files(data_dir) if f.last_ms is not None]
    pairs = sorted({f.pair for f in files})
    kept = [p for p in pairs if _quote_of(p) == quote.upper()]
    if not kept:
        quotes = sorted({q for p in pairs if (q := _quote_of(p))})
        found = (f"found {', '.join(pairs[:12])}{' …' if len(pairs) > 12 else ''} (quotes {', '.join(quotes)})"
                 if pairs else "found no candle files (import some with jobs/import_candles.py)")
        raise ConfigError(f"quote {quote!r}: no pair quoted in {quote.upper()} in {Path(data_dir) / 'ohlcv'}; {found}. "
                          "Set runtime.quote (SCALP_QUOTE) to one of those quotes.")
    return kept


def local_volumes(data_dir: Path | str, pairs: list[str], timeframes: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Return each pair's quote volume over the last 24 h of its own candles (close × volume summed).

    Uses the pair's lowest timeframe among `timeframes` that has a file (else any file it has).
    A file that cannot be read counts 0 (one WARNING); it is reported again when research reads it.
    """
    out: dict[str, float] = {}
    order = sorted(TIMEFRAME_MS, key=TIMEFRAME_MS.get)
    for pair in pairs:
        tfs = [tf for tf in order if tf in timeframes] + [tf for tf in order if tf not in timeframes]
        path = next((store.candle_path(data_dir, pair, tf) for tf in tfs
                     if store.candle_path(data_dir, pair, tf).is_file()), None)
        if path is None:
            continue
        try:
            candles = store.read_candles(path)
        except DataError as e:
            logger.warning("%s: not ranked (%s)", path, e)
            out[pair] = 0.0
            continue
        ts = index_ms(candles)
        step = timeframe_to_ms(store.timeframe_of_path(path) or "1m")
        window = ts > ts[-1] + step - DAY_MS if len(ts) else ts.astype(bool)  # the candles closed in 24 h
        out[pair] = float(np.sum(candles["close"].to_numpy()[window] * candles["volume"].to_numpy()[window]))
    return out


def local_clock(data_dir: Path | str, pairs: list[str], timeframes: list[str] | tuple[str, ...]) -> Clock:
    """Return the replay clock of a local data set: the close of the newest candle of `pairs`.

    Files that end earlier are then OLD on this clock, as they should be.

    Raises
    ------
    ConfigError
        If none of the pairs has a candle in `timeframes`.
    """
    closes = [
        last + timeframe_to_ms(tf)
        for pair in pairs for tf in timeframes
        if (last := store.last_candle_ms(store.candle_path(data_dir, pair, tf))) is not None
    ]
    if not closes:
        raise ConfigError(f"{Path(data_dir) / 'ohlcv'}: no candles of {', '.join(pairs) or 'any pair'} in the "
                          f"timeframes {', '.join(timeframes)}; import them (jobs/import_candles.py) or set "
                          "runtime.tf_list to the timeframes you have")
    return Clock.replay(max(closes), note="last candle of the local data")
