"""The paper-trading section: each promoted strategy's forward test, paper beside backtest beside research.

Reads the model :func:`tools.render.readers.read_paper` returns (paper.json, written each cycle by
:func:`engine.execution.forward.forward_test`). Every number is a stored one, formatted.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.render.format import DASH, fmt_ms, fmt_num, fmt_signed, slug, symbol

#: Paper trades listed per strategy (newest first).
MAX_TRADES = 10


def _position(pos: Mapping[str, Any]) -> str | None:
    if not pos:
        return None
    return (f"{fmt_num(pos.get('qty_base'), 6)} @ {fmt_num(pos.get('entry_price'), 4)} since {fmt_ms(pos.get('entry_ms'))}"
            f" · mark {fmt_num(pos.get('mark_price'), 4)}")


def _compare(s: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(label, paper, backtest of the same candles, research out-of-sample) rows."""
    p, b, r = s["paper"] or {}, s["backtest"] or {}, s["research"] or {}
    return [
        ("Trades", fmt_num(p.get("n_trades"), 0), fmt_num(b.get("n_trades"), 0), fmt_num(r.get("n_trades"), 0)),
        ("Win rate [%]", fmt_num(p.get("win_rate_pct"), 1), fmt_num(b.get("win_rate_pct"), 1), fmt_num(r.get("win_rate_pct"), 1)),
        ("Mean return [%/trade]", fmt_num(p.get("mean_return_pct"), 3), fmt_num(b.get("mean_return_pct"), 3),
         fmt_num(r.get("expectancy_pct"), 3)),
        ("PnL [quote]", fmt_signed(p.get("pnl_quote"), 4), fmt_signed(b.get("pnl_quote"), 4), DASH),
    ]


def paper_section(paper: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return the section's model, or None when paper.json is not there (paper trading off or not run yet)."""
    if paper is None:
        return None
    acct = paper.get("account") or {}
    rows = []
    for s in paper["strategies"]:
        trades = [{"entry": fmt_ms(t.get("entry_ms")), "exit": fmt_ms(t.get("exit_ms")) if t.get("exit_ms") else "open",
                   "entry_price": fmt_num(t.get("entry_price"), 4),
                   "exit_price": fmt_num(t.get("exit_price"), 4) if t.get("exit_price") is not None else DASH,
                   "reasons": str(t.get("exit_reasons") or DASH), "pnl": fmt_signed(t.get("pnl_quote"), 4)}
                  for t in reversed(s["trades"][-MAX_TRADES:])]
        b = s["backtest"] or {}
        rows.append({
            "id": slug("paper", s["name"]), "pair": symbol(s["pair"]), "tf": s["timeframe"], "entry_set": s["entry_set"],
            "promoted": fmt_ms(s["promoted_at_ms"]), "bars": s["bars"], "position": _position(s["open_position"]),
            "realised": fmt_signed(s["realised"], 4), "unrealised": fmt_signed(s["unrealised"], 4),
            "intents": s["n_intents"], "blocked": ", ".join(f"{k} {v}" for k, v in s["blocked"].items()) or "none",
            "n_blocked": s["n_blocked"], "compare": _compare(s), "trades": trades,
            "agree": None if not b else bool(b.get("same_as_paper")), "n_trades": len(s["trades"]),
        })
    stake = acct.get("stake_quote")
    return {"generated": fmt_ms(paper["generated_at_ms"]), "rows": rows, "skipped": paper.get("skipped") or [],
            "account": f"each strategy: {fmt_num(acct.get('initial_cash_quote'), 2)} quote, "
                       f"{'all of it' if stake is None else fmt_num(stake, 2) + ' quote'} per entry"}
