"""A local exchange with order endpoints: Binance, Kraken or Bitvavo, for the executor tests.

:class:`OrderExchangeServer` extends :class:`tests.exchange_server.ExchangeServer` (Binance's public
REST over the bundled candles) with one exchange's private order API and the public calls ccxt
4.5.90's ``load_markets`` makes for it. Routes (only what ccxt actually sends; answers follow the
shapes of each exchange's documented examples):

========  =====================================================================================
exchange  endpoints
========  =====================================================================================
binance   public (exchangeInfo, klines, ticker, depth, time) from ExchangeServer;
          ``POST /api/v3/order``, ``POST /api/v3/order/test`` (validated, placed nowhere),
          ``DELETE /api/v3/order``, ``GET /api/v3/order``, ``GET /api/v3/myTrades``
          (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints)
kraken    ``GET /0/public/Assets``, ``/AssetPairs``, ``/Time``; ``POST /0/private/AddOrder``
          (``validate`` present: validated, placed nowhere), ``CancelOrder``, ``QueryOrders``,
          ``TradesHistory`` (https://docs.kraken.com/api/docs/rest-api/add-order and siblings)
bitvavo   ``GET /v2/assets``, ``/v2/markets``, ``/v2/time``; ``POST /v2/order``,
          ``DELETE /v2/order``, ``GET /v2/order``, ``GET /v2/trades``
          (https://docs.bitvavo.com/docs/rest-api/create-order and siblings)
========  =====================================================================================

Private requests must carry the exchange's authentication (Binance ``X-MBX-APIKEY`` header and a
``signature`` parameter; Kraken ``API-Key``/``API-Sign`` headers and a ``nonce``; Bitvavo
``Bitvavo-Access-Key``/``-Signature``/``-Timestamp`` headers); any key is accepted, signatures are
not verified. A market order fills at once at the server's current price (the last close before
``now_ms``); limit and stop orders rest until the test calls :meth:`OrderExchangeServer.fill`. Every
request is recorded (:attr:`requests`, endpoint ``"<METHOD> <path>"`` for the routes added here) and
faults are injected as in ExchangeServer (:meth:`inject` with that endpoint), plus
:meth:`refuse_next` for the exchange's own "insufficient funds" answer.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from engine.markets import folder_to_pair
from tests.exchange_server import ExchangeServer, Fault, Request, _make_handler

EXCHANGES = ("binance", "kraken", "bitvavo")
FEE_RATE = 0.001  # 0.1 % of the cost, charged in the quote currency

#: The exchange's documented "insufficient funds" answer: (HTTP status, body).
INSUFFICIENT_FUNDS = {
    "binance": (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}),
    "kraken": (200, {"error": ["EOrder:Insufficient funds"]}),
    "bitvavo": (400, {"errorCode": 216, "error": "You do not have sufficient balance to complete this operation."}),
}
#: Kraken's names of the bundled assets (https://support.kraken.com/hc/en-us/articles/360001206766).
KRAKEN_ASSETS = {"BTC": "XXBT", "ETH": "XETH", "USD": "ZUSD"}


@dataclass
class Fill:
    """One execution of a server order (quote-currency fee)."""

    id: str
    order_id: str
    pair: str
    side: str
    amount: float
    price: float
    fee: float
    ts_ms: int
    maker: bool


@dataclass
class Order:
    """One order the server holds. `kind`: limit, market, stop_loss, take_profit or trailing_stop;
    `status`: new (resting or awaiting its trigger), filled or canceled."""

    id: str
    client_id: str | None
    pair: str
    side: str
    kind: str
    amount: float
    price: float | None
    trigger: float | None
    trail: str | None
    created_ms: int
    status: str = "new"
    fills: list[Fill] = field(default_factory=list)

    @property
    def filled(self) -> float:
        return sum(f.amount for f in self.fills)

    @property
    def cost(self) -> float:
        return sum(f.amount * f.price for f in self.fills)


class OrderExchangeServer(ExchangeServer):
    """ExchangeServer plus one exchange's order endpoints.

    Parameters
    ----------
    exchange_id : {"binance", "kraken", "bitvavo"}
        Whose API is played.
    pairs : list of str
        Folder names listed (``BTCUSDT`` → Kraken ``XBTUSDT``, Bitvavo ``BTC-USDT``).
    order_types : list of str, optional
        Binance ``orderTypes`` of every symbol (default: the current BTCUSDT list, with STOP_LOSS).
    **kwargs
        As ExchangeServer (``now_ms``, ``candles``...).
    """

    def __init__(self, exchange_id: str = "binance", pairs: list[str] | None = None, *,
                 order_types: list[str] | None = None, **kwargs: Any) -> None:
        if exchange_id not in EXCHANGES:
            raise ValueError(f"exchange_id {exchange_id!r}: expected one of {EXCHANGES}")
        super().__init__(pairs=list(pairs or ["BTCUSDT"]), **kwargs)
        self.exchange_id = exchange_id
        self.order_types = list(order_types or ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                                                "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"])
        self.orders: dict[str, Order] = {}
        self._numbers = itertools.count(1)

    # ---------------------------------------------------------------- the book
    def price(self, pair: str) -> float:
        """The current price of `pair`: the last close before the clock (quote per base unit)."""
        return float(self.ticker(pair)["lastPrice"])

    def _new_id(self, kind: str = "order") -> str:
        n = next(self._numbers)
        if self.exchange_id == "binance":
            return str(1000 + n)
        if self.exchange_id == "kraken":
            body = f"{n:011d}"
            return f"{'O' if kind == 'order' else 'T'}{body[:5]}-{body[5:10]}-{body[10:]}ZZZZZ"
        return str(uuid.UUID(int=n))

    def place(self, pair: str, side: str, kind: str, amount: float, *, price: float | None = None,
              trigger: float | None = None, trail: str | None = None, client_id: str | None = None) -> Order:
        """Add an order; a market order fills at once at :meth:`price`."""
        order = Order(self._new_id(), client_id, pair, side, kind, float(amount), price, trigger, trail, self.now_ms)
        with self._lock:
            self.orders[order.id] = order
        if kind == "market":
            self.fill(order.id, price=self.price(pair), maker=False)
        return order

    def find(self, order_id: str | None = None, client_id: str | None = None) -> Order | None:
        """The order with this exchange id or client id (None: unknown)."""
        if order_id is not None and order_id in self.orders:
            return self.orders[order_id]
        return next((o for o in self.orders.values() if client_id is not None and o.client_id == client_id), None)

    def fill(self, order_id: str | None = None, *, client_id: str | None = None, price: float | None = None,
             maker: bool = True) -> Fill:
        """Fill a resting order completely at `price` (default its limit, else trigger, else the
        current price); return the fill."""
        order = self.find(order_id, client_id)
        if order is None or order.status != "new":
            raise KeyError(f"no resting order {order_id or client_id!r}")
        at = price if price is not None else order.price or order.trigger or self.price(order.pair)
        amount = order.amount - order.filled
        fill = Fill(self._new_id("trade"), order.id, order.pair, order.side, amount, float(at),
                    amount * float(at) * FEE_RATE, self.now_ms, maker)
        with self._lock:
            order.fills.append(fill)
            order.status = "filled"
        return fill

    def open_orders(self) -> list[Order]:
        """Orders still resting (new)."""
        return [o for o in self.orders.values() if o.status == "new"]

    def refuse_next(self, endpoint: str, count: int = 1) -> Fault:
        """Answer the next `count` requests to `endpoint` with the exchange's insufficient-funds error."""
        status, body = INSUFFICIENT_FUNDS[self.exchange_id]
        return self.inject(endpoint, "status", count=count, status=status, body=body)

    def exchange_info(self) -> dict:
        info = super().exchange_info()
        for symbol in info["symbols"]:
            symbol["orderTypes"] = list(self.order_types)
            symbol["filters"].append({"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
                                      "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
                                      "maxTrailingBelowDelta": 2000})
        return info

    def start(self, port: int = 0) -> OrderExchangeServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _make_private_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="order-exchange-server", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> OrderExchangeServer:
        return self.start()

    # ---------------------------------------------------------------- names
    def market_id(self, pair: str) -> str:
        """The exchange's id of a folder pair: BTCUSDT, XBTUSDT or BTC-USDT."""
        base, quote = folder_to_pair(pair).split("/")
        if self.exchange_id == "kraken":
            return ("XBT" if base == "BTC" else base) + quote
        return f"{base}-{quote}" if self.exchange_id == "bitvavo" else pair

    def pair_of(self, market_id: str | None) -> str | None:
        return next((p for p in self.pairs if self.market_id(p) == market_id), None)


# -------------------------------------------------------------------- Binance
def _binance_order(o: Order, *, with_fills: bool = False) -> dict:
    # GET /api/v3/order and POST /api/v3/order (newOrderRespType FULL) answers
    status = {"new": "NEW", "filled": "FILLED", "canceled": "CANCELED"}[o.status]
    kind = {"limit": "LIMIT", "market": "MARKET", "stop_loss": "STOP_LOSS", "take_profit": "TAKE_PROFIT",
            "trailing_stop": "STOP_LOSS"}[o.kind]
    out = {"symbol": o.pair, "orderId": int(o.id), "orderListId": -1, "clientOrderId": o.client_id or "",
           "price": f"{o.price or 0:.8f}", "origQty": f"{o.amount:.8f}", "executedQty": f"{o.filled:.8f}",
           "cummulativeQuoteQty": f"{o.cost:.8f}", "status": status, "timeInForce": "GTC", "type": kind,
           "side": o.side.upper(), "stopPrice": f"{o.trigger or 0:.8f}", "time": o.created_ms,
           "transactTime": o.created_ms, "updateTime": o.created_ms, "workingTime": o.created_ms,
           "isWorking": True, "selfTradePreventionMode": "EXPIRE_MAKER"}
    if o.trail is not None:
        out["trailingDelta"] = int(o.trail)
    if with_fills:
        out["fills"] = [{"price": f"{f.price:.8f}", "qty": f"{f.amount:.8f}", "commission": f"{f.fee:.8f}",
                         "commissionAsset": folder_to_pair(o.pair).split("/")[1], "tradeId": int(f.id)}
                        for f in o.fills]
    return out


def _binance(server: OrderExchangeServer, method: str, path: str, p: dict[str, str],
             headers: Any) -> tuple[int, Any] | None:
    endpoint = path.removeprefix("/api/v3/")
    if endpoint not in ("order", "order/test", "myTrades"):
        return None
    if not headers.get("X-MBX-APIKEY") or "signature" not in p or "timestamp" not in p:
        return 401, {"code": -2014, "msg": "API-key format invalid."}
    if p.get("symbol") not in server.pairs:
        return 400, {"code": -1121, "msg": "Invalid symbol."}
    if endpoint == "myTrades":
        fills = [f for o in server.orders.values() for f in o.fills if o.pair == p["symbol"]
                 and ("orderId" not in p or o.id == p["orderId"])]
        return 200, [{"symbol": f.pair, "id": int(f.id), "orderId": int(f.order_id), "orderListId": -1,
                      "price": f"{f.price:.8f}", "qty": f"{f.amount:.8f}", "quoteQty": f"{f.amount * f.price:.8f}",
                      "commission": f"{f.fee:.8f}", "commissionAsset": folder_to_pair(f.pair).split("/")[1],
                      "time": f.ts_ms, "isBuyer": f.side == "buy", "isMaker": f.maker, "isBestMatch": True}
                     for f in fills]
    if method in ("GET", "DELETE"):
        order = server.find(p.get("orderId"), p.get("origClientOrderId"))
        if order is None or order.pair != p["symbol"]:
            return 400, {"code": -2013 if method == "GET" else -2011,
                         "msg": "Order does not exist." if method == "GET" else "Unknown order sent."}
        if method == "DELETE":
            if order.status != "new":
                return 400, {"code": -2011, "msg": "Unknown order sent."}
            order.status = "canceled"
        return 200, _binance_order(order)
    kinds = {"LIMIT": "limit", "MARKET": "market", "STOP_LOSS": "stop_loss", "TAKE_PROFIT": "take_profit"}
    kind = kinds.get(p.get("type", ""))
    required = {"limit": ("quantity", "price", "timeInForce"), "market": ("quantity",),
                "stop_loss": ("quantity",), "take_profit": ("quantity", "stopPrice")}.get(kind or "", ())
    for name in ("side", "type", *required):
        if not p.get(name):
            return 400, {"code": -1102, "msg": f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."}
    if kind is None or p["type"] not in server.order_types:
        return 400, {"code": -1013, "msg": "Order type not supported for this symbol."}
    if kind == "stop_loss" and not (p.get("stopPrice") or p.get("trailingDelta")):
        return 400, {"code": -1102, "msg": "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed."}
    if endpoint == "order/test":
        return 200, {}
    trail = p.get("trailingDelta")
    order = server.place(p["symbol"], p["side"].lower(), "trailing_stop" if trail else kind, float(p["quantity"]),
                         price=float(p["price"]) if p.get("price") else None,
                         trigger=float(p["stopPrice"]) if p.get("stopPrice") else None, trail=trail,
                         client_id=p.get("newClientOrderId"))
    return 200, _binance_order(order, with_fills=True)


# -------------------------------------------------------------------- Kraken
def _kraken_order(server: OrderExchangeServer, o: Order) -> dict:
    # QueryOrders entry (https://docs.kraken.com/api/docs/rest-api/get-orders-info)
    kind = {"limit": "limit", "market": "market", "stop_loss": "stop-loss", "take_profit": "take-profit",
            "trailing_stop": "trailing-stop"}[o.kind]
    price = o.trail if o.trail is not None else (o.trigger if o.trigger is not None else o.price)
    out = {"refid": None, "userref": 0, "cl_ord_id": o.client_id, "status": {"new": "open"}.get(o.status, o.status),
           "reason": None, "opentm": o.created_ms / 1000, "starttm": 0, "expiretm": 0,
           "descr": {"pair": server.market_id(o.pair), "type": o.side, "ordertype": kind, "price": str(price or 0),
                     "price2": "0", "leverage": "none",
                     "order": f"{o.side} {o.amount:.8f} {server.market_id(o.pair)} @ {kind} {price or ''}".strip(),
                     "close": ""},
           "vol": f"{o.amount:.8f}", "vol_exec": f"{o.filled:.8f}", "cost": f"{o.cost:.5f}",
           "fee": f"{sum(f.fee for f in o.fills):.5f}", "price": f"{o.cost / o.filled if o.filled else 0:.5f}",
           "stopprice": f"{o.trigger or 0:.5f}", "limitprice": "0.00000", "misc": "", "oflags": "fciq"}
    if o.status == "filled":
        out["status"], out["closetm"] = "closed", o.created_ms / 1000
    if o.status == "canceled":
        out["reason"] = "User requested"
    if o.fills:
        out["trades"] = [f.id for f in o.fills]
    return out


def _kraken(server: OrderExchangeServer, method: str, path: str, p: dict[str, str],
            headers: Any) -> tuple[int, Any] | None:
    name = path.removeprefix("/0/public/").removeprefix("/0/private/")
    if path.startswith("/0/public/"):
        if name == "Time":
            return 200, {"error": [], "result": {"unixtime": server.now_ms // 1000, "rfc1123": ""}}
        if name == "Assets":
            codes = sorted({c for pair in server.pairs for c in folder_to_pair(pair).split("/")})
            return 200, {"error": [], "result": {KRAKEN_ASSETS.get(c, c): {
                "aclass": "currency", "altname": "XBT" if c == "BTC" else c, "decimals": 10, "display_decimals": 5,
                "status": "enabled"} for c in codes}}
        if name == "AssetPairs":
            result = {}
            for pair in server.pairs:
                base, quote = folder_to_pair(pair).split("/")
                mid = server.market_id(pair)
                result[mid] = {"altname": mid, "wsname": f"{'XBT' if base == 'BTC' else base}/{quote}",
                               "aclass_base": "currency", "base": KRAKEN_ASSETS.get(base, base),
                               "aclass_quote": "currency", "quote": KRAKEN_ASSETS.get(quote, quote), "lot": "unit",
                               "cost_decimals": 5, "pair_decimals": 1, "lot_decimals": 8, "lot_multiplier": 1,
                               "leverage_buy": [], "leverage_sell": [], "fees": [[0, 0.4]], "fees_maker": [[0, 0.25]],
                               "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40,
                               "ordermin": "0.00005", "costmin": "0.5", "tick_size": "0.1", "status": "online"}
            return 200, {"error": [], "result": result}
        return None
    if not path.startswith("/0/private/"):
        return None
    if not headers.get("API-Key") or not headers.get("API-Sign") or "nonce" not in p:
        return 200, {"error": ["EAPI:Invalid key"]}
    if name == "AddOrder":
        pair = server.pair_of(p.get("pair"))
        if pair is None:
            return 200, {"error": ["EQuery:Unknown asset pair"]}
        kinds = {"limit": "limit", "market": "market", "stop-loss": "stop_loss", "take-profit": "take_profit",
                 "trailing-stop": "trailing_stop"}
        kind = kinds.get(p.get("ordertype", ""))
        if kind is None or p.get("type") not in ("buy", "sell") or not p.get("volume"):
            return 200, {"error": ["EGeneral:Invalid arguments"]}
        if kind != "market" and not p.get("price"):
            return 200, {"error": ["EGeneral:Invalid arguments:price"]}
        descr = {"order": f"{p['type']} {float(p['volume']):.8f} {p['pair']} @ {p['ordertype']} {p.get('price', '')}".strip()}
        if "validate" in p:  # the key's presence is enough (exchange notes, B): validated, placed nowhere
            return 200, {"error": [], "result": {"descr": descr}}
        price = p.get("price")
        order = server.place(pair, p["type"], kind, float(p["volume"]),
                             price=float(price) if kind == "limit" else None,
                             trigger=float(price) if kind in ("stop_loss", "take_profit") else None,
                             trail=price if kind == "trailing_stop" else None, client_id=p.get("cl_ord_id"))
        return 200, {"error": [], "result": {"descr": descr, "txid": [order.id]}}
    if name == "CancelOrder":
        order = server.find(p.get("txid"), p.get("cl_ord_id"))
        if order is None or order.status != "new":
            return 200, {"error": ["EOrder:Unknown order"]}
        order.status = "canceled"
        return 200, {"error": [], "result": {"count": 1}}
    if name == "QueryOrders":
        ids = [i for i in p.get("txid", "").split(",") if i]
        return 200, {"error": [], "result": {i: _kraken_order(server, server.orders[i]) for i in ids
                                             if i in server.orders}}
    if name == "TradesHistory":
        trades = {f.id: {"ordertxid": f.order_id, "postxid": "TKH2SE-M7IF5-CFI7LT", "pair": server.market_id(f.pair),
                         "time": f.ts_ms / 1000, "type": f.side, "ordertype": server.orders[f.order_id].kind,
                         "price": f"{f.price:.5f}", "cost": f"{f.amount * f.price:.5f}", "fee": f"{f.fee:.5f}",
                         "vol": f"{f.amount:.8f}", "margin": "0.00000", "misc": "", "trade_id": int("".join(c for c in f.id if c.isdigit())),
                         "maker": f.maker}
                  for o in server.orders.values() for f in o.fills}
        return 200, {"error": [], "result": {"trades": trades, "count": len(trades)}}
    return 200, {"error": ["EGeneral:Unknown method"]}


# -------------------------------------------------------------------- Bitvavo
def _bitvavo_order(server: OrderExchangeServer, o: Order) -> dict:
    # GET /order answer (https://docs.bitvavo.com/docs/rest-api/get-order)
    status = o.status if o.status != "new" else ("awaitingTrigger" if o.trigger is not None else "new")
    kind = {"limit": "limit", "market": "market", "stop_loss": "stopLoss", "take_profit": "takeProfit"}[o.kind]
    quote = folder_to_pair(o.pair).split("/")[1]
    out = {"orderId": o.id, "market": server.market_id(o.pair), "created": o.created_ms, "updated": o.created_ms,
           "status": status, "side": o.side, "orderType": kind, "amount": f"{o.amount:.8f}",
           "amountRemaining": f"{o.amount - o.filled:.8f}", "filledAmount": f"{o.filled:.8f}",
           "filledAmountQuote": f"{o.cost:.8f}", "feePaid": f"{sum(f.fee for f in o.fills):.8f}",
           "feeCurrency": quote, "fills": [{"id": f.id, "timestamp": f.ts_ms, "amount": f"{f.amount:.8f}",
                                            "price": f"{f.price:.8f}", "taker": not f.maker, "fee": f"{f.fee:.8f}",
                                            "feeCurrency": quote, "settled": True} for f in o.fills],
           "selfTradePrevention": "decrementAndCancel", "visible": True, "timeInForce": "GTC", "postOnly": False}
    if o.client_id:
        out["clientOrderId"] = o.client_id
    if o.price is not None:
        out["price"] = f"{o.price:.8f}"
    if o.trigger is not None:
        out.update(triggerPrice=f"{o.trigger:.8f}", triggerAmount=f"{o.trigger:.8f}", triggerType="price",
                   triggerReference="lastTrade")
    return out


def _bitvavo(server: OrderExchangeServer, method: str, path: str, p: dict[str, Any],
             headers: Any) -> tuple[int, Any] | None:
    name = path.removeprefix("/v2/")
    if method == "GET" and name == "time":
        return 200, {"time": server.now_ms, "timeNs": server.now_ms * 1_000_000}
    if method == "GET" and name == "assets":
        codes = sorted({c for pair in server.pairs for c in folder_to_pair(pair).split("/")})
        return 200, [{"symbol": c, "name": c, "decimals": 8, "depositFee": "0", "depositConfirmations": 10,
                      "depositStatus": "OK", "withdrawalFee": "0", "withdrawalMinAmount": "0",
                      "withdrawalStatus": "OK", "networks": ["Mainnet"], "message": ""} for c in codes]
    if method == "GET" and name == "markets":
        return 200, [{"market": server.market_id(pair), "status": "trading", "base": folder_to_pair(pair).split("/")[0],
                      "quote": folder_to_pair(pair).split("/")[1], "pricePrecision": 5, "tickSize": "0.01",
                      "quantityDecimals": 8, "notionalDecimals": 2, "minOrderInBaseAsset": "0.0001",
                      "minOrderInQuoteAsset": "5", "maxOrderInBaseAsset": "1000000000",
                      "maxOrderInQuoteAsset": "1000000000", "maxOpenOrders": 100, "feeCategory": "A",
                      "orderTypes": ["market", "limit", "stopLoss", "stopLossLimit", "takeProfit", "takeProfitLimit"]}
                     for pair in server.pairs]
    if name not in ("order", "trades"):
        return None
    if not all(headers.get(h) for h in ("Bitvavo-Access-Key", "Bitvavo-Access-Signature", "Bitvavo-Access-Timestamp")):
        return 403, {"errorCode": 300, "error": "Authentication is required for this endpoint."}
    pair = server.pair_of(p.get("market"))
    if pair is None:
        return 400, {"errorCode": 205, "error": "market parameter is invalid."}
    if name == "trades":
        return 200, [{"id": f.id, "orderId": f.order_id, "timestamp": f.ts_ms, "market": server.market_id(f.pair),
                      "side": f.side, "amount": f"{f.amount:.8f}", "price": f"{f.price:.8f}", "taker": not f.maker,
                      "fee": f"{f.fee:.8f}", "feeCurrency": folder_to_pair(f.pair).split("/")[1], "settled": True}
                     for o in server.orders.values() for f in o.fills if f.pair == pair]
    if method in ("POST", "DELETE") and "operatorId" not in p:
        return 400, {"errorCode": 203, "error": "operatorId parameter is required."}
    if method in ("GET", "DELETE"):
        order = server.find(p.get("orderId"), p.get("clientOrderId"))
        if order is None or (method == "DELETE" and order.status != "new"):
            return 404, {"errorCode": 240, "error": "No order found. Please be aware that simultaneously updating "
                                                    "the same order may return this error."}
        if method == "GET":
            return 200, _bitvavo_order(server, order)
        order.status = "canceled"
        return 200, {"orderId": order.id, "operatorId": p["operatorId"]}
    if p.get("clientOrderId") is not None:
        try:
            uuid.UUID(str(p["clientOrderId"]))
        except ValueError:  # clientOrderId is a string<UUID> (create-order schema)
            return 400, {"errorCode": 205, "error": "clientOrderId parameter is invalid."}
    kinds = {"limit": "limit", "market": "market", "stopLoss": "stop_loss", "takeProfit": "take_profit"}
    kind = kinds.get(p.get("orderType", ""))
    if kind is None:
        return 400, {"errorCode": 205, "error": "orderType parameter is invalid."}
    if kind == "limit" and not (p.get("price") and p.get("amount")) or not (p.get("amount") or p.get("amountQuote")):
        return 400, {"errorCode": 203, "error": "amount parameter is required."}
    if kind in ("stop_loss", "take_profit") and not p.get("triggerAmount"):
        return 400, {"errorCode": 237, "error": "Required parameters missing for stopLoss order type."}
    order = server.place(pair, p["side"], kind, float(p["amount"]),
                         price=float(p["price"]) if p.get("price") else None,
                         trigger=float(p["triggerAmount"]) if p.get("triggerAmount") else None,
                         client_id=p.get("clientOrderId"))
    return 200, _bitvavo_order(server, order)


ROUTES = {"binance": _binance, "kraken": _kraken, "bitvavo": _bitvavo}


def _make_private_handler(server: OrderExchangeServer) -> type:
    base = _make_handler(server)

    class Handler(base):  # type: ignore[misc, valid-type]
        def _private(self, method: str) -> bool:
            parts = urlsplit(self.path)
            params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            if raw:
                if raw.lstrip().startswith("{"):
                    params.update(json.loads(raw))
                else:
                    params.update({k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()})
            route = ROUTES[server.exchange_id]
            endpoint = f"{method} {parts.path}"
            if server.exchange_id == "binance" and method == "GET" \
                    and parts.path not in ("/api/v3/order", "/api/v3/myTrades"):
                return False  # Binance public data: ExchangeServer answers
            record = Request(endpoint=endpoint, params={k: str(v) for k, v in params.items()})
            with server._lock:
                server.requests.append(record)
            fault = server._take_fault(endpoint, record.params)
            if fault is not None:
                record.fault = fault.kind
                if fault.kind == "status":
                    record.status = fault.status
                    if fault.body is None and fault.status >= 500:
                        html = f"<html><body><h1>{fault.status} Service Unavailable</h1></body></html>"
                        self._send(fault.status, None, {"Content-Type": "text/html"}, raw=html.encode())
                    else:
                        self._send(fault.status, fault.body or {})
                    return True
                if fault.kind == "disconnect":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return True
                if fault.kind == "malformed":
                    self._send(200, None, raw=b'{"result": {"descr')
                    return True
                if fault.kind == "timeout":
                    time.sleep(fault.delay_s)
            try:
                answer = route(server, method, parts.path, params, self.headers)
            except Exception as e:  # a bug here should be visible in the test, not a hang
                answer = (500, {"error": f"server error: {e!r}"})
            status, body = answer if answer is not None else (404, {"error": f"unknown endpoint {endpoint}"})
            record.status = status
            self._send(status, body)
            return True

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            if not self._private("GET"):
                super().do_GET()

        def do_POST(self) -> None:  # noqa: N802
            self._private("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._private("DELETE")

    return Handler
