"""Guards: every order passes one function and gets one :class:`Decision` with every reason.

:func:`decide` checks, in this order, and records every guard that blocks (not only the first):

1. the kill switch (``KILL_SWITCH`` flag or the kill-switch file), checked before every single order;
2. ``ABS_LIMIT_REQUIRED``: a limit-type order carries an explicit absolute limit price;
3. ``ENTRY_MAX_NOTIONAL``: an entry's notional, quote currency;
4. ``ONE_POSITION_ONLY``: no second position in a pair that has one open (the position book);
5. ``MAX_NOTIONAL_PER_ASSET``: open notional in the base asset plus this entry;
6. ``MAX_CONCURRENT_POSITIONS``: open positions across pairs;
7. ``MAX_GLOBAL_EXPOSURE``: open notional of all positions plus this entry;
8. the mode: ``dry-run`` unless every live condition holds (:func:`live_blockers`) — then the
   requested mode (``validate-only`` or ``live``).

Exits (take-profit, stop-loss legs, closing a position) are never blocked by the size guards: a guard
must not keep a position from being closed. The kill switch blocks them too (it stops everything).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

from engine.execution.tunables import REPO_ROOT, Tunables, has_keys

ExecutorMode = Literal["dry-run", "validate-only", "live"]
OrderRole = Literal["entry", "exit"]


@dataclass(frozen=True)
class OrderRequest:
    """An order about to be sent, as the guards see it.

    Attributes
    ----------
    pair : str
        ``BTC/USDT`` (or ``BTCUSDT``).
    side : {"buy", "sell"}
    role : {"entry", "exit"}
        Entries open or add to a position; exits reduce or close it.
    order_type : str
        ``limit``, ``market``, ``stop-loss-limit`` …
    qty_base : float
        Quantity, base currency.
    price_quote : float
        Limit price, or the reference price for a market order (quote currency).
    limit_price : float or None
        The explicit limit price of a limit-type order.
    """

    pair: str
    side: str
    role: OrderRole
    order_type: str
    qty_base: float
    price_quote: float
    limit_price: float | None = None

    @property
    def notional_quote(self) -> float:
        """qty × price, quote currency."""
        return float(self.qty_base) * float(self.price_quote)

    @property
    def base(self) -> str:
        """Base asset: ``BTC`` of ``BTC/USDT``."""
        return self.pair.split("/")[0] if "/" in self.pair else self.pair


@dataclass(frozen=True)
class OpenPosition:
    """One open position of the position book (quantities and prices of its entry)."""

    pair: str
    qty_base: float
    entry_price: float

    @property
    def notional_quote(self) -> float:
        return float(self.qty_base) * float(self.entry_price)


@dataclass(frozen=True)
class Decision:
    """What the guards decided for one order.

    Attributes
    ----------
    allowed : bool
        The order may go out (in `mode`).
    mode : {"dry-run", "validate-only", "live"}
        How it goes out: shadow order, the exchange's validate-only path, or a real order.
    reasons : tuple of str
        Every guard that blocked, in words (empty when allowed), and why the mode is not the one
        requested (e.g. ``"dry-run: ALLOW_LIVE is 0"``).
    checked : tuple of str
        The guards evaluated, in order.
    """

    allowed: bool
    mode: ExecutorMode
    reasons: tuple[str, ...] = ()
    checked: tuple[str, ...] = field(default=(), repr=False)

    def to_json(self) -> dict:
        return {"allowed": self.allowed, "mode": self.mode, "reasons": list(self.reasons), "checked": list(self.checked)}


def kill_switch_reason(tunables: Tunables, env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> str | None:
    """Return why the kill switch is on (the flag or the file), or None when it is off.

    Read afresh at every call: a switch set after an order was planned blocks that order.
    """
    import os

    env = os.environ if env is None else env
    if tunables.KILL_SWITCH or str(env.get("KILL_SWITCH", "")).strip().lower() in ("1", "true", "yes", "on"):
        return "kill switch: KILL_SWITCH is set"
    path = tunables.kill_switch_path(root)
    if path.exists():
        return f"kill switch: {path} exists"
    return None


def live_blockers(tunables: Tunables, *, exec_enabled: bool, secrets: Mapping[str, str], exchange: str,
                  golive_ok: bool, golive_reason: str = "no go-live record") -> list[str]:
    """Return why a real order may not leave (empty: every live condition of DESIGN.md holds).

    Conditions: ``ALLOW_LIVE=1``, ``DRY_RUN=0``, ``runtime.exec_enabled: true``, the exchange's API
    keys present, and the go-live gate (``golive_ok``). The kill switch is checked separately, per order.
    """
    out = []
    if not tunables.ALLOW_LIVE:
        out.append("ALLOW_LIVE is 0")
    if tunables.DRY_RUN:
        out.append("DRY_RUN is 1")
    if not exec_enabled:
        out.append("runtime.exec_enabled is false")
    if not has_keys(secrets, exchange):
        out.append(f"no {exchange.upper()}_API_KEY / _API_SECRET in .env or the environment")
    if not golive_ok:
        out.append(f"go-live gate: {golive_reason}")
    return out


def decide(order: OrderRequest, *, tunables: Tunables, positions: Mapping[str, OpenPosition],
           requested: ExecutorMode = "dry-run", live_reasons: list[str] | tuple[str, ...] = (),
           env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> Decision:
    """Run every guard on `order` and return the one decision.

    Parameters
    ----------
    order : OrderRequest
    tunables : Tunables
        Limits and switches.
    positions : mapping
        The open positions by pair (``BTC/USDT`` → OpenPosition): the real position tracker.
    requested : {"dry-run", "validate-only", "live"}
        The mode the caller wants; ``live`` falls back to ``dry-run`` unless `live_reasons` is empty
        (DRY_RUN=1 is one of them). ``validate-only`` never places an order: it is allowed with
        DRY_RUN=1 (the executor needs keys to call the exchange's validate path).
    live_reasons : sequence of str
        :func:`live_blockers` for this strategy.

    Returns
    -------
    Decision
    """
    checked, reasons = [], []
    checked.append("kill_switch")
    if (why := kill_switch_reason(tunables, env, root)) is not None:
        reasons.append(why)
    checked.append("ABS_LIMIT_REQUIRED")
    if tunables.ABS_LIMIT_REQUIRED and order.order_type in ("limit", "stop-loss-limit", "take-profit-limit") \
            and not (order.limit_price and order.limit_price > 0):
        reasons.append(f"ABS_LIMIT_REQUIRED: {order.order_type} order without an absolute limit price")
    if order.role == "entry":
        notional = order.notional_quote
        checked.append("ENTRY_MAX_NOTIONAL")
        if notional > tunables.ENTRY_MAX_NOTIONAL + 1e-9:
            reasons.append(f"ENTRY_MAX_NOTIONAL: entry notional {notional:.2f} > {tunables.ENTRY_MAX_NOTIONAL:g} (quote)")
        key = order.pair
        checked.append("ONE_POSITION_ONLY")
        if tunables.ONE_POSITION_ONLY and key in positions:
            reasons.append(f"ONE_POSITION_ONLY: {key} already has an open position")
        checked.append("MAX_NOTIONAL_PER_ASSET")
        asset = sum(p.notional_quote for pair, p in positions.items() if pair.split("/")[0] == order.base)
        if asset + notional > tunables.MAX_NOTIONAL_PER_ASSET + 1e-9:
            reasons.append(f"MAX_NOTIONAL_PER_ASSET: {order.base} open {asset:.2f} + {notional:.2f} > "
                           f"{tunables.MAX_NOTIONAL_PER_ASSET:g} (quote)")
        checked.append("MAX_CONCURRENT_POSITIONS")
        if key not in positions and len(positions) >= tunables.MAX_CONCURRENT_POSITIONS:
            reasons.append(f"MAX_CONCURRENT_POSITIONS: {len(positions)} open ≥ {tunables.MAX_CONCURRENT_POSITIONS}")
        checked.append("MAX_GLOBAL_EXPOSURE")
        total = sum(p.notional_quote for p in positions.values())
        if total + notional > tunables.MAX_GLOBAL_EXPOSURE + 1e-9:
            reasons.append(f"MAX_GLOBAL_EXPOSURE: open {total:.2f} + {notional:.2f} > {tunables.MAX_GLOBAL_EXPOSURE:g} (quote)")
    checked.append("mode")
    mode: ExecutorMode = requested
    notes = []
    if requested == "live" and live_reasons:  # live falls back to dry-run, saying why
        mode = "dry-run"
        notes = [f"dry-run: {r}" for r in live_reasons]
    allowed = not reasons
    return Decision(allowed=allowed, mode=mode, reasons=tuple(reasons) + tuple(notes), checked=tuple(checked))
