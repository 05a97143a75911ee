"""The exchange executors: validate-only and live orders through ccxt on binance, kraken and bitvavo.

:class:`CcxtExecutor` turns one :class:`~engine.execution.order_plan.OrderLeg` into one ccxt
``create_order`` (through :mod:`engine.exchange.orders`, the only place that calls ccxt for orders)
and returns an :class:`~engine.execution.executors.OrderRecord`. One instance serves one exchange in
one mode:

- ``validate-only``: the order goes to the exchange's validate path (Binance
  ``POST /api/v3/order/test``, Kraken ``AddOrder`` with ``validate=true``) and is placed nowhere;
  Bitvavo has no such path and is refused before anything is sent.
- ``live``: a real order. The base refuses a decision whose mode is not ``live``; the executor also
  re-checks that the exchange's API keys are present (defense in depth), before any request.

How a leg becomes a ccxt call (ccxt 4.5.90; the exchange's rule and source in
:data:`engine.exchange.orders.ORDER_FEATURES`):

================  =====================================================================================
leg               ``create_order(symbol, type, side, amount, price, params)``
================  =====================================================================================
limit (entry,     ``("limit", side, quantity, price)``
take-profit)
market entry      ``("market", "buy", quantity, None)``
stop (stop-loss,  ``("market", "sell", quantity, None, {"stopLossPrice": trigger})``: Binance STOP_LOSS,
breakeven)        Kraken stop-loss, Bitvavo stopLoss — a market order once the trigger is hit
trailing stop     Binance ``{"trailingPercent": pct, "stopLossOrTakeProfit": "stopLoss"}`` (STOP_LOSS with
                  trailingDelta = pct × 100 BIPS, whole numbers only); Kraken ``{"trailingPercent": pct}``
                  or ``{"trailingAmount": quote}`` (trailing-stop ``+pct%`` / ``+amount``); Bitvavo refused
================  =====================================================================================

Every order carries our client id (ccxt ``clientOrderId``; a UUID derived from it where the exchange
cannot take it as text, always on Bitvavo: :func:`engine.exchange.orders.exchange_client_id`) and, on
Bitvavo, the ``operatorId`` from ``BITVAVO_OPERATOR_ID``.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import ccxt

from engine.errors import ConfigError, GuardError, PayloadError
from engine.exchange.orders import (cancel_order, create_order, exchange_client_id, fetch_order, fetch_order_fills,
                                    load_market, make_trading_exchange, order_features, validate_params)
from engine.exchange.retry import DEFAULT_RETRY, RetryPolicy
from engine.execution.events import EventLog
from engine.execution.executors import Executor, FillRecord, OrderRecord
from engine.execution.guards import ExecutorMode
from engine.execution.order_plan import OrderLeg
from engine.execution.tunables import has_keys

logger = logging.getLogger(__name__)

#: ccxt's unified order status → OrderRecord status (None: the answer does not say, e.g. Kraken's
#: AddOrder, which returns only the order id; the order was accepted).
STATUS = {"open": "open", "closed": "filled", "canceled": "canceled", "cancelled": "canceled",
          "expired": "canceled", "rejected": "rejected", None: "open"}


def _number(x: float) -> str:
    """A decimal string without exponent or trailing zeros: 1.5 → "1.5", 2.0 → "2"."""
    text = format(float(x), ".10f").rstrip("0").rstrip(".")
    return text or "0"


def ccxt_order_args(exchange_id: str, leg: OrderLeg, market: Mapping[str, Any]) -> tuple[str, str, float, float | None, dict]:
    """Return ``(type, side, amount, price, params)`` for ccxt ``create_order`` of one leg.

    Parameters
    ----------
    exchange_id : str
        binance, kraken or bitvavo.
    leg : OrderLeg
        Quantity in base units; price = limit price (limit legs) or trigger (stop legs), quote per
        base unit; trailing distance in percent (``trail_pct``) or quote currency (``trail_quote``).
    market : dict
        ccxt's market structure of the symbol (Binance: ``info.orderTypes`` must list STOP_LOSS for
        stop legs).

    Raises
    ------
    PayloadError
        A leg the exchange cannot take, naming the exchange and the rule: an unknown order type, a
        limit or stop without a price, a stop where the market lists no market stop-loss, a trailing
        stop on Bitvavo, a quote-currency trail on Binance, a Binance trail that is not a whole
        number of basis points.
    """
    features = order_features(exchange_id)
    quantity, side = float(leg.quantity_base), leg.side
    if not (math.isfinite(quantity) and quantity > 0) or side not in ("buy", "sell"):
        raise PayloadError(f"{exchange_id}: {leg.role} leg: quantity {leg.quantity_base!r} / side {side!r}: expected a "
                           "quantity > 0 and buy or sell")
    has_price = leg.price is not None and math.isfinite(leg.price) and leg.price > 0
    if leg.order_type == "limit":
        if not has_price:
            raise PayloadError(f"{exchange_id}: {leg.role} limit leg without a price > 0 (got {leg.price!r})")
        return "limit", side, quantity, float(leg.price), {}
    if leg.order_type == "market":
        return "market", side, quantity, None, {}
    if leg.order_type == "stop":
        if not has_price:
            raise PayloadError(f"{exchange_id}: {leg.role} stop leg without a trigger price > 0 (got {leg.price!r})")
        allowed = (market.get("info") or {}).get("orderTypes") if exchange_id == "binance" else None
        if allowed is not None and features.stop_loss_type not in allowed:
            raise PayloadError(f"binance {market.get('symbol')}: the market lists no {features.stop_loss_type} order "
                               f"type (exchangeInfo orderTypes = {', '.join(allowed)}); a market stop-loss cannot be "
                               "placed there")
        return "market", side, quantity, None, {"stopLossPrice": float(leg.price)}
    if leg.order_type == "trailing_stop":
        if leg.trail_pct is not None:
            if not features.trailing_percent:
                raise PayloadError(f"{exchange_id}: trailing stop refused: {features.trailing_rule}")
            pct = float(leg.trail_pct)
            if exchange_id == "binance":
                bips = pct * 100
                if not math.isfinite(bips) or bips < 1 or abs(bips - round(bips)) > 1e-9:
                    raise PayloadError(f"binance: trailing stop of {pct:g} % = {bips:g} BIPS refused: trailingDelta is a "
                                       f"whole number of basis points ≥ 1. {features.trailing_rule}")
                return "market", side, quantity, None, {"trailingPercent": _number(round(bips) / 100),
                                                        "stopLossOrTakeProfit": "stopLoss"}
            return "market", side, quantity, None, {"trailingPercent": _number(pct)}
        if leg.trail_quote is not None:
            if not features.trailing_quote:
                raise PayloadError(f"{exchange_id}: trailing stop of {leg.trail_quote:g} quote refused: "
                                   f"{features.trailing_rule}")
            return "market", side, quantity, None, {"trailingAmount": _number(leg.trail_quote)}
        raise PayloadError(f"{exchange_id}: trailing stop leg without a distance (trail_pct and trail_quote both None)")
    raise PayloadError(f"{exchange_id}: order type {leg.order_type!r}: expected limit, market, stop or trailing_stop")


def _float(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class CcxtExecutor(Executor):
    """Validate-only or live orders on binance, kraken or bitvavo through ccxt.

    Parameters
    ----------
    exchange_id : {"binance", "kraken", "bitvavo"}
    mode : {"validate-only", "live"}
        This instance's mode; it accepts only decisions of that mode.
    secrets : mapping
        :func:`engine.execution.tunables.load_secrets`: ``<EXCHANGE>_API_KEY``, ``_API_SECRET`` and,
        for bitvavo, ``BITVAVO_OPERATOR_ID`` (an integer you choose per bot).
    log : EventLog, optional
        Where ``order`` events go.
    urls : str or dict, optional
        Send requests there instead of the real exchange (the test suite's local server).
    timeout_ms : int
        Timeout of one HTTP request, milliseconds.
    rate_limit_ms : int, optional
        ccxt's ``rateLimit`` override (ms per unit of request cost).
    read_retry : RetryPolicy
        Retries of reads (markets, fetch_order, fills); orders and cancels are sent once.
    sleep : callable
        Waits between read retries (injectable).

    Raises
    ------
    ConfigError
        An exchange SCALP does not trade on, or a mode other than validate-only / live.
    """

    def __init__(self, exchange_id: str, mode: ExecutorMode, *, secrets: Mapping[str, str], log: EventLog | None = None,
                 urls: str | Mapping[str, str] | None = None, timeout_ms: int = 10_000,
                 rate_limit_ms: int | None = None, read_retry: RetryPolicy = DEFAULT_RETRY,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(log)
        if mode not in ("validate-only", "live"):
            raise ConfigError(f"CcxtExecutor mode {mode!r}: expected 'validate-only' or 'live' (dry-run is "
                              "DryRunExecutor)")
        self.features = order_features(exchange_id)
        self.exchange_id = exchange_id
        self.mode = mode
        self._secrets = dict(secrets)
        self.urls, self.timeout_ms, self.rate_limit_ms = urls, int(timeout_ms), rate_limit_ms
        self.read_retry, self.sleep = read_retry, sleep
        self._exchange: ccxt.Exchange | None = None

    def __repr__(self) -> str:  # never the secrets
        return f"CcxtExecutor({self.exchange_id!r}, {self.mode!r})"

    # ---------------------------------------------------------------- checks and client
    def _require_keys(self) -> None:
        if not has_keys(self._secrets, self.exchange_id):
            raise GuardError(f"{self.exchange_id} {self.mode}: no {self.exchange_id.upper()}_API_KEY / "
                             "_API_SECRET in .env or the environment; nothing sent")

    def _operator_id(self) -> int | None:
        if not self.features.operator_id_required:
            return None
        raw = str(self._secrets.get(f"{self.exchange_id.upper()}_OPERATOR_ID", "")).strip()
        if not raw.isdigit() or int(raw) < 1:
            raise PayloadError(f"{self.exchange_id}: operatorId is required on every order and cancel (regulatory "
                               "audit trail; https://docs.bitvavo.com/docs/rest-api/create-order, exchange notes D): "
                               f"set {self.exchange_id.upper()}_OPERATOR_ID in .env to an integer ≥ 1 chosen for "
                               f"this bot (found {raw!r}); nothing sent")
        return int(raw)

    def client(self) -> ccxt.Exchange:
        """The signing ccxt client (made on first use, after the key check).

        Raises
        ------
        GuardError
            The exchange's API key or secret is missing.
        PayloadError
            Bitvavo without a valid ``BITVAVO_OPERATOR_ID``.
        """
        self._require_keys()
        operator_id = self._operator_id()
        if self._exchange is None:
            prefix = self.exchange_id.upper()
            self._exchange = make_trading_exchange(
                self.exchange_id, api_key=self._secrets[f"{prefix}_API_KEY"],
                api_secret=self._secrets[f"{prefix}_API_SECRET"], urls=self.urls, timeout_ms=self.timeout_ms,
                operator_id=operator_id, rate_limit_ms=self.rate_limit_ms)
        return self._exchange

    # ---------------------------------------------------------------- the four calls
    def _send(self, leg: OrderLeg, *, symbol: str, strategy: str, ts_ms: int, client_id: str) -> OrderRecord:
        if self.mode == "validate-only" and self.features.validate_params is None:
            raise PayloadError(f"{self.exchange_id}: validate-only refused: {self.features.validate_rule}; nothing sent")
        exchange = self.client()
        market = load_market(exchange, symbol, retry=self.read_retry, sleep=self.sleep)
        order_type, side, amount, price, params = ccxt_order_args(self.exchange_id, leg, market)
        sent_client_id = exchange_client_id(self.exchange_id, client_id)
        params["clientOrderId"] = sent_client_id
        if self.mode == "validate-only":
            params.update(validate_params(self.exchange_id, params))
        what = f"{self.exchange_id} {self.mode} {leg.role} {side} {symbol} (client id {client_id})"
        answer = create_order(exchange, symbol, order_type, side, amount, price, params, what=what,
                              retry=self.read_retry, sleep=self.sleep)
        request = {"type": order_type, "side": side, "amount": amount, "price": price,
                   "params": {k: v for k, v in params.items()}}
        detail: dict[str, Any] = {"exchange": self.exchange_id, "request": request,
                                  "exchange_status": answer.get("status"), "answer": answer.get("info")}
        if sent_client_id != client_id:
            detail["exchange_client_id"] = sent_client_id
        if leg.step:
            detail["step"] = leg.step
        for key in ("trail_pct", "trail_quote"):
            if getattr(leg, key) is not None:
                detail[key] = getattr(leg, key)
        if self.mode == "validate-only":
            status, order_id = "validated", None
            detail["validate_path"] = self.features.validate_path
        else:
            status, order_id = STATUS.get(answer.get("status"), "open"), answer.get("id")
            detail.update(filled_base=_float(answer.get("filled")), average_price=_float(answer.get("average")))
        price_field = leg.price if leg.order_type in ("limit", "stop") else None
        record = OrderRecord(client_id, strategy, symbol, leg.role, side, leg.order_type, float(leg.quantity_base),
                             None if price_field is None else float(price_field), self.mode, status, int(ts_ms),
                             exchange_id=None if order_id is None else str(order_id), detail=detail)
        logger.info("%s %s: %s %s %s %g %s → %s (order %s, client id %s)", self.exchange_id, self.mode, leg.role, side,
                    symbol, amount, "" if price is None else f"@ {price:g}", status, order_id, client_id)
        return record

    def _placed(self, record: OrderRecord) -> bool:
        return record.status != "validated" and record.exchange_id is not None

    def _cancel(self, record: OrderRecord) -> OrderRecord:
        if not self._placed(record):  # validated orders were placed nowhere
            return replace(record, status="canceled", detail={**record.detail, "cancel": "nothing was placed"})
        exchange = self.client()
        cancel_order(exchange, record.exchange_id, record.pair,
                     what=f"{self.exchange_id} {self.mode} cancel {record.pair} order {record.exchange_id} "
                          f"(client id {record.client_id})", retry=self.read_retry, sleep=self.sleep)
        logger.info("%s %s: canceled %s order %s (client id %s)", self.exchange_id, self.mode, record.pair,
                    record.exchange_id, record.client_id)
        return replace(record, status="canceled")

    def _fetch_order(self, record: OrderRecord) -> OrderRecord:
        if not self._placed(record):
            return record
        order = fetch_order(self.client(), record.exchange_id, record.pair, retry=self.read_retry, sleep=self.sleep)
        detail = {**record.detail, "exchange_status": order.get("status"), "filled_base": _float(order.get("filled")),
                  "average_price": _float(order.get("average"))}
        return replace(record, status=STATUS.get(order.get("status"), "open"), detail=detail)

    def _fills(self, record: OrderRecord) -> list[FillRecord]:
        if not self._placed(record):
            return []
        trades = fetch_order_fills(self.client(), record.exchange_id, record.pair, retry=self.read_retry,
                                   sleep=self.sleep)
        out = []
        for t in trades:
            fee = t.get("fee") or {}
            out.append(FillRecord(record.client_id, str(record.exchange_id), str(t.get("id")), record.pair,
                                  str(t.get("side") or record.side), float(t["amount"]), float(t["price"]),
                                  _float(fee.get("cost")), fee.get("currency"), int(t.get("timestamp") or 0), self.mode,
                                  t.get("takerOrMaker")))
        return out
