"""What the desk writes for people and the dashboard: the session report, today's budget.

- ``<reports_dir>/desk/sessions/<stamp>_<profile>.md``: one markdown report per session (plan,
  limits check, result, orders sent, trades, the day's usage afterwards), written automatically
  after every session (``sessions.auto_report`` in desk.yaml); ``<stamp>_<profile>_trades.csv``
  beside it holds the paper trades (the format of ``jobs/backtest.py single --trades-out``).
- ``<reports_dir>/testnet_budget.json``: today's budget (:meth:`engine.desk.limits.Budget.to_json`:
  day, used, left, limits, runs), rewritten after every session and by ``--budget``.

``<stamp>`` is the session's wall-clock start, ``YYYYmmddTHHMMSSZ`` (UTC).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from engine.clock import format_ms
from engine.desk.limits import Budget, LimitCheck
from engine.desk.session import SessionResult
from engine.fileio import atomic_write_text, write_json

BUDGET_FILE = "testnet_budget.json"


def session_stamp(ts_ms: int) -> str:
    """``YYYYmmddTHHMMSSZ`` of `ts_ms` (UTC): sorts in time order, safe in file names."""
    return datetime.fromtimestamp(int(ts_ms) / 1000, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def session_base(reports_dir: Path | str, started_ms: int, profile: str) -> Path:
    """``<reports_dir>/desk/sessions/<stamp>_<profile>`` (add ``.md`` or ``_trades.csv``)."""
    return Path(reports_dir) / "desk" / "sessions" / f"{session_stamp(started_ms)}_{profile}"


def write_budget(reports_dir: Path | str, budget: Budget) -> Path:
    """Write ``<reports_dir>/testnet_budget.json`` atomically; return its path."""
    return write_json(Path(reports_dir) / BUDGET_FILE, budget.to_json())


def format_budget(budget: Budget) -> str:
    """The ``--budget`` text: today's usage, what is left, the limits."""
    u, day, run = budget.usage, budget.limits.day, budget.limits.run
    symbols = ", ".join(budget.limits.allowed_symbols) if budget.limits.allowed_symbols else "every pair"
    return "\n".join([
        f"Testnet budget, UTC day {budget.day} (as of {format_ms(budget.as_of_ms)})",
        "Used today:",
        f"  notional:  {u.notional_quote:.2f} (quote)",
        f"  trades:    {u.n_trades}",
        f"  runs:      {u.n_runs}",
        "Left today:",
        f"  notional:  {budget.left_notional_quote:.2f} (quote)",
        f"  trades:    {budget.left_trades}",
        "Limits:",
        f"  per day:   {day.max_notional_quote:g} quote, {day.max_trades} trades",
        f"  per run:   {run.max_notional_quote:g} quote, {run.max_trades} trades, {run.max_duration_minutes} minutes",
        f"  symbols:   {symbols}",
    ])


def _trades_table(result: SessionResult) -> list[str]:
    paper = result.paper
    if paper is None or paper.trades.empty:
        return ["No trades."]
    rows = ["| # | entry (UTC) | entry price | qty (base) | exit (UTC) | exit price | exit reason | PnL (quote) |",
            "|---|---|---|---|---|---|---|---|"]
    for t in paper.trades.itertuples(index=False):
        still_open = t.exit_reason == "end"
        rows.append(f"| {t.trade} | {format_ms(int(t.entry_ms))} | {t.entry_price:.6g} | {t.qty_base:.8g} | "
                    f"{'open' if still_open else format_ms(int(t.exit_ms))} | {t.exit_price:.6g} | "
                    f"{'marked to market' if still_open else t.exit_reason} | {t.pnl_quote:+.4f} |")
    return rows


def _orders_table(result: SessionResult) -> list[str]:
    if not result.orders:
        return [f"None ({'paper venue: nothing leaves' if not result.plan.venue.sends_orders else 'no paper fill to mirror'})."]
    rows = ["| time (UTC) | role | side | qty (base) | status | exchange id | client id |", "|---|---|---|---|---|---|---|"]
    for o in result.orders:
        rows.append(f"| {format_ms(o.ts_ms)} | {o.role} | {o.side} | {o.quantity_base:.8g} | {o.status} | "
                    f"{o.exchange_id or '-'} | {o.client_id} |")
    return rows


def session_markdown(result: SessionResult, check: LimitCheck, budget: Budget, *, trades_csv: Path | None = None,
                     events_dir: Path | None = None) -> str:
    """The session report as markdown (see the module's docstring)."""
    plan, p, paper = result.plan, result.plan.profile, result.paper
    status = "stopped by an error" if result.error else ("stopped early (budget)" if result.stop_note else "done")
    lines = [f"# Testnet session `{p.name}`, {format_ms(result.started_ms)}", "",
             f"Status: **{status}**. Wall clock {format_ms(result.started_ms)} → {format_ms(result.ended_ms)}.", "",
             "## Plan", "", *[f"- {line}" for line in plan.describe()], "",
             "## Limits check (before the session)", "",
             f"- allowed: {'yes' if check.allowed else 'no'}; planned {check.planned_notional_quote:.2f} quote, "
             f"{check.planned_trades} trades, {check.planned_duration_minutes:g} minutes",
             f"- UTC day {check.usage.day} had used {check.usage.notional_quote:.2f} quote and {check.usage.n_trades} "
             "trades", "",
             "## Result", "",
             f"- consumption registered: {result.notional_quote:.2f} quote of entries, {result.n_trades} trades",
             ]
    if paper is not None:
        lines += [f"- intents {paper.n_intents}, blocked by the execution guards {paper.n_blocked}"
                  + (f" ({', '.join(f'{k} {v}' for k, v in paper.blocked.items())})" if paper.blocked else ""),
                  f"- realised PnL {paper.realised_pnl_quote:+.4f} quote, unrealised {paper.unrealised_pnl_quote:+.4f} "
                  "quote (paper book, fees and slippage included)"]
    if result.stop_note:
        lines.append(f"- {result.stop_note}")
    if result.error:
        lines.append(f"- error: {result.error}")
    lines += [f"- note: {n}" for n in result.notes]
    lines += ["", "## Orders sent to the exchange", "", *_orders_table(result), "",
              "## Trades (paper book)", "", *_trades_table(result), "",
              "## Budget after the session", "",
              f"- UTC day {budget.day}: used {budget.usage.notional_quote:.2f} quote, {budget.usage.n_trades} trades, "
              f"{budget.usage.n_runs} runs; left {budget.left_notional_quote:.2f} quote, {budget.left_trades} trades"]
    files = [f"- trades: `{trades_csv}`"] if trades_csv else []
    files += [f"- events: `{events_dir}`"] if events_dir else []
    if files:
        lines += ["", "## Files", "", *files]
    return "\n".join(lines) + "\n"


def write_session_report(path: Path, result: SessionResult, check: LimitCheck, budget: Budget, **kw) -> Path:
    """Write the markdown report atomically; return its path."""
    return atomic_write_text(Path(path), session_markdown(result, check, budget, **kw))
