"""Kraken WebSocket v2 request messages: add_order (with OTO conditional), amend_order, edit_order,
cancel_order and batch_add — built, then checked against :mod:`engine.execution.kraken_rules`.

Builders never send anything. Every add_order carries ``validate: true`` unless the caller passes
``validate=False`` (the executor does so only when live trading is allowed), a ``deadline`` of now +
``deadline_ms`` (RFC 3339, milliseconds), ``margin: false`` is implied (spot only; SCALP never sets
margin or ``reduce_only``), ``stp_type`` (default ``cancel_newest``) and ``time_in_force`` (default
``gtc``). A message that breaks a rule raises :class:`~engine.errors.PayloadError` naming the rules.

Kraken allows one secondary (OTO) template per primary (``conditional``): a bracket of take-profit
*and* stop-loss is sent as the primary with one secondary, and the other protective leg as its own
order after the fill (:mod:`engine.execution.order_plan`).

Source: https://docs.kraken.com/api/docs/websocket-v2/add_order (and amend_order, edit_order,
cancel_order, batch_add on the same site).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from engine.errors import PayloadError
from engine.execution.kraken_rules import RULES, broken_rules

#: Token placeholder of messages built for a preview (the probe): a real token comes from REST
#: GetWebSocketsToken at send time.
TOKEN_PLACEHOLDER = "<WS_TOKEN>"


def rfc3339_ms(epoch_ms: int) -> str:
    """Return ``2026-11-30T10:00:00.000Z`` for an epoch-ms time (the ``deadline`` format)."""
    dt = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch_ms) % 1000:03d}Z"


def check(message: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """Return `message` if it breaks no rule, else raise PayloadError naming every rule it breaks."""
    rules = broken_rules(message, now_ms)
    if rules:
        raise PayloadError(f"kraken {message.get('method')}: " + "; ".join(f"{r} ({RULES[r]})" for r in rules))
    return dict(message)


@dataclass(frozen=True)
class Trigger:
    """A trigger of a stop-loss / take-profit / trailing order.

    Attributes
    ----------
    price : float
        Static trigger price (quote currency), or a signed offset with ``price_type`` pct (percent)
        or quote (quote currency); trailing types take a positive offset.
    price_type : {"static", "pct", "quote"}
    reference : {"last", "index"}
    """

    price: float
    price_type: str = "static"
    reference: str = "last"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"price": _num(self.price)}
        if self.price_type != "static":
            out["price_type"] = self.price_type
        if self.reference != "last":
            out["reference"] = self.reference
        return out


@dataclass(frozen=True)
class Secondary:
    """The one OTO secondary template (``conditional``), placed on the opposite side at each fill.

    Attributes
    ----------
    order_type : str
        One of :data:`engine.execution.kraken_rules.CONDITIONAL_TYPES`.
    limit_price : float, optional
        For ``limit``, ``stop-loss-limit``, ``take-profit-limit``.
    trigger_price : float, optional
        For triggered types (static price, or offset with ``trigger_price_type``).
    trigger_price_type : {"static", "pct", "quote"}
    """

    order_type: str
    limit_price: float | None = None
    trigger_price: float | None = None
    trigger_price_type: str = "static"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"order_type": self.order_type}
        if self.limit_price is not None:
            out["limit_price"] = _num(self.limit_price)
        if self.trigger_price is not None:
            out["trigger_price"] = _num(self.trigger_price)
            if self.trigger_price_type != "static":
                out["trigger_price_type"] = self.trigger_price_type
        return out


def _num(x: float) -> float | int:
    x = float(x)
    if not math.isfinite(x):
        raise PayloadError(f"price or quantity {x!r}: expected a finite number")
    return int(x) if x.is_integer() else x


def _envelope(method: str, params: dict[str, Any], req_id: int | None) -> dict[str, Any]:
    msg: dict[str, Any] = {"method": method, "params": params}
    if req_id is not None:
        msg["req_id"] = int(req_id)
    return msg


def add_order(*, symbol: str, side: str, order_qty: float, order_type: str = "limit",
              limit_price: float | None = None, trigger: Trigger | None = None,
              secondary: Secondary | None = None, time_in_force: str = "gtc", post_only: bool = False,
              stp_type: str = "cancel_newest", cl_ord_id: str | None = None, validate: bool = True,
              deadline_ms: int = 5000, now_ms: int | None = None, token: str = TOKEN_PLACEHOLDER,
              req_id: int | None = None, limit_price_type: str | None = None,
              expire_time: str | None = None) -> dict[str, Any]:
    """Return a checked ``add_order`` message.

    Parameters
    ----------
    symbol : str
        v2 symbol, ``BTC/USD``.
    side : {"buy", "sell"}
    order_qty : float
        Base-asset quantity (already rounded to the market's precision by the order plan).
    order_type : str
        One of the ten documented types; ``limit``/``market`` for entries, triggered types for
        protective legs.
    limit_price : float, optional
        Quote-currency limit (limit, iceberg and ``*-limit`` types).
    trigger : Trigger, optional
        For triggered types.
    secondary : Secondary, optional
        The OTO template (one at most).
    time_in_force, post_only, stp_type, cl_ord_id
        As documented; defaults from the tunables (``DEFAULT_TIF``, ``DEFAULT_STP``).
    validate : bool
        True (the default): Kraken validates the order and never matches it.
    deadline_ms : int
        ``deadline`` = now + this (500 … 60,000 ms; ``DEADLINE_MS``).
    now_ms : int, optional
        Now (epoch ms); default the wall clock.
    token : str
        WebSocket token (a placeholder for previews).

    Raises
    ------
    PayloadError
        Naming each broken rule (:data:`engine.execution.kraken_rules.RULES`).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    params: dict[str, Any] = {"order_type": order_type, "side": side, "order_qty": _num(order_qty), "symbol": symbol}
    if limit_price is not None:
        params["limit_price"] = _num(limit_price)
    if limit_price_type is not None:
        params["limit_price_type"] = limit_price_type
    if trigger is not None:
        params["triggers"] = trigger.to_json()
    if secondary is not None:
        params["conditional"] = secondary.to_json()
    params["time_in_force"] = time_in_force
    if expire_time is not None:
        params["expire_time"] = expire_time
    if post_only:
        params["post_only"] = True
    params["margin"] = False
    params["stp_type"] = stp_type
    if cl_ord_id is not None:
        params["cl_ord_id"] = cl_ord_id
    params["deadline"] = rfc3339_ms(now_ms + int(deadline_ms))
    params["validate"] = bool(validate)
    params["token"] = token
    return check(_envelope("add_order", params, req_id), now_ms)


def amend_order(*, order_id: str | None = None, cl_ord_id: str | None = None, order_qty: float | None = None,
                limit_price: float | None = None, trigger_price: float | None = None,
                trigger_price_type: str = "static", deadline_ms: int | None = 5000, now_ms: int | None = None,
                token: str = TOKEN_PLACEHOLDER, req_id: int | None = None) -> dict[str, Any]:
    """Return a checked ``amend_order`` message (in place: keeps ids, fills and queue priority).

    The breakeven move of a resting stop-loss is ``amend_order(order_id=…, trigger_price=<entry ×
    (1 + offset)>)``. Source: https://docs.kraken.com/api/docs/websocket-v2/amend_order

    Raises
    ------
    PayloadError
        Naming each broken rule.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    params: dict[str, Any] = {}
    if order_id is not None:
        params["order_id"] = order_id
    if cl_ord_id is not None:
        params["cl_ord_id"] = cl_ord_id
    if order_qty is not None:
        params["order_qty"] = _num(order_qty)
    if limit_price is not None:
        params["limit_price"] = _num(limit_price)
    if trigger_price is not None:
        params["trigger_price"] = _num(trigger_price)
        params["trigger_price_type"] = trigger_price_type
    if deadline_ms is not None:
        params["deadline"] = rfc3339_ms(now_ms + int(deadline_ms))
    params["token"] = token
    return check(_envelope("amend_order", params, req_id), now_ms)


def edit_order(*, order_id: str, symbol: str, order_qty: float | None = None, limit_price: float | None = None,
               trigger: Trigger | None = None, validate: bool = True, deadline_ms: int | None = 5000,
               now_ms: int | None = None, token: str = TOKEN_PLACEHOLDER, req_id: int | None = None) -> dict[str, Any]:
    """Return a checked ``edit_order`` message (legacy cancel-and-replace: new order id, queue lost;
    Kraken does not edit triggered stop/take-profit orders or orders with a conditional close —
    prefer :func:`amend_order`). Source: https://docs.kraken.com/api/docs/websocket-v2/edit_order
    """
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    params: dict[str, Any] = {"order_id": order_id, "symbol": symbol}
    if order_qty is not None:
        params["order_qty"] = _num(order_qty)
    if limit_price is not None:
        params["limit_price"] = _num(limit_price)
    if trigger is not None:
        params["triggers"] = trigger.to_json()
    if deadline_ms is not None:
        params["deadline"] = rfc3339_ms(now_ms + int(deadline_ms))
    params["validate"] = bool(validate)
    params["token"] = token
    return check(_envelope("edit_order", params, req_id), now_ms)


def cancel_order(*, order_ids: Sequence[str] = (), cl_ord_ids: Sequence[str] = (),
                 token: str = TOKEN_PLACEHOLDER, req_id: int | None = None, now_ms: int | None = None) -> dict[str, Any]:
    """Return a checked ``cancel_order`` message (ids as arrays; one response per cancelled order)."""
    params: dict[str, Any] = {}
    if order_ids:
        params["order_id"] = list(order_ids)
    if cl_ord_ids:
        params["cl_ord_id"] = list(cl_ord_ids)
    params["token"] = token
    return check(_envelope("cancel_order", params, req_id), int(time.time() * 1000) if now_ms is None else now_ms)


def batch_add(*, symbol: str, orders: Sequence[Mapping[str, Any]], validate: bool = True, deadline_ms: int = 5000,
              now_ms: int | None = None, token: str = TOKEN_PLACEHOLDER, req_id: int | None = None) -> dict[str, Any]:
    """Return a checked ``batch_add`` message: 2 to 15 orders of one symbol (each an add_order params
    object without symbol, token, deadline and validate). Source:
    https://docs.kraken.com/api/docs/websocket-v2/batch_add
    """
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    params = {"symbol": symbol, "orders": [dict(o) for o in orders], "deadline": rfc3339_ms(now_ms + int(deadline_ms)),
              "validate": bool(validate), "token": token}
    return check(_envelope("batch_add", params, req_id), now_ms)
