"""The one translation of ccxt errors, and explicit retry per call."""
from __future__ import annotations

import ccxt
import pytest

from engine.errors import ExchangeError, TemporaryExchangeError
from engine.exchange import NO_RETRY, RetryPolicy, call_with_retry, make_exchange, translate


@pytest.mark.parametrize("error, temporary", [
    (ccxt.RequestTimeout("timed out"), True),
    (ccxt.RateLimitExceeded("429"), True),
    (ccxt.DDoSProtection("418"), True),
    (ccxt.ExchangeNotAvailable("503"), True),
    (ccxt.OnMaintenance("maintenance"), True),
    (ccxt.BadResponse("<html>"), True),
    (ccxt.NetworkError("reset"), True),
    (ccxt.BadSymbol("no FOO/BAR"), False),
    (ccxt.AuthenticationError("bad key"), False),
    (ccxt.PermissionDenied("no"), False),
    (ccxt.InsufficientFunds("0 USDT"), False),
    (ccxt.InvalidOrder("min notional"), False),
    (ccxt.BadRequest("400"), False),
    (ValueError("not json"), False),
])
def test_translate_says_whether_retrying_can_help(error, temporary):
    out = translate(error, what="binance BTCUSDT 1m")
    assert isinstance(out, ExchangeError)
    assert isinstance(out, TemporaryExchangeError) is temporary
    assert str(out).startswith(f"binance BTCUSDT 1m: {type(error).__name__}: ")
    assert translate(out) is out  # already translated: unchanged


def test_translate_keeps_one_line():
    out = translate(ccxt.ExchangeError("line one\nline two   spaced"), what="kraken")
    assert str(out) == "kraken: ExchangeError: line one line two spaced"


def test_no_retry_calls_once_and_a_policy_retries_what_may_clear_up():
    exchange = make_exchange("binance")
    exchange.enableLastJsonResponse = False
    calls, waits = [], []

    def flaky():
        calls.append(1)
        raise ccxt.RequestTimeout("slow")

    with pytest.raises(ccxt.RequestTimeout):
        call_with_retry(exchange, flaky, retry=NO_RETRY, sleep=waits.append)
    assert len(calls) == 1 and waits == []  # an order placement is never repeated blindly
    calls.clear()
    with pytest.raises(ccxt.RequestTimeout):
        call_with_retry(exchange, flaky, retry=RetryPolicy(max_attempts=3, base_delay_s=0.5), sleep=waits.append)
    assert len(calls) == 3 and waits == [0.5, 1.0]

    def refused():
        calls.append(1)
        raise ccxt.InsufficientFunds("no")

    calls.clear()
    with pytest.raises(ccxt.InsufficientFunds):
        call_with_retry(exchange, refused, retry=RetryPolicy(max_attempts=5), sleep=waits.append)
    assert len(calls) == 1  # permanent errors are never retried
