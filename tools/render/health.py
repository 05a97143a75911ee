"""The health line at the top of the dashboard: running now / idle until HH:MM UTC / late, errors and
warnings with links to them, data mode and clock, paper PnL today.

The state comes from :func:`engine.publish.health.judge_health` on the cycle's health record
(``public_dir/health.json``; status.json when there is none). The page's JavaScript applies the same
rules to the same record every few seconds and re-reads health.json each poll, so "running now"
shows during a cycle without a new render; the words here and there must stay the same (a test
compares them).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.publish.health import RUNNING_FACTOR, RUNNING_MIN_S, START_GRACE_S, CycleHealth, judge_health
from engine.research.reports import CycleStatus
from tools.render.format import DASH, fmt_duration, fmt_ms, fmt_signed, number

DAY_MS = 86_400_000


def health_record(health: CycleHealth | None, status: CycleStatus | None) -> CycleHealth | None:
    """Return the newer of the health.json record and the one status.json implies (a finished cycle)."""
    from_status = None
    if status is not None:
        from_status = CycleHealth(False, status.started_at_ms, status.finished_at_ms, status.next_run_ms, None,
                                  status.duration_s)
    if health is None or (from_status is not None and from_status.started_at_ms > health.started_at_ms):
        return from_status
    return health


def _hhmm(ms: int) -> str:
    return fmt_ms(ms)[11:]  # "09:01 UTC"


def health_words(health: CycleHealth | None, now_ms: int) -> tuple[str, str]:
    """Return (state, sentence) for the health line at `now_ms`; state is one of
    ``running idle due late unknown`` (:func:`engine.publish.health.judge_health`)."""
    r = judge_health(health, now_ms)
    if r.state == "unknown" or health is None:
        return "unknown", "No cycle has run yet"
    if r.state == "running":
        return "running", f"Running now · for {fmt_duration(r.elapsed_s)}"
    if r.state == "late" and health.running:
        usual = f" (usually {fmt_duration(health.last_duration_s)})" if health.last_duration_s else ""
        return "late", f"Late: the cycle has been running for {fmt_duration(r.elapsed_s)}{usual}"
    if r.state == "late":
        return "late", f"Late: the next cycle was due {_hhmm(r.due_ms)}, {fmt_duration(r.late_s)} ago"
    if r.state == "due":
        return "due", f"Next cycle due now ({_hhmm(r.due_ms)})"
    if r.due_ms is None:
        return "idle", "Idle · single run, no loop"
    return "idle", f"Idle until {_hhmm(r.due_ms)}"


def paper_pnl_today(paper: Mapping[str, Any] | None) -> str | None:
    """Return the paper PnL of the trades closed on the UTC day of paper.json's clock, in quote
    currency (``+0.12``), the sum of their stored ``pnl_quote``; None without paper.json."""
    if paper is None:
        return None
    day = paper["generated_at_ms"] // DAY_MS
    total, n = 0.0, 0
    for s in paper["strategies"]:
        for t in s["trades"]:
            pnl, exit_ms = number(t.get("pnl_quote")), t.get("exit_ms")
            if pnl is not None and isinstance(exit_ms, int) and exit_ms // DAY_MS == day:
                total += pnl
                n += 1
    return f"{fmt_signed(total, 2)} ({n} trade{'' if n == 1 else 's'})"


def health_line(health: CycleHealth | None, *, now_ms: int, n_errors: int | None, n_warnings: int,
                paper: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the health line's model.

    Returns
    -------
    dict
        ``state``, ``text`` (:func:`health_words` at `now_ms`, the render time), ``record`` (the
        health record as JSON for the page's script, with the thresholds it applies), ``n_errors``
        (None: no status.json), ``n_warnings``, ``paper_today`` (:func:`paper_pnl_today`),
        ``last_duration`` and ``finished`` (texts).
    """
    state, text = health_words(health, now_ms)
    record = dict(health.to_json()) if health is not None else None
    rules = {"grace_s": START_GRACE_S, "running_factor": RUNNING_FACTOR, "running_min_s": RUNNING_MIN_S}
    return {"state": state, "text": text, "record": json.dumps({"health": record, "rules": rules}),
            "n_errors": n_errors, "n_warnings": n_warnings, "paper_today": paper_pnl_today(paper),
            "last_duration": fmt_duration(health.last_duration_s) if health and health.last_duration_s is not None
            else DASH,
            "finished": _hhmm(health.finished_at_ms) if health and health.finished_at_ms else DASH}
