"""Executors: where an allowed order goes — shadow (dry-run), the exchange's validate-only path, or live.

Every executor takes one :class:`~engine.execution.order_plan.OrderLeg` with the
:class:`~engine.execution.guards.Decision` the guards gave it and returns an :class:`OrderRecord`;
every record is also an ``order`` event of the event log. An executor never decides: it refuses
(:class:`~engine.errors.GuardError`) a leg whose decision is not allowed, or whose decision's mode is
not its own, so a dry-run decision can never reach a live executor by mistake.

:class:`DryRunExecutor` writes shadow orders and touches no network (tested with every socket
refused); the paper fills of :mod:`engine.execution.paper` fill them with the simulator's rules.
The exchange executors (validate-only and live, through ccxt) live in
:mod:`engine.execution.ccxt_executor`.

Besides :meth:`Executor.place`, every executor can :meth:`~Executor.cancel` an order it placed,
:meth:`~Executor.fetch_order` its current status and list its :meth:`~Executor.fills`; each refuses
(:class:`~engine.errors.GuardError`) a record of another mode.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from engine.errors import GuardError
from engine.execution.events import Event, EventLog
from engine.execution.guards import Decision, ExecutorMode
from engine.execution.order_plan import OrderLeg

OrderStatus = str  # "shadow" | "validated" | "open" | "filled" | "canceled" | "rejected"


@dataclass(frozen=True)
class OrderRecord:
    """One order as an executor handled it.

    Attributes
    ----------
    client_id : str
        Our id (``cl_ord_id`` / ccxt ``clientOrderId``), unique per process: ``scalp-<pid>-<n>``.
    strategy, pair : str
        ``<PAIR>_<TF>_<entry set>`` and the pair (``BTC/USDT``).
    role, side, order_type : str
        Of the leg (:class:`~engine.execution.order_plan.OrderLeg`).
    quantity_base : float
        Base units.
    price : float or None
        Limit or trigger price, quote per base unit (None: market or trailing).
    mode : {"dry-run", "validate-only", "live"}
    status : str
        ``shadow`` (dry-run), ``validated`` (the exchange accepted it without placing it), ``open``
        (placed and not known to be filled: resting, awaiting its trigger, or not yet looked up —
        Kraken's AddOrder answers only the order id; :meth:`Executor.fetch_order` tells),
        ``filled``, ``canceled`` or ``rejected``.
    ts_ms : int
        When it was sent (epoch ms UTC; the candle time in a replay).
    exchange_id : str or None
        The exchange's order id (live orders).
    detail : dict
        Exchange answer or notes (never secrets).
    """

    client_id: str
    strategy: str
    pair: str
    role: str
    side: str
    order_type: str
    quantity_base: float
    price: float | None
    mode: str
    status: OrderStatus
    ts_ms: int
    exchange_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FillRecord:
    """One execution (fill) of an order, as the exchange reported it.

    Attributes
    ----------
    client_id : str
        Our id of the order (:attr:`OrderRecord.client_id`).
    exchange_order_id : str
        The exchange's order id.
    trade_id : str
        The exchange's id of this fill.
    pair, side : str
        ``BTC/USDT``; ``buy`` or ``sell``.
    quantity_base : float
        Base units filled.
    price : float
        Fill price, quote per base unit.
    fee : float or None
        Fee charged for this fill, in `fee_currency` (None: the exchange did not say).
    fee_currency : str or None
    ts_ms : int
        When it filled (epoch ms UTC, the exchange's clock).
    mode : str
        The executor's mode (``live``).
    liquidity : str or None
        ``maker`` or ``taker`` (None: not reported).
    """

    client_id: str
    exchange_order_id: str
    trade_id: str
    pair: str
    side: str
    quantity_base: float
    price: float
    fee: float | None
    fee_currency: str | None
    ts_ms: int
    mode: str
    liquidity: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_ids = itertools.count(1)


def new_client_id(prefix: str = "scalp") -> str:
    """A client order id unique in this process: ``scalp-<pid>-<n>`` (Kraken accepts ≤ 18 characters
    of free text as ``cl_ord_id``; ccxt passes it as ``clientOrderId``)."""
    return f"{prefix}-{os.getpid() % 100000}-{next(_ids)}"


class Executor:
    """Base of the executors: check the decision, send the leg, log the order event.

    Parameters
    ----------
    log : EventLog or None
        Where ``order`` events go (None: nowhere, e.g. a unit test).
    """

    mode: ExecutorMode = "dry-run"

    def __init__(self, log: EventLog | None = None) -> None:
        self.log = log

    def check(self, decision: Decision) -> None:
        """Raise :class:`GuardError` unless `decision` allows an order in this executor's mode."""
        if not decision.allowed:
            raise GuardError("order blocked by the guards: " + "; ".join(decision.reasons))
        if decision.mode != self.mode:
            raise GuardError(f"decision for {decision.mode} given to the {self.mode} executor")

    def place(self, leg: OrderLeg, *, symbol: str, strategy: str, timeframe: str, decision: Decision, ts_ms: int,
              client_id: str | None = None) -> OrderRecord:
        """Send one leg; return its record (also logged as an ``order`` event).

        Raises
        ------
        GuardError
            The decision does not allow it in this mode.
        ExchangeError
            The exchange refused or could not be reached (exchange executors only).
        """
        self.check(decision)
        record = self._send(leg, symbol=symbol, strategy=strategy, ts_ms=ts_ms,
                            client_id=client_id or new_client_id())
        if self.log is not None:
            self.log.append(Event(ts_ms, "order", strategy, symbol, timeframe, self.mode, record.to_json()))
        return record

    def check_record(self, record: OrderRecord) -> None:
        """Raise :class:`GuardError` unless `record` was placed in this executor's mode."""
        if record.mode != self.mode:
            raise GuardError(f"{record.client_id}: a {record.mode} order given to the {self.mode} executor")

    def cancel(self, record: OrderRecord, *, ts_ms: int, timeframe: str = "") -> OrderRecord:
        """Cancel the order of `record`; return its record with status ``canceled`` (also logged as an
        ``order`` event at `ts_ms`, epoch ms UTC).

        Raises
        ------
        GuardError
            `record` belongs to another mode.
        ExchangeError
            The exchange refused (e.g. the order is no longer open) or could not be reached.
        """
        self.check_record(record)
        updated = self._cancel(record)
        if self.log is not None:
            self.log.append(Event(int(ts_ms), "order", record.strategy, record.pair, timeframe, self.mode,
                                  updated.to_json()))
        return updated

    def fetch_order(self, record: OrderRecord) -> OrderRecord:
        """Return `record` with the order's current status (``open``, ``filled``, ``canceled``...).

        Raises
        ------
        GuardError
            `record` belongs to another mode.
        ExchangeError
            The exchange does not know the order or could not be reached.
        """
        self.check_record(record)
        return self._fetch_order(record)

    def fills(self, record: OrderRecord) -> list[FillRecord]:
        """Return the fills of the order of `record` (empty while nothing filled).

        Raises
        ------
        GuardError
            `record` belongs to another mode.
        ExchangeError
            The exchange could not be read.
        """
        self.check_record(record)
        return self._fills(record)

    def _send(self, leg: OrderLeg, *, symbol: str, strategy: str, ts_ms: int, client_id: str) -> OrderRecord:
        raise NotImplementedError

    def _cancel(self, record: OrderRecord) -> OrderRecord:
        raise NotImplementedError

    def _fetch_order(self, record: OrderRecord) -> OrderRecord:
        raise NotImplementedError

    def _fills(self, record: OrderRecord) -> list[FillRecord]:
        raise NotImplementedError


class DryRunExecutor(Executor):
    """Shadow orders: recorded, logged, never sent (no import of ccxt, no socket)."""

    mode: ExecutorMode = "dry-run"

    def _send(self, leg: OrderLeg, *, symbol: str, strategy: str, ts_ms: int, client_id: str) -> OrderRecord:
        detail = {"step": leg.step} if leg.step else {}
        if leg.trail_pct is not None:
            detail["trail_pct"] = leg.trail_pct
        if leg.trail_quote is not None:
            detail["trail_quote"] = leg.trail_quote
        return OrderRecord(client_id, strategy, symbol, leg.role, leg.side, leg.order_type, float(leg.quantity_base),
                           None if leg.price is None else float(leg.price), self.mode, "shadow", int(ts_ms),
                           detail=detail)

    def _cancel(self, record: OrderRecord) -> OrderRecord:
        return replace(record, status="canceled")

    def _fetch_order(self, record: OrderRecord) -> OrderRecord:
        return record  # a shadow order changes only here and in the paper fills

    def _fills(self, record: OrderRecord) -> list[FillRecord]:
        return []  # shadow orders fill only in the paper simulation (engine.execution.paper)
