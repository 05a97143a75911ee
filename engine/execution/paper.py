"""Paper trading: the whole execution flow over closed candles, with paper fills by the simulator's rules.

:func:`paper_trade` walks the signal bars of one strategy in time order. On each bar whose entry (or
exit) signal fires it makes the :class:`~engine.execution.intents.Intent`, asks the guards for one
:class:`~engine.execution.guards.Decision` against the paper position book, and sends what they
allow to the :class:`~engine.execution.executors.DryRunExecutor` (a shadow order). The shadow orders
fill by the simulator kernel itself — :func:`engine.backtest.run_signals` over the signals the
guards let through, the same code and fill rules as every backtest, not a copy — so paper trades and
backtest trades agree by construction, and the parity test proves it on the bundled candles.

How the walk stays causal: the kernel fills a signal of bar t at the open of t+1 and never looks at
later signals to decide an earlier fill, so the position book at the close of bar t is the kernel's
run over the signals allowed before t. The book is re-read only after the guards let a new signal
through. The signals themselves are the entry set's own (:func:`engine.strategy.signals.evaluate`),
computed once over the closed candles; they are causal (values at t use bars ≤ t only), which the
lookahead gate checks for every entry set before research.

Two rules mirror the kernel on purpose: an entry signal while the book holds a position is blocked
by ``ONE_POSITION_ONLY`` (the kernel holds one position at a time), and an exit signal on a bar
whose entry signal also fires is no exit (the kernel keeps the position). Both are recorded as
events, so what was not traded is visible too.

Events, each an :class:`~engine.execution.events.Event` stamped with when it became known — the
close of a bar, since paper trading sees closed candles only: intents, decisions and orders at the
close of the signal bar; the entry fill (at the next bar's open, a market order by quote amount as
the simulator buys; ``time_ms`` in its data) at the close of its bar, with the protective orders of
the order plan built from the fill price; exit fills at the close of the bar they happened in; the
breakeven amend with the TP1 fill. A position still open at the last candle is no fill: the
simulator's ``end`` close marks it to market (the unrealised PnL, exit costs included).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from engine.backtest import BacktestResult, run_signals
from engine.backtest.inputs import check_candles, kernel_inputs
from engine.data.candles import index_ms
from engine.errors import ConfigError, GuardError
from engine.exchange.precision import MarketRules
from engine.execution.events import Event
from engine.execution.executors import DryRunExecutor
from engine.execution.guards import Decision, OpenPosition, OrderRequest, decide
from engine.execution.intents import closed_candles, intent_class
from engine.execution.order_plan import OrderLeg, build_order_plan
from engine.execution.tunables import REPO_ROOT, Tunables
from engine.markets import folder_to_pair, timeframe_to_ms
from engine.strategy import signals
from engine.strategy.exits import Costs, ExitPlan
from engine.strategy.promoted import PromotedStrategy

# order of events that share a time stamp (the close of one bar): its fills, then what its close decided
_PHASE = {"entry_fill": 0, "protect": 1, "exit_fill": 2, "amend": 3, "intent": 4, "decision": 5, "order": 6,
          "position": 7}


@dataclass(frozen=True)
class PaperSpec:
    """What to paper-trade: one entry set with its parameters, exit plan and costs on one pair × timeframe.

    Attributes
    ----------
    pair : str
        Folder name ``BTCUSDT`` or symbol ``BTC/USDT``; `symbol` is the ccxt form.
    timeframe, entry_set, signal : str
    params : dict
    exit_plan : ExitPlan
    costs : Costs
        Fee and slippage per side, bps (the simulator's).
    """

    pair: str
    timeframe: str
    entry_set: str
    signal: str
    params: Mapping[str, Any] = field(default_factory=dict)
    exit_plan: ExitPlan = field(default_factory=ExitPlan)
    costs: Costs = field(default_factory=Costs)

    @classmethod
    def from_promoted(cls, s: PromotedStrategy) -> PaperSpec:
        return cls(s.pair, s.timeframe, s.entry_set, s.signal, dict(s.params), s.exit_plan, s.costs)

    @property
    def name(self) -> str:
        """``<PAIR>_<TF>_<entry set>``, the strategy's name in events and reports."""
        return f"{self.pair.replace('/', '')}_{self.timeframe}_{self.entry_set}"

    @property
    def symbol(self) -> str:
        return self.pair if "/" in self.pair else folder_to_pair(self.pair)


@dataclass(frozen=True)
class PaperAccount:
    """The paper account of one strategy.

    Attributes
    ----------
    initial_cash_quote : float
        Starting cash, quote currency.
    stake_quote : float or None
        Most one entry spends, fee included, quote currency; None = all the cash (the backtest's
        default). The guards see this spend as the entry's notional.
    """

    initial_cash_quote: float = 10_000.0
    stake_quote: float | None = None

    @classmethod
    def from_tunables(cls, t: Tunables) -> PaperAccount:
        """The forward test's account: cash ``MAX_GLOBAL_EXPOSURE``, stake ``ENTRY_MAX_NOTIONAL``."""
        return cls(float(t.MAX_GLOBAL_EXPOSURE), float(t.ENTRY_MAX_NOTIONAL))


@dataclass(frozen=True)
class PaperResult:
    """What a paper run did.

    Attributes
    ----------
    spec, account : PaperSpec, PaperAccount
    result : BacktestResult
        The kernel's run over the signals the guards allowed: its ``trades`` are the paper trades
        (a position still open at the last candle is the row with ``exit_reason == "end"``).
    events : tuple of Event
        Intents, decisions, orders and fills in time order (not yet written anywhere).
    n_intents, n_blocked : int
        Signals that became intents, and intents the guards blocked.
    blocked : dict
        Guard reason (its first word, e.g. ``ONE_POSITION_ONLY``) → how many intents it blocked.
    first_bar : int
        First signal bar of the run (row of the candles).
    """

    spec: PaperSpec
    account: PaperAccount
    result: BacktestResult
    events: tuple[Event, ...]
    n_intents: int
    n_blocked: int
    blocked: Mapping[str, int]
    first_bar: int

    @property
    def trades(self) -> pd.DataFrame:
        """Every paper trade, the open one included (columns of :data:`engine.backtest.results.TRADE_COLUMNS`)."""
        return self.result.trades

    @property
    def open_trade(self) -> pd.Series | None:
        """The position still open at the last candle (marked to market there), or None."""
        t = self.result.trades
        return None if t.empty or t["exit_reason"].iloc[-1] != "end" else t.iloc[-1]

    @property
    def closed_trades(self) -> pd.DataFrame:
        return self.result.trades.iloc[:-1] if self.open_trade is not None else self.result.trades

    @property
    def realised_pnl_quote(self) -> float:
        return float(self.closed_trades["pnl_quote"].sum())

    @property
    def unrealised_pnl_quote(self) -> float:
        """PnL of the open position if closed at the last close, exit fee and slippage included."""
        o = self.open_trade
        return 0.0 if o is None else float(o["pnl_quote"])

    def write_trades_csv(self, path: str | Path) -> Path:
        """The trades in exactly the format of ``jobs/backtest.py single --trades-out``."""
        return self.result.write_trades_csv(path)


class _Book:
    """The position book the guards read: the kernel's trades as (entry bar, exit bar) intervals."""

    def __init__(self, result: BacktestResult) -> None:
        t = result.trades
        self.trades = t
        self.entry = t["entry_bar"].to_numpy(np.int64)
        exit_bar = t["exit_bar"].to_numpy(np.int64).copy()
        exit_bar[(t["exit_reason"] == "end").to_numpy()] = np.iinfo(np.int64).max  # still open
        self.exit = exit_bar
        self.equity = result.equity.to_numpy()

    def open_at(self, t: int) -> int | None:
        """Row of the trade open at the close of bar `t`, or None (flat)."""
        k = int(np.searchsorted(self.entry, t, side="right")) - 1
        return k if k >= 0 and self.exit[k] > t else None


def _first_signal_bar(opens: np.ndarray, tf_ms: int, start_ms: int | None) -> int:
    # the first bar that closes after start_ms: signals before it belong to the past
    return 0 if start_ms is None else int(np.searchsorted(opens + tf_ms, start_ms, side="right"))


def paper_trade(candles: pd.DataFrame, spec: PaperSpec, *, tunables: Tunables, account: PaperAccount | None = None,
                market: MarketRules | None = None, start_ms: int | None = None, now_ms: int | None = None,
                env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> PaperResult:
    """Run intents → guards → order plans → dry-run executor → paper fills over `candles`.

    Parameters
    ----------
    candles : DataFrame
        The strategy's candles (DESIGN.md shape), history included: indicators warm up on them.
    spec : PaperSpec
    tunables : Tunables
        Guards and switches (the kill switch is read before every order).
    account : PaperAccount, optional
        Default: cash ``MAX_GLOBAL_EXPOSURE`` and stake ``ENTRY_MAX_NOTIONAL`` of `tunables`.
    market : MarketRules, optional
        Rounding and minimums of the symbol for the order plans (default: none).
    start_ms : int, optional
        Only signal bars that close after this time (epoch ms) trade: the forward test of a strategy
        starts at its promotion.
    now_ms : int, optional
        The clock: candles that have not closed by then are left out.

    Returns
    -------
    PaperResult

    Raises
    ------
    DataError
        Malformed candles. ConfigError: bad parameters, or a decision for another mode than
        dry-run (paper trading never sends an order).
    """
    account = account or PaperAccount.from_tunables(tunables)
    tf = spec.timeframe
    frame = closed_candles(candles, tf, now_ms) if now_ms is not None else candles
    check_candles(frame, where=f"{spec.name} candles")
    n, tf_ms, plan = len(frame), timeframe_to_ms(tf), spec.exit_plan
    opens = index_ms(frame.index)
    close = frame["close"].to_numpy(np.float64)
    entries, exits = (np.asarray(a, dtype=bool) for a in signals.evaluate(spec.signal, frame, spec.params))
    exits = exits & ~entries if plan.use_exit_signal else np.zeros(n, dtype=bool)
    first = _first_signal_bar(opens, tf_ms, start_ms)
    allow_e, allow_x = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)

    def run() -> BacktestResult:
        return run_signals(frame, allow_e, allow_x, plan, spec.costs, timeframe=tf,
                           initial_cash_quote=account.initial_cash_quote, stake_quote=account.stake_quote)

    executor, events, blocked = DryRunExecutor(), [], {}
    n_intents = n_blocked = 0
    last, book, dirty = None, None, True
    cls = intent_class(spec.signal)

    def add(ts: int, phase: str, kind: str, data: Mapping[str, Any]) -> None:
        events.append((ts, _PHASE[phase], len(events), Event(int(ts), kind, spec.name, spec.symbol, tf, "dry-run", dict(data))))

    for t in np.flatnonzero(entries[first:] | exits[first:]) + first:
        t = int(t)
        if dirty:
            last = run()
            book, dirty = _Book(last), False
        k = book.open_at(t)
        side = "buy" if entries[t] else "sell"
        if side == "sell" and k is None:
            continue  # an exit signal with nothing to close
        ts = int(opens[t]) + tf_ms
        intent = cls(pair=spec.pair, timeframe=tf, entry_set=spec.entry_set, signal=spec.signal, side=side,
                     signal_bar_ms=int(opens[t]), reference_price=float(close[t]), exit_plan=plan,
                     params=dict(spec.params),
                     reason=f"{spec.entry_set} {'entry' if side == 'buy' else 'exit'} signal on bar {t}")
        n_intents += 1
        add(ts, "intent", "intent", intent.to_json())
        positions = {} if k is None else {spec.symbol: OpenPosition(spec.symbol, float(book.trades["qty_base"].iat[k]),
                                                                    float(book.trades["entry_price"].iat[k]))}
        if side == "buy":
            cash = float(book.equity[t]) if k is None else 0.0
            spend = cash if account.stake_quote is None else min(cash, account.stake_quote)
            order = OrderRequest(spec.symbol, "buy", "entry", "market", max(spend, 0.0) / float(close[t]), float(close[t]))
        else:
            order = OrderRequest(spec.symbol, "sell", "exit", "market", float(book.trades["qty_base"].iat[k]), float(close[t]))
        decision = decide(order, tunables=tunables, positions=positions, requested="dry-run", env=env, root=root)
        add(ts, "decision", "decision", {**decision.to_json(), "side": side, "notional_quote": order.notional_quote})
        if not decision.allowed:
            n_blocked += 1
            for r in decision.reasons:
                key = r.split(":")[0]
                blocked[key] = blocked.get(key, 0) + 1
            continue
        if decision.mode != "dry-run":
            raise ConfigError(f"paper trading runs in dry-run only; the guards gave {decision.mode}")
        if side == "buy" and k is not None:  # ONE_POSITION_ONLY off: the paper book still holds one position
            blocked["one position per pair in paper"] = blocked.get("one position per pair in paper", 0) + 1
            continue
        leg = OrderLeg("entry", "buy", "market", order.qty_base) if side == "buy" else \
            OrderLeg("exit_signal", "sell", "market", order.qty_base)
        rec = executor.place(leg, symbol=spec.symbol, strategy=spec.name, timeframe=tf, decision=decision, ts_ms=ts,
                             client_id=f"{spec.name}-{int(opens[t])}-{leg.role}")
        add(ts, "order", "order", {**rec.to_json(), "notional_quote": order.notional_quote})
        (allow_e if side == "buy" else allow_x)[t] = True
        dirty = True
    # every allowed signal: the paper trades (the last book's run when nothing was allowed since)
    result = run() if dirty or last is None else last
    _fill_events(result, spec, plan, market, frame, opens, tf_ms, add, executor)
    events.sort(key=lambda e: e[:3])
    return PaperResult(spec, account, result, tuple(e[3] for e in events), n_intents, n_blocked, dict(blocked), first)


def _atr(frame: pd.DataFrame, plan: ExitPlan, tf: str) -> np.ndarray | None:
    if not plan.uses_atr:
        return None
    k = kernel_inputs(frame, check_candles(frame), plan, Costs.free(), timeframe=tf, initial_cash_quote=1.0)
    return k.bars.atr


def _fill_events(result: BacktestResult, spec: PaperSpec, plan: ExitPlan, market: MarketRules | None,
                 frame: pd.DataFrame, opens: np.ndarray, tf_ms: int, add, executor: DryRunExecutor) -> None:
    """Fill events of the kernel's trades, and the protective orders placed after each entry fill."""
    trades, legs = result.trades, result.legs
    rules = market or MarketRules(spec.symbol)
    atr = _atr(frame, plan, spec.timeframe)
    allowed = Decision(True, "dry-run", checked=("protective legs of a filled entry: placed under the entry's decision",))
    for row in trades.itertuples(index=False):
        entry_bar = int(row.entry_bar)
        ts = int(opens[entry_bar]) + tf_ms
        add(ts, "entry_fill", "fill", {"trade": int(row.trade), "role": "entry", "side": "buy",
                                       "time_ms": int(opens[entry_bar]),
                                       "price": float(row.entry_price), "qty_base": float(row.qty_base),
                                       "fee_quote": float(row.entry_price) * float(row.qty_base) * spec.costs.fee_rate})
        a = None if atr is None or entry_bar < 1 else float(atr[entry_bar - 1])
        try:
            op = build_order_plan(plan, rules, reference_price=float(row.entry_price),
                                  notional_quote=float(row.entry_price) * float(row.qty_base), entry_type="market",
                                  atr=None if a is None or not math.isfinite(a) else a)
        except GuardError as e:  # below the market's minimums: the position is held without resting orders
            add(ts, "protect", "decision", {"allowed": False, "mode": "dry-run", "reasons": [str(e)], "checked": []})
            continue
        for leg in (*op.take_profits, op.stop_loss, op.trailing_stop):
            if leg is not None:
                rec = executor.place(leg, symbol=spec.symbol, strategy=spec.name, timeframe=spec.timeframe,
                                     decision=allowed, ts_ms=ts,
                                     client_id=f"{spec.name}-{ts}-{leg.role}{leg.step or ''}")
                add(ts, "protect", "order", rec.to_json())
        tp1 = legs[(legs["trade"] == row.trade) & (legs["reason"] == "tp1")]
        if op.breakeven_stop is not None and len(tp1) and int(row.n_legs) > 1:  # TP1 filled, the rest still held
            t1 = int(tp1["bar"].iat[0])
            rec = executor.place(op.breakeven_stop, symbol=spec.symbol, strategy=spec.name, timeframe=spec.timeframe,
                                 decision=allowed, ts_ms=int(opens[t1]) + tf_ms, client_id=f"{spec.name}-{ts}-breakeven")
            add(int(opens[t1]) + tf_ms, "amend", "order", {**rec.to_json(), "amend": "stop_loss"})
    for leg in legs.itertuples(index=False):
        if leg.reason == "end":
            continue  # marked to market, not filled: the position is still open
        bar = int(leg.bar)
        add(int(opens[bar]) + tf_ms, "exit_fill", "fill",
            {"trade": int(leg.trade), "role": "exit", "side": "sell", "reason": leg.reason, "time_ms": int(opens[bar]),
             "price": float(leg.price), "qty_base": float(leg.qty_base), "fee_quote": float(leg.fee_quote)})
