"""A desk session in real time: the exchange's candles, followed for the session's duration.

Every candle close (plus a few seconds for the exchange to close it), the session brings the
candles up to date (:func:`engine.data.backfill.backfill_pair`, into the desk's own candle folder,
never the research store), re-runs the paper book over the closed candles since its start
(:func:`engine.desk.session.capped_paper`: intents → guards → dry-run orders → paper fills, within
the session's budget), and hands new events to ``on_event``.

On an exchange venue (:mod:`engine.desk.venue`) the paper book drives the exchange: each new paper
fill becomes one market order of the same side and quantity — an entry fill a buy, a take-profit,
stop or exit-signal fill a sell — after the execution guards decided on it
(:func:`engine.execution.guards.decide`, the kill switch read before every order). On the testnet
(sandbox) the position still open at the end is closed with a market sell, so a session ends flat.
The paper book stays the session's accounting; the exchange's answers are recorded in the orders.

Nothing here reads the real clock or sleeps directly: ``clock`` and ``sleep`` are injected, so the
tests drive a whole session against the local exchange server in a fraction of a second.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Mapping

from engine.config.desk import SessionProfile
from engine.data.backfill import backfill_pair
from engine.data.store import candle_path, read_candles
from engine.desk.profiles import ResolvedStrategy
from engine.desk.session import SessionPlan, SessionResult, capped_paper, entry_notionals
from engine.desk.venue import Venue, make_venue_executor, sandbox_blockers
from engine.errors import EngineError
from engine.exchange.client import make_exchange
from engine.exchange.retry import DEFAULT_RETRY, RetryPolicy
from engine.execution.events import Event, EventLog
from engine.execution.executors import Executor, OrderRecord
from engine.execution.guards import OpenPosition, OrderRequest, decide
from engine.execution.intents import closed_candles
from engine.execution.order_plan import OrderLeg
from engine.execution.paper import PaperAccount, PaperResult
from engine.execution.tunables import REPO_ROOT, Tunables
from engine.markets import floor_to_timeframe, timeframe_to_ms

logger = logging.getLogger(__name__)

#: Seconds waited after a candle's close before it is fetched (the exchange closes it first).
SETTLE_S = 3.0


def live_store(data_dir: Path | str, venue: Venue) -> Path:
    """The desk's own candle folder for live sessions: ``<data_dir>/desk/candles/<exchange>[-sandbox]``
    (testnet candles never mix with the research store)."""
    suffix = "-sandbox" if venue.kind == "sandbox" else ""
    return Path(data_dir) / "desk" / "candles" / f"{venue.exchange}{suffix}"


def plan_live(profile: SessionProfile, strategy: ResolvedStrategy, venue: Venue, *, tunables: Tunables,
              note: str) -> SessionPlan:
    """Plan a real-time session (any venue) on the exchange's candles."""
    return SessionPlan(profile, strategy, venue, "live", note, PaperAccount.from_tunables(tunables))


class OrderMirror:
    """Turns the paper book's fills into market orders on an exchange venue, each decided by the guards.

    Parameters
    ----------
    executor : Executor
        :class:`~engine.desk.venue.SandboxExecutor` (mode live) or a validate-only ccxt executor.
    venue : Venue
    plan : SessionPlan
    tunables : Tunables
    secrets : mapping
        For :func:`~engine.desk.venue.sandbox_blockers` (the guards' live reasons on the testnet).
    clock : callable
        Now, epoch ms UTC.
    """

    def __init__(self, executor: Executor, venue: Venue, plan: SessionPlan, *, tunables: Tunables,
                 secrets: Mapping[str, str], clock: Callable[[], int], env: Mapping[str, str] | None = None,
                 root: Path = REPO_ROOT) -> None:
        self.executor, self.venue, self.plan, self.tunables = executor, venue, plan, tunables
        self.blockers = sandbox_blockers(venue, secrets) if venue.kind == "sandbox" else []
        self.clock, self.env, self.root = clock, env, root
        self.done: set[tuple] = set()
        self.qty_base = 0.0
        self.price = 0.0
        self.orders: list[OrderRecord] = []
        self.notes: list[str] = []

    def sync(self, paper: PaperResult) -> None:
        """Send one order for every paper fill not mirrored yet, in time order."""
        for e in paper.events:
            if e.kind != "fill":
                continue
            d = e.data
            key = (d["trade"], d["role"], d.get("reason"), d["time_ms"])
            if key in self.done:
                continue
            self.done.add(key)
            self.send(d["side"], float(d["qty_base"]), float(d["price"]),
                      f"paper {d['role']} fill of trade {d['trade']}" + (f" ({d['reason']})" if d.get("reason") else ""))

    def send(self, side: str, qty_base: float, price: float, why: str) -> OrderRecord | None:
        """Decide and send one market order; a refusal by the guards becomes a note, not an order."""
        symbol, role = self.plan.spec.symbol, "entry" if side == "buy" else "exit"
        if role == "exit":
            qty_base = min(qty_base, self.qty_base)
            if qty_base <= 0:
                self.notes.append(f"{why}: nothing to sell (its entry was not sent)")
                return None
        positions = {symbol: OpenPosition(symbol, self.qty_base, self.price)} if self.qty_base > 0 else {}
        order = OrderRequest(symbol, side, role, "market", qty_base, price)
        decision = decide(order, tunables=self.tunables, positions=positions, requested=self.executor.mode,
                          live_reasons=self.blockers, env=self.env, root=self.root)
        if not decision.allowed or decision.mode != self.executor.mode:
            self.notes.append(f"{why}: not sent, {'; '.join(decision.reasons)}")
            logger.warning("%s: %s", self.plan.spec.name, self.notes[-1])
            return None
        leg = OrderLeg(role, side, "market", qty_base)
        record = self.executor.place(leg, symbol=symbol, strategy=self.plan.spec.name, timeframe=self.plan.spec.timeframe,
                                     decision=decision, ts_ms=self.clock())
        self.orders.append(record)
        filled = record.detail.get("filled_base")  # the exchange rounds to its amount step
        qty_base = float(filled) if isinstance(filled, (int, float)) and filled > 0 else qty_base
        if side == "buy":
            self.price = (self.price * self.qty_base + price * qty_base) / (self.qty_base + qty_base)
            self.qty_base += qty_base
        else:
            self.qty_base = max(self.qty_base - qty_base, 0.0)
        return record

    def close(self, price: float) -> None:
        """At the session's end on the testnet: sell what is still held (validated orders hold nothing)."""
        if self.venue.kind == "sandbox" and self.qty_base > 1e-12:
            self.send("sell", self.qty_base, price, "session end: close the testnet position")


def run_live(plan: SessionPlan, *, data_dir: Path | str, tunables: Tunables, secrets: Mapping[str, str],
             warmup_bars: int, timeout_ms: int = 10_000, urls: str | Mapping[str, str] | None = None,
             clock: Callable[[], int] | None = None, sleep: Callable[[float], None] = time.sleep,
             on_event: Callable[[Event], None] | None = None, executor: Executor | None = None,
             log: EventLog | None = None, retry: RetryPolicy = DEFAULT_RETRY,
             env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> SessionResult:
    """Run `plan` in real time for its duration (see the module's docstring).

    Parameters
    ----------
    plan : SessionPlan
        From :func:`plan_live`.
    data_dir : path
        ``runtime.data_dir`` (the candles go to :func:`live_store` under it).
    urls : str or dict, optional
        A server standing in for the exchange (tests); see :func:`engine.exchange.client.make_exchange`.
    executor : Executor, optional
        The exchange venue's executor (default :func:`engine.desk.venue.make_venue_executor`).
    log : EventLog, optional
        Where the default executor logs its ``order`` events.

    Returns
    -------
    SessionResult
        ``error`` holds the one-line reason when the exchange failed mid-session (or Ctrl-C
        stopped it); what happened until then (paper book, orders) is kept, so it is reported and
        registered.
    """
    clock = clock or (lambda: int(time.time() * 1000))
    p, venue, spec = plan.profile, plan.venue, plan.spec
    tf, tf_ms = spec.timeframe, timeframe_to_ms(spec.timeframe)
    store = live_store(data_dir, venue)
    market = make_exchange(venue.exchange, urls=urls, timeout_ms=timeout_ms, sandbox=venue.kind == "sandbox")
    if executor is None and venue.sends_orders:
        executor = make_venue_executor(venue, secrets, log=log, urls=urls, timeout_ms=timeout_ms)
    mirror = OrderMirror(executor, venue, plan, tunables=tunables, secrets=secrets, clock=clock, env=env,
                         root=root) if executor is not None else None
    started = clock()
    end = started + p.duration_minutes * 60_000
    limit = warmup_bars + p.duration_minutes * 60_000 // tf_ms + 2
    paper, note, error, notes, last_ts, last_close = None, None, None, [], started, None
    logger.info("%s: live session on %s until %s", p.name, venue.exchange, end)
    try:
        while True:
            now = min(clock(), end)
            fetched = backfill_pair(market, spec.symbol, tf, store, limit=limit, now_ms=now, retry=retry, sleep=sleep)
            if fetched.error:
                notes.append(f"candles at {now}: {fetched.error}")
                logger.warning("%s: %s", p.name, notes[-1])
            path = candle_path(store, spec.symbol, tf)
            frame = closed_candles(read_candles(path, tf), tf, now) if path.is_file() else None
            if frame is not None and len(frame):
                paper, note = capped_paper(frame, spec, tunables=tunables, account=plan.account, start_ms=started,
                                           max_trades=p.max_trades, max_notional_quote=p.max_notional_quote,
                                           env=env, root=root)
                last_close = float(frame["close"].iat[-1])
                for e in paper.events:
                    if e.ts_ms > last_ts and on_event is not None:
                        on_event(e)
                last_ts = max([last_ts] + [e.ts_ms for e in paper.events])
                if mirror is not None:
                    mirror.sync(paper)
            if note is not None or clock() >= end:
                break
            wake = min(floor_to_timeframe(clock(), tf) + tf_ms, end)
            sleep(max(wake - clock(), 0) / 1000 + SETTLE_S)
    except EngineError as e:
        error = f"{type(e).__name__}: {e}"
        logger.error("%s: session stopped: %s", p.name, error)
    except KeyboardInterrupt:  # what was sent so far is still closed, registered and reported
        error = "interrupted (Ctrl-C)"
        logger.error("%s: session interrupted", p.name)
    finally:
        if mirror is not None and last_close is not None:
            try:
                mirror.close(last_close)
            except EngineError as e:
                error = (error + "; " if error else "") + f"closing the position: {type(e).__name__}: {e}"
    notionals = entry_notionals(paper) if paper is not None else []
    return SessionResult(plan, paper, started, clock(), float(sum(notionals)), len(notionals), note,
                         tuple(mirror.orders) if mirror else (), tuple(notes + (mirror.notes if mirror else [])), error)
