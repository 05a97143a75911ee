"""The watchlist: which spot pairs to research, ranked by 24 h quote volume or by bid/ask spread.

:func:`refresh_watchlist` ranks the exchange's spot pairs in one quote currency (``USDT``) from
``fetch_tickers`` and writes ``<reports_dir>/watchlist.json``; offline (no exchange) it ranks the
bundled sample's pairs by the quote volume of their last 24 h of 1m candles. Stablecoin-vs-
stablecoin pairs (USDC/USDT, a fiat or stable base against a stable quote) and leveraged tokens
(BTCUP, ETHDOWN, XRPBULL, BTC3L, ETH5S ...) are excluded; every exclusion is listed in the file
with its reason, together with the time and the ranking inputs.

``watchlist.json``::

    {"generated_at_ms": 1620000000000, "source": "binance" | "offline sample" | "local data",
     "rank_by": "volume" | "spread", "quote": "USDT", "top_n": 10, "n_candidates": 412,
     "pairs": [{"pair": "BTCUSDT", "symbol": "BTC/USDT", "quote_volume_24h": 2.1e9,
                "spread_pct": 0.0001, "bid": 56000.1, "ask": 56000.2}, ...],
     "excluded": [{"pair": "USDCUSDT", "reason": "stablecoin vs stablecoin"}, ...]}

``quote_volume_24h`` is in the quote currency; ``spread_pct`` = (ask - bid) / mid × 100, null
when the source has no quotes (the offline sample).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import ccxt

from engine import fileio
from engine.data import local
from engine.data.sample import sample_volumes
from engine.exchange import client, retry as retry_policy
from engine.errors import ConfigError
from engine.markets import folder_to_pair, pair_to_folder

logger = logging.getLogger(__name__)

RankBy = Literal["volume", "spread"]
RANKS: tuple[str, ...] = ("volume", "spread")

#: Source name written for the offline ranking (the dashboard's wording).
OFFLINE_SOURCE = "offline sample"
#: Source name written for the ranking of a local data set.
LOCAL_SOURCE = "local data"

#: USD stablecoins and fiat currencies: a pair of two of these is not a trading candidate.
STABLE_OR_FIAT: frozenset[str] = frozenset({
    "USDT", "USDC", "BUSD", "TUSD", "FDUSD", "DAI", "USDP", "PAX", "UST", "USTC", "USDD",
    "PYUSD", "GUSD", "SUSD", "LUSD", "FRAX", "USDE", "USDS", "USD1", "RLUSD", "AEUR", "EURI", "EURC",
    "EURT", "EUR", "GBP", "USD", "AUD", "TRY", "BRL", "RUB", "UAH", "NGN", "ZAR", "IDRT", "BIDR", "BVND",
})

_LEVERAGED_SUFFIX = re.compile(r"^(?P<root>[A-Z0-9]{2,}?)(?P<tag>UP|DOWN|BULL|BEAR|HEDGE|HALF)$")
_LEVERAGED_MULT = re.compile(r"^(?P<root>[A-Z0-9]{2,}?)(?P<tag>[1-9][0-9]?[LS])$")



def _check_rank(rank: str, top_n: int) -> None:
    if rank not in RANKS:
        raise ConfigError(f"watchlist rank {rank!r}: expected one of {' '.join(RANKS)}")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise ConfigError(f"watchlist top_n {top_n!r}: expected an integer >= 1")

def is_stable_pair(base: str, quote: str) -> bool:
    """Return True for a stablecoin-or-fiat vs stablecoin-or-fiat pair (USDC/USDT, EUR/USDT)."""
    return base.upper() in STABLE_OR_FIAT and quote.upper() in STABLE_OR_FIAT


def is_leveraged_token(base: str, known_bases: set[str] | frozenset[str] | None = None) -> bool:
    """Return True if `base` is a leveraged token: ``BTCUP``, ``ETHDOWN``, ``XRPBULL``, ``BTC3L``.

    A name counts as leveraged when it is another coin's name followed by ``UP DOWN BULL BEAR HEDGE
    HALF`` or by a multiplier ``2L 3S 5L ...``. With `known_bases` (the bases the exchange lists)
    the root must be one of them, so real coins whose names merely end that way (JUP, SYRUP) are
    kept; without it the suffix alone decides.

    Parameters
    ----------
    base : str
        Base currency code.
    known_bases : set of str, optional
        Base codes of the exchange's other markets.
    """
    base = base.upper()
    for pattern in (_LEVERAGED_SUFFIX, _LEVERAGED_MULT):
        match = pattern.match(base)
        if match and (known_bases is None or match.group("root") in known_bases):
            return True
    return False


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def spread_pct(bid: float | None, ask: float | None) -> float | None:
    """Return (ask - bid) / mid × 100, or None when bid/ask are missing, non-positive or crossed."""
    if bid is None or ask is None or bid <= 0 or ask <= 0 or ask < bid:
        return None
    return (ask - bid) / ((ask + bid) / 2.0) * 100.0


def rank_tickers(
    tickers: Mapping[str, Mapping[str, Any]],
    *,
    quote: str = "USDT",
    top_n: int = 10,
    rank: RankBy = "volume",
    markets: Mapping[str, Mapping[str, Any]] | None = None,
    min_quote_volume_24h: float = 0.0,
) -> tuple[list[dict], list[dict]]:
    """Rank ccxt tickers of spot pairs in `quote`; return (top rows, excluded rows).

    Parameters
    ----------
    tickers : dict
        ccxt ``fetch_tickers`` result: symbol → unified ticker (``quoteVolume``, ``baseVolume``,
        ``last``, ``bid``, ``ask``).
    quote : str
        Quote currency kept.
    top_n : int
        Rows returned (>= 1).
    rank : {"volume", "spread"}
        ``volume``: 24 h quote volume, highest first. ``spread``: bid/ask spread %, lowest
        first (pairs without a valid bid/ask are excluded).
    markets : dict, optional
        ``exchange.markets``; when given, only active spot markets count, and it tells leveraged
        tokens from coins whose names end in UP/DOWN.
    min_quote_volume_24h : float
        Pairs with less 24 h quote volume are excluded (quote currency).

    Returns
    -------
    (list of dict, list of dict)
        Rows ``{"pair", "symbol", "quote_volume_24h", "spread_pct", "bid", "ask"}`` in rank order
        (ties broken by pair name), and ``{"pair", "symbol", "reason"}`` for every excluded pair.

    Raises
    ------
    ConfigError
        If `rank` or `top_n` is invalid, or offline no pair of the bundled sample or of `local_dir`
        is quoted in `quote` (the message names what is there).
    """
    _check_rank(rank, top_n)
    quote = quote.upper()
    symbols = [s for s in tickers if isinstance(s, str) and s.count("/") == 1 and ":" not in s]
    known_bases = {s.split("/")[0] for s in symbols}
    if markets:
        known_bases |= {m.get("base", "") for m in markets.values() if m.get("spot")}
    rows: list[dict] = []
    excluded: list[dict] = []
    for symbol in sorted(symbols):
        base, q = symbol.split("/")
        if q != quote:
            continue
        reason = None
        try:
            pair = pair_to_folder(symbol)
        except ConfigError:
            pair = base + q
            reason = "symbol not usable as a folder name"
        if reason is None and markets is not None:
            market = markets.get(symbol)
            if market is None or not market.get("spot", False):
                reason = "not a spot market"
            elif market.get("active") is False:
                reason = "market not active"
        if reason is None and is_stable_pair(base, q):
            reason = "stablecoin vs stablecoin"
        if reason is None and is_leveraged_token(base, known_bases):
            reason = "leveraged token"
        ticker = tickers[symbol]
        volume = _float(ticker.get("quoteVolume"))
        if volume is None:
            base_volume, last = _float(ticker.get("baseVolume")), _float(ticker.get("last"))
            volume = base_volume * last if base_volume is not None and last is not None else None
        bid, ask = _float(ticker.get("bid")), _float(ticker.get("ask"))
        spread = spread_pct(bid, ask)
        if reason is None and volume is None:
            reason = "no 24 h volume"
        if reason is None and volume < min_quote_volume_24h:
            reason = f"24 h quote volume {volume:.0f} < {min_quote_volume_24h:.0f}"
        if reason is None and rank == "spread" and spread is None:
            reason = "no valid bid/ask"
        if reason is not None:
            excluded.append({"pair": pair, "symbol": symbol, "reason": reason})
            continue
        rows.append({
            "pair": pair, "symbol": symbol, "quote_volume_24h": float(volume),
            "spread_pct": spread, "bid": bid, "ask": ask,
        })
    if rank == "volume":
        rows.sort(key=lambda r: (-r["quote_volume_24h"], r["pair"]))
    else:
        rows.sort(key=lambda r: (r["spread_pct"], -r["quote_volume_24h"], r["pair"]))
    return rows[:top_n], excluded


def sample_watchlist(top_n: int = 10, *, now_ms: int | None = None, sample: str = "month") -> list[str]:
    """Return the `top_n` bundled pairs (folder names) by 24 h quote volume, highest first."""
    volumes = sample_volumes(now_ms, sample=sample)
    return [p for p, _ in sorted(volumes.items(), key=lambda kv: (-kv[1], kv[0]))][:top_n]


def refresh_watchlist(
    exchange: Any | None,
    reports_dir: str | os.PathLike,
    *,
    quote: str = "USDT",
    top_n: int = 10,
    rank: RankBy = "volume",
    now_ms: int | None = None,
    min_quote_volume_24h: float = 0.0,
    retry: retry_policy.RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    local_dir: str | os.PathLike | None = None,
    timeframes: tuple[str, ...] = ("1m",),
    sample: str = "month",
) -> dict:
    """Rank pairs and write ``<reports_dir>/watchlist.json`` atomically; return what was written.

    Parameters
    ----------
    exchange : ccxt.Exchange or None
        Client (engine.exchange.client.make_exchange); None = offline: the bundled sample's pairs ranked
        by the quote volume of their last 24 h of 1m candles (spread unknown: a ``spread`` rank
        falls back to volume, with a WARNING, and ``rank_by`` says ``volume``).
    reports_dir : path
        Folder of watchlist.json (created).
    quote : str
        Quote currency (``"USDT"``).
    top_n : int
        Pairs kept (``topN`` in config).
    rank : {"volume", "spread"}
        Ranking, see :func:`rank_tickers`.
    now_ms : int, optional
        Clock written as ``generated_at_ms`` (default wall clock); offline also the end of the
        24 h window (default: end of the sample).
    min_quote_volume_24h : float
        Liquidity floor, quote currency.
    retry : engine.exchange.retry.RetryPolicy, optional
        Retries of retryable ccxt errors on ``fetch_tickers``.
    sleep : callable
        Waits between retries.
    local_dir : path, optional
        With no exchange: rank the pairs that have candle files in this data folder
        (``data_source: local``) by the quote volume of the last 24 h of their own candles
        (:mod:`engine.data.local`), instead of the bundled sample's.
    timeframes : tuple of str
        With `local_dir`: the timeframes whose files count (the lowest one present is read).
    sample : {"month", "long"}
        Offline without `local_dir`: which bundled sample's pairs are ranked.

    Returns
    -------
    dict
        The watchlist.json payload (module docstring).

    Raises
    ------
    ExchangeUnreachableError
        If the exchange cannot be reached (markets cannot be loaded).
    TemporaryExchangeError
        If ``fetch_tickers`` keeps failing with retryable errors.
    ExchangeError
        If the exchange refuses ``fetch_tickers``.
    ConfigError
        If `rank` or `top_n` is invalid, or offline no pair of the bundled sample or of `local_dir`
        is quoted in `quote` (the message names what is there).
    """
    _check_rank(rank, top_n)
    generated = int(time.time() * 1000) if now_ms is None else int(now_ms)
    if exchange is None:
        if rank == "spread":
            logger.warning("watchlist: the %s has no bid/ask quotes; ranking by 24 h volume instead",
                           "local data" if local_dir is not None else "offline sample")
        if local_dir is not None:
            volumes = local.local_volumes(local_dir, local.local_pairs(local_dir, quote), timeframes)
        else:
            volumes = sample_volumes(now_ms, sample=sample)
            quoted = [f for f in volumes if f.endswith(quote.upper())]
            if not quoted:
                raise ConfigError(f"quote {quote!r}: the bundled sample has no pair quoted in {quote.upper()}; its "
                                  f"pairs are {', '.join(sorted(volumes))} (quote USDT). Set runtime.quote "
                                  "(SCALP_QUOTE) to USDT, or import your own candles (data_source: local).")
        tickers = {folder_to_pair(f): {"quoteVolume": v} for f, v in volumes.items()}
        rows, excluded = rank_tickers(tickers, quote=quote, top_n=top_n, rank="volume",
                                      min_quote_volume_24h=min_quote_volume_24h)
        source = LOCAL_SOURCE if local_dir is not None else OFFLINE_SOURCE
        rank_by, n_candidates = "volume", len(volumes)
    else:
        policy = retry or retry_policy.DEFAULT_RETRY
        client.ensure_markets(exchange, retry=policy, sleep=sleep)
        what = f"{exchange.id} fetch_tickers"
        try:
            tickers = retry_policy.call_with_retry(exchange, exchange.fetch_tickers, retry=policy, what=what,
                                                   sleep=sleep)
        except ccxt.BaseError as e:
            raise retry_policy.translate(e, what=what) from e
        rows, excluded = rank_tickers(tickers, quote=quote, top_n=top_n, rank=rank, markets=exchange.markets,
                                      min_quote_volume_24h=min_quote_volume_24h)
        source, rank_by = exchange.id, rank
        n_candidates = sum(1 for s in tickers if isinstance(s, str) and s.endswith("/" + quote.upper()))
    payload = {
        "generated_at_ms": generated,
        "source": source,
        "rank_by": rank_by,
        "quote": quote.upper(),
        "top_n": top_n,
        "n_candidates": n_candidates,
        "pairs": rows,
        "excluded": excluded,
    }
    path = Path(reports_dir) / "watchlist.json"
    fileio.write_json(path, payload)
    logger.info(
        "watchlist: %d pairs by %s from %s (%d candidates, %d excluded): %s",
        len(rows), rank_by, source, n_candidates, len(excluded), " ".join(r["pair"] for r in rows),
    )
    return payload


def read_watchlist(reports_dir: str | os.PathLike) -> list[str]:
    """Return the pair folder names of ``<reports_dir>/watchlist.json`` in rank order ([] if absent)."""
    try:
        data = json.loads((Path(reports_dir) / "watchlist.json").read_text(encoding="utf-8"))
        return [pair_to_folder(row["pair"]) for row in data.get("pairs", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return []
