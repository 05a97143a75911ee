"""Resampling to higher timeframes, gap listing and the gap policy of backtests.

Higher timeframes aggregate lower ones the standard way (first open, max high, min low, last
close, summed volume), aligned to UTC boundaries (DESIGN.md, "Candles"). Exchange halts stay gaps:
:func:`find_gaps` lists them and :func:`apply_gap_policy` decides how a backtest treats them.
"""
from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.data.candles import IntArray, candles_from_arrays, empty_candles, index_ms
from engine.errors import ConfigError, DataError
from engine.markets import timeframe_to_ms
from engine.types import GAP_POLICIES

logger = logging.getLogger(__name__)



def _infer_step_ms(ts: IntArray) -> int | None:
    if len(ts) < 2:
        return None
    return int(np.diff(ts).min())


def resample_candles(
    candles: pd.DataFrame, timeframe: str, *, source_timeframe: str | None = None
) -> pd.DataFrame:
    """Aggregate candles to a higher timeframe the standard way, aligned to UTC boundaries.

    Each bucket ``[t, t + step)`` with ``t`` a multiple of the target length (epoch-aligned, so
    UTC midnight is a boundary) gets first open, max high, min low, last close, summed volume,
    labelled with its open time ``t``. Buckets with no source candle (exchange halts) are absent,
    never bridged. A bucket holding the source's first candle but starting before it, or holding
    its last candle but ending after it, is incomplete and dropped (logged at DEBUG); buckets
    inside the range that are only partly covered because of a halt are kept, as the exchange's
    own higher-timeframe candles are.

    Parameters
    ----------
    candles : DataFrame
        Valid candle frame of a lower timeframe (e.g. 1m).
    timeframe : str
        Target timeframe; must be a multiple of the source timeframe.
    source_timeframe : str, optional
        Timeframe of `candles`; inferred as the smallest step between open times if omitted.

    Returns
    -------
    DataFrame
        Candle frame of `timeframe`.

    Raises
    ------
    DataError
        If the target is shorter than, or not a multiple of, the source timeframe.

    Notes
    -----
    Binance's own 5m candles differ from the sum of its 1m candles in a few bars of the bundled
    window (engine/sample/PROVENANCE.md §1.3); this function reproduces the aggregation of 1m.
    """
    step = timeframe_to_ms(timeframe)
    ts = index_ms(candles)
    if len(ts) == 0:
        return empty_candles()
    src = timeframe_to_ms(source_timeframe) if source_timeframe else (_infer_step_ms(ts) or step)
    if step < src or step % src != 0:
        raise DataError(
            f"resample to {timeframe}: source step {src} ms, expected a target that is a multiple "
            "of the source timeframe. Resample from a lower timeframe."
        )
    o = np.asarray(candles["open"], dtype=np.float64)
    h = np.asarray(candles["high"], dtype=np.float64)
    lo = np.asarray(candles["low"], dtype=np.float64)
    c = np.asarray(candles["close"], dtype=np.float64)
    v = np.asarray(candles["volume"], dtype=np.float64)
    bucket = ts - ts % step
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)] - 1
    out_ts = bucket[starts]
    out = candles_from_arrays(
        out_ts,
        o[starts],
        np.maximum.reduceat(h, starts),
        np.minimum.reduceat(lo, starts),
        c[ends],
        np.add.reduceat(v, starts),
    )
    keep = np.ones(len(out_ts), dtype=bool)
    if ts[0] > out_ts[0]:
        keep[0] = False
        logger.debug("resample to %s: first bucket %d starts before the data; dropped", timeframe, out_ts[0])
    if ts[-1] + src < out_ts[-1] + step:
        keep[-1] = False
        logger.debug("resample to %s: last bucket %d is unfinished; dropped", timeframe, out_ts[-1])
    return out.iloc[np.flatnonzero(keep)]


def find_gaps(candles: pd.DataFrame | npt.ArrayLike, timeframe: str) -> list[tuple[int, int, int]]:
    """Return the runs of missing candles between the first and the last candle.

    Parameters
    ----------
    candles : DataFrame or int array
        Candle frame, or ascending open times in epoch ms.
    timeframe : str
        Timeframe of the candles.

    Returns
    -------
    list of (from_ms, to_ms, n_missing)
        Open times of the first and the last missing candle of each run (inclusive) and the
        number of missing candles, in time order. Empty when the series is contiguous.
    """
    step = timeframe_to_ms(timeframe)
    ts = index_ms(candles) if isinstance(candles, pd.DataFrame) else np.asarray(candles, dtype=np.int64)
    if len(ts) < 2:
        return []
    diffs = np.diff(ts)
    where = np.flatnonzero(diffs > step)
    return [
        (int(ts[i] + step), int(ts[i + 1] - step), int(diffs[i] // step - 1)) for i in where
    ]


def apply_gap_policy(candles: pd.DataFrame, timeframe: str, policy: str) -> pd.DataFrame:
    """Apply a gap policy before a backtest, so gaps are never bridged silently.

    Parameters
    ----------
    candles : DataFrame
        Valid candle frame of `timeframe`.
    timeframe : str
        Its timeframe.
    policy : {"skip", "ffill"}
        ``"skip"``: return the candles unchanged; bars on either side of a gap are consecutive
        bars of the backtest. ``"ffill"``: insert each missing candle with open = high = low =
        close = the previous close and volume 0 (a flat, no-trade bar).

    Returns
    -------
    DataFrame
        Candle frame; with ``"ffill"`` on the full grid from the first to the last candle.
        One INFO line says how many candles were inserted.

    Raises
    ------
    ConfigError
        If `policy` is not one of ``skip ffill``.
    """
    if policy not in GAP_POLICIES:
        raise ConfigError(f"gap policy {policy!r}: expected one of {' '.join(GAP_POLICIES)}")
    gaps = find_gaps(candles, timeframe)
    if policy == "skip" or not gaps:
        if gaps:
            logger.debug("%d gaps (%d missing candles) kept as gaps (policy skip)", len(gaps), sum(g[2] for g in gaps))
        return candles
    step = timeframe_to_ms(timeframe)
    ts = index_ms(candles)
    full = np.arange(ts[0], ts[-1] + step, step, dtype=np.int64)
    pos = np.searchsorted(ts, full, side="right") - 1  # last real candle at or before each slot
    present = ts[pos] == full
    close = np.asarray(candles["close"], dtype=np.float64)[pos]
    cols = {}
    for col in ("open", "high", "low"):
        cols[col] = np.where(present, np.asarray(candles[col], dtype=np.float64)[pos], close)
    volume = np.where(present, np.asarray(candles["volume"], dtype=np.float64)[pos], 0.0)
    logger.info(
        "%d gaps: forward-filled %d candles (flat at previous close, volume 0; policy ffill)",
        len(gaps), int((~present).sum()),
    )
    return candles_from_arrays(full, cols["open"], cols["high"], cols["low"], close, volume)
