"""Pairs, timeframes and calendar arithmetic.

A **pair** is a ccxt symbol such as ``"BTC/USDT"``; on disk it is written as the folder name
``BTCUSDT``. A **timeframe** is a ccxt string, one of ``1m 5m 15m 1h 4h 1d``.
"""
from __future__ import annotations

import re

from engine.errors import ConfigError

#: Timeframes SCALP understands, with their length in milliseconds.
TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}

#: Quote currencies recognised when splitting a folder name such as ``BTCUSDT``; longest first.
KNOWN_QUOTES: tuple[str, ...] = (
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "EUR", "USD", "GBP", "BTC", "ETH", "BNB",
)

_FOLDER_RE = re.compile(r"^[A-Z0-9]{2,20}$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,15}/[A-Z0-9]{2,10}$")
MS_PER_YEAR = 365 * 86_400_000


def timeframe_to_ms(timeframe: str) -> int:
    """Return the length of one candle of `timeframe` in milliseconds.

    Raises
    ------
    ConfigError
        If `timeframe` is not one of ``1m 5m 15m 1h 4h 1d``.
    """
    try:
        return TIMEFRAME_MS[timeframe]
    except (KeyError, TypeError):
        raise ConfigError(
            f"timeframe {timeframe!r}: expected one of {' '.join(TIMEFRAME_MS)}"
        ) from None


def periods_per_year(timeframe: str) -> float:
    """Return the number of candles of `timeframe` in a 365-day year (525600.0 for ``"1m"``)."""
    return MS_PER_YEAR / timeframe_to_ms(timeframe)


def pair_to_folder(pair: str) -> str:
    """Return the folder name of a pair: ``"BTC/USDT"`` → ``"BTCUSDT"``.

    A folder name passed in is returned unchanged after validation.

    Raises
    ------
    ConfigError
        If `pair` is neither a ``BASE/QUOTE`` symbol nor a folder name of capitals and digits.
    """
    if isinstance(pair, str) and _SYMBOL_RE.match(pair):
        return pair.replace("/", "")
    if isinstance(pair, str) and _FOLDER_RE.match(pair):
        return pair
    raise ConfigError(f"pair {pair!r}: expected a symbol like 'BTC/USDT' or a folder name like 'BTCUSDT'")


def folder_to_pair(folder: str, quotes: tuple[str, ...] = KNOWN_QUOTES) -> str:
    """Return the ccxt symbol of a folder name: ``"BTCUSDT"`` → ``"BTC/USDT"``.

    The quote currency is the longest entry of `quotes` that ends the name and leaves a
    non-empty base. A symbol passed in is returned unchanged.

    Raises
    ------
    ConfigError
        If no known quote currency ends the name.
    """
    if isinstance(folder, str) and _SYMBOL_RE.match(folder):
        return folder
    if isinstance(folder, str) and _FOLDER_RE.match(folder):
        for quote in sorted(quotes, key=len, reverse=True):
            if folder.endswith(quote) and len(folder) > len(quote):
                return f"{folder[: -len(quote)]}/{quote}"
    raise ConfigError(
        f"pair folder {folder!r}: expected a base followed by a quote currency ({', '.join(quotes)})"
    )


def floor_to_timeframe(timestamp_ms: int, timeframe: str) -> int:
    """Return the open time (ms, UTC) of the `timeframe` candle that contains `timestamp_ms`."""
    step = timeframe_to_ms(timeframe)
    return (int(timestamp_ms) // step) * step
