"""One maintainer cycle: watchlist → backfill → research → promote → expiry → status → render.

``run_once`` is what ``jobs/maintainer.py --once``, ``bot.py`` and a notebook cell call; ``loop``
repeats it every ``runtime.loop_interval_s`` seconds, aligned to the interval so cycles follow
candle closes. Every stage reads the files the previous one wrote.

Data source (``runtime.data_source``): ``auto`` asks the exchange through ccxt and, when it cannot
be reached (no network, DNS failure, timeout), logs one line, seeds the store from the bundled
real candles and switches to the replay clock (the close of the sample's last candle); ``sample``
goes straight to the bundled candles; ``exchange`` never falls back.

A failure in one pair is logged and recorded in ``status.json → errors``
(:class:`~engine.research.reports.StageError`); the cycle goes on. A ``ConfigError`` stops the
cycle (nothing else can go right with a bad config). ``status.json`` is a
:class:`~engine.research.reports.CycleStatus`, written and read through
:mod:`engine.research.reports`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from engine import promotion, states
from engine.clock import Clock, iso_ms
from engine.config import AppConfig, RuntimeConfig, Settings
from engine.data import store, universe
from engine.data.backfill import backfill_pair, seed_from_sample
from engine.data.known_gaps import list_known_gaps
from engine.data.sample import SAMPLE_SOURCE, sample_clock
from engine.errors import ConfigError, EngineError, ExchangeUnreachableError, TemporaryExchangeError
from engine.exchange import RetryPolicy, ensure_markets, make_exchange
from engine.fileio import write_json
from engine.records import Fields
from engine.research import reports, run_research
from engine.research.reports import ClockReading, CycleStatus, Gap, StageError, describe_source
from engine.states import PairState
from engine.strategy.promoted import load_strategies
from engine.types import DataSource

logger = logging.getLogger(__name__)


class Renderer(Protocol):
    """Writes the dashboard after a cycle (``tools/render``; passed in by bot.py and the
    maintainer, because tools import the engine, never the other way round)."""

    def __call__(self, runtime: RuntimeConfig, *, strategies_path: Path | None = None,
                 urls: Mapping[str, str | None] | None = None) -> Any: ...


@dataclass
class CycleSummary:
    """What one cycle did, built up stage by stage (its status.json is :class:`CycleStatus`).

    ``data_source`` is EXCHANGE online, SAMPLE offline on the bundled sample, STORED offline with
    stored exchange candles kept; ``exchanges`` the ccxt ids involved.
    """

    started_at_ms: int
    clock: ClockReading
    finished_at_ms: int = 0
    data_source: DataSource = DataSource.SAMPLE
    exchanges: tuple[str, ...] = ()
    pairs: list[str] = field(default_factory=list)
    n_rows: int = 0
    n_candidates: int = 0
    n_promoted: int = 0
    n_active: int = 0
    errors: list[StageError] = field(default_factory=list)
    states: list[PairState] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Wall time of the cycle in seconds."""
        return (self.finished_at_ms - self.started_at_ms) / 1000.0

    def to_json(self) -> dict:
        """Return the summary as printed by ``maintainer.py --once --json``."""
        return {"started_at_ms": self.started_at_ms, "finished_at_ms": self.finished_at_ms,
                "duration_s": self.duration_s, "data_source": self.data_source.value,
                "exchanges": list(self.exchanges), "clock": self.clock.to_json(),
                "pairs": self.pairs, "n_rows": self.n_rows, "n_candidates": self.n_candidates,
                "n_promoted": self.n_promoted, "n_active": self.n_active,
                "errors": [e.to_json() for e in self.errors]}


def open_exchange(cfg: AppConfig):
    """Return a ccxt exchange with markets loaded, or None to run on the bundled sample.

    Raises
    ------
    ExchangeUnreachableError
        When ``data_source: exchange`` and the exchange cannot be reached.
    """
    rt = cfg.runtime
    if rt.data_source == "sample":
        return None
    try:
        exchange = make_exchange(rt.exchange, timeout_ms=rt.exchange_timeout_ms)
        # a short probe: offline, DNS fails at once and one retry is enough to be sure
        ensure_markets(exchange, retry=RetryPolicy(max_attempts=2, base_delay_s=1.0))
        return exchange
    except EngineError as e:  # unreachable, or refusing us: either way no candles from it this cycle
        if rt.data_source == "exchange":
            raise
        what = "unreachable" if isinstance(e, ExchangeUnreachableError) else "refused"
        logger.warning("%s %s (%s): running offline on the bundled sample with the replay clock",
                       rt.exchange, what, str(e).splitlines()[0][:200])
        return None


def run_once(settings: Settings, *, render: Renderer | None = None, urls: dict | None = None,
             next_run_ms: int | None = None, progress: bool = False, workers: int | None = None) -> CycleSummary:
    """Run one cycle and return its summary.

    Parameters
    ----------
    settings : Settings
        config.yaml, entries_config.json and backtest_config.json, loaded
        (:func:`engine.config.load_settings`); nothing else is read to configure the cycle.
    render : Renderer, optional
        ``render(runtime, strategies_path=..., urls=...)`` that writes the dashboard (passed in by
        bot.py and jobs/maintainer.py: tools import the engine, never the other way round).
    next_run_ms : int, optional
        When the loop will run next (wall clock, epoch ms), shown on the dashboard.
    workers : int, optional
        Research processes (default: backtest_config.json ``workers``, else the measured
        default of :func:`engine.research.default_workers`).

    Raises
    ------
    ConfigError
        If a config file is invalid.
    """
    cfg = settings.app
    rt = cfg.runtime
    entries, bt = settings.entries, settings.backtest
    started_ms = Clock.wall().now_ms()
    for folder in (rt.data_dir, rt.reports_dir, rt.logs_dir, rt.public_dir):
        Path(folder).mkdir(parents=True, exist_ok=True)

    exchange = open_exchange(cfg)
    online = exchange is not None
    clock = Clock.wall() if online else sample_clock()
    summary = CycleSummary(started_at_ms=started_ms, clock=ClockReading.of(clock),
                           data_source=DataSource.EXCHANGE if online else DataSource.SAMPLE,
                           exchanges=(rt.exchange,) if online else ())

    # 1. watchlist
    try:
        watch = universe.refresh_watchlist(exchange, rt.reports_dir, quote=rt.quote, top_n=rt.topN,
                                           rank=rt.watchlist_rank, now_ms=clock.now_ms())
        pairs = [p["pair"] for p in watch["pairs"]]
    except EngineError as e:
        logger.error("watchlist refresh failed: %s; using the bundled pairs", e)
        summary.errors.append(StageError("watchlist", str(e)))
        watch = universe.refresh_watchlist(None, rt.reports_dir, quote=rt.quote, top_n=rt.topN, now_ms=clock.now_ms())
        pairs = [p["pair"] for p in watch["pairs"]]
    summary.pairs = pairs

    # 2. backfill (or seed from the bundled sample)
    errors, kept = _backfill(exchange, rt, pairs, clock)
    summary.errors.extend(errors)
    if kept:
        # offline, but real exchange candles are stored: they were kept (never replaced by the
        # sample), so "now" is the wall clock and those candles show their true age (OLD)
        clock = Clock.wall()
        summary.clock = ClockReading.of(clock)
        summary.data_source, summary.exchanges = DataSource.STORED, tuple(sorted(set(kept.values())))

    # 3. research
    res = run_research(rt.data_dir, rt.reports_dir, pairs, rt.tf_list, entries, bt, clock=clock,
                       gap_policy=rt.gap_policy, progress=progress, workers=workers)
    summary.errors.extend(res.errors)
    summary.n_rows, summary.n_candidates = len(res.rows), len(res.candidates)

    # 4. promotion and expiry
    now_ms = clock.now_ms()
    decisions, active = promotion.promote_file(rt.reports_dir / "strategies.yml.next", rt.strategies_file,
                                               cfg.rules, risk_mode=rt.risk_mode, now_ms=now_ms,
                                               ttl_hours=rt.strategy_ttl_hours)
    promotion.expire_file(rt.strategies_file, now_ms)
    summary.n_promoted = sum(d.promoted for d in decisions)
    summary.n_active = len(load_strategies(rt.strategies_file))
    write_json(rt.reports_dir / "promotion.json", {
        "generated_at_ms": now_ms, "risk_mode": rt.risk_mode, "rules": cfg.rules.__dict__,
        "decisions": [d.to_json() for d in decisions]})

    # 5. states and status
    summary.finished_at_ms = Clock.wall().now_ms()
    write_status(cfg, summary, clock, next_run_ms=next_run_ms)

    # 6. dashboard
    if render is not None:
        try:
            render(rt, strategies_path=rt.strategies_file, urls=urls)
        except Exception:  # the dashboard must never take the cycle down
            logger.exception("dashboard render failed")
    logger.info("cycle done in %.1f s: %s, %d pairs × %d TFs, %d rows, %d promoted, %d active, %d errors [%s]",
                summary.duration_s, describe_source(summary.data_source, summary.exchanges), len(pairs),
                len(rt.tf_list), summary.n_rows, summary.n_promoted, summary.n_active, len(summary.errors), clock.label)
    return summary


def _backfill(exchange, rt, pairs: list[str], clock: Clock) -> tuple[list[StageError], dict[tuple[str, str], str]]:
    """Backfill from the exchange, or (offline) seed from the bundled sample.

    Offline, a file whose candles came from an exchange is kept as it is: the sample only seeds
    missing files and files it seeded before (nothing already stored is lost, no file mixes
    sources). Returns the per-pair errors and the kept files ``{(pair, tf): source}``.
    """
    errors: list[StageError] = []
    kept: dict[tuple[str, str], str] = {}
    if exchange is None:
        results = []
        for pair in pairs:
            seed_tfs = []
            for tf in rt.tf_list:
                path = store.candle_path(rt.data_dir, pair, tf)
                source = store.read_source(path) if path.exists() else None
                if source not in (None, SAMPLE_SOURCE):
                    kept[(pair, tf)] = source
                else:
                    seed_tfs.append(tf)
            if seed_tfs:
                results.extend(seed_from_sample(rt.data_dir, [pair], seed_tfs))
        if kept:
            logger.warning("offline: kept %d stored candle files from %s (never replaced by the sample): %s",
                           len(kept), ", ".join(sorted(set(kept.values()))),
                           ", ".join(f"{p} {tf}" for p, tf in list(kept)[:6]) + (" …" if len(kept) > 6 else ""))
    else:
        results = []
        for pair in pairs:
            for tf in rt.tf_list:
                results.append(backfill_pair(exchange, pair, tf, rt.data_dir, limit=rt.backfill_limit,
                                                      now_ms=clock.now_ms()))
    for r in results:
        if r.error:
            errors.append(StageError("backfill", str(r.error), r.pair, r.timeframe))
        if r.quarantined:
            errors.append(StageError("backfill", f"stored CSV failed validation, moved aside as "
                                                 f"{Path(str(r.quarantined)).name} and rebuilt", r.pair, r.timeframe))
    return errors, kept


def write_status(cfg: AppConfig, summary: CycleSummary, clock: Clock, *, next_run_ms: int | None = None
                 ) -> CycleStatus:
    """Compute the states and write ``reports/status.json``: cycle times, clock, source, states,
    gaps and errors (:class:`~engine.research.reports.CycleStatus`); return what was written."""
    rt = cfg.runtime
    strategies = load_strategies(rt.strategies_file)
    summary.states = states.compute_states(rt.data_dir, summary.pairs, rt.tf_list, strategies, clock.now_ms(),
                                           rt.age_mult)
    watched = {(s.pair, s.timeframe) for s in summary.states}
    gaps = [Gap.from_json(Fields(g, "known gaps")) for g in list_known_gaps(rt.data_dir)
            if (g["pair"], g["timeframe"]) in watched]
    status = CycleStatus(
        started_at_ms=summary.started_at_ms, finished_at_ms=summary.finished_at_ms, next_run_ms=next_run_ms,
        clock=ClockReading.of(clock), data_source=summary.data_source, exchanges=summary.exchanges,
        risk_mode=rt.risk_mode, timeframes=tuple(rt.tf_list), pairs=tuple(summary.pairs),
        states=tuple(summary.states), errors=tuple(summary.errors), gaps=tuple(gaps), n_rows=summary.n_rows,
        n_candidates=summary.n_candidates, n_promoted=summary.n_promoted, n_active=summary.n_active)
    reports.write_status(rt.reports_dir / reports.STATUS_FILE, status)
    return status


def loop(settings: Settings, *, render: Renderer | None = None, urls: dict | None = None,
         max_cycles: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Run cycles every ``loop_interval_s`` seconds, aligned to the interval, until stopped.

    Logs a one-line heartbeat after each cycle (state counts, last candle per pair, next run).
    Retries a :class:`TemporaryExchangeError` with exponential backoff (up to 5 minutes); stops on
    a :class:`ConfigError` (re-raised). Re-reads the three config files before each cycle
    (:meth:`Settings.reload`) and keeps the previous settings when one became invalid.
    Returns the number of cycles run.
    """
    interval = settings.runtime.loop_interval_s
    backoff, n = 0.0, 0
    while max_cycles is None or n < max_cycles:
        now = time.time()
        next_run = (int(now // interval) + 1) * interval
        try:
            summary = run_once(settings, render=render, urls=urls, next_run_ms=int(next_run * 1000))
            backoff = 0.0
            _heartbeat(summary, next_run)
        except ConfigError:
            raise
        except TemporaryExchangeError as e:
            backoff = min(300.0, max(5.0, backoff * 2))
            logger.warning("temporary exchange error: %s; retrying in %.0f s", e, backoff)
            sleep(backoff)
            n += 1
            continue
        except Exception:
            logger.exception("cycle failed; the next cycle runs as planned")
        n += 1
        if max_cycles is not None and n >= max_cycles:
            break
        sleep(max(0.0, next_run - time.time()))
        # re-read the config files each cycle so edits apply without a restart
        try:
            settings = settings.reload()
            interval = settings.runtime.loop_interval_s
        except ConfigError as e:
            logger.error("a config file became invalid: %s; keeping the previous settings", e)
    return n


def _heartbeat(summary: CycleSummary, next_run_s: float) -> None:
    counts: dict[str, int] = {}
    for s in summary.states:
        counts[s.state] = counts.get(s.state, 0) + 1
    last: dict[str, int] = {}
    for s in summary.states:
        if s.last_candle_ms is not None:
            last[s.pair] = max(last.get(s.pair, 0), s.last_candle_ms)
    lasts = ", ".join(f"{p} {iso_ms(ms)[11:16]}" for p, ms in list(last.items())[:5])
    logger.info("heartbeat: %s | last candles %s%s | next run %s",
                " ".join(f"{k}={v}" for k, v in sorted(counts.items())), lasts, " …" if len(last) > 5 else "",
                iso_ms(int(next_run_s * 1000)))
