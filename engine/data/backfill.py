"""Backfill candles from an exchange through ccxt, or seed them from the bundled sample.

:func:`backfill_pair` fetches closed candles of one pair and timeframe with paginated
``fetch_ohlcv`` calls into ``<data_dir>/ohlcv/<PAIR>/<TF>.csv``:

- the first run fetches the last ``limit`` closed candles; later runs fetch only what is newer than
  the last stored candle (incremental), plus any gap inside the stored range that is not a known
  exchange gap;
- the still-open candle (open time + timeframe > ``now_ms``) is dropped; duplicates are removed and
  out-of-order candles sorted (both logged); every page is validated (numbers, OHLC consistency,
  volume >= 0, timeframe grid) before it is stored, and a page that fails is requested again;
- every page is appended atomically under the file's lock (engine.data.store), so a killed process
  leaves a valid prefix, and two concurrent backfills of one pair serialise;
- ccxt's retryable errors (NetworkError and its subclasses RequestTimeout, RateLimitExceeded,
  DDoSProtection, ExchangeNotAvailable; and BadResponse, e.g. malformed JSON) are retried with
  exponential backoff, honouring a ``Retry-After`` header; other errors (BadSymbol,
  AuthenticationError, ...) are not retried and end in :attr:`BackfillResult.error`;
- runs of missing candles that the exchange itself does not have (maintenance halts) are recorded
  once in ``<TF>.gaps.json`` beside the CSV and never refetched; :func:`list_known_gaps` lists them.

When the exchange cannot be reached at all (markets cannot be loaded: DNS failure, no network,
timeout), :class:`~engine.errors.ExchangeUnreachableError` is raised so the caller can fall back to
:func:`seed_from_sample`. A candle file never mixes sources: its source is recorded in a sidecar and
a switch of source moves the old file aside first (engine.data.store.append_candles).

Page sizes and history depth per exchange: :data:`engine.exchange.client.EXCHANGE_LIMITS`.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import ccxt
from filelock import Timeout as LockTimeout

from engine.clock import format_ms
from engine.data import known_gaps, store
from engine.data.candles import index_ms
from engine.data.housekeeping import move_aside
from engine.data.pages import PageWriter, fetch_range
from engine.data.resample import find_gaps
from engine.data.sample import load_sample, sample_set
from engine.errors import ConfigError, DataError, EngineError, ExchangeError, ExchangeUnreachableError
from engine.exchange.client import ensure_markets, exchange_limits, exchange_symbol
from engine.exchange.retry import DEFAULT_RETRY, RetryPolicy, translate
from engine.markets import folder_to_pair, pair_to_folder, timeframe_to_ms

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackfillResult:
    """Outcome of filling one pair × timeframe.

    Attributes
    ----------
    pair : str
        Folder name, ``"BTCUSDT"``.
    symbol : str
        ccxt symbol, ``"BTC/USDT"``.
    timeframe : str
        ``"1m"`` ...
    source : str
        ``"binance"``, ``"kraken"``, ``"bitvavo"`` or ``"sample"``.
    path : Path
        The candle CSV.
    rows_added : int
        Candles added to the file by this run.
    rows_total : int
        Candles in the file afterwards (0 if none).
    first_ms, last_ms : int or None
        Open times (epoch ms) of the first and last stored candle.
    n_requests : int
        OHLCV requests sent (retries included); 0 for the sample.
    gaps : tuple of (from_ms, to_ms, n_missing)
        Known exchange gaps inside the stored range (recorded, not refetched).
    replaced : bool
        True if an existing file of another (or unknown) source was replaced.
    error : str or None
        One-line reason when the pair failed (candles stored so far remain valid).
    quarantined : str or None
        Name of the ``<TF>.csv.corrupt-<timestamp>`` file when the stored CSV failed validation
        and was moved aside (then rebuilt); the reason is in the log.
    kept : bool
        True when the sample left a stored file of another source untouched
        (:func:`seed_from_sample`); `source` then names that source (``"unknown"`` without a record).
    """

    pair: str
    symbol: str
    timeframe: str
    source: str
    path: Path
    rows_added: int = 0
    rows_total: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    n_requests: int = 0
    gaps: tuple[tuple[int, int, int], ...] = ()
    replaced: bool = False
    error: str | None = None
    quarantined: str | None = None
    kept: bool = False

    @property
    def ok(self) -> bool:
        """True when the pair did not fail."""
        return self.error is None

    def as_dict(self) -> dict:
        """Return a JSON-ready dict (path as a string, gaps as lists)."""
        return {
            "pair": self.pair, "symbol": self.symbol, "timeframe": self.timeframe, "source": self.source,
            "path": str(self.path), "rows_added": self.rows_added, "rows_total": self.rows_total,
            "first_ms": self.first_ms, "last_ms": self.last_ms, "n_requests": self.n_requests,
            "gaps": [list(g) for g in self.gaps], "replaced": self.replaced, "error": self.error,
            "quarantined": self.quarantined, "kept": self.kept,
        }


def _corrupt_files(path: Path) -> set[str]:
    return {p.name for p in path.parent.glob(path.name + ".corrupt-*")} if path.parent.exists() else set()


# --------------------------------------------------------------------------------------------
# backfill


def _summary(path: Path, timeframe: str) -> tuple[int, int | None, int | None]:
    try:
        frame = store.read_candles(path, timeframe)
    except DataError:
        return 0, None, None
    if len(frame) == 0:
        return 0, None, None
    ts = index_ms(frame)
    return len(frame), int(ts[0]), int(ts[-1])


def backfill_pair(
    exchange: ccxt.Exchange,
    pair: str,
    timeframe: str,
    data_dir: str | os.PathLike,
    *,
    limit: int,
    now_ms: int | None = None,
    page_limit: int | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillResult:
    """Bring the stored closed candles of one pair × timeframe up to date from `exchange`.

    Parameters
    ----------
    exchange : ccxt.Exchange
        Client from :func:`make_exchange` (markets are loaded on first use).
    pair : str
        ``"BTCUSDT"`` or ``"BTC/USDT"``.
    timeframe : str
        ``1m 5m 15m 1h 4h 1d``.
    data_dir : path
        Store root; the file is ``data_dir/ohlcv/<PAIR>/<TF>.csv``.
    limit : int
        On an empty (or replaced) file: how many of the most recent closed candles to fetch
        (``backfill_limit``). Capped at the exchange's history depth (Kraken: 720, with a WARNING).
        Later runs fetch everything newer than the last stored candle.
    now_ms : int, optional
        The clock, epoch ms (default: wall clock). Candles with open time + timeframe > now_ms
        are still open and never stored.
    page_limit : int, optional
        Candles per request, at most the exchange's page size (default: that page size).
    retry : RetryPolicy
        Retries of retryable errors and invalid pages.
    sleep : callable
        Waits (s) between retries; injectable.

    Returns
    -------
    BackfillResult
        With ``error`` set (one line naming pair, timeframe and cause) if the pair failed; the
        candles stored before the failure stay, valid.

    Raises
    ------
    ExchangeUnreachableError
        If the markets cannot be loaded (the exchange cannot be reached at all).
    ConfigError
        If `limit` is not an integer >= 1.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigError(f"backfill limit {limit!r}: expected an integer >= 1 (candles)")
    folder = pair_to_folder(pair)
    symbol = folder_to_pair(folder)
    step = timeframe_to_ms(timeframe)
    source = exchange.id
    path = store.candle_path(data_dir, folder, timeframe)
    what = f"{source} {folder} {timeframe}"
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    limits = exchange_limits(exchange)
    if limits.history_limit is not None and limit > limits.history_limit:
        logger.warning(
            "%s: backfill_limit %d asks for more than the %d most recent candles %s serves; "
            "fetching %d", what, limit, limits.history_limit, source, limits.history_limit,
        )
        limit = limits.history_limit
    ensure_markets(exchange, retry=retry, sleep=sleep)
    page = max(1, min(page_limit or limits.page_limit, limits.page_limit))
    end_ms = (now_ms // step) * step  # open time of the still-open candle
    hi_ms = end_ms - step  # last closed candle
    replaced = False
    error: str | None = None
    gaps_before: list[tuple[int, int, int]] = []
    corrupt_before = _corrupt_files(path)
    run = PageWriter(path=path, pair=folder, timeframe=timeframe, source=source, now_ms=now_ms, first_write=True)
    try:
        symbol = exchange_symbol(exchange, folder)
        with store.candle_lock(path):
            existing = store.read_or_quarantine(path, timeframe)
            stored_source = store.read_source(path) if existing is not None else None
            if existing is not None and stored_source != source:
                if store.is_sample(stored_source):
                    logger.info("%s: the bundled sample's candles are replaced by %s candles (never mixed)",
                                what, source)
                else:  # never lost: the other source's file is kept beside it for the retention period
                    move_aside(path, "replaced", f"holds candles from {stored_source or 'an unknown source'}; "
                               f"replaced by {source} candles", companions=[store.source_sidecar_path(path)])
                existing = None
                replaced = True
            known = known_gaps.read_known_gaps(path, source) if existing is not None else []
            ranges: list[tuple[int, int]] = []
            if existing is None or len(existing) == 0:
                ranges.append((end_ms - limit * step, hi_ms))
            else:
                run.first_write = False
                stored = index_ms(existing)
                gaps_before = find_gaps(stored, timeframe)
                for gap in gaps_before:
                    if gap not in known:
                        logger.info("%s: refetching %d missing candles %s → %s", what, gap[2], format_ms(gap[0]), format_ms(gap[1]))
                        ranges.append((gap[0], gap[1]))
                if stored[-1] < hi_ms:
                    ranges.append((int(stored[-1]) + step, hi_ms))

            for lo_ms, range_hi in ranges:
                if lo_ms > range_hi:
                    continue
                fetch_range(
                    exchange, symbol, timeframe, lo_ms, range_hi, page_limit=page, retry=retry,
                    sleep=sleep, what=what, run=run,
                )
            # every run still missing inside the stored range was asked for and not served:
            # the exchange does not have it. Record it so it is never refetched.
            if path.exists():
                gaps_now = find_gaps(store.read_candles(path, timeframe), timeframe)
                new_gaps = [g for g in gaps_now if g not in known]
                if new_gaps or gaps_now != known:
                    for g in new_gaps:
                        logger.info("%s: exchange has no candles %s → %s (%d missing); recorded as a known gap",
                                    what, format_ms(g[0]), format_ms(g[1]), g[2])
                    known_gaps.write_known_gaps(path, folder, timeframe, source, gaps_now, now_ms)
    except ExchangeUnreachableError:
        raise
    except (ccxt.BaseError, ExchangeError) as e:  # one line per pair; the cycle goes on
        error = f"{what}: {translate(e)}"
    except (EngineError, OSError, LockTimeout) as e:
        error = f"{what}: {type(e).__name__}: {str(e)[:600]}"
    if error:
        logger.error("%s", error)
    rows_total, first_ms, last_ms = _summary(path, timeframe)
    result = BackfillResult(
        pair=folder, symbol=symbol, timeframe=timeframe, source=source, path=path,
        rows_added=run.rows_added, rows_total=rows_total, first_ms=first_ms, last_ms=last_ms,
        n_requests=run.n_requests, gaps=tuple(known_gaps.read_known_gaps(path, source)), replaced=replaced,
        error=error,
        quarantined=min(_corrupt_files(path) - corrupt_before, default=None),
    )
    if error is None:
        logger.info(
            "%s: backfilled %d candles, %d stored %s → %s, %d requests, %d known gaps%s",
            what, result.rows_added, rows_total, format_ms(first_ms), format_ms(last_ms), run.n_requests,
            len(result.gaps), f", dropped {run.open_dropped} still-open candle(s)" if run.open_dropped else "",
        )
    return result


def backfill_pairs(
    exchange: ccxt.Exchange,
    pairs: Iterable[str],
    timeframes: Iterable[str],
    data_dir: str | os.PathLike,
    *,
    limit: int,
    now_ms: int | None = None,
    page_limit: int | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> list[BackfillResult]:
    """Backfill every pair × timeframe; one failing pair never stops the others.

    Returns
    -------
    list of BackfillResult
        In pair-major order.

    Raises
    ------
    ExchangeUnreachableError
        If the exchange cannot be reached at all (raised before any pair is touched).
    """
    ensure_markets(exchange, retry=retry, sleep=sleep)
    timeframes = list(timeframes)
    return [
        backfill_pair(
            exchange, pair, tf, data_dir, limit=limit, now_ms=now_ms, page_limit=page_limit,
            retry=retry, sleep=sleep,
        )
        for pair in pairs
        for tf in timeframes
    ]


def seed_from_sample(
    data_dir: str | os.PathLike, pairs: Iterable[str], timeframes: Iterable[str], *, sample: str = "month"
) -> list[BackfillResult]:
    """Write the bundled real candles into the store (1m as shipped, higher TFs resampled).

    Each file gets source ``"sample"`` in its sidecar. The sample only fills files that are missing
    or that it wrote itself (those gain only missing candles): a file of any other source — an
    exchange's, an import, a file without a source record (the user's own) — is **kept** untouched
    (``BackfillResult.kept``; one INFO line). The sample's own gaps (two Binance halts) are recorded
    as known gaps.

    Parameters
    ----------
    data_dir : path
        Store root.
    pairs : iterable of str
        Folder names or symbols; each must be bundled (engine.data.sample.sample_pairs()).
    timeframes : iterable of str
        The sample's timeframe and multiples of it (``1m`` … for ``month``, ``1h`` … for ``long``).
    sample : {"month", "long"}
        Which bundled set (:mod:`engine.data.sample`); its candles carry its own source, so the two
        sets are never merged into one file (switching replaces the other set's files).

    Returns
    -------
    list of BackfillResult
        One per pair × timeframe; ``error`` set for a pair that is not bundled; ``kept`` for a
        file of another source left as it was.
    """
    source = sample_set(sample).source
    results: list[BackfillResult] = []
    timeframes = list(timeframes)
    for pair in pairs:
        folder = pair_to_folder(pair)
        for tf in timeframes:
            path = store.candle_path(data_dir, folder, tf)
            corrupt_before = _corrupt_files(path)
            try:
                candles = load_sample(folder, tf, sample=sample)
                with store.candle_lock(path):
                    previous = store.read_source(path) if path.exists() else source
                    if not store.is_sample(previous):
                        logger.info("%s %s: kept the stored candles from %s; the sample never replaces them",
                                    folder, tf, previous or "an unknown source (your own file)")
                        rows, first, last = _summary(path, tf)
                        results.append(BackfillResult(
                            pair=folder, symbol=folder_to_pair(folder), timeframe=tf, source=previous or "unknown",
                            path=path, rows_total=rows, first_ms=first, last_ms=last, kept=True))
                        continue
                    added = store.append_candles(path, candles, timeframe=tf, source=source)
                    gaps = find_gaps(candles, tf)
                    known_gaps.write_known_gaps(path, folder, tf, source, gaps, int(time.time() * 1000))
                ts = index_ms(candles)
                results.append(BackfillResult(
                    pair=folder, symbol=folder_to_pair(folder), timeframe=tf, source=source,
                    path=path, rows_added=added, rows_total=len(candles), first_ms=int(ts[0]),
                    last_ms=int(ts[-1]), gaps=tuple(gaps),
                    quarantined=min(_corrupt_files(path) - corrupt_before, default=None),
                ))
                logger.info("%s %s: seeded %d candles from the bundled sample (%d stored)", folder, tf, added, len(candles))
            except (EngineError, OSError, LockTimeout) as e:  # one line per file: a full or read-only disk too
                e_text = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else str(e)
                logger.error("%s %s: seeding from the sample failed: %s", folder, tf, e_text)
                results.append(BackfillResult(
                    pair=folder, symbol=folder_to_pair(folder), timeframe=tf, source=source,
                    path=path, error=f"{folder} {tf}: {type(e).__name__}: {e_text}",
                ))
    return results
