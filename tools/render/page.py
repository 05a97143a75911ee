"""The page model: typed inputs → the template context (plain dicts and strings).

Health line (running / idle / late, errors and warnings, mode, clock, paper PnL today), result cards
(promoted strategies, then the closest candidates; or, when no strategy is active, the closest
candidates and the rules they failed), paper trading, later-stage cards, summary table (promoted rows
first), state grid, watchlist, errors, warnings and gaps, and the log tail. Every number is a stored
one, formatted.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.research.reports import ClockReading, SummaryRow, describe_source
from engine.types import DataSource
from tools.render.cards import card_numbers
from tools.render.evidence import LABEL_P, RowKey, closest_candidates, evidence, verdict
from tools.render.format import (DASH, fmt_dsr, fmt_duration, fmt_exit_plan, fmt_ms, fmt_num, fmt_params,
                                 fmt_relative, fmt_short, fmt_volume, folder, slug, symbol, timeframe_order)
from tools.render.health import health_line, health_record
from tools.render.paper import paper_section
from tools.render.readers import Inputs
from tools.render.stages import stage_section

#: Closest candidates shown after the promoted strategies.
N_NEAR = 3
STATE_CODES: tuple[tuple[str, str], ...] = (
    ("OK", "fresh candles and a promoted, unexpired strategy"),
    ("DAT", "fresh candles, no promoted strategy"),
    ("OLD", "last candle older than age_mult × timeframe"),
    ("MIS", "no candle file"),
)
#: Summary-table metrics: (key in in_sample / out_of_sample, column label with unit, decimals).
TABLE_METRICS: tuple[tuple[str, str, int], ...] = (
    ("total_return_pct", "Return [%]", 2),
    ("profit_factor", "Profit factor", 2),
    ("sharpe", "Sharpe (ann.)", 2),
    ("max_drawdown_pct", "Max DD [%]", 2),
    ("n_trades", "Trades", 0),
    ("win_rate_pct", "Win rate [%]", 1),
)
#: Card metrics (out-of-sample headline, in-sample beside it).
CARD_METRICS: tuple[tuple[str, str, int], ...] = TABLE_METRICS + (
    ("expectancy_pct", "Expectancy [%/trade]", 3),
    ("exposure_pct", "Exposure [%]", 1),
)
#: Decimals of a p-value vs random.
P_DECIMALS = 3
#: Metrics where a smaller value is better (the table sorts them ascending on the first tap).
LOWER_IS_BETTER = frozenset({"max_drawdown_pct"})


def header_mode(source: DataSource | None, exchanges: tuple[str, ...] = ()) -> tuple[str, str]:
    """Return (badge text, CSS class) of the data source of the last cycle.

    Only candles fetched from the exchange this cycle are live (``live data · binance``,
    ``mode-live``); the bundled sample and stored exchange candles kept offline are offline
    (``mode-offline``); no cycle yet is ``mode-none``.
    """
    if source is None:
        return "waiting for the first cycle", "mode-none"
    text = describe_source(source, exchanges)
    if source.is_live:
        return f"live data · {text}", "mode-live"
    if source is DataSource.UNKNOWN:
        return "unknown data source", "mode-none"
    return text, "mode-offline"


def _header(inputs: Inputs, now_ms: int, n_warnings: int) -> tuple[dict[str, Any], ClockReading | None]:
    status, summary = inputs.status, inputs.summary
    clock = status.clock if status else (summary.clock if summary else None)
    mode, mode_class = header_mode(status.data_source if status else None, status.exchanges if status else ())
    last_ms = status.finished_at_ms if status else None
    header = {
        "mode": mode, "mode_class": mode_class,
        "clock_kind": {"replay": "replay clock", "wall": "wall clock"}[clock.kind] if clock else "clock",
        "clock_label": (clock.label or fmt_ms(clock.now_ms)) if clock else "not yet",
        "clock_now": fmt_ms(clock.now_ms) if clock else DASH,
        "last_ms": last_ms, "last_txt": fmt_short(last_ms, now_ms),
        "duration": fmt_duration(status.duration_s) if status else DASH,
        "has_cycle": status is not None, "clock_is_wall": clock is None or clock.kind != "replay",
        "config_problem": status.config_problem if status else None,
        "health": health_line(health_record(inputs.health, status), now_ms=now_ms,
                              n_errors=len(status.errors) if status else None, n_warnings=n_warnings,
                              paper=inputs.paper),
    }
    # the replay clock's label already says what it is ("replay clock 2021-05-03 00:00 UTC (…)")
    if header["clock_label"].lower().startswith(header["clock_kind"]):
        header["clock_label"] = header["clock_label"][len(header["clock_kind"]):].strip()
    return header, clock


def _grid(inputs: Inputs) -> dict | None:
    status = inputs.status
    if status is None or not status.states:
        return None
    tfs, pairs = list(status.timeframes), list(status.pairs)
    cells: dict[tuple[str, str], dict] = {}
    for st in status.states:
        if folder(st.pair) not in {folder(p) for p in pairs}:
            pairs.append(st.pair)
        if st.timeframe not in tfs:
            tfs.append(st.timeframe)
        detail = f"{symbol(st.pair)} {st.timeframe}: {st.state}"
        last = st.last_candle_ms
        detail += f" · last candle {fmt_ms(last)}" if last is not None else " · no candles stored"
        if st.rows is not None:
            detail += f" · {st.rows} rows"
        if st.source is not None or st.last_candle_ms is not None:
            detail += f" · source {st.source or 'unknown (no source record)'}"
        cells[(folder(st.pair), st.timeframe)] = {"code": st.state, "label": st.state, "detail": detail}
    tfs.sort(key=timeframe_order)
    rows = [{"pair": symbol(p), "cells": [cells.get((folder(p), tf)) or {
        "code": "UNK", "label": "?", "detail": f"{symbol(p)} {tf}: no state reported"} for tf in tfs]}
        for p in pairs]
    counts = {code: sum(1 for c in cells.values() if c["code"] == code) for code, _ in STATE_CODES}
    return {"tfs": tfs, "rows": rows, "counts": counts}


def _table(inputs: Inputs, promoted_keys: set[tuple[str, str, str]]) -> dict | None:
    summary = inputs.summary
    if summary is None:
        return None
    rows = []
    for r in summary.rows:
        rows.append({"pair": r.symbol, "tf": r.timeframe, "entry_set": r.entry_set, "params": fmt_params(r.params),
                     "promoted": (r.pair, r.timeframe, r.entry_set) in promoted_keys,
                     "tf_order": timeframe_order(r.timeframe) // 60_000,
                     "cells": [(fmt_num(r.out_of_sample.get(k), d), fmt_num(r.in_sample.get(k), d))
                               for k, _, d in TABLE_METRICS],
                     # under the OOS Sharpe: its deflated Sharpe ratio and the trials it counts
                     "dsr": fmt_dsr(r.deflated_sharpe, r.judgement.n_trials_slot, r.n_configs_tried),
                     "p": fmt_num(r.judgement.p_value_vs_random, P_DECIMALS)})
    # promoted rows first (the page keeps them pinned on every sort), then pair, timeframe, entry set
    rows.sort(key=lambda x: (not x["promoted"], x["pair"], x["tf_order"], x["entry_set"]))
    return {"rows": rows, "metrics": [(label, dec, k in LOWER_IS_BETTER, k == "sharpe")
                                      for k, label, dec in TABLE_METRICS],
            "p_label": LABEL_P, "tfs": sorted({r["tf"] for r in rows}, key=timeframe_order),
            "generated": fmt_ms(summary.generated_at_ms), "config_id": summary.config_id,
            "n_columns": 1 + 2 * len(TABLE_METRICS) + 2}


def _rows_by_key(inputs: Inputs) -> dict[RowKey, SummaryRow]:
    return {(r.pair, r.timeframe, r.entry_set): r for r in inputs.summary.rows} if inputs.summary else {}


def _metric_cells(oos: Mapping[str, float], ins: Mapping[str, float]) -> list[tuple[str, str, str]]:
    return [(label, fmt_num(oos.get(k), d), fmt_num(ins.get(k), d)) for k, label, d in CARD_METRICS]


def _verdict(inputs: Inputs, rows: dict[RowKey, SummaryRow], n_active: int) -> dict | None:
    """The "No strategy beat chance this cycle" block: only when no strategy is active and the
    cycle judged its candidates (promotion.json) and promoted none of them (strategies.yml and
    promotion.json agree)."""
    if n_active or inputs.promotion is None or any(d.promoted for d in inputs.promotion.decisions):
        return None
    v = verdict(inputs.promotion, rows)
    for c in v["closest"]:
        row = c.pop("row")
        c["id"] = slug(folder(c["pair"]), c["tf"], c["entry_set"])
        c["signal"] = row.signal if row else None
        c["exit_plan"] = fmt_exit_plan(row.exit_plan) if row else DASH
        c["metrics"] = _metric_cells(row.out_of_sample, row.in_sample) if row else []
    return v


def _cards(inputs: Inputs, ref_ms: int, clock_is_wall: bool, rows: dict[RowKey, SummaryRow]) -> list[dict]:
    cards = []
    reasons = {(d.pair, d.timeframe, d.entry_set): d for d in inputs.promotion.decisions} if inputs.promotion else {}
    for s in inputs.strategies:
        expired = s.is_expired(ref_ms)
        key = (s.pair, s.timeframe, s.entry_set)
        row = rows.get(key)
        note = None
        if row is None:
            note = "No judgement shown: summary.json has no row for it"
        elif s.period is not None and row.period != s.period:
            note = (f"Judgement of the latest research run (candles to {fmt_ms(row.period.last_ms)}), "
                    f"not of the run that promoted it (candles to {fmt_ms(s.period.last_ms)})")
        decision = reasons.get(key)
        cards.append({
            "id": slug(s.pair, s.timeframe, s.entry_set), "pair": s.symbol, "tf": s.timeframe,
            "entry_set": s.entry_set, "signal": s.signal, "params": fmt_params(s.params),
            "exit_plan": fmt_exit_plan(s.exit_plan), "risk_mode": s.risk_mode,
            "metrics": _metric_cells(s.metrics, s.in_sample), **card_numbers(s.metrics, s.in_sample, row),
            "evidence": evidence(row) if row is not None else None, "evidence_note": note,
            "promoted_txt": fmt_ms(s.promoted_at_ms), "expires_ms": s.expires_at_ms,
            "expires_txt": fmt_ms(s.expires_at_ms), "expired": expired,
            "expires_rel": ("expired " if expired else "expires ") + fmt_relative(s.expires_at_ms, ref_ms)
                           + ("" if clock_is_wall else " (replay clock)"),
            "decision": (list(decision.reasons), decision.promoted) if decision else None,
            "strategy": s,
        })
    return cards


def _near(inputs: Inputs, rows: dict[RowKey, SummaryRow], promoted_keys: set[tuple[str, str, str]]) -> list[dict]:
    """The closest candidates after the promoted cards (fewest failed rules, then lowest p vs random)."""
    if inputs.promotion is None:
        return []
    out = []
    for rank, (d, row) in enumerate(closest_candidates(inputs.promotion, rows, n=N_NEAR + len(promoted_keys)), 1):
        if (d.pair, d.timeframe, d.entry_set) in promoted_keys or len(out) >= N_NEAR:
            continue
        out.append({"id": slug(folder(d.pair), d.timeframe, d.entry_set), "rank": len(out) + 1, "pair": symbol(d.pair),
                    "tf": d.timeframe, "entry_set": d.entry_set, "reasons": list(d.reasons),
                    "params": fmt_params(row.params) if row else DASH,
                    **card_numbers(row.out_of_sample if row else {}, row.in_sample if row else {}, row)})
    return out


def build_page(inputs: Inputs, *, now_ms: int) -> dict[str, Any]:
    """Turn the read inputs into the template context.

    Parameters
    ----------
    inputs : Inputs
        Typed records as read (:func:`tools.render.readers.load_inputs`).
    now_ms : int
        Wall-clock time of the render (epoch ms UTC). Expiry is measured against the cycle's
        clock: promotion stamps ``promoted_at``/``expires_at`` with it (the replay clock
        offline), so only a wall clock ticks on the page.
    """
    status = inputs.status
    warnings = list(inputs.problems)
    if status is not None:
        if status.config_problem:
            warnings.append(f"config problem: {status.config_problem}")
        warnings += [f"{symbol(st.pair)} {st.timeframe}: {st.state} · "
                     + ("no candle file" if st.state == "MIS" else f"last candle {fmt_ms(st.last_candle_ms)}")
                     for st in status.states if st.state in ("OLD", "MIS")]
    header, clock = _header(inputs, now_ms, len(warnings))
    ref_ms = now_ms if header["clock_is_wall"] or clock is None else clock.now_ms
    promoted_keys = {(s.pair, s.timeframe, s.entry_set) for s in inputs.strategies}
    rows = _rows_by_key(inputs)
    n_active = sum(not s.is_expired(ref_ms) for s in inputs.strategies)
    watch = None
    if inputs.watchlist is not None:
        wl = inputs.watchlist
        watch = {"source": wl.source, "rank_by": wl.rank_by, "generated": fmt_ms(wl.generated_at_ms),
                 "rows": [{"rank": i + 1, "pair": symbol(p.symbol or p.pair), "volume": fmt_volume(p.quote_volume_24h),
                           "spread": fmt_num(p.spread_pct, 3)} for i, p in enumerate(wl.pairs)]}
    gaps = None if status is None else [
        {"pair": symbol(g.pair), "tf": g.timeframe, "from": fmt_ms(g.from_ms), "to": fmt_ms(g.to_ms),
         "n": str(g.n_missing)} for g in status.gaps]
    errors = None if status is None else [
        {"pair": symbol(e.pair) if e.pair else DASH, "tf": e.timeframe or DASH, "stage": e.stage,
         "message": e.message[:500]} for e in status.errors]
    optional = [stage_section(name, title, data) for name, title, data in inputs.optional]
    verdict_block = _verdict(inputs, rows, n_active)
    return {"header": header, "grid": _grid(inputs), "legend": STATE_CODES,
            "table": _table(inputs, promoted_keys), "cards": _cards(inputs, ref_ms, header["clock_is_wall"], rows),
            "near": [] if verdict_block else _near(inputs, rows, promoted_keys),
            "verdict": verdict_block, "paper": paper_section(inputs.paper),
            "watch": watch, "gaps": gaps, "errors": errors, "warnings": warnings, "log_tail": inputs.log_tail,
            "optional": optional, "problems": inputs.problems, "status_missing": status is None,
            "summary_missing": inputs.summary is None, "strategies_count": len(inputs.strategies)}
