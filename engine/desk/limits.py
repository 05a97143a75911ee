"""Testnet limits: may this session run, given the limits per run, per UTC day and per symbol?

:meth:`LimitsController.check_run_allowed` checks a planned session against every limit of
``desk.yaml`` and the day's usage (:class:`~engine.desk.usage.UsageStore`) and returns one
:class:`LimitCheck` with *every* reason that blocks it, not only the first. After the session,
:meth:`LimitsController.register_run_consumption` books what it really used.

These limits add to the execution guards (:func:`engine.execution.guards.decide`: kill switch,
``ENTRY_MAX_NOTIONAL``, ``MAX_GLOBAL_EXPOSURE`` …); they never replace them — every order of a
session still passes the guards.

Limits (names as in desk.yaml; amounts quote currency, trades = entries):

- ``limits.run.max_notional_quote``, ``max_trades``, ``max_duration_minutes``: one session;
- ``limits.day.max_notional_quote``, ``max_trades``: used today + planned, per UTC day;
- ``limits.symbols.allowed``: the pair is on the allow-list (null = every pair).

Two sessions checked at the same moment both see the same usage: the day limit bounds what each
was admitted against, and the usage store books both (no lost update), so the next check sees both.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from engine.clock import iso_ms
from engine.config.desk import DeskLimits
from engine.desk.usage import DayUsage, UsageStore, utc_day
from engine.errors import ConfigError
from engine.markets import folder_to_pair, pair_to_folder

EPS = 1e-9


@dataclass(frozen=True)
class LimitCheck:
    """The answer to "may this session run?".

    Attributes
    ----------
    allowed : bool
        True when no limit blocks.
    reasons : tuple of str
        Every limit that blocks, in words naming the limit, the planned and the used amounts.
    symbol : str
    planned_notional_quote, planned_trades, planned_duration_minutes
        What was checked.
    usage : DayUsage
        The day's usage the day limits were checked against.
    """

    allowed: bool
    reasons: tuple[str, ...]
    symbol: str
    planned_notional_quote: float
    planned_trades: int
    planned_duration_minutes: float
    usage: DayUsage

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reasons": list(self.reasons), "symbol": self.symbol,
                "planned_notional_quote": self.planned_notional_quote, "planned_trades": self.planned_trades,
                "planned_duration_minutes": self.planned_duration_minutes, "day": self.usage.day,
                "used_notional_quote": self.usage.notional_quote, "used_trades": self.usage.n_trades}


def _amount(value: Any, name: str, *, integer: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
    if not bad and integer and float(value) != int(value):
        bad = True
    if bad:
        raise ConfigError(f"{name} = {value!r}: expected {'a whole number' if integer else 'a number'} ≥ 0")
    return int(value) if integer else float(value)


def check_limits(limits: DeskLimits, usage: DayUsage, symbol: str, planned_notional: float, planned_trades: int,
                 planned_duration_minutes: float) -> LimitCheck:
    """Check a planned session against every limit; return all reasons (pure: no file, no clock).

    Parameters
    ----------
    limits : DeskLimits
    usage : DayUsage
        What the session's UTC day has used so far.
    symbol : str
        ``BTC/USDT`` or ``BTCUSDT``.
    planned_notional : float
        Most the session's entries may spend, quote currency.
    planned_trades : int
        Most entries the session may open.
    planned_duration_minutes : float
        Session length, minutes.

    Raises
    ------
    ConfigError
        A symbol that is not a pair, or a planned amount that is negative, non-finite or (trades) not whole.
    """
    symbol = folder_to_pair(pair_to_folder(symbol))
    notional = _amount(planned_notional, "planned_notional")
    trades = _amount(planned_trades, "planned_trades", integer=True)
    minutes = _amount(planned_duration_minutes, "planned_duration_minutes")
    run, day = limits.run, limits.day
    reasons = []
    if notional > run.max_notional_quote + EPS:
        reasons.append(f"run notional: planned {notional:.2f} > limits.run.max_notional_quote "
                       f"{run.max_notional_quote:g} (quote)")
    if trades > run.max_trades:
        reasons.append(f"run trades: planned {trades} > limits.run.max_trades {run.max_trades}")
    if minutes > run.max_duration_minutes + EPS:
        reasons.append(f"run duration: planned {minutes:g} min > limits.run.max_duration_minutes "
                       f"{run.max_duration_minutes} min")
    if usage.notional_quote + notional > day.max_notional_quote + EPS:
        reasons.append(f"day notional: used {usage.notional_quote:.2f} + planned {notional:.2f} = "
                       f"{usage.notional_quote + notional:.2f} > limits.day.max_notional_quote "
                       f"{day.max_notional_quote:g} (quote, UTC day {usage.day})")
    if usage.n_trades + trades > day.max_trades:
        reasons.append(f"day trades: used {usage.n_trades} + planned {trades} = {usage.n_trades + trades} > "
                       f"limits.day.max_trades {day.max_trades} (UTC day {usage.day})")
    if limits.allowed_symbols is not None and symbol not in limits.allowed_symbols:
        reasons.append(f"symbol: {symbol} is not in limits.symbols.allowed ({', '.join(limits.allowed_symbols)})")
    return LimitCheck(not reasons, tuple(reasons), symbol, notional, trades, minutes, usage)


@dataclass(frozen=True)
class Budget:
    """Today's budget: the day limits, what is used and what is left (never below zero)."""

    day: str
    usage: DayUsage
    limits: DeskLimits
    as_of_ms: int

    @property
    def left_notional_quote(self) -> float:
        return max(self.limits.day.max_notional_quote - self.usage.notional_quote, 0.0)

    @property
    def left_trades(self) -> int:
        return max(self.limits.day.max_trades - self.usage.n_trades, 0)

    def to_json(self) -> dict[str, Any]:
        """The form of ``<reports_dir>/testnet_budget.json`` (the dashboard reads it)."""
        return {"day": self.day, "as_of": iso_ms(self.as_of_ms),
                "used": {"notional_quote": self.usage.notional_quote, "n_trades": self.usage.n_trades,
                         "n_runs": self.usage.n_runs},
                "left": {"notional_quote": self.left_notional_quote, "n_trades": self.left_trades},
                "limits": self.limits.to_json(), "runs": [dict(r) for r in self.usage.runs]}


class LimitsController:
    """The testnet limits with their usage store and clock.

    Parameters
    ----------
    limits : DeskLimits
    store : UsageStore
    clock : callable, optional
        Returns now, epoch ms UTC (default: the wall clock). The day of the budget is the UTC day of
        this clock: budgets are spent in real time even when a session replays old candles.
    """

    def __init__(self, limits: DeskLimits, store: UsageStore, *, clock: Callable[[], int] | None = None) -> None:
        self.limits, self.store = limits, store
        self.clock = clock or (lambda: int(time.time() * 1000))

    def check_run_allowed(self, symbol: str, planned_notional: float, planned_trades: int,
                          planned_duration_minutes: float, *, now_ms: int | None = None) -> LimitCheck:
        """Check a planned session against every limit and today's usage (see :func:`check_limits`).

        Raises
        ------
        ConfigError
            Bad planned amounts or symbol. DataError: today's usage file cannot be read.
        """
        now = self.clock() if now_ms is None else int(now_ms)
        return check_limits(self.limits, self.store.load(now), symbol, planned_notional, planned_trades,
                            planned_duration_minutes)

    def register_run_consumption(self, notional: float, trades: int, *, at_ms: int | None = None,
                                 record: Mapping[str, Any] | None = None) -> DayUsage:
        """Book what a session used on the UTC day of `at_ms` (default now); return the day's totals."""
        now = self.clock()
        return self.store.register(notional, trades, at_ms=now if at_ms is None else int(at_ms), record=record,
                                   now_ms=now)

    def budget(self, now_ms: int | None = None) -> Budget:
        """Today's budget (UTC day of `now_ms`, default now)."""
        now = self.clock() if now_ms is None else int(now_ms)
        usage = self.store.load(now)
        return Budget(utc_day(now), usage, self.limits, now)
