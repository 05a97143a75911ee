"""A market's trading rules from ccxt's market data: amount and price steps, minimum amount and cost.

Rounding is ccxt's own (:func:`ccxt.base.decimal_to_precision.decimal_to_precision`), so an order
SCALP plans is rounded exactly as ccxt would round it before sending (ccxt Manual, "Precision And
Limits"). Quantities are truncated (never more than the budget buys); prices round to the nearest tick.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ccxt.base.decimal_to_precision import (DECIMAL_PLACES, NO_PADDING, ROUND, TICK_SIZE, TRUNCATE,
                                            decimal_to_precision)

from engine.errors import ConfigError


def _step(value: Any, mode: int, what: str, symbol: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"market {symbol}: precision.{what} = {value!r}: expected a number > 0 (ccxt market data)")
    return float(10.0 ** -int(value)) if mode == DECIMAL_PLACES else float(value)


def _limit(limits: Mapping[str, Any], key: str, bound: str) -> float | None:
    v = (limits.get(key) or {}).get(bound)
    return None if v is None else float(v)


@dataclass(frozen=True)
class MarketRules:
    """What an order on one market must respect.

    Attributes
    ----------
    symbol : str
        ccxt symbol, ``"BTC/USDT"``.
    amount_step, price_step : float or None
        Smallest increment of the quantity (base units) and of the price (quote per base unit);
        None = no rounding.
    min_amount, min_cost : float or None
        Smallest quantity (base units) and smallest notional (quote currency) of one order.
    """

    symbol: str
    amount_step: float | None = None
    price_step: float | None = None
    min_amount: float | None = None
    min_cost: float | None = None

    @classmethod
    def from_ccxt_market(cls, market: Mapping[str, Any], *, precision_mode: int = TICK_SIZE) -> MarketRules:
        """Read a ccxt market structure (``exchange.markets[symbol]``): ``precision.amount`` and
        ``precision.price`` as tick sizes (ccxt's ``TICK_SIZE`` mode, the unified one since ccxt 4) or
        decimal places (``DECIMAL_PLACES``), ``limits.amount.min`` and ``limits.cost.min``.

        Raises
        ------
        ConfigError
            A missing symbol or a precision that is not a number > 0.
        """
        symbol = market.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"market {market!r:.80}: expected a ccxt market with a 'symbol'")
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        return cls(symbol, _step(precision.get("amount"), precision_mode, "amount", symbol),
                   _step(precision.get("price"), precision_mode, "price", symbol),
                   _limit(limits, "amount", "min"), _limit(limits, "cost", "min"))

    def amount(self, quantity_base: float, *, nearest: bool = False) -> float:
        """`quantity_base` truncated to the amount step (base units); with `nearest`, rounded to the
        nearest step (for sums and differences of quantities already on the step, which binary
        floating point leaves a hair off it)."""
        if self.amount_step is None:
            return float(quantity_base)
        return float(decimal_to_precision(repr(float(quantity_base)), ROUND if nearest else TRUNCATE,
                                          self.amount_step, TICK_SIZE, NO_PADDING))

    def price(self, price_quote: float) -> float:
        """`price_quote` rounded to the nearest price tick (quote per base unit)."""
        if self.price_step is None:
            return float(price_quote)
        return float(decimal_to_precision(repr(float(price_quote)), ROUND, self.price_step, TICK_SIZE, NO_PADDING))

    def too_small(self, quantity_base: float, price_quote: float) -> str | None:
        """Why an order of `quantity_base` at `price_quote` is below the market's minimums, or None."""
        if quantity_base <= 0:
            return "quantity 0 after rounding to the amount step"
        if self.min_amount is not None and quantity_base < self.min_amount:
            return f"quantity {quantity_base:g} < minimum amount {self.min_amount:g}"
        if self.min_cost is not None and quantity_base * price_quote < self.min_cost:
            return f"notional {quantity_base * price_quote:.4g} < minimum cost {self.min_cost:g}"
        return None
