"""What Kraken's WebSocket v2 trading API accepts, as named rules (the validators of the payloads).

Every rule has a name (``"limit_price.required"``) and cites where it comes from. Rules marked
``derived`` follow from a field's documented conditions rather than one sentence of the docs
(reject client-side; the exchange stays the final judge). Rules named ``project.*`` are SCALP's own
(spot only, no reduce-only): Kraken would accept those messages, SCALP never sends them.

Sources
-------
- add_order: https://docs.kraken.com/api/docs/websocket-v2/add_order
- amend_order: https://docs.kraken.com/api/docs/websocket-v2/amend_order
- edit_order: https://docs.kraken.com/api/docs/websocket-v2/edit_order
- cancel_order: https://docs.kraken.com/api/docs/websocket-v2/cancel_order
- batch_add: https://docs.kraken.com/api/docs/websocket-v2/batch_add
- Conditional close (one secondary only): https://support.kraken.com/hc/en-us/articles/360038640052
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

ORDER_TYPES = ("limit", "market", "iceberg", "stop-loss", "stop-loss-limit", "take-profit", "take-profit-limit",
               "trailing-stop", "trailing-stop-limit", "settle-position")
#: Order types that carry a limit price (add_order: "limit_price … for order types with a limit price").
LIMIT_TYPES = ("limit", "iceberg", "stop-loss-limit", "take-profit-limit", "trailing-stop-limit")
#: Order types that need ``triggers`` (add_order: "triggers … required for triggered order types").
TRIGGERED_TYPES = ("stop-loss", "stop-loss-limit", "take-profit", "take-profit-limit", "trailing-stop",
                   "trailing-stop-limit")
TRAILING_TYPES = ("trailing-stop", "trailing-stop-limit")
#: Secondary (OTO) order types of ``conditional.order_type`` (no market, no iceberg).
CONDITIONAL_TYPES = ("limit", "stop-loss", "stop-loss-limit", "take-profit", "take-profit-limit", "trailing-stop",
                     "trailing-stop-limit")
SIDES = ("buy", "sell")
TIME_IN_FORCE = ("gtc", "gtd", "ioc", "fok")
PRICE_TYPES = ("static", "pct", "quote")
TRIGGER_REFERENCES = ("index", "last")
STP_TYPES = ("cancel_newest", "cancel_oldest", "cancel_both")
FEE_PREFERENCES = ("base", "quote")
METHODS = ("add_order", "amend_order", "edit_order", "cancel_order", "batch_add")
#: ``deadline`` must lie this far after the request (ms): 500 ms … 60 s.
DEADLINE_MIN_MS, DEADLINE_MAX_MS = 500, 60_000
#: GTD ``expire_time`` at most one month ahead (taken as 31 days).
EXPIRE_MAX_MS = 31 * 86_400_000
BATCH_MIN, BATCH_MAX = 2, 15

ADD_ORDER_FIELDS = frozenset({
    "order_type", "side", "order_qty", "symbol", "token", "limit_price", "limit_price_type", "triggers",
    "time_in_force", "margin", "post_only", "reduce_only", "effective_time", "expire_time", "deadline",
    "cl_ord_id", "order_userref", "conditional", "display_qty", "fee_preference", "no_mpp", "stp_type",
    "cash_order_qty", "validate", "sender_sub_id", "stop_price", "trigger",
})
BATCH_ORDER_FIELDS = ADD_ORDER_FIELDS - {"symbol", "token", "deadline", "validate"}
AMEND_FIELDS = frozenset({"order_id", "cl_ord_id", "order_qty", "display_qty", "limit_price", "limit_price_type",
                          "post_only", "trigger_price", "trigger_price_type", "deadline", "symbol", "token"})
EDIT_FIELDS = frozenset({"order_id", "symbol", "token", "order_qty", "limit_price", "display_qty", "fee_preference",
                         "order_userref", "post_only", "reduce_only", "triggers", "deadline", "validate"})
CANCEL_FIELDS = frozenset({"order_id", "cl_ord_id", "order_userref", "token"})

#: Every rule: name → what it says and where it comes from.
RULES: dict[str, str] = {
    "message.shape": "a request is {method, params, req_id?} with params an object (A.1)",
    "method.known": "method is one of add_order amend_order edit_order cancel_order batch_add",
    "params.required": "add_order needs order_type, side, order_qty, symbol and token",
    "params.unknown_field": "a field the method does not document (derived)",
    "order_type.known": "order_type is one of the 10 documented types",
    "side.known": "side is buy or sell",
    "order_qty.positive": "order_qty is a number > 0",
    "symbol.format": "symbol is BASE/QUOTE (v2 naming, e.g. BTC/USD)",
    "limit_price.required": "limit, iceberg and *-limit types need limit_price (derived)",
    "limit_price.forbidden": "market, stop-loss, take-profit and trailing-stop carry no limit_price (derived)",
    "limit_price.positive": "a static limit_price is a number > 0",
    "limit_price_type.trailing_only": "limit_price_type only for trailing-stop-limit",
    "limit_price_type.known": "limit_price_type is static, pct or quote",
    "triggers.required": "triggered types (stop-loss*, take-profit*, trailing-stop*) need triggers",
    "triggers.forbidden": "non-triggered types carry no triggers (derived)",
    "triggers.price.required": "triggers.price is required inside triggers",
    "triggers.price_type.known": "triggers.price_type is static, pct or quote",
    "triggers.reference.known": "triggers.reference is index or last",
    "triggers.trailing_offset": "trailing types: triggers.price is a positive offset, price_type pct or quote",
    "time_in_force.known": "time_in_force is gtc, gtd, ioc or fok",
    "time_in_force.fok_limit_only": "fok only for limit orders",
    "post_only.limit_price_only": "post_only only for orders with a limit price",
    "expire_time.gtd_only": "expire_time only with time_in_force gtd",
    "expire_time.required": "gtd needs expire_time (derived)",
    "expire_time.max_one_month": "expire_time at most one month ahead",
    "time.format": "effective_time / expire_time are RFC 3339 (seconds); deadline RFC 3339 (milliseconds)",
    "deadline.window": "deadline lies 500 ms to 60 s after the request",
    "cl_ord_id.format": "cl_ord_id is a long UUID, a short UUID (32 hex) or ASCII text of at most 18 characters",
    "cl_ord_id.userref_exclusive": "cl_ord_id and order_userref are mutually exclusive",
    "order_userref.integer": "order_userref is an integer",
    "conditional.object": "conditional is one object: one secondary template at most",
    "conditional.order_type.known": "conditional.order_type is limit, stop-loss(-limit), take-profit(-limit) or trailing-stop(-limit)",
    "conditional.limit_price.required": "conditional limit and *-limit types need limit_price",
    "conditional.trigger_price.required": "conditional triggered types need trigger_price",
    "conditional.unknown_field": "a conditional field the docs do not list (derived)",
    "display_qty.iceberg_only": "display_qty only for iceberg orders",
    "display_qty.min": "display_qty at least order_qty / 15",
    "cash_order_qty.buy_market_only": "cash_order_qty only on buy market orders without margin",
    "stp_type.known": "stp_type is cancel_newest, cancel_oldest or cancel_both",
    "fee_preference.known": "fee_preference is base or quote",
    "boolean.type": "margin, post_only, reduce_only and validate are true or false",
    "project.spot_only": "SCALP trades spot only: margin is false",
    "project.no_reduce_only": "SCALP sends no reduce_only (it applies to margin positions)",
    "amend.order_id_required": "amend_order identifies the order by order_id or cl_ord_id",
    "amend.trigger_price_type.known": "trigger_price_type is static, pct or quote",
    "edit.required": "edit_order needs order_id, symbol and token",
    "edit.no_cl_ord_id": "edit_order does not support cl_ord_id",
    "cancel.id_required": "cancel_order needs order_id, cl_ord_id or order_userref (arrays)",
    "cancel.arrays": "cancel_order ids are arrays",
    "token.required": "a token is required",
    "batch.orders": "batch_add carries 2 to 15 orders",
    "batch.required": "batch_add needs symbol, token and orders",
}

_RFC3339_S = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")
_UUID_LONG = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UUID_SHORT = re.compile(r"^[0-9a-fA-F]{32}$")
_SYMBOL = re.compile(r"^[A-Z0-9.]{1,16}/[A-Z0-9.]{1,16}$")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")


def _ms(text: Any) -> int | None:
    if not isinstance(text, str) or not _RFC3339_S.match(text):
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.astimezone(timezone.utc).timestamp() * 1000)


def valid_cl_ord_id(value: Any) -> bool:
    """True for a long UUID, a short UUID (32 hex) or printable ASCII text of at most 18 characters."""
    if not isinstance(value, str) or not value:
        return False
    if _UUID_LONG.match(value) or _UUID_SHORT.match(value):
        return True
    return len(value) <= 18 and all(32 <= ord(ch) < 127 for ch in value)


def _deadline(p: Mapping[str, Any], now_ms: int, out: list[str]) -> None:
    if "deadline" not in p:
        return
    if not isinstance(p["deadline"], str) or not _RFC3339_MS.match(p["deadline"]):
        out.append("time.format")
        return
    ahead = _ms(p["deadline"]) - now_ms
    if not DEADLINE_MIN_MS <= ahead <= DEADLINE_MAX_MS:
        out.append("deadline.window")


def _order_rules(p: Mapping[str, Any], now_ms: int, *, batch: bool = False) -> list[str]:
    """Rules broken by one add_order params object (or one order of a batch)."""
    out: list[str] = []
    known = BATCH_ORDER_FIELDS if batch else ADD_ORDER_FIELDS
    if any(k not in known for k in p):
        out.append("params.unknown_field")
    required = ("order_type", "side", "order_qty") if batch else ("order_type", "side", "order_qty", "symbol", "token")
    if any(k not in p for k in required):
        out.append("params.required")
    otype = p.get("order_type")
    if otype is not None and otype not in ORDER_TYPES:
        out.append("order_type.known")
    if "side" in p and p["side"] not in SIDES:
        out.append("side.known")
    if "order_qty" in p and not (_number(p["order_qty"]) and p["order_qty"] > 0):
        out.append("order_qty.positive")
    if not batch and "symbol" in p and not (isinstance(p["symbol"], str) and _SYMBOL.match(p["symbol"])):
        out.append("symbol.format")
    if otype in ORDER_TYPES:
        if otype in LIMIT_TYPES and "limit_price" not in p:
            out.append("limit_price.required")
        if otype not in LIMIT_TYPES and "limit_price" in p:
            out.append("limit_price.forbidden")
        if otype in TRIGGERED_TYPES and "triggers" not in p:
            out.append("triggers.required")
        if otype not in TRIGGERED_TYPES and "triggers" in p:
            out.append("triggers.forbidden")
        if "limit_price_type" in p and otype != "trailing-stop-limit":
            out.append("limit_price_type.trailing_only")
        if p.get("post_only") is True and otype not in LIMIT_TYPES:
            out.append("post_only.limit_price_only")
        if p.get("time_in_force") == "fok" and otype != "limit":
            out.append("time_in_force.fok_limit_only")
        if "display_qty" in p:
            if otype != "iceberg":
                out.append("display_qty.iceberg_only")
            elif not (_number(p["display_qty"]) and _number(p.get("order_qty"))
                      and p["display_qty"] >= p["order_qty"] / 15.0):
                out.append("display_qty.min")
        if "cash_order_qty" in p and not (otype == "market" and p.get("side") == "buy" and not p.get("margin")):
            out.append("cash_order_qty.buy_market_only")
    if "limit_price" in p:
        lpt = p.get("limit_price_type", "static" if otype != "trailing-stop-limit" else "quote")
        if not _number(p["limit_price"]) or (lpt == "static" and p["limit_price"] <= 0):
            out.append("limit_price.positive")
    if "limit_price_type" in p and p["limit_price_type"] not in PRICE_TYPES:
        out.append("limit_price_type.known")
    if "triggers" in p:
        t = p["triggers"]
        if not isinstance(t, Mapping) or "price" not in t or not _number(t.get("price")):
            out.append("triggers.price.required")
        else:
            if t.get("price_type", "static") not in PRICE_TYPES:
                out.append("triggers.price_type.known")
            if t.get("reference", "last") not in TRIGGER_REFERENCES:
                out.append("triggers.reference.known")
            if otype in TRAILING_TYPES and not (t["price"] > 0 and t.get("price_type", "static") in ("pct", "quote")):
                out.append("triggers.trailing_offset")
            if otype not in TRAILING_TYPES and t.get("price_type", "static") == "static" and t["price"] <= 0:
                out.append("triggers.price.required")
    tif = p.get("time_in_force", "gtc")
    if tif not in TIME_IN_FORCE:
        out.append("time_in_force.known")
    if "expire_time" in p:
        if tif != "gtd":
            out.append("expire_time.gtd_only")
        when = _ms(p["expire_time"])
        if when is None:
            out.append("time.format")
        elif when - now_ms > EXPIRE_MAX_MS:
            out.append("expire_time.max_one_month")
    elif tif == "gtd":
        out.append("expire_time.required")
    if "effective_time" in p and _ms(p["effective_time"]) is None:
        out.append("time.format")
    _deadline(p, now_ms, out)
    if "cl_ord_id" in p:
        if not valid_cl_ord_id(p["cl_ord_id"]):
            out.append("cl_ord_id.format")
        if "order_userref" in p:
            out.append("cl_ord_id.userref_exclusive")
    if "order_userref" in p and (isinstance(p["order_userref"], bool) or not isinstance(p["order_userref"], int)):
        out.append("order_userref.integer")
    if "stp_type" in p and p["stp_type"] not in STP_TYPES:
        out.append("stp_type.known")
    if "fee_preference" in p and p["fee_preference"] not in FEE_PREFERENCES:
        out.append("fee_preference.known")
    for key in ("margin", "post_only", "reduce_only", "validate"):
        if key in p and not isinstance(p[key], bool):
            out.append("boolean.type")
    if p.get("margin") is True:
        out.append("project.spot_only")
    if p.get("reduce_only") is True:
        out.append("project.no_reduce_only")
    if "conditional" in p:
        out += _conditional_rules(p["conditional"])
    return out


def _conditional_rules(c: Any) -> list[str]:
    if not isinstance(c, Mapping):
        return ["conditional.object"]
    out = []
    if any(k not in ("order_type", "limit_price", "limit_price_type", "trigger_price", "trigger_price_type",
                     "stop_price") for k in c):
        out.append("conditional.unknown_field")
    ctype = c.get("order_type")
    if ctype not in CONDITIONAL_TYPES:
        out.append("conditional.order_type.known")
        return out
    if ctype in ("limit", "stop-loss-limit", "take-profit-limit") and not _number(c.get("limit_price")):
        out.append("conditional.limit_price.required")
    if ctype != "limit" and not _number(c.get("trigger_price", c.get("stop_price"))):
        out.append("conditional.trigger_price.required")
    for key in ("limit_price_type", "trigger_price_type"):
        if key in c and c[key] not in PRICE_TYPES:
            out.append("limit_price_type.known" if key == "limit_price_type" else "amend.trigger_price_type.known")
    return out


def broken_rules(message: Any, now_ms: int) -> list[str]:
    """Return the names of the rules a WS v2 request message breaks (empty: Kraken would accept it).

    Parameters
    ----------
    message : mapping
        ``{"method": …, "params": {…}, "req_id"?: int}``.
    now_ms : int
        When the message is sent (epoch ms UTC): ``deadline`` and ``expire_time`` are judged against it.

    Returns
    -------
    list of str
        Rule names of :data:`RULES`, each once, in the order found.
    """
    if not isinstance(message, Mapping) or not isinstance(message.get("params"), Mapping):
        return ["message.shape"]
    method, p = message.get("method"), message["params"]
    out: list[str] = []
    if method == "add_order":
        out = _order_rules(p, now_ms)
    elif method == "batch_add":
        if any(k not in ("symbol", "token", "orders", "deadline", "validate") for k in p):
            out.append("params.unknown_field")
        if not all(k in p for k in ("symbol", "token", "orders")):
            out.append("batch.required")
        orders = p.get("orders")
        if not isinstance(orders, list) or not BATCH_MIN <= len(orders) <= BATCH_MAX:
            out.append("batch.orders")
        for order in orders if isinstance(orders, list) else []:
            out += _order_rules(order, now_ms, batch=True) if isinstance(order, Mapping) else ["message.shape"]
        if "symbol" in p and not (isinstance(p["symbol"], str) and _SYMBOL.match(p["symbol"])):
            out.append("symbol.format")
        _deadline(p, now_ms, out)
    elif method == "amend_order":
        if any(k not in AMEND_FIELDS for k in p):
            out.append("params.unknown_field")
        if "order_id" not in p and "cl_ord_id" not in p:
            out.append("amend.order_id_required")
        if "token" not in p:
            out.append("token.required")
        if "order_qty" in p and not (_number(p["order_qty"]) and p["order_qty"] > 0):
            out.append("order_qty.positive")
        if "trigger_price" in p and not _number(p["trigger_price"]):
            out.append("triggers.price.required")
        if "trigger_price_type" in p and p["trigger_price_type"] not in PRICE_TYPES:
            out.append("amend.trigger_price_type.known")
        if "limit_price" in p and not _number(p["limit_price"]):
            out.append("limit_price.positive")
        if "cl_ord_id" in p and not valid_cl_ord_id(p["cl_ord_id"]):
            out.append("cl_ord_id.format")
        _deadline(p, now_ms, out)
    elif method == "edit_order":
        if any(k not in EDIT_FIELDS for k in p):
            out.append("edit.no_cl_ord_id" if "cl_ord_id" in p else "params.unknown_field")
        if not all(k in p for k in ("order_id", "symbol", "token")):
            out.append("edit.required")
        if "order_qty" in p and not (_number(p["order_qty"]) and p["order_qty"] > 0):
            out.append("order_qty.positive")
        _deadline(p, now_ms, out)
    elif method == "cancel_order":
        if any(k not in CANCEL_FIELDS for k in p):
            out.append("params.unknown_field")
        ids = [k for k in ("order_id", "cl_ord_id", "order_userref") if k in p]
        if not ids:
            out.append("cancel.id_required")
        if any(not isinstance(p[k], list) or not p[k] for k in ids):
            out.append("cancel.arrays")
        if "token" not in p:
            out.append("token.required")
    else:
        out.append("method.known")
    return list(dict.fromkeys(out))
