"""An order plan as Kraken WebSocket v2 messages: the entry with its OTO stop, the take-profit legs, the
breakeven amend.

One primary order carries one OTO secondary only (``conditional``; Kraken WS v2 ``add_order``,
https://docs.kraken.com/api/docs/websocket-v2/add_order), so the plan becomes, in order:

1. ``add_order`` entry (limit or market) with the stop-loss as its OTO ``stop-loss`` secondary;
2. one ``add_order`` ``limit`` sell per take-profit leg (placed after the entry fills);
3. with a trailing stop in the plan, an ``add_order`` ``trailing-stop`` (percent offset);
4. with breakeven, the ``amend_order`` that moves the stop's trigger after TP1. The stop is the
   entry's OTO secondary, whose ``order_id`` Kraken assigns at the fill (the ``executions`` channel
   reports it), so the plan carries :data:`STOP_ORDER_ID` in its place until then.

Every message goes through the builders of :mod:`engine.execution.kraken_payloads`, whose validators
reject what Kraken documents it rejects; ``validate`` is true unless the caller has cleared live.
"""
from __future__ import annotations

from typing import Any

from engine.execution.kraken_payloads import Secondary, Trigger, add_order, amend_order
from engine.execution.order_plan import OrderPlan
from engine.execution.tunables import Tunables

#: Stands for the stop-loss's order id in a plan's breakeven amend, until the fill reports it.
STOP_ORDER_ID = "<order_id of the stop-loss>"


def plan_messages(plan: OrderPlan, *, tunables: Tunables, now_ms: int, validate: bool = True,
                  client_prefix: str = "scalp") -> list[dict[str, Any]]:
    """Return the WS v2 request messages of `plan` (dicts ready for ``json.dumps``).

    Parameters
    ----------
    plan : OrderPlan
        From :func:`engine.execution.order_plan.build_order_plan` (quantities and prices already on
        the market's steps).
    tunables : Tunables
        ``DEFAULT_TIF``, ``DEFAULT_STP`` and ``DEADLINE_MS``.
    now_ms : int
        Now, epoch ms (for the ``deadline``).
    validate : bool
        Kraken's validate-only flag (True: nothing is ever matched).
    client_prefix : str
        Start of the ``cl_ord_id`` of each leg (``<prefix>-sl``, ``<prefix>-tp1`` …), ≤ 12 characters
        so the ids stay within Kraken's 18 free-text characters.

    Raises
    ------
    PayloadError
        A leg Kraken would reject, naming the rule.
    """
    common = dict(symbol=plan.symbol, validate=validate, deadline_ms=tunables.DEADLINE_MS, now_ms=now_ms,
                  stp_type=tunables.DEFAULT_STP)
    prefix = client_prefix[:12]
    entry = plan.entry
    secondary = None if plan.stop_loss is None else Secondary("stop-loss", trigger_price=plan.stop_loss.price)
    out = [add_order(side="buy", order_qty=entry.quantity_base, order_type=entry.order_type, limit_price=entry.price,
                     secondary=secondary, time_in_force=tunables.DEFAULT_TIF, cl_ord_id=f"{prefix}-entry", **common)]
    for leg in plan.take_profits:
        out.append(add_order(side="sell", order_qty=leg.quantity_base, order_type="limit", limit_price=leg.price,
                             time_in_force="gtc", cl_ord_id=f"{prefix}-tp{leg.step}", **common))
    if plan.trailing_stop is not None and plan.trailing_stop.trail_pct is not None:
        out.append(add_order(side="sell", order_qty=plan.trailing_stop.quantity_base, order_type="trailing-stop",
                             trigger=Trigger(plan.trailing_stop.trail_pct, price_type="pct"), time_in_force="gtc",
                             cl_ord_id=f"{prefix}-trail", **common))
    if plan.breakeven_stop is not None and plan.stop_loss is not None:
        out.append(amend_order(order_id=STOP_ORDER_ID, trigger_price=plan.breakeven_stop.price,
                               order_qty=plan.breakeven_stop.quantity_base, deadline_ms=tunables.DEADLINE_MS,
                               now_ms=now_ms))
    return out
