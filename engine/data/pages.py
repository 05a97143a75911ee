"""Pages of candles from an exchange: validated one by one, fetched range by range, stored as they come.

A page is one ``fetch_ohlcv`` answer. :func:`fetch_range` asks page after page for the closed
candles of ``[lo_ms, hi_ms]``; each page is sorted (logged), cleared of duplicates (logged) and of
candles outside the range (the still-open one), validated with the store's rules, and requested again
when it fails (a DataError once the exchange keeps sending it). Every good page is written at once
(:class:`PageWriter`), so a killed process leaves a valid prefix.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pandas as pd

from engine.clock import format_ms
from engine.data import known_gaps, store
from engine.data.candles import candles_from_arrays, index_ms, validate_candles
from engine.errors import DataError
from engine.exchange.retry import RetryPolicy, call_with_retry
from engine.markets import timeframe_to_ms

logger = logging.getLogger(__name__)


@dataclass
class PageWriter:
    """Bookkeeping of one backfill_pair call: requests sent, candles added, how pages are stored."""

    path: Path
    pair: str
    timeframe: str
    source: str
    now_ms: int
    first_write: bool
    n_requests: int = 0
    rows_added: int = 0
    open_dropped: int = 0

    def count_request(self) -> None:
        self.n_requests += 1

    def store(self, frame: pd.DataFrame) -> None:
        """Write the first page over a new (or replaced) file, append every later one."""
        if self.first_write:
            store.write_candles(self.path, frame, timeframe=self.timeframe, source=self.source)
            known_gaps.write_known_gaps(self.path, self.pair, self.timeframe, self.source, [], self.now_ms)
            self.rows_added += len(frame)
            self.first_write = False
        else:
            self.rows_added += store.append_candles(self.path, frame, timeframe=self.timeframe, source=self.source)


class _BadPage(Exception):
    """A page of candles failed validation (retried, then reported)."""


def _page_to_frame(
    rows: Any, *, timeframe: str, lo_ms: int, hi_ms: int, what: str, run: PageWriter | None = None
) -> pd.DataFrame:
    """Turn one fetch_ohlcv page into a valid candle frame restricted to [lo_ms, hi_ms].

    Sorts out-of-order rows and drops duplicates and rows outside the range (e.g. the still-open
    candle), logging each repair; raises _BadPage when a candle is malformed or inconsistent.
    """
    if not isinstance(rows, list):
        raise _BadPage(f"{what}: page is {type(rows).__name__}, expected a list of candles")
    try:
        arr = np.array([[float(x) for x in row[:6]] for row in rows], dtype=np.float64).reshape(-1, 6)
        if any(len(row) < 6 for row in rows):
            raise ValueError("short row")
    except (TypeError, ValueError, IndexError) as e:
        raise _BadPage(f"{what}: malformed candle in page ({e}), expected [ms, open, high, low, close, volume]") from e
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise _BadPage(f"{what}: candle {rows[bad]!r} holds a missing or non-finite value, expected numbers")
    ts = arr[:, 0].astype(np.int64)
    if (arr[:, 0] != ts).any():
        raise _BadPage(f"{what}: non-integer timestamp in page, expected integer ms")
    order = np.argsort(ts, kind="stable")
    if (np.diff(ts) < 0).any():
        logger.warning("%s: page had out-of-order candles; sorted", what)
    ts, arr = ts[order], arr[order]
    dup = np.r_[False, ts[1:] == ts[:-1]]
    if dup.any():
        logger.warning("%s: dropped %d duplicated candles", what, int(dup.sum()))
        ts, arr = ts[~dup], arr[~dup]
    inside = (ts >= lo_ms) & (ts <= hi_ms)
    n_open = int((ts > hi_ms).sum())
    if n_open:
        logger.debug("%s: dropped %d candle(s) after %s (still open or beyond the range)", what, n_open, format_ms(hi_ms))
        if run is not None:
            run.open_dropped += n_open
    ts, arr = ts[inside], arr[inside]
    frame = candles_from_arrays(ts, arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5])
    try:
        validate_candles(frame, timeframe, where=f"{what} page")
    except DataError as e:
        raise _BadPage(str(e)) from e
    return frame


def fetch_range(
    exchange: ccxt.Exchange,
    symbol: str,
    timeframe: str,
    lo_ms: int,
    hi_ms: int,
    *,
    page_limit: int,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    what: str,
    run: PageWriter,
) -> None:
    """Fetch candles with open time in [lo_ms, hi_ms], page by page, storing each through `run`."""
    step = timeframe_to_ms(timeframe)
    cursor = lo_ms
    empty_retries = 0
    while cursor <= hi_ms:
        n_wanted = int(min(page_limit, (hi_ms - cursor) // step + 1))
        attempt = 0
        while True:
            attempt += 1
            rows = call_with_retry(
                exchange, exchange.fetch_ohlcv, symbol, timeframe, cursor, n_wanted,
                retry=retry, what=what, sleep=sleep, on_attempt=run.count_request,
            )
            try:
                frame = _page_to_frame(rows, timeframe=timeframe, lo_ms=cursor, hi_ms=hi_ms, what=what, run=run)
                break
            except _BadPage as e:
                if attempt >= retry.max_attempts:
                    raise DataError(
                        f"{str(e).rstrip('.')}; the exchange kept sending it ({attempt} tries), nothing of that page was stored"
                    ) from None
                delay = retry.delay_s(attempt)
                logger.warning("%s: invalid page (%s); retry %d/%d in %.1f s", what, e, attempt + 1, retry.max_attempts, delay)
                sleep(delay)
        if len(frame) == 0:
            if rows and max(int(r[0]) for r in rows) > hi_ms:
                return  # only the still-open candle (or later) is left: done
            if empty_retries < 1:
                empty_retries += 1
                logger.warning("%s: empty page at %s before the end of the range; asking once more", what, format_ms(cursor))
                sleep(retry.delay_s(1))
                continue
            logger.info("%s: exchange has no candles from %s on; stopping", what, format_ms(cursor))
            return
        empty_retries = 0
        run.store(frame)
        cursor = int(index_ms(frame)[-1]) + step
