"""Order plans from the one exit model: entry + take-profit ladder + stop-loss + breakeven move + trailing stop.

The prices come from :meth:`engine.strategy.exits.ExitPlan.levels`, the same method whose prices the
simulation kernel checks bar by bar (DESIGN.md, "One exit model"); this module only sizes the legs
and rounds them to the market's rules (:class:`engine.exchange.precision.MarketRules`, ccxt's
rounding). Spot, long only: the entry buys, every exit sells.

Sizing: the entry quantity is ``notional_quote / entry price`` truncated to the amount step. The
take-profit legs split it by the ladder's allocations, each truncated, the last one taking the
remainder, so the legs always sum to the entry quantity. A take-profit leg below the market's
minimum amount or cost is merged into the next leg (the last into the one before) and the plan's
``notes`` say so; nothing is dropped silently. An entry below the minimums is rejected with
:class:`~engine.errors.GuardError` naming the rule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from engine.errors import ConfigError, GuardError
from engine.exchange.precision import MarketRules
from engine.strategy.exits import ExitLevels, ExitPlan

EntryType = Literal["limit", "market"]


@dataclass(frozen=True)
class OrderLeg:
    """One order of a plan.

    Attributes
    ----------
    role : "entry" | "take_profit" | "stop_loss" | "breakeven_stop" | "trailing_stop"
    side : "buy" | "sell"
    order_type : "limit" | "market" | "stop" | "trailing_stop"
    quantity_base : float
        Base units, rounded to the amount step.
    price : float or None
        Limit price (entry, take-profit) or trigger price (stops), quote per base unit, rounded
        to the price tick; None for a market entry and a trailing stop.
    trail_pct, trail_quote : float or None
        Trailing distance below the highest price: percent, or quote currency (an ATR trail).
    step : int
        Take-profit step (1-based); 0 for the other legs.
    """

    role: str
    side: str
    order_type: str
    quantity_base: float
    price: float | None = None
    trail_pct: float | None = None
    trail_quote: float | None = None
    step: int = 0


@dataclass(frozen=True)
class OrderPlan:
    """Every order one entry signal leads to, before any is sent.

    Attributes
    ----------
    symbol : str
        ccxt symbol.
    entry : OrderLeg
        The buy.
    take_profits : tuple of OrderLeg
        Sell limits, lowest price first; their quantities sum to the entry's.
    stop_loss : OrderLeg or None
        Protective stop for the whole quantity (placed after the entry fills).
    breakeven_stop : OrderLeg or None
        The stop's new trigger and the quantity left once TP1 has filled (an amend of the stop).
    trailing_stop : OrderLeg or None
        A trailing stop for the whole quantity.
    levels : ExitLevels
        The unrounded prices of the exit plan for this entry price (what the simulator uses).
    notes : tuple of str
        What sizing changed and why (merged take-profit legs).
    """

    symbol: str
    entry: OrderLeg
    take_profits: tuple[OrderLeg, ...]
    stop_loss: OrderLeg | None
    breakeven_stop: OrderLeg | None
    trailing_stop: OrderLeg | None
    levels: ExitLevels
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def legs(self) -> tuple[OrderLeg, ...]:
        """Every leg, entry first."""
        rest = (self.stop_loss, self.breakeven_stop, self.trailing_stop)
        return (self.entry, *self.take_profits, *(leg for leg in rest if leg is not None))


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} = {value!r}: expected a finite number > 0")
    return float(value)


def _split(quantity: float, allocation_pct: tuple[float, ...], market: MarketRules) -> list[float]:
    parts = [market.amount(quantity * a / 100.0) for a in allocation_pct[:-1]]
    return [*parts, market.amount(quantity - sum(parts), nearest=True)] if allocation_pct else []


def _merge_small(qty: list[float], prices: list[float], market: MarketRules) -> tuple[list[int], list[float], list[str]]:
    """Merge take-profit legs below the market's minimums into a neighbour; return the kept steps
    (1-based), their quantities and the notes."""
    steps, qty, notes = list(range(1, len(qty) + 1)), list(qty), []
    i = 0
    while i < len(qty) and len(qty) > 1:
        why = market.too_small(qty[i], prices[i])
        if why is None:
            i += 1
            continue
        into = i + 1 if i + 1 < len(qty) else i - 1
        notes.append(f"TP{steps[i]} {why}: merged into TP{steps[into]}")
        qty[into] = market.amount(qty[into] + qty[i], nearest=True)
        del qty[i], steps[i], prices[i]
        i = 0
    return steps, qty, notes


def build_order_plan(exit_plan: ExitPlan, market: MarketRules, *, reference_price: float, notional_quote: float,
                     entry_type: EntryType = "limit", atr: float | None = None) -> OrderPlan:
    """Return the order plan of one long entry.

    Parameters
    ----------
    exit_plan : ExitPlan
        The exit rules the strategy was scored with.
    market : MarketRules
        Amount/price steps and minimums of the symbol.
    reference_price : float
        Entry limit price, or the expected fill of a market entry (quote per base unit, > 0); the
        exit prices are computed from it after rounding to the tick.
    notional_quote : float
        What the entry spends, quote currency (> 0), before fees.
    entry_type : "limit" | "market"
    atr : float, optional
        ATR of the signal bar (quote currency) for ATR stops and trails.

    Returns
    -------
    OrderPlan

    Raises
    ------
    ConfigError
        A price or notional that is not a finite number > 0, or an unknown entry type.
    GuardError
        The entry quantity is below the market's minimum amount or cost (the message names it).
    """
    if entry_type not in ("limit", "market"):
        raise ConfigError(f"entry_type = {entry_type!r}: expected 'limit' or 'market'")
    price = market.price(_positive(reference_price, "reference_price"))
    quantity = market.amount(_positive(notional_quote, "notional_quote") / price)
    if why := market.too_small(quantity, price):
        raise GuardError(f"{market.symbol}: entry of {notional_quote:g} quote at {price:g} rejected: {why}")
    entry = OrderLeg("entry", "buy", entry_type, quantity, price if entry_type == "limit" else None)
    levels = exit_plan.levels(price, atr=atr)
    tp_prices = [market.price(p) for p in levels.take_profit]
    steps, tp_qty, notes = _merge_small(_split(quantity, levels.allocation_pct, market), list(tp_prices), market)
    take_profits = tuple(OrderLeg("take_profit", "sell", "limit", q, tp_prices[s - 1], step=s)
                         for s, q in zip(steps, tp_qty))
    stop = None if levels.stop_loss is None else OrderLeg("stop_loss", "sell", "stop", quantity,
                                                          market.price(levels.stop_loss))
    breakeven = None
    if levels.breakeven_stop is not None and take_profits:
        left = market.amount(quantity - take_profits[0].quantity_base, nearest=True)
        if left > 0:
            breakeven = OrderLeg("breakeven_stop", "sell", "stop", left, market.price(levels.breakeven_stop))
        else:  # every take-profit leg was merged into TP1: once it fills, no position is left to protect
            notes.append(f"breakeven: TP{take_profits[0].step} sells the whole quantity, no stop left to move")
    trailing = None
    if exit_plan.trail_pct is not None:
        trailing = OrderLeg("trailing_stop", "sell", "trailing_stop", quantity, trail_pct=float(exit_plan.trail_pct))
    elif exit_plan.trail_atr_mult is not None and atr is not None and math.isfinite(atr):
        trailing = OrderLeg("trailing_stop", "sell", "trailing_stop", quantity,
                            trail_quote=market.price(exit_plan.trail_atr_mult * float(atr)))
    return OrderPlan(market.symbol, entry, take_profits, stop, breakeven, trailing, levels, tuple(notes))
