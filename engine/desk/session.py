"""One desk session: a profile's strategy traded for its duration, within its budget.

A session is planned (:func:`plan_session`: which strategy, which venue, which candles, which window)
and then run (:func:`run_session`):

- **replay** (paper venue): the last ``duration_minutes`` of stored candles (or the bundled sample),
  after ``warmup_bars`` candles that warm the indicators up, go through
  :func:`engine.execution.paper.paper_trade` (intents → guards → dry-run orders → paper fills by the
  simulator kernel). ``speed`` > 0 paces the replay: its events are handed to ``on_event`` at
  ``speed`` × real time (the paper run is causal, so an event is known at its time stamp whether the
  run is computed bar by bar or at once). ``speed`` 0 (default) runs as fast as possible.
- **live** (paper on live candles, or an exchange venue): :mod:`engine.desk.live` follows the
  exchange's candles in real time for the session's duration.

Both keep the session inside its budget: the session stops (before the entry's signal bar ends)
when its next entry would exceed the profile's ``max_trades`` or ``max_notional_quote``
(:func:`capped_paper`). The session's consumption is its entries: their notional (entry price ×
quantity, quote) and their number, the still-open position included.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from engine.clock import format_ms
from engine.config.desk import DeskConfig, SessionProfile
from engine.config.models import RuntimeConfig
from engine.data.candles import index_ms
from engine.data.sample import load_sample
from engine.data.store import candle_path, read_candles
from engine.desk.profiles import ResolvedStrategy
from engine.desk.venue import Venue
from engine.errors import DataError
from engine.execution.events import Event
from engine.execution.executors import OrderRecord
from engine.execution.paper import PaperAccount, PaperResult, PaperSpec, paper_trade
from engine.execution.tunables import Tunables
from engine.markets import timeframe_to_ms

logger = logging.getLogger(__name__)

CandleMode = Literal["replay", "live"]
EPS = 1e-9


@dataclass(frozen=True)
class SessionPlan:
    """What a session will do, decided before it starts (printed by ``--dry-run``).

    Attributes
    ----------
    profile : SessionProfile
        With the CLI's overrides applied.
    strategy : ResolvedStrategy
    venue : Venue
    candle_mode : {"replay", "live"}
    candle_note : str
        Where the candles come from, in words.
    candles : DataFrame or None
        The replay's candles (warm-up and window); None for live sessions.
    window_start_ms, window_end_ms : int or None
        The replay window on the candles' clock (epoch ms UTC); None for live sessions.
    account : PaperAccount
    """

    profile: SessionProfile
    strategy: ResolvedStrategy
    venue: Venue
    candle_mode: CandleMode
    candle_note: str
    account: PaperAccount
    candles: pd.DataFrame | None = field(default=None, repr=False)
    window_start_ms: int | None = None
    window_end_ms: int | None = None

    @property
    def spec(self) -> PaperSpec:
        return self.strategy.spec

    def describe(self) -> list[str]:
        """The plan in lines of text."""
        p = self.profile
        window = (f"{format_ms(self.window_start_ms)} → {format_ms(self.window_end_ms)} (candle clock)"
                  if self.window_start_ms is not None else f"the next {p.duration_minutes} minutes (wall clock)")
        return [f"profile:   {p.name} ({p.description or 'no description'})",
                f"strategy:  {self.strategy.source}",
                f"symbol:    {p.symbol} {p.timeframe} on {self.venue.exchange}",
                f"venue:     {self.venue.kind}: {self.venue.reason}",
                f"candles:   {self.candle_mode}: {self.candle_note}",
                f"window:    {window}",
                f"budget:    at most {p.max_trades} trades and {p.max_notional_quote:.2f} quote of entries; "
                f"stake {self.account.stake_quote:g} per entry of {self.account.initial_cash_quote:g} cash "
                "(execution guards)"]


@dataclass(frozen=True)
class SessionResult:
    """What a session did.

    Attributes
    ----------
    plan : SessionPlan
    paper : PaperResult or None
        The paper book of the session (None when it stopped before any candle was seen).
    started_ms, ended_ms : int
        Wall clock, epoch ms UTC.
    notional_quote : float
        Entry notional of the session's trades, quote currency (its consumption).
    n_trades : int
        Entries of the session (its consumption), the open position included.
    stop_note : str or None
        Why the session stopped before its window ended (its budget), else None.
    orders : tuple of OrderRecord
        Orders sent to the exchange venue (empty for paper).
    notes : tuple of str
        What else the session said (refusals by the guards, the closing order …).
    error : str or None
        The error that ended the session early, in one line.
    """

    plan: SessionPlan
    paper: PaperResult | None
    started_ms: int
    ended_ms: int
    notional_quote: float
    n_trades: int
    stop_note: str | None = None
    orders: tuple[OrderRecord, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None


def entry_notionals(paper: PaperResult) -> np.ndarray:
    """Entry notional (entry price × quantity, quote) of each trade of `paper`, in entry order."""
    t = paper.trades
    return (t["entry_price"].to_numpy(np.float64) * t["qty_base"].to_numpy(np.float64)) if len(t) else np.zeros(0)


def capped_paper(frame: pd.DataFrame, spec: PaperSpec, *, tunables: Tunables, account: PaperAccount, start_ms: int,
                 max_trades: int, max_notional_quote: float, env=None, root: Path | None = None
                 ) -> tuple[PaperResult, str | None]:
    """Paper-trade `frame` from `start_ms` on, stopping before the entry that would break the budget.

    Parameters
    ----------
    frame : DataFrame
        Closed candles only (warm-up included).
    max_trades, max_notional_quote : int, float
        The session's budget: entries, and their notional together (quote).

    Returns
    -------
    (PaperResult, str or None)
        The paper run, and why it stopped early (None when the budget held). When the k-th entry
        would break the budget, the run is repeated on the candles up to its signal bar: the same
        trades before it (the run is causal), the open position marked to market at that close.
    """
    kw = {} if root is None else {"root": root}
    paper = paper_trade(frame, spec, tunables=tunables, account=account, start_ms=start_ms, env=env, **kw)
    notional = np.cumsum(entry_notionals(paper))
    over = np.flatnonzero((np.arange(1, len(notional) + 1) > max_trades) | (notional > max_notional_quote + EPS))
    if not len(over):
        return paper, None
    k = int(over[0])
    entry_bar = int(paper.trades["entry_bar"].iat[k])
    why = (f"max_trades {max_trades}" if k + 1 > max_trades else
           f"max_notional_quote {max_notional_quote:g} ({notional[k]:.2f} with it)")
    cut = frame.iloc[:entry_bar]  # ends with the signal bar: its entry would fill at the next open
    note = (f"stopped at {format_ms(int(index_ms(cut.index)[-1]) + timeframe_to_ms(spec.timeframe))}: "
            f"entry {k + 1} would break the session's {why}")
    logger.info("%s: %s", spec.name, note)
    return paper_trade(cut, spec, tunables=tunables, account=account, start_ms=start_ms, env=env, **kw), note


def replay_candles(runtime: RuntimeConfig, symbol: str, timeframe: str) -> tuple[pd.DataFrame, str]:
    """Return the stored candles a replay uses and where they come from.

    ``data_source: sample`` → the bundled sample; otherwise the candle file in ``data_dir``, and when
    there is none (and the source allows the sample: auto) the bundled sample, saying so.

    Raises
    ------
    DataError
        No stored candles and a source that rules the sample out (local, exchange).
    """
    if runtime.data_source == "sample":
        return load_sample(symbol, timeframe, sample=runtime.sample), f"the bundled sample ({runtime.sample})"
    path = candle_path(runtime.data_dir, symbol, timeframe)
    if path.is_file():
        return read_candles(path, timeframe), f"stored candles {path}"
    if runtime.data_source == "auto":
        return (load_sample(symbol, timeframe, sample=runtime.sample),
                f"the bundled sample ({runtime.sample}): no stored candles at {path}")
    raise DataError(f"{path}: no stored candles for {symbol} {timeframe} (data_source {runtime.data_source}); run the "
                    "maintainer or jobs/import_candles.py first, or set data_source: sample")


def replay_window(candles: pd.DataFrame, profile: SessionProfile, warmup_bars: int) -> tuple[pd.DataFrame, int, int]:
    """The last ``duration_minutes`` of `candles` with `warmup_bars` before them.

    Returns
    -------
    (DataFrame, int, int)
        The candles, the window's start (epoch ms: signal bars closing after it trade) and end
        (the last candle's close).

    Raises
    ------
    DataError
        Fewer candles than the window and one more bar.
    """
    tf_ms = timeframe_to_ms(profile.timeframe)
    n_window = max(profile.duration_minutes * 60_000 // tf_ms, 1)
    if len(candles) < n_window + 1:
        raise DataError(f"{profile.symbol} {profile.timeframe}: {len(candles)} candles, fewer than the session's "
                        f"{n_window} and one before it; shorten the duration or fetch more candles")
    end_ms = int(index_ms(candles.index)[-1]) + tf_ms
    frame = candles.iloc[-(n_window + warmup_bars):]
    return frame, end_ms - n_window * tf_ms, end_ms


def plan_replay(profile: SessionProfile, strategy: ResolvedStrategy, venue: Venue, *, runtime: RuntimeConfig,
                desk: DeskConfig, tunables: Tunables, candles: tuple[pd.DataFrame, str] | None = None) -> SessionPlan:
    """Plan a replay session (paper venue) on stored candles (`candles` = (frame, note) to skip loading)."""
    frame, note = candles if candles is not None else replay_candles(runtime, profile.symbol, profile.timeframe)
    window, start, end = replay_window(frame, profile, desk.warmup_bars)
    return SessionPlan(profile, strategy, venue, "replay", note, PaperAccount.from_tunables(tunables), window, start, end)


def run_replay(plan: SessionPlan, *, tunables: Tunables, speed: float = 0.0,
               on_event: Callable[[Event], None] | None = None, clock: Callable[[], int] | None = None,
               sleep: Callable[[float], None] = time.sleep, env=None, root: Path | None = None) -> SessionResult:
    """Run a replay session (see the module's docstring); `clock` gives the wall clock in ms."""
    clock = clock or (lambda: int(time.time() * 1000))
    started = clock()
    p = plan.profile
    paper, note = capped_paper(plan.candles, plan.spec, tunables=tunables, account=plan.account,
                               start_ms=plan.window_start_ms, max_trades=p.max_trades,
                               max_notional_quote=p.max_notional_quote, env=env, root=root)
    last = plan.window_start_ms
    for e in paper.events:
        if e.ts_ms <= plan.window_start_ms:
            continue
        if speed > 0:
            sleep(max(e.ts_ms - last, 0) / 1000 / speed)
            last = e.ts_ms
        if on_event is not None:
            on_event(e)
    if speed > 0 and note is None:
        sleep(max(plan.window_end_ms - last, 0) / 1000 / speed)
    notionals = entry_notionals(paper)
    return SessionResult(plan, paper, started, clock(), float(notionals.sum()), len(notionals), note)
