"""The forward test: each cycle, paper-trade every promoted strategy on the newest candles (dry-run).

With ``runtime.paper_trading: true`` (the default; ``exec_enabled`` stays false) the maintainer
calls :func:`forward_test` after promotion. For each unexpired strategy in ``strategies.yml`` it runs
:func:`engine.execution.paper.paper_trade` from the strategy's promotion to the clock, on the
stored candles of its pair × timeframe — a forward test of what research promoted, with no order
leaving. It writes:

- the new events (intents, decisions, shadow orders, fills) to the event log, each once: a
  per-strategy mark (``<data_dir>/trading/paper_state.json``) remembers up to which candle close
  events were written; plus one ``position`` event per strategy per cycle (the paper book);
- ``<reports_dir>/paper.json`` for the dashboard: per strategy its paper trades, open position,
  realised and unrealised PnL, what the guards blocked, and beside it the backtest of the same
  candles and research's out-of-sample figures (:data:`PAPER_FILE`);
- the step records ``STEP-6.1-guards.md`` and ``STEP-6.2-orders.md``, and with `metrics_path` the
  run's :class:`~engine.execution.metrics.Metrics` (the cycle writes ``<metrics_dir>/execution.prom``).

Each strategy has its own paper account (:meth:`PaperAccount.from_tunables`: cash
``MAX_GLOBAL_EXPOSURE``, stake ``ENTRY_MAX_NOTIONAL``), so its paper trades compare one to one with
its backtest; limits across strategies are the desk's (one account for all).
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from engine.backtest import run_backtest
from engine.clock import iso_ms
from engine.data.candles import index_ms
from engine.data.store import candle_path, read_candles
from engine.errors import ConfigError, DataError
from engine.execution.events import Event, EventLog
from engine.execution.golive import guards_record, write_step
from engine.execution.metrics import Metrics
from engine.execution.paper import PaperAccount, PaperResult, PaperSpec, paper_trade
from engine.execution.tunables import Tunables, load_tunables
from engine.fileio import atomic_write_text, json_safe, write_json
from engine.markets import timeframe_to_ms
from engine.strategy.promoted import PromotedStrategy

logger = logging.getLogger(__name__)

PAPER_FILE = "paper.json"
STATE_FILE = "paper_state.json"
#: Trades per strategy kept in paper.json (the newest).
MAX_TRADES_SHOWN = 50


def _trade_rows(result: PaperResult) -> list[dict[str, Any]]:
    t = result.trades.tail(MAX_TRADES_SHOWN)
    cols = ["entry_ms", "entry_price", "qty_base", "exit_ms", "exit_price", "exit_reasons", "pnl_quote", "return_pct"]
    rows = [dict(zip(cols, r)) for r in t[cols].itertuples(index=False)]
    if result.open_trade is not None and rows:
        rows[-1].update(exit_ms=None, exit_price=None, exit_reasons="open")
    return rows


def _summary(trades) -> dict[str, Any]:
    n = len(trades)
    pnl = float(trades["pnl_quote"].sum()) if n else 0.0
    return {"n_trades": n, "pnl_quote": pnl, "win_rate_pct": float((trades["pnl_quote"] > 0).mean() * 100) if n else None,
            "mean_return_pct": float(trades["return_pct"].mean()) if n else None}


def _load_state(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def forward_test(strategies: Iterable[PromotedStrategy], *, data_dir: Path | str, reports_dir: Path | str, now_ms: int,
                 tunables: Tunables | None = None, log: EventLog | None = None,
                 metrics_path: Path | str | None = None) -> dict[str, Any]:
    """Paper-trade `strategies` from their promotion to `now_ms`; write events, paper.json, metrics, records.

    Parameters
    ----------
    strategies : iterable of PromotedStrategy
        ``strategies.yml``; expired ones are skipped.
    data_dir, reports_dir : path
        ``runtime.data_dir`` (candles in, events out) and ``runtime.reports_dir``.
    now_ms : int
        The cycle's clock, epoch ms UTC (the replay clock offline).
    tunables : Tunables, optional
        Default: :func:`~engine.execution.tunables.load_tunables` (the tunables file).
    log : EventLog, optional
        Default: ``EventLog(data_dir)`` (and Redis streams when ``REDIS_URL`` is set).
    metrics_path : path, optional
        Where to write this run's :class:`~engine.execution.metrics.Metrics` (a textfile; the cycle
        passes ``<metrics_dir>/execution.prom``); None: not written.

    Returns
    -------
    dict
        The content of paper.json.

    Raises
    ------
    ConfigError
        An invalid tunables file. A strategy whose candles are missing or malformed is one line in
        ``skipped``, never a stop.
    """
    tunables = tunables or load_tunables()
    log = log or EventLog(data_dir)
    state_path = Path(data_dir) / "trading" / STATE_FILE
    state = _load_state(state_path)
    metrics = Metrics()
    account = PaperAccount.from_tunables(tunables)
    out, skipped, n_written, orders = [], [], 0, {}
    for s in strategies:
        spec = PaperSpec.from_promoted(s)
        if s.expires_at_ms <= now_ms:
            continue
        try:
            candles = read_candles(candle_path(data_dir, s.pair, s.timeframe), s.timeframe)
            paper = paper_trade(candles, spec, tunables=tunables, account=account, start_ms=s.promoted_at_ms, now_ms=now_ms)
        except (DataError, ConfigError) as e:
            skipped.append(f"{spec.name}: {e}")
            continue
        until = int(state.get(spec.name, {}).get("written_until_ms", -1))
        new = [e for e in paper.events if until < e.ts_ms <= now_ms]
        # every event is stamped with a candle close ≤ the last closed one: later cycles only add later ones
        last_close = int(index_ms(paper.result.equity.index[-1:])[0]) + timeframe_to_ms(s.timeframe)
        book = _book_json(paper)
        new.append(Event(now_ms, "position", spec.name, spec.symbol, s.timeframe, "dry-run", book))
        log.extend(new)
        n_written += len(new)
        metrics.observe(new)
        metrics.set_position(spec.name, open_positions=int(paper.open_trade is not None),
                             realised_quote=paper.realised_pnl_quote, unrealised_quote=paper.unrealised_pnl_quote)
        state[spec.name] = {"written_until_ms": max(until, last_close), "promoted_at_ms": s.promoted_at_ms}
        for e in paper.events:
            if e.kind == "order":
                orders[e.data["role"]] = orders.get(e.data["role"], 0) + 1
        out.append({"name": spec.name, "pair": s.pair, "timeframe": s.timeframe, "entry_set": s.entry_set,
                    "promoted_at_ms": s.promoted_at_ms, "expires_at_ms": s.expires_at_ms,
                    "bars_since_promotion": max(0, len(paper.result.equity) - paper.first_bar),
                    "n_intents": paper.n_intents, "n_blocked": paper.n_blocked, "blocked": dict(paper.blocked),
                    **book, "trades": _trade_rows(paper), "paper": _summary(paper.closed_trades),
                    "backtest": _backtest_same_window(candles, spec, account, paper, now_ms),
                    "research": {k: s.metrics.get(k) for k in ("n_trades", "win_rate_pct", "profit_factor",
                                                                "expectancy_pct", "total_return_pct")}})
    report = {"generated_at_ms": now_ms, "generated_at": iso_ms(now_ms), "account": {
        "initial_cash_quote": account.initial_cash_quote, "stake_quote": account.stake_quote},
        "tunables_source": tunables.source, "strategies": out, "skipped": skipped, "events_written": n_written}
    state_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_path, json.dumps(state, indent=1), lock=False)
    write_json(Path(reports_dir) / PAPER_FILE, json_safe(report))
    if metrics_path is not None:
        metrics.write(metrics_path)
    guards_record(reports_dir, tunables, now_ms)
    write_step(reports_dir, "STEP-6.2-orders.md", "STEP 6.2 — TP/SL & orders", {
        "date": iso_ms(now_ms), "mode": "dry-run (shadow orders, paper fills by the simulator's rules)",
        "strategies": len(out), "orders": ", ".join(f"{k} {v}" for k, v in sorted(orders.items())) or "none",
        "test orders": "ok" if not skipped else f"{len(skipped)} strateg{'y' if len(skipped) == 1 else 'ies'} skipped"})
    for line in skipped:
        logger.warning("paper trading: %s", line)
    return report


def _book_json(paper: PaperResult) -> dict[str, Any]:
    o = paper.open_trade
    pos = None if o is None else {"entry_ms": int(o["entry_ms"]), "entry_price": float(o["entry_price"]),
                                  "qty_base": float(o["qty_base"]), "mark_price": float(o["exit_price"]),
                                  "unrealised_pnl_quote": float(o["pnl_quote"])}
    return {"open_position": pos, "realised_pnl_quote": paper.realised_pnl_quote,
            "unrealised_pnl_quote": paper.unrealised_pnl_quote, "n_paper_trades": int(len(paper.closed_trades))}


def _backtest_same_window(candles, spec: PaperSpec, account: PaperAccount, paper: PaperResult, now_ms: int) -> dict | None:
    """The simulator on the same candles and window (no guards): what the backtest says of the paper period."""
    frame = paper.result.equity.index
    start = paper.first_bar + 1  # the first fill of a signal on the first bar
    if start >= len(frame):
        return None
    closed = candles.loc[:frame[-1]]
    b = run_backtest(closed, spec.signal, dict(spec.params), spec.exit_plan, spec.costs, timeframe=spec.timeframe,
                     initial_cash_quote=account.initial_cash_quote, start_bar=start, stake_quote=account.stake_quote)
    t = b.trades
    closed_t = t.iloc[:-1] if len(t) and t["exit_reason"].iloc[-1] == "end" else t
    out = _summary(closed_t)
    out["same_as_paper"] = bool(len(closed_t) == len(paper.closed_trades) and np.array_equal(
        closed_t["entry_ms"].to_numpy(), paper.closed_trades["entry_ms"].to_numpy()) and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in zip(closed_t["pnl_quote"], paper.closed_trades["pnl_quote"])))
    return out
