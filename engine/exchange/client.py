"""The one ccxt boundary: make clients, load markets, map symbols, know each exchange's limits.

Backfill, the watchlist, the cycle's probe and (later) the executors all get their client here, so
URL overrides (tests, proxies), rate limiting and market loading behave the same everywhere.
Every ccxt error that leaves this package is translated by :func:`engine.exchange.retry.translate`.

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

import difflib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import ccxt

from engine.errors import ConfigError, ExchangeError, ExchangeUnreachableError, TemporaryExchangeError
from engine.exchange.retry import DEFAULT_RETRY, RetryPolicy, call_with_retry, translate
from engine.markets import folder_to_pair, pair_to_folder

#: Exchanges whose OHLCV limits are known (EXCHANGE_LIMITS) and whose backfill is tested; any other
#: exchange ccxt knows (``ccxt.exchanges``) works with a conservative 500-candle page.
SUPPORTED_EXCHANGES: tuple[str, ...] = ("binance", "kraken", "bitvavo")


def check_exchange_id(exchange_id: str, *, where: str = "exchange") -> str:
    """Return `exchange_id` if ccxt knows it, else raise ConfigError with a "did you mean".

    Raises
    ------
    ConfigError
        ``exchange 'binancee': not an exchange ccxt knows. Did you mean "binance"?``
    """
    if isinstance(exchange_id, str) and exchange_id in ccxt.exchanges:
        return exchange_id
    close = difflib.get_close_matches(str(exchange_id).lower(), ccxt.exchanges, n=1)
    hint = f' Did you mean "{close[0]}"?' if close else f" Expected a ccxt id such as {', '.join(SUPPORTED_EXCHANGES)}."
    raise ConfigError(f"{where} {exchange_id!r}: not an exchange ccxt knows ({len(ccxt.exchanges)} ids in "
                      f"ccxt.exchanges).{hint}")


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


def make_exchange(
    exchange_id: str = "binance",
    *,
    urls: str | Mapping[str, str] | None = None,
    timeout_ms: int = 10_000,
    sandbox: bool = False,
) -> ccxt.Exchange:
    """Return a ccxt exchange client for public market data, rate limiter on.

    Parameters
    ----------
    exchange_id : str
        ccxt id (``ccxt.exchanges``); binance, kraken and bitvavo have known page sizes.
    urls : str or dict, optional
        Where to send requests instead of the real exchange (tests, a proxy). A string
        ``"http://127.0.0.1:8765"`` replaces scheme and host of every entry of ``urls['api']``
        (paths kept, e.g. ``/api/v3``); a dict updates ``urls['api']`` entry by entry.
    timeout_ms : int
        Timeout of one HTTP request in milliseconds.
    sandbox : bool
        Talk to the exchange's testnet: ccxt's ``set_sandbox_mode(True)``, which swaps
        ``urls['api']`` for ``urls['test']`` (binance: ``https://testnet.binance.vision/api/v3``)
        before `urls` is applied, so a test server can still stand in for the testnet.

    Returns
    -------
    ccxt.Exchange
        Synchronous client with ``enableRateLimit=True``. For binance only spot markets are
        loaded (``options['fetchMarkets'] = {'types': ['spot']}``), so ``load_markets`` sends one
        request, ``GET /api/v3/exchangeInfo``.

    Raises
    ------
    ConfigError
        If ccxt does not know `exchange_id` (with a "did you mean"): a typo is never taken for an
        unreachable exchange; or `sandbox` for an exchange ccxt knows no testnet of (kraken spot,
        bitvavo), so a sandbox client never talks to the real exchange.
    """
    check_exchange_id(exchange_id)
    exchange = getattr(ccxt, exchange_id)(
        {"enableRateLimit": True, "timeout": int(timeout_ms)}
    )
    exchange.enableLastJsonResponse = True  # lets malformed JSON be told from an empty page
    if exchange_id == "binance":
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        exchange.options["fetchMargins"] = False
        exchange.options["fetchCurrencies"] = False
    if sandbox:
        if not has_sandbox(exchange_id):
            raise ConfigError(f"{exchange_id}: ccxt knows no sandbox (testnet) URLs for it (urls['test'] is empty); "
                              "use validate-only or paper instead")
        exchange.set_sandbox_mode(True)
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


def has_sandbox(exchange_id: str) -> bool:
    """True when ccxt has testnet URLs for `exchange_id` (``urls['test']``): binance yes, kraken and
    bitvavo no (Kraken's demo environment is for futures only)."""
    check_exchange_id(exchange_id)
    return bool(getattr(ccxt, exchange_id)().urls.get("test"))


def exchange_limits(exchange: ccxt.Exchange) -> ExchangeLimits:
    """Return the OHLCV page size and history depth of `exchange` (500 per page if unknown)."""
    return EXCHANGE_LIMITS.get(exchange.id, ExchangeLimits(page_limit=500))


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
    except (ccxt.BaseError, TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
        error = translate(e, what=f"{exchange.id}: loading markets")
        if isinstance(error, TemporaryExchangeError):  # network, 5xx, a captive portal's HTML page
            raise ExchangeUnreachableError(
                f"{exchange.id}: cannot reach the exchange to load markets ({type(e).__name__}: "
                f"{str(e)[:200]}). Check the network, or use the bundled sample (data_source: sample)."
            ) from e
        raise error from e
    return exchange.markets


def exchange_symbol(exchange: ccxt.Exchange, pair: str) -> str:
    """Return the ccxt symbol under which `exchange` lists `pair` (``"BTCUSDT"`` → ``"BTC/USDT"``).

    Markets must be loaded. Looks up the unified symbol first, then the exchange's own market id
    (``BTCUSDT`` on binance).

    Raises
    ------
    ExchangeError
        If the exchange does not list the pair (never retried).
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
    raise ExchangeError(f"BadSymbol: {exchange.id} does not list {symbol}")

