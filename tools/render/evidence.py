"""Whether a result beats chance, as the page shows it: the stored ``judgement`` of a summary row
(DESIGN.md, "Promotion is a claim about chance"), its walk-forward folds, and the closest
candidates of a cycle that promoted nothing.

Every number is the research stage's (:class:`engine.research.reports.rows.Judgement`,
:class:`~engine.research.reports.FoldResult`) or promotion's (the failed rules in
promotion.json), formatted by :mod:`tools.render.format`; nothing is recomputed. Ranking the
candidates (fewest failed rules, then lowest p-value vs random) only orders stored values.
"""
from __future__ import annotations

from typing import Any

from engine.research.reports import SummaryRow
from tools.render.charts import twins_histogram
from tools.render.format import (DASH, fmt_count, fmt_dsr, fmt_metrics_line, fmt_ms, fmt_num, fmt_params, fmt_signed,
                                 fmt_window, number, symbol)
from tools.render.readers import PromotionReport

#: Labels of the judgement facts, units in brackets (STYLE.md §4).
LABEL_DSR = "Deflated Sharpe"
LABEL_P = "p vs random"
LABEL_PBO = "PBO"
LABEL_COST = "Cost per trade [bps]"
LABEL_BREAK_EVEN = "Break-even cost [bps]"
LABEL_EXPECTANCY = "Expectancy gross / net [%/trade]"
#: Closest candidates shown when nothing was promoted.
N_CLOSEST = 3

RowKey = tuple[str, str, str]


def fold_rows(row: SummaryRow) -> list[dict[str, Any]]:
    """Return the walk-forward folds of `row` as table rows: which parameters each fold chose
    in-sample and what they returned on its test window.

    Returns
    -------
    list of dict
        ``{"fold" (1-based), "window" (test window, first → last candle), "bars", "params",
        "oos_return" (out-of-sample total return, percent), "deployed"}``; ``deployed`` marks the
        last fold when its parameters are the row's ``judgement.deployed_params`` (what trades next).
    """
    deployed = row.judgement.deployed_params
    out = []
    for i, f in enumerate(row.folds):
        out.append({"fold": f.fold + 1, "window": fmt_window(f.test.first_ms, f.test.last_ms), "bars": f.test.bars,
                    "params": fmt_params(f.params), "oos_return": fmt_num(f.out_of_sample.get("total_return_pct"), 2),
                    "deployed": bool(deployed) and i == len(row.folds) - 1 and f.params == deployed})
    return out


def evidence(row: SummaryRow) -> dict[str, Any]:
    """Return the page model of `row`'s judgement: facts, twins histogram, folds, deployed parameters.

    Returns
    -------
    dict
        ``facts``: (label, value) pairs: deflated Sharpe with the trials it counts, p-value vs
        random with the number of twins, PBO, gross and net expectancy, then cost per trade and
        break-even cost (bps, side by side); ``hist``: :func:`tools.render.charts.twins_histogram` of
        the twins with the row's out-of-sample return marked (None without twins); ``hist_caption``;
        ``folds``: :func:`fold_rows`; ``deployed_params`` and ``deployed_oos`` (its own
        out-of-sample metrics in one line); ``holdout``: the untouched final window's metrics in
        one line, or None when the run kept no holdout.
    """
    j = row.judgement
    ret = row.out_of_sample.get("total_return_pct")
    p = fmt_num(j.p_value_vs_random, 3)
    facts = [
        (LABEL_DSR, fmt_dsr(row.deflated_sharpe, j.n_trials_slot, row.n_configs_tried)),
        (LABEL_P, f"{p} · {fmt_count(j.n_twins, 'twin')}" if j.n_twins else p),
        (LABEL_PBO, fmt_num(j.pbo, 2)),
        (LABEL_EXPECTANCY, f"{fmt_num(j.expectancy_gross_pct, 3)} / {fmt_num(j.expectancy_net_pct, 3)}"),
        # side by side in the 2- and 3-column grids: what a trade costs and what it could bear
        (LABEL_COST, fmt_num(j.cost_per_trade_bps, 1)),
        (LABEL_BREAK_EVEN, fmt_num(j.break_even_cost_bps, 1)),
    ]
    hist = twins_histogram(j.twins_hist, ret) if j.n_twins else None
    caption = None
    if hist is not None:
        off = {"left": " (below the twins' range)", "right": " (above the twins' range)"}.get(hist["mark_off"] or "", "")
        caption = (f"Return [%] of {fmt_count(j.n_twins, 'random-entry twin')} (same exits, costs and number of "
                   f"entries; seed {j.twins_seed}): median {fmt_num(j.twins_median_pct, 2)}; this row "
                   f"{fmt_num(ret, 2)}{off}, excess {fmt_signed(j.excess_vs_random_pct, 2)} pp")
    return {
        "facts": facts, "hist": hist, "hist_caption": caption,
        "hist_note": None if hist is not None or not j.n_twins else "twins histogram not of the documented shape",
        "folds": fold_rows(row),
        "deployed_params": fmt_params(j.deployed_params) if j.deployed_params else DASH,
        "deployed_oos": fmt_metrics_line(j.deployed_oos),
        "holdout": fmt_metrics_line(j.holdout) if j.holdout else None,
    }


def _p_value(row: SummaryRow | None) -> float | None:
    return number(row.judgement.p_value_vs_random) if row is not None else None


def closest_candidates(promotion: PromotionReport, rows: dict[RowKey, SummaryRow],
                       n: int = N_CLOSEST) -> list[tuple[Any, SummaryRow | None]]:
    """Return the `n` rejected candidates closest to promotion, with their summary rows.

    Closest = fewest failed rules (promotion.json's ``reasons``), then lowest p-value vs random
    (undefined last), then the order of promotion.json. A decision whose row is not in summary.json
    comes with None.
    """
    def key(d) -> tuple[int, bool, float]:
        p = _p_value(rows.get((d.pair, d.timeframe, d.entry_set)))
        return (len(d.reasons), p is None, p if p is not None else 0.0)

    rejected = sorted((d for d in promotion.decisions if not d.promoted), key=key)[:n]
    return [(d, rows.get((d.pair, d.timeframe, d.entry_set))) for d in rejected]


def verdict(promotion: PromotionReport, rows: dict[RowKey, SummaryRow]) -> dict[str, Any]:
    """Return the "No strategy beat chance this cycle" model: when and by which rules the cycle
    judged, how many candidates, and the closest ones (:func:`closest_candidates`) with their
    failed rules and judgements (``evidence`` None when summary.json has no row for one)."""
    closest = []
    for rank, (d, row) in enumerate(closest_candidates(promotion, rows), 1):
        closest.append({"rank": rank, "pair": symbol(d.pair), "tf": d.timeframe,
                        "entry_set": d.entry_set, "reasons": list(d.reasons),
                        "params": fmt_params(row.params) if row else DASH, "row": row,
                        "evidence": evidence(row) if row else None})
    return {"risk_mode": promotion.risk_mode, "judged_txt": fmt_ms(promotion.generated_at_ms),
            "n_judged": len(promotion.decisions), "closest": closest}
