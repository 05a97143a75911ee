"""One maintainer cycle: watchlist → backfill → research → promote → expiry → paper → status → render.

``run_once`` is what ``jobs/maintainer.py --once``, ``bot.py`` and a notebook cell call; ``loop``
repeats it every ``runtime.loop_interval_s`` seconds, aligned to the interval so cycles follow
candle closes. Every stage reads the files the previous one wrote.

Data source (``runtime.data_source``): ``auto`` asks the exchange through ccxt and, when it cannot
be reached (no network, DNS failure, timeout), logs one line, seeds the store from the bundled
real candles (``runtime.sample``: month or long) and switches to the replay clock (the close of the
sample's last candle); ``sample`` goes straight to the bundled candles; ``exchange`` never falls
back; ``local`` runs on the candle files already in ``data_dir`` (the user's own, imported with
``jobs/import_candles.py``): they are the watchlist, and their newest close is the replay clock.

Nothing here gives up on the first problem: a failure in one pair, and a full or read-only disk in
any stage, is one line in ``status.json → errors`` (:class:`~engine.research.reports.StageError`)
and the cycle goes on; a config file that becomes invalid while the loop runs keeps the last good
settings and is shown on the dashboard until it is fixed. ``status.json`` is a
:class:`~engine.research.reports.CycleStatus`, written and read through :mod:`engine.research.reports`.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from engine import promotion, states
from engine.clock import Clock, iso_ms
from engine.config import AppConfig, RuntimeConfig, Settings
from engine.backtest.warmup import compile_kernels, kernels_cached
from engine.data import universe
from engine.data.backfill import backfill_pair, seed_from_sample
from engine.data.known_gaps import list_known_gaps
from engine.data.housekeeping import clean_leftovers
from engine.data.plan import DataPlan, plan_data
from engine.data.sample import sample_set
from engine.errors import ConfigError, DataError, ExchangeError, TemporaryExchangeError
from engine.execution.forward import forward_test
from engine.exporter import METRICS_FILE, write_cycle_metrics
from engine.fileio import write_json
from engine.markets import timeframe_to_ms
from engine.publish.health import mark_cycle_finished, mark_cycle_started
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
    stored exchange candles kept; ``exchanges`` the ccxt ids involved; ``stages_s`` the wall
    seconds of each stage (``setup watchlist backfill research promotion paper status dashboard``),
    in the order they ran.
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
    stages_s: dict[str, float] = field(default_factory=dict)
    lap_at: float = field(default_factory=time.perf_counter, repr=False)  # perf_counter at the last lap

    def lap(self, stage: str) -> None:
        """Record the wall seconds since the previous lap (or `lap_at` as given) as `stage`'s."""
        now = time.perf_counter()
        self.stages_s[stage], self.lap_at = now - self.lap_at, now

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
                "stages_s": {k: round(v, 3) for k, v in self.stages_s.items()},
                "errors": [e.to_json() for e in self.errors]}


def _one_line(e: BaseException) -> str:
    """An OSError as ``<path>: <what> (errno)`` — one line naming the file — else its message."""
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or e}" + (f" (errno {e.errno})" if e.errno else "")
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def run_once(settings: Settings, *, render: Renderer | None = None, urls: dict | None = None,
             next_run_ms: int | None = None, progress: bool = False, workers: int | None = None,
             config_problem: str | None = None) -> CycleSummary:
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
        When the loop will run next (wall clock, epoch ms), shown on the dashboard. It goes into
        ``public_dir/health.json`` (:mod:`engine.publish.health`), written with ``running: true``
        when the cycle starts and ``running: false`` once its status.json is written.
    workers : int, optional
        Research processes (default: backtest_config.json ``workers``, else the measured
        default of :func:`engine.research.default_workers`).
    config_problem : str, optional
        A config file that became invalid while the loop runs (the loop passes it): recorded in
        status.json and shown on the dashboard; this cycle runs on `settings`, the last good ones.

    Raises
    ------
    ConfigError
        If the settings cannot work at all: an unknown exchange id, a quote with no pair in the
        data, a local data folder without candles (the message names what is available).
    """
    cfg = settings.app
    rt = cfg.runtime
    entries, bt = settings.entries, settings.backtest
    started_ms = Clock.wall().now_ms()
    t_start = time.perf_counter()
    errors: list[StageError] = []
    if config_problem:
        errors.append(StageError("config", config_problem))
    for folder in (rt.data_dir, rt.reports_dir, rt.logs_dir, rt.public_dir):
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            errors.append(StageError("setup", _one_line(e)))
            logger.error("cannot create %s: %s", folder, _one_line(e))
    try:
        clean_leftovers([rt.data_dir, rt.reports_dir, rt.public_dir, rt.strategies_file.parent],
                        retention_days=rt.retention_days)
    except OSError as e:  # a folder we may not list: nothing to clean there
        errors.append(StageError("housekeeping", _one_line(e)))

    interval_s = rt.loop_interval_s if next_run_ms is not None else None
    try:  # the open dashboard says "running now" from here until the status is written
        mark_cycle_started(rt.public_dir, started_ms, next_run_ms=next_run_ms, interval_s=interval_s)
    except OSError as e:
        logger.warning("health.json not written: %s", _one_line(e))

    plan = plan_data(rt)
    clock = plan.clock
    summary = CycleSummary(started_at_ms=started_ms, clock=ClockReading.of(clock), data_source=plan.source,
                           exchanges=(rt.exchange,) if plan.exchange is not None else (), errors=errors,
                           lap_at=t_start)
    summary.lap("setup")

    # 1. watchlist (ConfigError: the quote has no pair in the data — the settings cannot work)
    try:
        watch = universe.refresh_watchlist(plan.exchange, rt.reports_dir, quote=rt.quote, top_n=rt.topN,
                                           rank=rt.watchlist_rank, now_ms=clock.now_ms(),
                                           local_dir=rt.data_dir if plan.source is DataSource.LOCAL else None,
                                           timeframes=plan.timeframes, sample=plan.sample or rt.sample)
    except (ExchangeError, OSError) as e:
        logger.error("watchlist refresh failed: %s; using the bundled pairs", _one_line(e))
        summary.errors.append(StageError("watchlist", _one_line(e)))
        watch = {"pairs": [{"pair": p} for p in universe.sample_watchlist(rt.topN, sample=plan.sample or rt.sample)]}
    pairs = [p["pair"] for p in watch["pairs"]]
    summary.pairs = pairs
    summary.lap("watchlist")

    # 2. backfill (or seed from the bundled sample; a local data set is used as it is)
    try:
        backfill_errors, kept = _backfill(plan, rt, pairs)
        summary.errors.extend(backfill_errors)
    except OSError as e:
        summary.errors.append(StageError("backfill", _one_line(e)))
        logger.error("backfill skipped: %s", _one_line(e))
        kept = {}
    if kept:
        # offline, but real exchange candles are stored: they were kept (never replaced by the
        # sample), so "now" is the wall clock and those candles show their true age (OLD)
        clock = Clock.wall()
        summary.clock = ClockReading.of(clock)
        summary.data_source, summary.exchanges = DataSource.STORED, tuple(sorted(set(kept.values())))

    summary.lap("backfill")

    # 3. research (summary.json is never replaced by an empty one: see run_research)
    if not kernels_cached():  # a first run says why it is quiet for a minute, and shows progress
        compile_kernels(progress=progress)
    try:
        res = run_research(rt.data_dir, rt.reports_dir, pairs, plan.timeframes, entries, bt, clock=clock,
                           gap_policy=rt.gap_policy, progress=progress, workers=workers)
        summary.errors.extend(res.errors)
        summary.n_rows, summary.n_candidates = len(res.rows), len(res.candidates)
    except OSError as e:
        summary.errors.append(StageError("research", _one_line(e)))
        logger.error("research results not written: %s", _one_line(e))

    summary.lap("research")

    # 4. promotion and expiry (an invalid strategies.yml is left untouched and shown)
    now_ms = clock.now_ms()
    try:
        decisions, _ = promotion.promote_file(rt.reports_dir / "strategies.yml.next", rt.strategies_file,
                                              cfg.rules, risk_mode=rt.risk_mode, now_ms=now_ms,
                                              ttl_hours=rt.strategy_ttl_hours, age_mult=rt.age_mult)
        promotion.expire_file(rt.strategies_file, now_ms)
        summary.n_promoted = sum(d.promoted for d in decisions)
        summary.n_active = len(load_strategies(rt.strategies_file))
        write_json(rt.reports_dir / "promotion.json", {
            "generated_at_ms": now_ms, "risk_mode": rt.risk_mode, "rules": cfg.rules.__dict__,
            "decisions": [d.to_json() for d in decisions]})
    except (ConfigError, DataError, OSError) as e:
        summary.errors.append(StageError("promotion", _one_line(e)))
        logger.error("promotion skipped: %s", _one_line(e))

    summary.lap("promotion")

    # 5. paper trading: a forward test of the promoted strategies (dry-run; no order leaves)
    paper = None
    if rt.paper_trading:
        try:
            paper = forward_test(load_strategies(rt.strategies_file), data_dir=rt.data_dir, reports_dir=rt.reports_dir,
                                 now_ms=now_ms, metrics_path=Path(rt.metrics_dir) / "execution.prom")
            summary.errors.extend(StageError("paper", line) for line in paper["skipped"])
        except (ConfigError, DataError, OSError) as e:
            summary.errors.append(StageError("paper", _one_line(e)))
            logger.error("paper trading skipped: %s", _one_line(e))

    summary.lap("paper")

    # 6. states and status
    summary.finished_at_ms = Clock.wall().now_ms()
    try:
        write_status(cfg, summary, clock, next_run_ms=next_run_ms, config_problem=config_problem)
    except (OSError, ConfigError) as e:
        logger.error("status.json not written: %s", _one_line(e))
    try:
        mark_cycle_finished(rt.public_dir, started_ms, summary.finished_at_ms, next_run_ms=next_run_ms,
                            interval_s=interval_s)
    except OSError as e:
        logger.warning("health.json not written: %s", _one_line(e))
    try:  # the Prometheus textfile of the cycle (node_exporter's textfile collector reads metrics_dir)
        write_cycle_metrics(Path(rt.metrics_dir) / METRICS_FILE, duration_s=summary.duration_s,
                            finished_at_ms=summary.finished_at_ms, n_rows=summary.n_rows,
                            n_candidates=summary.n_candidates, n_promoted=summary.n_promoted, n_active=summary.n_active,
                            states=[s.state for s in summary.states], errors=[e.stage for e in summary.errors],
                            paper=paper, source=str(summary.data_source.value), clock=clock.kind)
    except OSError as e:
        logger.warning("metrics not written to %s: %s", rt.metrics_dir, _one_line(e))

    summary.lap("status")

    # 7. dashboard
    if render is not None:
        try:
            render(rt, strategies_path=rt.strategies_file, urls=urls)
        except Exception:  # the dashboard must never take the cycle down
            logger.exception("dashboard render failed")
    summary.lap("dashboard")
    logger.info("cycle done in %.1f s: %s, %d pairs × %d TFs, %d rows, %d promoted, %d active, %d errors [%s]",
                summary.duration_s, describe_source(summary.data_source, summary.exchanges), len(pairs),
                len(plan.timeframes), summary.n_rows, summary.n_promoted, summary.n_active, len(summary.errors),
                clock.label)
    return summary


def _backfill(plan: DataPlan, rt: RuntimeConfig, pairs: list[str]) -> tuple[list[StageError], dict[tuple[str, str], str]]:
    """Backfill from the exchange, or (offline) seed from the bundled sample; nothing for local data.

    Offline, a file of another source (an exchange's, an import, the user's own) is kept as it is:
    the sample only seeds missing files and files it seeded before (nothing already stored is lost,
    no file mixes sources). Returns the per-pair errors and the kept exchange files
    ``{(pair, tf): exchange id}``.
    """
    errors: list[StageError] = []
    kept: dict[tuple[str, str], str] = {}
    if plan.source is DataSource.LOCAL:
        return errors, kept
    if plan.exchange is None:
        results = seed_from_sample(rt.data_dir, pairs, plan.timeframes, sample=plan.sample or rt.sample)
        for r in results:
            if r.kept and DataSource.of_candle_file(r.source if r.source != "unknown" else None)[0] is DataSource.EXCHANGE:
                kept[(r.pair, r.timeframe)] = r.source
        if any(r.kept for r in results):
            held = [f"{r.pair} {r.timeframe} ({r.source})" for r in results if r.kept]
            logger.warning("offline: kept %d stored candle files (never replaced by the sample): %s", len(held),
                           ", ".join(held[:6]) + (" …" if len(held) > 6 else ""))
    else:
        results = [backfill_pair(plan.exchange, pair, tf, rt.data_dir, limit=rt.backfill_limit,
                                 now_ms=plan.clock.now_ms()) for pair in pairs for tf in plan.timeframes]
    for r in results:
        if r.error:
            errors.append(StageError("backfill", str(r.error), r.pair, r.timeframe))
        if r.quarantined:
            errors.append(StageError("backfill", f"stored CSV failed validation, moved aside as "
                                                 f"{Path(str(r.quarantined)).name} and rebuilt", r.pair, r.timeframe))
    return errors, kept


def write_status(cfg: AppConfig, summary: CycleSummary, clock: Clock, *, next_run_ms: int | None = None,
                 config_problem: str | None = None) -> CycleStatus:
    """Compute the states and write ``reports/status.json``: cycle times, clock, source, states,
    gaps and errors (:class:`~engine.research.reports.CycleStatus`); return what was written."""
    rt = cfg.runtime
    strategies = load_strategies(rt.strategies_file)
    timeframes = sorted({*rt.tf_list} if summary.data_source is not DataSource.SAMPLE
                        else set(sample_set(rt.sample).timeframes_for(rt.tf_list)), key=timeframe_to_ms)
    summary.states = states.compute_states(rt.data_dir, summary.pairs, timeframes, strategies, clock.now_ms(),
                                           rt.age_mult)
    watched = {(s.pair, s.timeframe) for s in summary.states}
    gaps = [Gap.from_json(Fields(g, "known gaps")) for g in list_known_gaps(rt.data_dir)
            if (g["pair"], g["timeframe"]) in watched]
    status = CycleStatus(
        started_at_ms=summary.started_at_ms, finished_at_ms=summary.finished_at_ms, next_run_ms=next_run_ms,
        clock=ClockReading.of(clock), data_source=summary.data_source, exchanges=summary.exchanges,
        risk_mode=rt.risk_mode, timeframes=tuple(timeframes), pairs=tuple(summary.pairs),
        states=tuple(summary.states), errors=tuple(summary.errors), gaps=tuple(gaps), n_rows=summary.n_rows,
        n_candidates=summary.n_candidates, n_promoted=summary.n_promoted, n_active=summary.n_active,
        config_problem=config_problem)
    reports.write_status(rt.reports_dir / reports.STATUS_FILE, status)
    return status


def show_config_problem(rt: RuntimeConfig, problem: str, *, render: Renderer | None = None,
                        urls: dict | None = None) -> None:
    """Put a config problem into status.json (the last cycle's status, or a new one) and re-render,
    so the dashboard header shows it until the file is fixed. Never raises: it is called when
    something is already wrong."""
    path = rt.reports_dir / reports.STATUS_FILE
    try:
        previous = reports.read_status(path) if path.exists() else None
    except DataError:
        previous = None
    try:
        if previous is not None:
            status = dataclasses.replace(previous, config_problem=problem)
        else:
            now = Clock.wall()
            status = CycleStatus(started_at_ms=now.now_ms(), finished_at_ms=now.now_ms(), clock=ClockReading.of(now),
                                 data_source=DataSource.UNKNOWN, risk_mode=rt.risk_mode, timeframes=tuple(rt.tf_list),
                                 pairs=(), errors=(StageError("config", problem),), config_problem=problem)
        reports.write_status(path, status)
        if render is not None:
            render(rt, strategies_path=rt.strategies_file, urls=urls)
    except Exception:  # the loop goes on whatever happens here
        logger.exception("could not show the config problem on the dashboard")


def loop(settings: Settings, *, render: Renderer | None = None, urls: dict | None = None,
         max_cycles: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Run cycles every ``loop_interval_s`` seconds, aligned to the interval, until stopped.

    Logs a one-line heartbeat after each cycle (state counts, last candle per pair, next run).
    Retries a :class:`TemporaryExchangeError` with exponential backoff (up to 5 minutes).
    Re-reads the three config files before each cycle (:meth:`Settings.reload`); when one became
    invalid, or the settings cannot work (a :class:`ConfigError` from the cycle), it keeps the last
    good settings, logs one ERROR line per cycle naming the file, key and problem, and shows it in
    the dashboard header until it is fixed: the loop (and the dashboard server) never dies on bad
    input. Returns the number of cycles run.
    """
    interval = settings.runtime.loop_interval_s
    backoff, n = 0.0, 0
    problem: str | None = None
    while max_cycles is None or n < max_cycles:
        now = time.time()
        next_run = (int(now // interval) + 1) * interval
        try:
            summary = run_once(settings, render=render, urls=urls, next_run_ms=int(next_run * 1000),
                               config_problem=problem)
            backoff = 0.0
            _heartbeat(summary, next_run)
        except ConfigError as e:
            logger.error("cycle not run: %s", e)
            show_config_problem(settings.runtime, str(e), render=render, urls=urls)
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
            if problem:
                logger.info("config fixed: %s", problem.split(":")[0])
            problem = None
        except ConfigError as e:
            problem = str(e)
            logger.error("a config file is invalid, keeping the last good settings: %s", e)
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
