"""A page per promoted strategy (``public_dir/s-<PAIR>_<TF>_<ENTRYSET>.html``, linked from its card).

Equity and drawdown, the recent candles around its trades with entries and exits marked (zoom and
pan, opening fitted to the last trades), its trade list, its parameters per walk-forward fold and the
rest of its judgement, why it was promoted (the risk_mode rules it passed, as promotion.json states
them), and its paper trades and PnL beside the backtest's. Every number is a stored one, formatted.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.research.reports import Curve
from tools.render.format import DASH, fmt_ms, fmt_num, fmt_signed, fmt_value, sig
from tools.render.readers import PromotionReport

#: Trades listed on a strategy page (newest first; the rest is counted).
MAX_TRADES = 200


def trade_rows(curve: Curve | None) -> tuple[list[dict[str, str]], int]:
    """Return the stored trades of `curve` as table rows, newest first, and how many were left out.

    Each row: ``entry`` and ``exit`` (UTC times), ``entry_price``, ``exit_price`` (7 significant
    digits), ``reason`` (exit reason as stored), ``pnl`` (quote, signed), ``win`` (bool).
    """
    if curve is None:
        return [], 0
    trades = list(curve.trades)
    rows = [{"entry": fmt_ms(t.entry_ms), "exit": fmt_ms(t.exit_ms), "entry_price": f"{sig(t.entry_price):.7g}",
             "exit_price": f"{sig(t.exit_price):.7g}", "reason": str(t.reason), "pnl": fmt_signed(t.pnl_quote, 2),
             "win": t.pnl_quote > 0} for t in reversed(trades[-MAX_TRADES:])]
    return rows, max(0, len(trades) - MAX_TRADES)


def promotion_reasons(card: Mapping[str, Any], promotion: PromotionReport | None) -> dict[str, Any]:
    """Return why the strategy holds its slot: ``{"lines": [str], "rules": [(name, value)], "risk_mode",
    "judged"}`` from promotion.json (its decision for this candidate, the rules of the risk_mode) and
    strategies.yml (when it was promoted, by which risk_mode, until when)."""
    lines = [f"Promoted {card['promoted_txt']}" + (f" by the {card['risk_mode']} rules" if card["risk_mode"] else "")
             + f"; {card['expires_rel']} ({card['expires_txt']})."]
    decision = card.get("decision")
    if decision is None:
        lines.append("The latest promotion run (promotion.json) did not judge it: it holds its slot from an "
                     "earlier cycle until it expires.")
    else:
        reasons, promoted = decision
        if promoted:
            lines.append("The latest promotion run judged it again and it passed every rule below.")
        else:
            lines.append("The latest promotion run did not promote it again; it keeps its slot until it expires. "
                         "Rules it failed this time: " + "; ".join(reasons) + ".")
    rules = [(k, fmt_value(v)) for k, v in promotion.rules] if promotion is not None else []
    return {"lines": lines, "rules": rules, "risk_mode": promotion.risk_mode if promotion else None,
            "judged": fmt_ms(promotion.generated_at_ms) if promotion else DASH}


def paper_book(paper_model: Mapping[str, Any] | None, card: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the paper-trading card of this strategy (:func:`tools.render.paper.paper_section` row), or None."""
    if not paper_model:
        return None
    for r in paper_model["rows"]:
        if (r["pair"], r["tf"], r["entry_set"]) == (card["pair"], card["tf"], card["entry_set"]):
            return r
    return None


def strategy_page(card: Mapping[str, Any], *, curve: Curve | None, payload: Mapping[str, Any] | None,
                  chart_file: str | None, notes: list[str], promotion: PromotionReport | None,
                  paper_model: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the strategy page's template context (the card's model plus what only this page shows).

    Returns
    -------
    dict
        ``card`` (the dashboard card's model), ``trades`` and ``trades_more`` (:func:`trade_rows`),
        ``why`` (:func:`promotion_reasons`), ``paper`` (:func:`paper_book`), ``chart_file``,
        ``has_equity``, ``has_candles``, ``n_candles``, ``n_marks``, ``n_trades_window``,
        ``candles_span`` (first → last candle, UTC), ``notes``.
    """
    trades, more = trade_rows(curve)
    candles = payload.get("candles") if payload else None
    return {
        "card": card, "trades": trades, "trades_more": more, "why": promotion_reasons(card, promotion),
        "paper": paper_book(paper_model, card), "chart_file": chart_file,
        "has_equity": bool(payload and payload.get("equity")), "has_candles": bool(candles),
        "n_candles": len(candles["t"]) if candles else 0,
        "n_marks": len(payload["entries"]["t"]) + len(payload["exits"]["t"]) if payload else 0,
        "n_trades_window": payload["n_trades_window"] if payload else 0,
        "candles_span": f"{fmt_ms(candles['t'][0])} → {fmt_ms(candles['t'][-1])}" if candles else DASH,
        "start_equity": fmt_num(curve.equity_quote[0], 2) if curve is not None and curve.equity_quote else DASH,
        "notes": notes,
    }
