"""Backfill candles from an exchange through ccxt, or seed them from the bundled sample.

:func:`backfill_pair` fetches closed candles of one pair and timeframe with paginated
``fetch_ohlcv`` calls into ``<data_dir>/ohlcv/<PAIR>/<TF>.csv``:

- the first run fetches the last ``limit`` closed candles; later runs fetch only what is newer than
  the last stored candle (incremental), plus any gap inside the stored range that is not a known
  exchange gap;
- the still-open candle (open time + timeframe > ``now_ms``) is dropped; duplicates are removed and
  out-of-order candles sorted (both logged); every page is validated (numbers, OHLC consistency,
  volume >= 0, timeframe grid) before it is stored, and a page that fails is requested again;
- every page is appended atomically under the file's lock (engine.datastore), so a killed process
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
a switch of source replaces the file (engine.datastore.append_candles).

Exchange rules used (page size, history depth):

========  =========  ======================================================================
exchange  page size  history
========  =========  ======================================================================
binance   1000       full history (GET /api/v3/klines, limit max 1000)
kraken    720        only the 720 most recent candles per timeframe (GET /0/public/OHLC)
bitvavo   1440       full history (GET /v2/{market}/candles, limit max 1440)
========  =========  ======================================================================
"""
from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ccxt
import numpy as np
import pandas as pd

from engine import datastore
from engine.errors import ConfigError, DataError, EngineError, ExchangeError, ExchangeUnreachableError
from engine.markets import folder_to_pair, pair_to_folder, timeframe_to_ms

logger = logging.getLogger(__name__)

#: Exchanges SCALP backfills from.
SUPPORTED_EXCHANGES: tuple[str, ...] = ("binance", "kraken", "bitvavo")

#: ccxt errors that are retried with backoff: OperationFailed is ccxt's class of failures that may
#: clear up on retry (NetworkError: RequestTimeout, RateLimitExceeded, DDoSProtection,
#: ExchangeNotAvailable...; BadResponse; Binance -1000 "unknown error"). ExchangeError and its
#: subclasses (BadSymbol, AuthenticationError, BadRequest...) are never retried.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (ccxt.OperationFailed,)


@dataclass(frozen=True)
class ExchangeLimits:
    """Page size and history depth of an exchange's OHLCV endpoint.

    Attributes
    ----------
    page_limit : int
        Most candles one request returns.
    history_limit : int or None
        Most recent candles the exchange serves per timeframe; None = full history.
    """

    page_limit: int
    history_limit: int | None = None


#: Per-exchange OHLCV limits (sources: Binance spot REST docs "Kline/Candlestick data", limit max
#: 1000; Kraken REST "Get OHLC Data": "returns up to 720 of the most recent entries"; Bitvavo REST
#: "Candles", limit max 1440).
EXCHANGE_LIMITS: dict[str, ExchangeLimits] = {
    "binance": ExchangeLimits(page_limit=1000),
    "kraken": ExchangeLimits(page_limit=720, history_limit=720),
    "bitvavo": ExchangeLimits(page_limit=1440),
}


@dataclass(frozen=True)
class RetryPolicy:
    """How retryable ccxt errors are retried.

    Attributes
    ----------
    max_attempts : int
        Tries per request, the first included (>= 1).
    base_delay_s : float
        Wait before the second try; doubles each further try.
    max_delay_s : float
        Cap on one wait, also on a ``Retry-After`` the exchange asks for.
    """

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Return the wait (s) after failed try number `attempt` (1-based)."""
        delay = self.base_delay_s * (2 ** (attempt - 1))
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return float(min(delay, self.max_delay_s))


DEFAULT_RETRY = RetryPolicy()


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
            "quarantined": self.quarantined,
        }


def _corrupt_files(path: Path) -> set[str]:
    return {p.name for p in path.parent.glob(path.name + ".corrupt-*")} if path.parent.exists() else set()


# --------------------------------------------------------------------------------------------
# exchange construction


def make_exchange(
    exchange_id: str = "binance",
    *,
    urls: str | Mapping[str, str] | None = None,
    timeout_ms: int = 10_000,
) -> ccxt.Exchange:
    """Return a ccxt exchange client for public market data, rate limiter on.

    Parameters
    ----------
    exchange_id : {"binance", "kraken", "bitvavo"}
        ccxt id.
    urls : str or dict, optional
        Where to send requests instead of the real exchange (tests, a proxy). A string
        ``"http://127.0.0.1:8765"`` replaces scheme and host of every entry of ``urls['api']``
        (paths kept, e.g. ``/api/v3``); a dict updates ``urls['api']`` entry by entry.
    timeout_ms : int
        Timeout of one HTTP request in milliseconds.

    Returns
    -------
    ccxt.Exchange
        Synchronous client with ``enableRateLimit=True``. For binance only spot markets are
        loaded (``options['fetchMarkets'] = {'types': ['spot']}``), so ``load_markets`` sends one
        request, ``GET /api/v3/exchangeInfo``.

    Raises
    ------
    ExchangeError
        If `exchange_id` is not supported.
    """
    if exchange_id not in SUPPORTED_EXCHANGES:
        raise ExchangeError(
            f"exchange {exchange_id!r}: expected one of {', '.join(SUPPORTED_EXCHANGES)}"
        )
    exchange = getattr(ccxt, exchange_id)(
        {"enableRateLimit": True, "timeout": int(timeout_ms)}
    )
    exchange.enableLastJsonResponse = True  # lets malformed JSON be told from an empty page
    if exchange_id == "binance":
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        exchange.options["fetchMargins"] = False
        exchange.options["fetchCurrencies"] = False
    if urls is not None:
        api = exchange.urls["api"]
        if isinstance(urls, str):
            base = urlsplit(urls)
            if isinstance(api, dict):
                for key, value in list(api.items()):
                    if isinstance(value, str):
                        parts = urlsplit(value)
                        api[key] = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
            else:
                parts = urlsplit(api)
                exchange.urls["api"] = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        else:
            api.update(dict(urls))
    return exchange


def exchange_limits(exchange: ccxt.Exchange) -> ExchangeLimits:
    """Return the OHLCV page size and history depth of `exchange` (500 per page if unknown)."""
    return EXCHANGE_LIMITS.get(exchange.id, ExchangeLimits(page_limit=500))


def _retry_after_s(exchange: ccxt.Exchange) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = None
    for key in ("Retry-After", "retry-after"):
        if key in headers:
            value = headers[key]
            break
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        try:
            when = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def call_with_retry(
    exchange: ccxt.Exchange,
    method: Callable[..., Any],
    *args: Any,
    retry: RetryPolicy = DEFAULT_RETRY,
    what: str = "",
    sleep: Callable[[float], None] = time.sleep,
    on_attempt: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Call a ccxt method, retrying retryable errors with exponential backoff.

    Retries ``ccxt.NetworkError`` (RequestTimeout, RateLimitExceeded, DDoSProtection,
    ExchangeNotAvailable ...) and ``ccxt.BadResponse``; waits ``retry.delay_s(attempt)`` or the
    exchange's ``Retry-After`` (seconds or HTTP date), whichever is longer, capped at
    ``retry.max_delay_s``. Each retry is one WARNING line. A response body that is not JSON
    (``exchange.last_json_response`` None after the call) counts as BadResponse.

    Parameters
    ----------
    exchange : ccxt.Exchange
        The client (its response headers give ``Retry-After``).
    method : callable
        Bound ccxt method, e.g. ``exchange.fetch_ohlcv``.
    retry : RetryPolicy
        Tries and waits.
    what : str
        Prefix of log lines (``"binance BTCUSDT 1m"``).
    sleep : callable
        Waits that many seconds (injectable).
    on_attempt : callable, optional
        Called before each try (counts requests).

    Returns
    -------
    Whatever `method` returns.

    Raises
    ------
    ccxt.BaseError
        The last retryable error once tries run out, or any non-retryable error at once.
    """
    attempt = 0
    check_json = bool(exchange.enableLastJsonResponse)
    while True:
        attempt += 1
        exchange.last_response_headers = None
        exchange.last_json_response = None
        if on_attempt is not None:
            on_attempt()
        try:
            out = method(*args, **kwargs)
            if check_json and exchange.last_json_response is None:
                raise ccxt.BadResponse(f"{exchange.id}: response body is not valid JSON")
            return out
        except RETRYABLE_ERRORS as e:
            error: Exception = e
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            if not (check_json and exchange.last_json_response is None):
                raise
            error = ccxt.BadResponse(f"{exchange.id}: response body is not valid JSON ({type(e).__name__})")
        if attempt >= retry.max_attempts:
            raise error
        delay = retry.delay_s(attempt, _retry_after_s(exchange))
        logger.warning(
            "%s: %s (%s); retry %d/%d in %.1f s",
            what or exchange.id, type(error).__name__, str(error)[:160], attempt + 1, retry.max_attempts, delay,
        )
        sleep(delay)


def ensure_markets(
    exchange: ccxt.Exchange, *, retry: RetryPolicy = DEFAULT_RETRY, sleep: Callable[[float], None] = time.sleep
) -> dict:
    """Load the exchange's markets once (retrying), or raise ExchangeUnreachableError.

    Returns
    -------
    dict
        ``exchange.markets``.

    Raises
    ------
    ExchangeUnreachableError
        If the markets cannot be loaded because of network trouble (DNS failure, connection
        refused, timeout, 5xx, an answer that is not JSON such as a captive portal's page) after
        `retry`'s tries: the caller should fall back to the bundled sample.
    ExchangeError
        If the exchange answers but refuses (authentication, bad response) — not a network problem.
    """
    if exchange.markets:
        return exchange.markets
    try:
        call_with_retry(exchange, exchange.load_markets, retry=retry, what=f"{exchange.id} load_markets", sleep=sleep)
    except (ccxt.NetworkError, ccxt.BadResponse) as e:  # BadResponse: e.g. a captive portal's HTML
        raise ExchangeUnreachableError(
            f"{exchange.id}: cannot reach the exchange to load markets ({type(e).__name__}: "
            f"{str(e)[:200]}). Check the network, or use the bundled sample (data_source: sample)."
        ) from e
    except (ccxt.BaseError, TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
        raise ExchangeError(f"{exchange.id}: loading markets failed ({type(e).__name__}: {str(e)[:200]})") from e
    return exchange.markets


def exchange_symbol(exchange: ccxt.Exchange, pair: str) -> str:
    """Return the ccxt symbol under which `exchange` lists `pair` (``"BTCUSDT"`` → ``"BTC/USDT"``).

    Markets must be loaded. Looks up the unified symbol first, then the exchange's own market id
    (``BTCUSDT`` on binance).

    Raises
    ------
    ccxt.BadSymbol
        If the exchange does not list the pair.
    """
    symbol = folder_to_pair(pair_to_folder(pair))
    markets = exchange.markets or {}
    if symbol in markets:
        return symbol
    by_id = getattr(exchange, "markets_by_id", None) or {}
    entries = by_id.get(pair_to_folder(pair))
    if entries:
        entry = entries[0] if isinstance(entries, list) else entries
        return entry["symbol"]
    raise ccxt.BadSymbol(f"{exchange.id} does not list {symbol}")


# --------------------------------------------------------------------------------------------
# known exchange gaps


def gaps_path(csv_path: str | os.PathLike) -> Path:
    """Return the known-gaps file of a candle CSV (``1m.csv`` → ``1m.gaps.json``)."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name[: -len(".csv")] + ".gaps.json")


def read_known_gaps(csv_path: str | os.PathLike, source: str | None = None) -> list[tuple[int, int, int]]:
    """Return the exchange gaps recorded for a candle CSV ([] if none, or recorded for another source)."""
    try:
        data = json.loads(gaps_path(csv_path).read_text(encoding="utf-8"))
        if source is not None and data.get("source") != source:
            return []
        return [(int(a), int(b), int(n)) for a, b, n in data.get("gaps", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def _write_known_gaps(
    csv_path: Path, pair: str, timeframe: str, source: str, gaps: Iterable[tuple[int, int, int]], now_ms: int
) -> None:
    payload = {
        "pair": pair,
        "timeframe": timeframe,
        "source": source,
        "checked_at_ms": int(now_ms),
        "gaps": [list(g) for g in gaps],
    }
    datastore.atomic_write_bytes(gaps_path(csv_path), (json.dumps(payload, indent=1) + "\n").encode("utf-8"))


def list_known_gaps(data_dir: str | os.PathLike) -> list[dict]:
    """Return every recorded exchange gap under `data_dir`, for the dashboard and status.json.

    Returns
    -------
    list of dict
        ``{"pair": "BTCUSDT", "timeframe": "1m", "from_ms", "to_ms", "n_missing", "source"}``,
        sorted by pair, timeframe, from_ms; ``from_ms``/``to_ms`` are the open times of the first
        and the last missing candle.
    """
    out: list[dict] = []
    for path in sorted(Path(data_dir, "ohlcv").glob("*/*.gaps.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for a, b, n in data.get("gaps", []):
                out.append({
                    "pair": data.get("pair", path.parent.name),
                    "timeframe": data.get("timeframe", path.name.split(".")[0]),
                    "from_ms": int(a), "to_ms": int(b), "n_missing": int(n),
                    "source": data.get("source"),
                })
        except (OSError, ValueError, TypeError, AttributeError):
            logger.warning("%s: unreadable gaps file ignored", path)
    out.sort(key=lambda g: (g["pair"], datastore.TIMEFRAME_MS.get(g["timeframe"], 0), g["from_ms"]))
    return out


# --------------------------------------------------------------------------------------------
# pages


def _utc(ms: int | None) -> str:
    return "none" if ms is None else pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


class _BadPage(Exception):
    """A page of candles failed validation (retried, then reported)."""


def _page_to_frame(
    rows: Any, *, timeframe: str, lo_ms: int, hi_ms: int, what: str, stats: dict[str, int] | None = None
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
        logger.debug("%s: dropped %d candle(s) after %s (still open or beyond the range)", what, n_open, _utc(hi_ms))
        if stats is not None:
            stats["open_dropped"] = stats.get("open_dropped", 0) + n_open
    ts, arr = ts[inside], arr[inside]
    frame = datastore.candles_from_arrays(ts, arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5])
    try:
        datastore.validate_candles(frame, timeframe, where=f"{what} page")
    except DataError as e:
        raise _BadPage(str(e)) from e
    return frame


def _fetch_range(
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
    counter: list[int],
    on_page: Callable[[pd.DataFrame], None],
    stats: dict[str, int] | None = None,
) -> None:
    """Fetch candles with open time in [lo_ms, hi_ms], page by page, handing each page to on_page."""
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
                retry=retry, what=what, sleep=sleep, on_attempt=lambda: counter.__setitem__(0, counter[0] + 1),
            )
            try:
                frame = _page_to_frame(rows, timeframe=timeframe, lo_ms=cursor, hi_ms=hi_ms, what=what, stats=stats)
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
                logger.warning("%s: empty page at %s before the end of the range; asking once more", what, _utc(cursor))
                sleep(retry.delay_s(1))
                continue
            logger.info("%s: exchange has no candles from %s on; stopping", what, _utc(cursor))
            return
        empty_retries = 0
        on_page(frame)
        cursor = int(datastore.index_ms(frame)[-1]) + step


# --------------------------------------------------------------------------------------------
# backfill


def _summary(path: Path, timeframe: str) -> tuple[int, int | None, int | None]:
    try:
        frame = datastore.read_candles(path, timeframe)
    except DataError:
        return 0, None, None
    if len(frame) == 0:
        return 0, None, None
    ts = datastore.index_ms(frame)
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
    path = datastore.candle_path(data_dir, folder, timeframe)
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
    counter = [0]
    added = [0]
    stats: dict[str, int] = {}
    replaced = False
    error: str | None = None
    gaps_before: list[tuple[int, int, int]] = []
    corrupt_before = _corrupt_files(path)
    try:
        symbol = exchange_symbol(exchange, folder)
        with datastore.candle_lock(path):
            existing = datastore.read_or_quarantine(path, timeframe)
            if existing is not None and datastore.read_source(path) != source:
                logger.info(
                    "%s: stored file comes from %s; it will be replaced by %s candles (never mixed)",
                    what, datastore.read_source(path) or "an unknown source", source,
                )
                existing = None
                replaced = True
            known = read_known_gaps(path, source) if existing is not None else []
            ranges: list[tuple[int, int]] = []
            if existing is None or len(existing) == 0:
                ranges.append((end_ms - limit * step, hi_ms))
            else:
                stored = datastore.index_ms(existing)
                gaps_before = datastore.find_gaps(stored, timeframe)
                for gap in gaps_before:
                    if gap not in known:
                        logger.info("%s: refetching %d missing candles %s → %s", what, gap[2], _utc(gap[0]), _utc(gap[1]))
                        ranges.append((gap[0], gap[1]))
                if stored[-1] < hi_ms:
                    ranges.append((int(stored[-1]) + step, hi_ms))

            first_write = [replaced or existing is None]

            def store(frame: pd.DataFrame) -> None:
                if first_write[0]:
                    datastore.write_candles(path, frame, timeframe=timeframe, source=source)
                    _write_known_gaps(path, folder, timeframe, source, [], now_ms)
                    added[0] += len(frame)
                    first_write[0] = False
                else:
                    added[0] += datastore.append_candles(path, frame, timeframe=timeframe, source=source)

            for lo_ms, range_hi in ranges:
                if lo_ms > range_hi:
                    continue
                _fetch_range(
                    exchange, symbol, timeframe, lo_ms, range_hi, page_limit=page, retry=retry,
                    sleep=sleep, what=what, counter=counter, on_page=store, stats=stats,
                )
            # every run still missing inside the stored range was asked for and not served:
            # the exchange does not have it. Record it so it is never refetched.
            if path.exists():
                final = datastore.read_candles(path, timeframe)
                gaps_now = datastore.find_gaps(final, timeframe)
                new_gaps = [g for g in gaps_now if g not in known]
                if new_gaps or gaps_now != known:
                    for g in new_gaps:
                        logger.info("%s: exchange has no candles %s → %s (%d missing); recorded as a known gap",
                                    what, _utc(g[0]), _utc(g[1]), g[2])
                    _write_known_gaps(path, folder, timeframe, source, gaps_now, now_ms)
    except ExchangeUnreachableError:
        raise
    except ccxt.BaseError as e:
        error = f"{what}: {type(e).__name__}: {str(e)[:600]}"
    except (EngineError, OSError) as e:
        error = f"{what}: {type(e).__name__}: {str(e)[:600]}"
    except Exception as e:  # filelock.Timeout and friends: report per pair, the cycle goes on
        error = f"{what}: {type(e).__name__}: {str(e)[:600]}"
    if error:
        logger.error("%s", error)
    rows_total, first_ms, last_ms = _summary(path, timeframe)
    result = BackfillResult(
        pair=folder, symbol=symbol, timeframe=timeframe, source=source, path=path,
        rows_added=added[0], rows_total=rows_total, first_ms=first_ms, last_ms=last_ms,
        n_requests=counter[0], gaps=tuple(read_known_gaps(path, source)), replaced=replaced, error=error,
        quarantined=min(_corrupt_files(path) - corrupt_before, default=None),
    )
    if error is None:
        logger.info(
            "%s: backfilled %d candles, %d stored %s → %s, %d requests, %d known gaps%s",
            what, result.rows_added, rows_total, _utc(first_ms), _utc(last_ms), counter[0], len(result.gaps),
            f", dropped {stats['open_dropped']} still-open candle(s)" if stats.get("open_dropped") else "",
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
    data_dir: str | os.PathLike, pairs: Iterable[str], timeframes: Iterable[str]
) -> list[BackfillResult]:
    """Write the bundled real candles into the store (1m as shipped, higher TFs resampled).

    Each file gets source ``"sample"`` in its sidecar; a file from another source is replaced
    (one INFO line), never mixed; a file already seeded gains only missing candles. The sample's
    own gaps (two Binance halts) are recorded as known gaps.

    Parameters
    ----------
    data_dir : path
        Store root.
    pairs : iterable of str
        Folder names or symbols; each must be bundled (engine.datastore.sample_pairs()).
    timeframes : iterable of str
        ``1m`` and multiples of it.

    Returns
    -------
    list of BackfillResult
        One per pair × timeframe; ``error`` set for a pair that is not bundled.
    """
    results: list[BackfillResult] = []
    timeframes = list(timeframes)
    for pair in pairs:
        folder = pair_to_folder(pair)
        for tf in timeframes:
            path = datastore.candle_path(data_dir, folder, tf)
            corrupt_before = _corrupt_files(path)
            try:
                candles = datastore.load_sample(folder, tf)
                with datastore.candle_lock(path):
                    previous = datastore.read_source(path) if path.exists() else datastore.SAMPLE_SOURCE
                    added = datastore.append_candles(path, candles, timeframe=tf, source=datastore.SAMPLE_SOURCE)
                    gaps = datastore.find_gaps(candles, tf)
                    _write_known_gaps(path, folder, tf, datastore.SAMPLE_SOURCE, gaps, int(time.time() * 1000))
                ts = datastore.index_ms(candles)
                results.append(BackfillResult(
                    pair=folder, symbol=folder_to_pair(folder), timeframe=tf, source=datastore.SAMPLE_SOURCE,
                    path=path, rows_added=added, rows_total=len(candles), first_ms=int(ts[0]),
                    last_ms=int(ts[-1]), gaps=tuple(gaps), replaced=previous != datastore.SAMPLE_SOURCE,
                    quarantined=min(_corrupt_files(path) - corrupt_before, default=None),
                ))
                logger.info("%s %s: seeded %d candles from the bundled sample (%d stored)", folder, tf, added, len(candles))
            except EngineError as e:
                logger.error("%s %s: seeding from the sample failed: %s", folder, tf, e)
                results.append(BackfillResult(
                    pair=folder, symbol=folder_to_pair(folder), timeframe=tf, source=datastore.SAMPLE_SOURCE,
                    path=path, error=f"{folder} {tf}: {type(e).__name__}: {e}",
                ))
    return results
