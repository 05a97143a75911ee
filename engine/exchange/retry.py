"""Retry policy and the one translation of ccxt errors into :class:`~engine.errors.EngineError`.

Retrying is explicit per call: :func:`call_with_retry` retries what ccxt classes as "may clear up"
(:data:`RETRYABLE_ERRORS`) with exponential backoff, honouring ``Retry-After``. A call that must not
be repeated blindly (an order placement can double-fill) passes ``retry=NO_RETRY``.
:func:`translate` turns any ccxt error into an EngineError whose class says whether retrying
later can help (:class:`~engine.errors.TemporaryExchangeError`) or not (:class:`ExchangeError`).
"""
from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ccxt

from engine.errors import ExchangeError, TemporaryExchangeError

logger = logging.getLogger(__name__)

#: ccxt errors that are retried with backoff: OperationFailed is ccxt's class of failures that may
#: clear up on retry (NetworkError: RequestTimeout, RateLimitExceeded, DDoSProtection,
#: ExchangeNotAvailable...; BadResponse; Binance -1000 "unknown error"). ExchangeError and its
#: subclasses (BadSymbol, AuthenticationError, BadRequest...) are never retried.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (ccxt.OperationFailed,)


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


#: One try, no retry: for calls that must not be repeated blindly (placing an order).
NO_RETRY = RetryPolicy(max_attempts=1)


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



#: ccxt errors that retrying later can fix (network trouble, rate limits, maintenance, garbage
#: answers). Everything else from ccxt (bad symbol, authentication, insufficient funds, an order
#: the exchange refuses) is permanent for this request.
_TEMPORARY: tuple[type[Exception], ...] = (ccxt.OperationFailed,)


def translate(error: BaseException, *, what: str = "") -> ExchangeError:
    """Return the :class:`~engine.errors.EngineError` that stands for a ccxt error (the only mapping).

    Parameters
    ----------
    error : Exception
        What ccxt (or the JSON decoding under it) raised. An :class:`ExchangeError` is returned
        unchanged.
    what : str
        Prefix naming the request, e.g. ``"binance BTCUSDT 1m"``.

    Returns
    -------
    ExchangeError
        :class:`~engine.errors.TemporaryExchangeError` (retry later with backoff) for
        ``ccxt.OperationFailed`` and its subclasses (NetworkError, RequestTimeout,
        RateLimitExceeded, DDoSProtection, ExchangeNotAvailable, OnMaintenance, BadResponse);
        :class:`~engine.errors.ExchangeError` (do not retry) for everything else: BadSymbol,
        AuthenticationError, PermissionDenied, InsufficientFunds, InvalidOrder, BadRequest.
        The message is one line: ``what: ccxt class: first 300 characters``.
    """
    if isinstance(error, ExchangeError):
        return error
    text = " ".join(str(error).split())[:300]
    prefix = f"{what}: " if what else ""
    message = f"{prefix}{type(error).__name__}: {text}"
    if isinstance(error, _TEMPORARY):
        return TemporaryExchangeError(message)
    return ExchangeError(message)
