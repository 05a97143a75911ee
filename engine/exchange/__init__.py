"""The one exchange boundary: ccxt clients, markets, symbols, retries and error translation.

Backfill, the watchlist, the cycle's probe and the executors all go through here; every ccxt
error leaves as an :class:`~engine.errors.EngineError` (:func:`translate`).
"""
from engine.exchange.client import (EXCHANGE_LIMITS, SUPPORTED_EXCHANGES, ExchangeLimits, check_exchange_id,
                                    ensure_markets, exchange_limits, exchange_symbol, make_exchange)
from engine.exchange.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy, call_with_retry, translate

__all__ = [
    "DEFAULT_RETRY", "EXCHANGE_LIMITS", "NO_RETRY", "SUPPORTED_EXCHANGES", "ExchangeLimits", "RetryPolicy",
    "call_with_retry", "check_exchange_id", "ensure_markets", "exchange_limits", "exchange_symbol", "make_exchange", "translate",
]
