"""Result cards: the numbers that decide whether to trust a strategy, out-of-sample first.

One card per promoted strategy, then the closest candidates (the rejected ones with the fewest
failed rules, :func:`tools.render.evidence.closest_candidates`). Each card shows out-of-sample
return, Sharpe with its deflated value and the trials it counts, p-value vs random, trades, max
drawdown and break-even cost, the in-sample value beside each; the out-of-sample window and fold
count; and plain caveats (few trades, an in-sample loss, a weak deflated Sharpe). Every number is a
stored one, formatted.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.research.reports import SummaryRow
from tools.render.format import DASH, fmt_count, fmt_num, fmt_window, number

#: Out-of-sample trades below which a card says the sample is small.
FEW_TRADES = 30
#: Deflated Sharpe below which a card says the result may be luck of the trials (Bailey & López de Prado).
WEAK_DSR = 0.95


def _pair(label: str, oos: Any, ins: Any, decimals: int) -> dict[str, str]:
    return {"label": label, "oos": fmt_num(oos, decimals), "is": fmt_num(ins, decimals), "note": None}


def decisive_numbers(oos: Mapping[str, Any], ins: Mapping[str, Any], row: SummaryRow | None) -> list[dict[str, str]]:
    """Return the card's numbers: ``[{"label", "oos", "is", "note"?}]``, out-of-sample headline.

    `oos`/`ins` are the stored metric mappings (``total_return_pct sharpe n_trades
    max_drawdown_pct``); `row` adds the judgement (deflated Sharpe, trials, p-value, break-even cost).
    """
    out = [_pair("Return [%]", oos.get("total_return_pct"), ins.get("total_return_pct"), 2),
           _pair("Sharpe (ann.)", oos.get("sharpe"), ins.get("sharpe"), 2)]
    if row is not None:
        j = row.judgement
        trials = j.n_trials_slot if isinstance(j.n_trials_slot, int) and j.n_trials_slot > 0 else row.n_configs_tried
        out[1]["note"] = f"deflated {fmt_num(row.deflated_sharpe, 2)} · {fmt_count(trials, 'trial')}"
    out += [_pair("Trades", oos.get("n_trades"), ins.get("n_trades"), 0),
            _pair("Max DD [%]", oos.get("max_drawdown_pct"), ins.get("max_drawdown_pct"), 2)]
    if row is not None:
        j = row.judgement
        out.append({"label": "p vs random", "oos": fmt_num(j.p_value_vs_random, 3), "is": None,
                    "note": fmt_count(j.n_twins, "twin") if j.n_twins else None})
        out.append({"label": "Break-even cost [bps]", "oos": fmt_num(j.break_even_cost_bps, 1), "is": None,
                    "note": f"cost {fmt_num(j.cost_per_trade_bps, 1)}"})
    return out


def caveats(oos: Mapping[str, Any], ins: Mapping[str, Any], row: SummaryRow | None) -> list[str]:
    """Return plain-language reasons to doubt the out-of-sample numbers (empty when none apply)."""
    out = []
    n = number(oos.get("n_trades"))
    if n is not None and n < FEW_TRADES:
        out.append(f"only {n:.0f} out-of-sample trades")
    r_is, s_is = number(ins.get("total_return_pct")), number(ins.get("sharpe"))
    if (r_is is not None and r_is < 0) or (s_is is not None and s_is < 0):
        out.append(f"in-sample loss (return {fmt_num(r_is, 2)} %, Sharpe {fmt_num(s_is, 2)})")
    if row is not None:
        dsr = number(row.deflated_sharpe)
        if dsr is None or dsr < WEAK_DSR:
            out.append(f"deflated Sharpe {fmt_num(dsr, 2)} < {WEAK_DSR}: may be the luck of the trials")
    return out


def oos_window(row: SummaryRow | None) -> str:
    """``out-of-sample 2021-04-15 10:00 → 05-02 23:45 UTC · 4 folds`` (``—`` without a row or folds)."""
    if row is None or not row.folds:
        return DASH
    first = min(f.test.first_ms for f in row.folds)
    last = max(f.test.last_ms for f in row.folds)
    return f"out-of-sample {fmt_window(first, last)} · {fmt_count(len(row.folds), 'fold')}"


def card_numbers(oos: Mapping[str, Any], ins: Mapping[str, Any], row: SummaryRow | None) -> dict[str, Any]:
    """Return ``{"numbers", "caveats", "window"}`` for one card (the functions above)."""
    return {"numbers": decisive_numbers(oos, ins, row), "caveats": caveats(oos, ins, row), "window": oos_window(row)}
