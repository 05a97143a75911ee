"""Orders through ccxt: trading clients, each exchange's order rules, and one call per request.

Every ccxt call that creates, cancels or reads an order goes through here; each leaves as an
:class:`~engine.errors.EngineError` (:func:`engine.exchange.retry.translate`) whose message names the
exchange. Placing and cancelling are never retried (:data:`~engine.exchange.retry.NO_RETRY`): a
repeat after a timeout can place the order twice, so a :class:`~engine.errors.TemporaryExchangeError`
from :func:`create_order` says to look the order up by its client id first (exchange notes C.5,
``/work/shared/specs/exchange_orders.md``). Reads (markets, an order, its fills) retry as usual.

What SCALP uses of each exchange's spot order API, through ccxt 4.5.90's unified parameters
(:data:`ORDER_FEATURES`; sources in each entry):

========  ===================================  ===============  ==================================
exchange  validate-only path                   stop-loss        trailing stop
========  ===================================  ===============  ==================================
binance   ``POST /api/v3/order/test``          ``STOP_LOSS``    percent (``trailingDelta``, whole
          (ccxt ``{"test": True}``)                             basis points); no quote distance
kraken    ``AddOrder`` with ``validate=true``  ``stop-loss``    percent (``+2%``) or quote (``+150``)
bitvavo   none (refused)                       ``stopLoss``     none (refused)
========  ===================================  ===============  ==================================
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ccxt

from engine.errors import ConfigError, ExchangeError, PayloadError, TemporaryExchangeError
from engine.exchange.client import ensure_markets, make_exchange
from engine.exchange.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy, call_with_retry, translate

#: What ccxt (or the JSON decoding under it) raises on a failed request.
_CCXT_ERRORS: tuple[type[BaseException], ...] = (ccxt.BaseError, TypeError, KeyError, ValueError, AttributeError,
                                                  IndexError)


@dataclass(frozen=True)
class OrderFeatures:
    """What SCALP uses of one exchange's spot order API (ccxt 4.5.90 unified ``create_order`` params).

    Attributes
    ----------
    validate_params : dict or None
        Extra ``create_order`` params that send the order to the exchange's validate-only path
        (checked by the exchange, never placed); None: the exchange has no such path.
    validate_rule : str
        The validate-only rule and its source.
    validate_path : str
        The request that validates (``"none"`` when there is none).
    stop_loss_type : str
        The exchange's market stop-loss order type, what ccxt makes of ``stopLossPrice`` on a
        ``market`` order.
    trailing_percent, trailing_quote : bool
        A trailing stop whose distance is a percent / an amount of quote currency can be placed.
    trailing_rule : str
        The trailing-stop rule and its source.
    client_id_max_chars : int
        Longest free-text client order id the exchange takes; a longer SCALP id is sent as a UUID
        derived from it (0: always a UUID).
    operator_id_required : bool
        Every create and cancel must carry an ``operatorId`` (Bitvavo).
    """

    validate_params: Mapping[str, Any] | None
    validate_rule: str
    validate_path: str
    stop_loss_type: str
    trailing_percent: bool
    trailing_quote: bool
    trailing_rule: str
    client_id_max_chars: int
    operator_id_required: bool = False


#: The order rules of the exchanges SCALP trades on (keys: ccxt ids).
ORDER_FEATURES: dict[str, OrderFeatures] = {
    "binance": OrderFeatures(
        validate_params={"test": True},
        validate_rule="POST /api/v3/order/test validates an order and places nothing "
                      "(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints "
                      "'Test new order'; ccxt params test=True, exchange notes C.1)",
        validate_path="POST /api/v3/order/test",
        stop_loss_type="STOP_LOSS",
        trailing_percent=True, trailing_quote=False,
        trailing_rule="a trailing stop is a STOP_LOSS SELL with trailingDelta in whole basis points (BIPS) below the "
                      "highest price since it was placed; there is no distance in quote currency "
                      "(https://github.com/binance/binance-spot-api-docs/blob/master/faqs/trailing-stop-faq.md)",
        # newClientOrderId: ^[a-zA-Z0-9-_]{1,36}$ (Binance's answer -1100, binance/binance-spot-api-docs PR #34)
        client_id_max_chars=36,
    ),
    "kraken": OrderFeatures(
        validate_params={"validate": "true"},
        validate_rule="AddOrder with validate=true validates the order only; it never reaches matching "
                      "(https://docs.kraken.com/api/docs/rest-api/add-order; exchange notes B)",
        validate_path="POST /0/private/AddOrder validate=true",
        stop_loss_type="stop-loss",
        trailing_percent=True, trailing_quote=True,
        trailing_rule="ordertype trailing-stop with price +<offset> (quote) or +<offset>% (percent) from the peak "
                      "(https://docs.kraken.com/api/docs/rest-api/add-order; exchange notes B.1)",
        client_id_max_chars=18,  # cl_ord_id: a UUID or free ASCII text of at most 18 characters (exchange notes A.2)
    ),
    "bitvavo": OrderFeatures(
        validate_params=None,
        validate_rule="Bitvavo has no validate-only or test-order endpoint: POST /order always places the order, "
                      "and there is no sandbox (https://docs.bitvavo.com/docs/rest-api/create-order; exchange notes "
                      "C.2, D). Use dry-run, or live with a small ENTRY_MAX_NOTIONAL",
        validate_path="none",
        stop_loss_type="stopLoss",
        trailing_percent=False, trailing_quote=False,
        trailing_rule="Bitvavo's order types are market, limit, stopLoss, stopLossLimit, takeProfit and "
                      "takeProfitLimit: there is no trailing stop (https://docs.bitvavo.com/docs/rest-api/create-order; "
                      "exchange notes D)",
        client_id_max_chars=0,  # clientOrderId is a string<UUID> (https://docs.bitvavo.com/docs/rest-api/get-order)
        operator_id_required=True,
    ),
}


def order_features(exchange_id: str) -> OrderFeatures:
    """Return the order rules of `exchange_id`.

    Raises
    ------
    ConfigError
        For an exchange SCALP does not place orders on (anything but binance, kraken, bitvavo).
    """
    if exchange_id not in ORDER_FEATURES:
        raise ConfigError(f"exchange {exchange_id!r}: SCALP places orders only on {', '.join(ORDER_FEATURES)}")
    return ORDER_FEATURES[exchange_id]


def exchange_client_id(exchange_id: str, client_id: str) -> str:
    """Return the client order id sent to the exchange for SCALP's `client_id`.

    `client_id` itself when the exchange takes it as free text (Binance ``newClientOrderId`` ≤ 36
    characters, Kraken ``cl_ord_id`` ≤ 18); otherwise ``uuid5(NAMESPACE_URL, "scalp:" + client_id)``,
    the same UUID every time (always on Bitvavo, whose ``clientOrderId`` is a UUID). Sources in
    :data:`ORDER_FEATURES`.
    """
    if 0 < len(client_id) <= order_features(exchange_id).client_id_max_chars:
        return client_id
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "scalp:" + client_id))


def validate_params(exchange_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the params that make `params` a validate-only order on `exchange_id`.

    Kraken: ccxt form-encodes the body (``validate=true``) except for percent trailing stops, which
    it sends as JSON, where the flag is the JSON ``true``.

    Raises
    ------
    PayloadError
        If the exchange has no validate-only path (Bitvavo); nothing was sent.
    """
    features = order_features(exchange_id)
    if features.validate_params is None:
        raise PayloadError(f"{exchange_id}: validate-only refused: {features.validate_rule}")
    extra = dict(features.validate_params)
    if exchange_id == "kraken" and "trailingPercent" in params:
        extra["validate"] = True
    return extra


def make_trading_exchange(exchange_id: str, *, api_key: str, api_secret: str, urls: str | Mapping[str, str] | None = None,
                          timeout_ms: int = 10_000, operator_id: int | None = None,
                          rate_limit_ms: int | None = None) -> ccxt.Exchange:
    """Return a ccxt client that can sign private requests (made by :func:`make_exchange`).

    Parameters
    ----------
    exchange_id : str
        binance, kraken or bitvavo.
    api_key, api_secret : str
        The account's API key (Kraken's secret is base64, as Kraken issues it). Never logged.
    urls : str or dict, optional
        Where to send requests instead of the real exchange (the test suite's local server).
    timeout_ms : int
        Timeout of one HTTP request, milliseconds.
    operator_id : int, optional
        Bitvavo's ``operatorId`` (required there on every create and cancel).
    rate_limit_ms : int, optional
        ccxt's ``rateLimit`` (milliseconds per unit of request cost); None keeps ccxt's (Kraken 1000).

    Raises
    ------
    ConfigError
        Unknown exchange, or an empty key or secret.
    """
    order_features(exchange_id)
    if not api_key or not api_secret:
        raise ConfigError(f"{exchange_id}: an API key and secret are needed to trade")
    exchange = make_exchange(exchange_id, urls=urls, timeout_ms=timeout_ms)
    exchange.apiKey, exchange.secret = api_key, api_secret
    if operator_id is not None:
        exchange.options["operatorId"] = int(operator_id)
    if rate_limit_ms is not None:
        exchange.rateLimit = int(rate_limit_ms)
    return exchange


def load_market(exchange: ccxt.Exchange, symbol: str, *, retry: RetryPolicy = DEFAULT_RETRY,
                sleep: Callable[[float], None] = time.sleep) -> dict:
    """Return ccxt's market structure of `symbol`, loading the markets first (retried).

    Raises
    ------
    ExchangeError
        The exchange does not list `symbol`, or markets cannot be loaded (a
        :class:`~engine.errors.TemporaryExchangeError` for network trouble).
    """
    markets = ensure_markets(exchange, retry=retry, sleep=sleep)
    if symbol not in markets:
        raise ExchangeError(f"BadSymbol: {exchange.id} does not list {symbol}")
    return markets[symbol]


def _call(exchange: ccxt.Exchange, what: str, method: Callable[..., Any], *args: Any, retry: RetryPolicy,
          sleep: Callable[[float], None], placing: bool = False) -> Any:
    try:
        return call_with_retry(exchange, method, *args, retry=retry, what=what, sleep=sleep)
    except _CCXT_ERRORS as e:
        error = translate(e, what=what)
        if placing and isinstance(error, TemporaryExchangeError):
            error = TemporaryExchangeError(f"{error}. The order may have reached the exchange: look it up by its "
                                           "client id before sending it again")
        raise error from e


def create_order(exchange: ccxt.Exchange, symbol: str, order_type: str, side: str, amount: float,
                 price: float | None = None, params: Mapping[str, Any] | None = None, *, what: str = "",
                 retry: RetryPolicy = DEFAULT_RETRY, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Send one ``create_order`` (never retried) and return ccxt's order structure.

    Parameters
    ----------
    symbol : str
        ccxt symbol (``BTC/USDT``).
    order_type, side : str
        ccxt's ``limit``/``market`` and ``buy``/``sell``; stops and trailing stops are ``market``
        with params (:data:`ORDER_FEATURES`).
    amount : float
        Base units (ccxt truncates it to the amount step).
    price : float or None
        Limit price, quote per base unit (None for market-type orders).
    params : dict, optional
        ccxt params (``clientOrderId``, ``stopLossPrice``, ``trailingPercent``, the validate flag).
    what : str
        Prefix of error messages; defaults to ``"<exchange> create_order <symbol>"``.
    retry : RetryPolicy
        For loading the markets only (the order itself is sent once).

    Returns
    -------
    dict
        ccxt's unified order (``id``, ``status`` open/closed/canceled or None, ``filled``,
        ``average``, ``info`` = the exchange's answer). A validate-only answer has no ``id``.

    Raises
    ------
    ExchangeError
        The exchange refused it (insufficient funds, invalid order, authentication...).
    TemporaryExchangeError
        Network trouble or a 5xx: the order may or may not exist (look it up by client id).
    """
    what = what or f"{exchange.id} create_order {symbol}"
    load_market(exchange, symbol, retry=retry, sleep=sleep)
    return _call(exchange, what, exchange.create_order, symbol, order_type, side, amount, price, dict(params or {}),
                 retry=NO_RETRY, sleep=sleep, placing=True)


def cancel_order(exchange: ccxt.Exchange, order_id: str, symbol: str, *, what: str = "",
                 retry: RetryPolicy = DEFAULT_RETRY, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Cancel one order by the exchange's id (sent once); return ccxt's (often sparse) order structure.

    Raises
    ------
    ExchangeError
        Unknown or no longer open order (``OrderNotFound``), or another refusal.
    TemporaryExchangeError
        Network trouble: fetch the order to learn whether it was cancelled.
    """
    what = what or f"{exchange.id} cancel_order {symbol} {order_id}"
    load_market(exchange, symbol, retry=retry, sleep=sleep)
    return _call(exchange, what, exchange.cancel_order, order_id, symbol, retry=NO_RETRY, sleep=sleep)


def fetch_order(exchange: ccxt.Exchange, order_id: str, symbol: str, *, retry: RetryPolicy = DEFAULT_RETRY,
                sleep: Callable[[float], None] = time.sleep) -> dict:
    """Return ccxt's order structure for one order (Binance ``GET /api/v3/order``, Kraken
    ``QueryOrders``, Bitvavo ``GET /order``); retried on network trouble.

    Raises
    ------
    ExchangeError
        Unknown order (``OrderNotFound``) or another refusal; TemporaryExchangeError after the retries.
    """
    what = f"{exchange.id} fetch_order {symbol} {order_id}"
    load_market(exchange, symbol, retry=retry, sleep=sleep)
    return _call(exchange, what, exchange.fetch_order, order_id, symbol, retry=retry, sleep=sleep)


def fetch_order_fills(exchange: ccxt.Exchange, order_id: str, symbol: str, *, retry: RetryPolicy = DEFAULT_RETRY,
                      sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """Return the account's trades (ccxt trade structures) that executed order `order_id`.

    Reads ``fetch_my_trades``: Binance ``GET /api/v3/myTrades?orderId=`` (exactly that order's),
    Kraken ``TradesHistory`` and Bitvavo ``GET /trades`` (the most recent page: 50 on Kraken, 500
    on Bitvavo), filtered by the trade's order id. Retried on network trouble.

    Raises
    ------
    ExchangeError
        A refusal; TemporaryExchangeError after the retries.
    """
    what = f"{exchange.id} fetch_my_trades {symbol} order {order_id}"
    load_market(exchange, symbol, retry=retry, sleep=sleep)
    params = {"orderId": order_id} if exchange.id == "binance" else {}
    trades = _call(exchange, what, exchange.fetch_my_trades, symbol, None, None, params, retry=retry, sleep=sleep)
    return [t for t in trades if str(t.get("order")) == str(order_id)]
