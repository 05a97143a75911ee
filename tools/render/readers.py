"""Read the dashboard's inputs through the engine's one reader of each file.

=========================================  =====================================================
``reports_dir/status.json``                :func:`engine.research.reports.read_status`
``reports_dir/summary.json``               :func:`engine.research.reports.read_summary`
``strategies_path`` (strategies.yml)       :func:`engine.strategy.promoted.load_strategies`
``reports_dir/curves/<P>_<TF>_<E>.json``   :func:`engine.research.reports.read_curve`
``data_dir/ohlcv/<PAIR>/<TF>.csv``         :func:`engine.data.store.read_tail_candles`
``reports_dir/watchlist.json``             :func:`read_watchlist` (strict, here)
``reports_dir/promotion.json``             :func:`read_promotion` (strict, here; written by
                                           :func:`engine.cycle.run_once`)
``reports_dir/paper.json``                 :func:`read_paper` (strict, here; written by
                                           :func:`engine.execution.forward.forward_test`)
``logs_dir/maintainer.log``                :func:`tail_lines`
``reports_dir/dryrun_plans.json`` …        later stages (:data:`OPTIONAL_SECTIONS`), any JSON
``public_dir/health.json``                 :func:`engine.publish.health.read_health` (running / idle)
=========================================  =====================================================

A missing file is normal early on: it is noted in ``Inputs.missing`` and its section says "not
yet". A file that exists but cannot be read, or does not match its record, is a problem: the
reader's message (file, key, value, expectation) goes to ``Inputs.problems``, which the page lists
under "Report problems". Nothing here raises because of an input file.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from engine.data import store
from engine.errors import DataError, EngineError
from engine.records import Fields, display_path, read_json_document
from engine.research import reports
from engine.promotion import PromotionDecision
from engine.publish.health import HEALTH_FILE, CycleHealth, read_health
from engine.research.reports import Curve, CycleStatus, SummaryReport, curve_name
from engine.strategy.promoted import PromotedStrategy, load_strategies

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Candles shown in each candlestick chart of a strategy page (the tail of data_dir/ohlcv/<PAIR>/<TF>.csv):
#: about a day of 1m candles, so the last trades are among them; the chart opens fitted to those trades.
RECENT_CANDLES = 1500
#: Lines of logs_dir/maintainer.log shown.
LOG_TAIL_LINES = 80
#: Later-stage files in reports_dir: (file name, section title). Shown only when present.
OPTIONAL_SECTIONS: tuple[tuple[str, str], ...] = (
    ("dryrun_plans.json", "Dry-run plans"),
    ("testnet_budget.json", "Testnet budget"),
)


@dataclass(frozen=True)
class WatchRow:
    """One pair of watchlist.json: ``pair`` (folder name), ``symbol``, 24 h quote volume (quote
    currency) and bid/ask spread in percent (None when the source has no quotes)."""

    pair: str
    symbol: str | None
    quote_volume_24h: float | None
    spread_pct: float | None


@dataclass(frozen=True)
class Watchlist:
    """watchlist.json as the dashboard shows it (written by :func:`engine.data.universe.refresh_watchlist`)."""

    source: str
    rank_by: str
    generated_at_ms: int
    pairs: tuple[WatchRow, ...]


@dataclass(frozen=True)
class PromotionReport:
    """promotion.json as the dashboard shows it: when the cycle judged (its clock, epoch ms), by
    which risk_mode, and one :class:`~engine.promotion.PromotionDecision` per candidate (the
    failed rules in words)."""

    generated_at_ms: int
    risk_mode: str
    decisions: tuple[PromotionDecision, ...]
    rules: tuple[tuple[str, Any], ...] = ()


@dataclass
class Inputs:
    """Everything the page shows, as read from disk (None: file missing or unreadable)."""

    status: CycleStatus | None = None
    summary: SummaryReport | None = None
    watchlist: Watchlist | None = None
    promotion: PromotionReport | None = None
    paper: dict[str, Any] | None = None
    health: CycleHealth | None = None
    strategies: list[PromotedStrategy] = field(default_factory=list)
    log_tail: list[str] | None = None
    optional: list[tuple[str, str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def attempt(self, path: Path, reader: Callable[[Path], T]) -> T | None:
        """Return ``reader(path)``; None when the file is missing (noted) or unreadable (a problem)."""
        if not Path(path).exists():
            self.missing.append(Path(path).name)
            return None
        try:
            return reader(Path(path))
        except EngineError as e:
            self.problems.append(str(e))
            return None


def read_watchlist(path: Path) -> Watchlist:
    """Return the dashboard's view of watchlist.json.

    Raises
    ------
    DataError
        Naming the file and key when it is not JSON or not of the documented shape.
    """
    f = Fields(read_json_document(path), display_path(path))
    rows = tuple(WatchRow(r.str("pair"), r.str("symbol", optional=True),
                          _or_none(r.float("quote_volume_24h", optional=True)),
                          _or_none(r.float("spread_pct", optional=True)))
                 for r in f.items("pairs"))
    return Watchlist(f.str("source"), f.str("rank_by"), f.int("generated_at_ms"), rows)


def read_promotion(path: Path) -> PromotionReport:
    """Return the dashboard's view of promotion.json
    (``{"generated_at_ms", "risk_mode", "rules", "decisions": [{"pair", "timeframe", "entry_set",
    "promoted", "reasons": [str]}]}``).

    Raises
    ------
    DataError
        Naming the file and key when it is not JSON or not of that shape.
    """
    f = Fields(read_json_document(path), display_path(path))
    decisions = []
    for d in f.items("decisions"):
        reasons = d.list("reasons")
        for i, reason in enumerate(reasons):
            if not isinstance(reason, str):
                d.fail(f"reasons[{i}]", reason, "text")
        decisions.append(PromotionDecision(d.str("pair"), d.str("timeframe"), d.str("entry_set"), d.bool("promoted"),
                                           tuple(reasons)))
    rules = f.mapping("rules", optional=True) or {}
    return PromotionReport(f.int("generated_at_ms"), f.str("risk_mode"), tuple(decisions),
                           tuple((str(k), v) for k, v in rules.items() if not isinstance(v, (list, dict))))


def _or_none(x: float) -> float | None:
    return None if x != x else x  # NaN (null in the file) → None


def tail_lines(path: str | os.PathLike[str], n: int = LOG_TAIL_LINES, *, max_bytes: int = 256 * 1024) -> list[str]:
    """Return the last `n` lines of a text file (UTF-8, undecodable bytes replaced), oldest first,
    reading at most `max_bytes` from its end; the first line read may be cut and is dropped.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    """
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        start = max(0, end - max_bytes)
        block, pos, data = 8192, end, b""
        while pos > start and data.count(b"\n") <= n:
            step = min(block, pos - start)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
            block *= 2
    lines = data.decode("utf-8", errors="replace").splitlines()
    if pos > 0 and lines:
        lines = lines[1:]
    return lines[-n:]


def read_paper(path: Path) -> dict[str, Any]:
    """Return paper.json checked for what the page reads: ``generated_at_ms``, ``account`` and per
    strategy ``name pair timeframe entry_set promoted_at_ms realised_pnl_quote unrealised_pnl_quote
    n_paper_trades open_position trades paper backtest research blocked``.

    Raises
    ------
    DataError
        Naming the file and key when it is not JSON or not of that shape.
    """
    f = Fields(read_json_document(path), display_path(path))
    out: dict[str, Any] = {"generated_at_ms": f.int("generated_at_ms"), "account": f.mapping("account"),
                           "skipped": list(f.strs("skipped", optional=True)), "strategies": []}
    for s in f.items("strategies"):
        row = {k: s.str(k) for k in ("name", "pair", "timeframe", "entry_set")}
        row.update(promoted_at_ms=s.int("promoted_at_ms"), bars=s.int("bars_since_promotion", optional=True, default=0),
                   realised=s.float("realised_pnl_quote"), unrealised=s.float("unrealised_pnl_quote"),
                   n_intents=s.int("n_intents", optional=True, default=0), n_blocked=s.int("n_blocked", optional=True, default=0),
                   blocked=s.mapping("blocked", optional=True), open_position=s.mapping("open_position", optional=True),
                   trades=[dict(t.data) for t in s.items("trades", optional=True)],
                   paper=s.mapping("paper", optional=True), backtest=s.mapping("backtest", optional=True),
                   research=s.mapping("research", optional=True))
        out["strategies"].append(row)
    return out


def load_inputs(reports_dir: Path, logs_dir: Path, strategies_path: Path, public_dir: Path | None = None) -> Inputs:
    """Read every dashboard input (see the module docstring); never raises for a file.

    `public_dir` is where the cycle keeps health.json (no health record when None).
    """
    inputs = Inputs()
    reports_dir = Path(reports_dir)
    if public_dir is not None and (Path(public_dir) / HEALTH_FILE).is_file():
        inputs.health = inputs.attempt(Path(public_dir) / HEALTH_FILE, read_health)
    inputs.status = inputs.attempt(reports_dir / reports.STATUS_FILE, reports.read_status)
    inputs.summary = inputs.attempt(reports_dir / reports.SUMMARY_FILE, reports.read_summary)
    inputs.watchlist = inputs.attempt(reports_dir / "watchlist.json", read_watchlist)
    inputs.promotion = inputs.attempt(reports_dir / "promotion.json", read_promotion)
    inputs.strategies = inputs.attempt(Path(strategies_path), load_strategies) or []
    inputs.paper = inputs.attempt(reports_dir / "paper.json", read_paper)
    log_path = Path(logs_dir) / "maintainer.log"
    try:
        inputs.log_tail = tail_lines(log_path)
    except FileNotFoundError:
        inputs.missing.append(log_path.name)
    except OSError as e:
        inputs.problems.append(f"{display_path(log_path)}: cannot read ({e.strerror or e})")
    for name, title in OPTIONAL_SECTIONS:
        path = reports_dir / name
        if path.exists():
            data = inputs.attempt(path, read_json_document)
            if data is not None:
                inputs.optional.append((name, title, data))
    return inputs


def curve_path(strategy: PromotedStrategy, reports_dir: Path) -> Path:
    """Where the curve of `strategy` is: its ``curve`` (relative to `reports_dir`), else the
    file the research stage names it (:func:`engine.research.reports.curve_name`)."""
    if strategy.curve:
        return Path(reports_dir) / strategy.curve
    return Path(reports_dir) / reports.CURVES_DIR / curve_name(strategy.pair, strategy.timeframe, strategy.entry_set)


def read_chart_inputs(strategy: PromotedStrategy, reports_dir: Path, data_dir: Path | None, inputs: Inputs
                      ) -> tuple[Curve | None, pd.DataFrame | None, list[str]]:
    """Return (curve, recent candles, notes) of one promoted strategy.

    The curve through :func:`engine.research.reports.read_curve`, the last
    :data:`RECENT_CANDLES` candles through :func:`engine.data.store.read_tail_candles`. Notes
    are short reasons for what is missing; an unreadable file is also added to `inputs.problems`.
    """
    notes: list[str] = []
    curve = None
    path = curve_path(strategy, reports_dir)
    if path.is_file():
        curve = inputs.attempt(path, reports.read_curve)
        if curve is None:
            notes.append("curve file unreadable")
        elif not curve.timestamps_ms:
            notes.append("equity curve empty")
    else:
        notes.append("no equity curve stored yet")
    candles = None
    if data_dir is not None:
        cpath = store.candle_path(data_dir, strategy.pair, strategy.timeframe)
        if not cpath.exists():
            notes.append("no candle file")
        else:
            try:
                candles = store.read_tail_candles(cpath, RECENT_CANDLES, strategy.timeframe)
            except DataError as e:
                inputs.problems.append(str(e))
                notes.append("candle file unreadable")
            if candles is not None and candles.empty:
                notes.append("candle file holds no candles")
                candles = None
    return curve, candles, notes


__all__ = ["LOG_TAIL_LINES", "OPTIONAL_SECTIONS", "RECENT_CANDLES", "Inputs", "PromotionReport", "Watchlist",
           "WatchRow", "curve_path", "load_inputs", "read_chart_inputs", "read_promotion", "read_watchlist",
           "tail_lines"]
